"""Judging a raw message and recording it: the raw bytes, its files and its verdict, exactly once.

The raw message is stored (content-addressed, fsync'ed) before it is judged, so nothing a sender sent can be
lost; the database rows are written in one transaction, keyed by the raw message's SHA-256, so processing the
same message again changes nothing.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from ..campaign import CallRules
from ..domain import Outcome
from ..intake.match import Roster, normalise
from ..intake.parse import attachment_from_file
from ..pipeline import Judgement, judge
from ..storage.blobs import BlobStore
from ..storage.models import (
    AttachmentRecord,
    DocumentRecord,
    Enterprise,
    MessageRecord,
    ProblemRecord,
    Revision,
    Submission,
    now,
)


def add_version(session: Session, enterprise: Enterprise, message_id: int) -> None:
    """Make an accepted message the enterprise's next version (once).

    The enterprise's row is locked first: on PostgreSQL the daemon and a staff command accepting at the same
    time would otherwise both count n versions and both write n + 1 (SQLite lets one writer in at a time).
    """
    assert enterprise.id is not None
    if session.exec(select(Submission).where(Submission.message_id == message_id)).first() is not None:
        return
    session.exec(select(Enterprise.id).where(Enterprise.id == enterprise.id).with_for_update()).one()
    versions = session.exec(
        select(func.count()).select_from(Submission).where(Submission.enterprise_id == enterprise.id)
    ).one()
    session.add(Submission(enterprise_id=enterprise.id, message_id=message_id, version=versions + 1))


def _codes(session: Session, message_id: int) -> str:
    query = (
        select(ProblemRecord.code).where(ProblemRecord.message_id == message_id).order_by(col(ProblemRecord.position))
    )
    return " ".join(session.exec(query).all())


OnRecord = Callable[[Session, MessageRecord, Judgement], None]


@dataclass(frozen=True)
class Recorded:
    record_id: int
    outcome: Outcome
    enterprise: str | None
    created: bool
    """False when this exact message had been recorded before (nothing was changed)."""


class Recorder:
    def __init__(self, engine: Engine, blobs: BlobStore, rules: CallRules, roster: Roster | None) -> None:
        self.engine = engine
        self.blobs = blobs
        self.rules = rules
        self.roster = roster

    def record(self, raw: bytes, source: str, internaldate: datetime | None = None) -> Recorded:
        """Store a raw message that is not in the blob store yet, then record it."""
        return self.record_stored(self.blobs.put_bytes(raw), source, internaldate)

    def record_stored(
        self,
        sha256: str,
        source: str,
        internaldate: datetime | None = None,
        *,
        oversize: int | None = None,
        on_record: OnRecord | None = None,
    ) -> Recorded:
        """Judge and record a raw message already in the blob store (under `sha256`).

        `on_record` runs inside the recording transaction (to queue the reply with the verdict, all or
        nothing). `oversize`: the blob holds only the headers of a message of that size, too large to fetch.
        """
        existing = self._existing(sha256)
        if existing is not None:
            return existing
        raw = self.blobs.path(sha256)
        with tempfile.TemporaryDirectory(prefix="shenbao-intake-", dir=self._workroot()) as workdir:
            judgement = judge(
                raw,
                roster=self.roster,
                rules=self.rules,
                workdir=Path(workdir),
                internaldate=internaldate,
                oversize=oversize,
            )
            self._store_files(judgement)
        try:
            return self._insert(judgement, sha256, oversize or raw.stat().st_size, source, on_record)
        except IntegrityError:  # recorded meanwhile by another process
            existing = self._existing(sha256)
            if existing is None:
                raise
            return existing

    def _workroot(self) -> Path:
        """Scratch space beside the blob store, so that large files move into it without a copy."""
        root = self.blobs.root / ".work"
        root.mkdir(parents=True, exist_ok=True)
        return root

    def _existing(self, sha256: str) -> Recorded | None:
        with Session(self.engine) as session:
            row = session.exec(select(MessageRecord).where(MessageRecord.raw_sha256 == sha256)).first()
            if row is None or row.id is None:
                return None
            return Recorded(row.id, Outcome(row.outcome), row.enterprise_name, created=False)

    def _store_files(self, judgement: Judgement) -> None:
        """Every attached file, and each document found in the archive, into the blob store."""
        if judgement.message is not None:
            for attachment in judgement.message.attachments:
                self.blobs.put_file(attachment.path, attachment.sha256)
        inspection = judgement.inspection
        if inspection is not None and inspection.folder is not None:
            wanted = {d.sha256 for d in judgement.verdict.documents}
            for member in inspection.members:
                if member.sha256 in wanted:
                    self.blobs.put_file(inspection.folder / member.stored_as, member.sha256)

    def _insert(
        self, judgement: Judgement, sha256: str, size: int, source: str, on_record: OnRecord | None
    ) -> Recorded:
        verdict, message = judgement.verdict, judgement.message
        processed_at = now()
        with Session(self.engine) as session:
            row = MessageRecord(
                raw_sha256=sha256,
                raw_size=size,
                source=source,
                message_id=message.message_id if message else None,
                subject=message.subject if message else "",
                sender=message.sender if message else None,
                sender_name=message.sender_name if message else "",
                received_at=(message.received_at if message and message.received_at else processed_at),
                processed_at=processed_at,
                outcome=verdict.outcome,
            )
            session.add(row)
            session.flush()
            self._write_verdict(session, row, judgement)
            if on_record is not None:
                session.flush()
                on_record(session, row, judgement)
            session.commit()
            assert row.id is not None
            return Recorded(row.id, verdict.outcome, verdict.enterprise, created=True)

    def revise(
        self,
        record_id: int,
        reason: str,
        extra: Path | None = None,
        on_record: OnRecord | None = None,
        *,
        dry_run: bool = False,
    ) -> Revision:
        """Judge a stored message again under today's roster and rules (with `extra`, an archive staff
        fetched by hand, as if it had been attached) and record the new verdict; the old one is kept in
        the revision history. `dry_run`: judge and say, record nothing."""
        with Session(self.engine) as session:
            row = session.get(MessageRecord, record_id)
            if row is None:
                raise LookupError(f"no message #{record_id}")
            internaldate, sha256 = row.received_at, row.raw_sha256
        with Session(self.engine) as session:
            added = session.exec(
                select(AttachmentRecord).where(
                    AttachmentRecord.message_id == record_id, col(AttachmentRecord.by_staff).is_(True)
                )
            ).all()
        with tempfile.TemporaryDirectory(prefix="shenbao-revise-", dir=self._workroot()) as workdir:
            extras = [attachment_from_file(self.blobs.path(a.sha256), Path(workdir), a.filename) for a in added]
            if extra is not None:
                extras.append(attachment_from_file(extra, Path(workdir)))
            judgement = judge(
                self.blobs.path(sha256),
                roster=self.roster,
                rules=self.rules,
                workdir=Path(workdir),
                internaldate=internaldate,
                extra=tuple(extras),
            )
            self._store_files(judgement)
        by_staff = {a.sha256 for a in extras}
        with Session(self.engine) as session:
            row = session.get(MessageRecord, record_id)
            assert row is not None
            before = (row.outcome, _codes(session, record_id))
            for old in [
                *session.exec(select(ProblemRecord).where(ProblemRecord.message_id == record_id)),
                *session.exec(select(DocumentRecord).where(DocumentRecord.message_id == record_id)),
                *session.exec(select(AttachmentRecord).where(AttachmentRecord.message_id == record_id)),
            ]:
                session.delete(old)
            session.flush()
            row.outcome = judgement.verdict.outcome
            self._write_verdict(session, row, judgement, by_staff)
            revision = Revision(
                message_id=record_id,
                at=now(),
                reason=reason,
                old_outcome=before[0],
                old_codes=before[1],
                new_outcome=row.outcome,
                new_codes=" ".join(p.code.value for p in judgement.verdict.problems),
            )
            session.add(revision)
            session.add(row)
            if dry_run:  # show what would change, keep everything as it was
                session.expunge(revision)
                session.rollback()
                return revision
            if on_record is not None and revision.changed:
                session.flush()
                on_record(session, row, judgement)
            session.commit()
            session.refresh(revision)
            return revision

    def _write_verdict(
        self,
        session: Session,
        row: MessageRecord,
        judgement: Judgement,
        by_staff: Collection[str] = (),
    ) -> None:
        """The verdict's rows for `row`: enterprise, problems, files, documents, and a version if accepted."""
        verdict, message = judgement.verdict, judgement.message
        assert row.id is not None
        enterprise = self._enterprise(session, verdict.enterprise)
        row.enterprise_id = enterprise.id if enterprise else None
        row.enterprise_name = verdict.enterprise
        row.archive_name = verdict.archive.name if verdict.archive else None
        for position, problem in enumerate(verdict.problems):
            session.add(
                ProblemRecord(
                    message_id=row.id,
                    position=position,
                    code=problem.code.value,
                    role=problem.role,
                    suggestion=problem.suggestion,
                    detail=problem.detail,
                )
            )
        archive_volumes = {v.sha256 for v in verdict.archive.volumes} if verdict.archive else set()
        for position, attachment in enumerate(message.attachments if message else ()):
            session.add(
                AttachmentRecord(
                    message_id=row.id,
                    position=position,
                    filename=attachment.filename,
                    content_type=attachment.content_type,
                    size=attachment.size,
                    sha256=attachment.sha256,
                    is_archive=attachment.sha256 in archive_volumes,
                    by_staff=attachment.sha256 in by_staff,
                )
            )
        for document in verdict.documents:
            session.add(
                DocumentRecord(
                    message_id=row.id,
                    role=document.role,
                    name=document.name,
                    size=document.size,
                    sha256=document.sha256,
                    is_word=document.is_word,
                )
            )
        if verdict.outcome is Outcome.ACCEPTED and enterprise is not None:
            add_version(session, enterprise, row.id)

    @staticmethod
    def _enterprise(session: Session, name: str | None) -> Enterprise | None:
        """The enterprise's row; created on first sight when there is no roster to hold it."""
        if name is None:
            return None
        key = normalise(name)
        row = session.exec(select(Enterprise).where(Enterprise.key == key)).first()
        if row is None:
            row = Enterprise(name=name, key=key, in_roster=False)
            session.add(row)
            session.flush()
        return row
