"""Judging a raw message and recording it: the raw bytes, its files and its verdict, exactly once.

The raw message is stored (content-addressed, fsync'ed) before it is judged, so nothing a sender sent can be
lost; the database rows are written in one transaction, keyed by the raw message's SHA-256, so processing the
same message again changes nothing.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, func, select

from ..campaign import CallRules
from ..domain import Code, Document, MessageKind, Outcome, Package, Problem, Verdict
from ..intake.context import Context
from ..intake.match import Roster
from ..intake.parse import attachment_from_file
from ..pipeline import Judgement, judge
from ..storage.blobs import BlobStore
from ..storage.models import (
    AttachmentRecord,
    BureauFile,
    BureauSender,
    DocumentRecord,
    Enterprise,
    MessageRecord,
    PackageRecord,
    ProblemRecord,
    Revision,
    Submission,
    now,
)
from ..storage.states import NominationSource
from .foresight import Foresight, NotedHistory
from .history import DatabaseHistory
from .roster_sync import database_rosters, enterprise_for, nominate, nominations_mark

log = logging.getLogger(__name__)


def add_version(session: Session, package: PackageRecord) -> None:
    """Make an accepted package its enterprise's next version for its call (once).

    The enterprise's row is locked first: on PostgreSQL the daemon and a staff command accepting at the same
    time would otherwise both count n versions and both write n + 1 (SQLite lets one writer in at a time).
    """
    enterprise_id = package.enterprise_id
    assert enterprise_id is not None and package.id is not None
    if session.exec(select(Submission).where(Submission.package_id == package.id)).first() is not None:
        return
    session.exec(select(Enterprise.id).where(Enterprise.id == enterprise_id).with_for_update()).one()
    call = package.call or ""
    versions = session.exec(
        select(func.count())
        .select_from(Submission)
        .where(Submission.enterprise_id == enterprise_id, Submission.call == call)
    ).one()
    session.add(
        Submission(
            enterprise_id=enterprise_id,
            message_id=package.message_id,
            package_id=package.id,
            call=call,
            version=versions + 1,
        )
    )


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
    def __init__(self, engine: Engine, blobs: BlobStore, rules: CallRules) -> None:
        self.engine = engine
        self.blobs = blobs
        self.rules = rules
        self.history = DatabaseHistory(engine, blobs)
        self._rosters: dict[str, Roster] = {}
        self._mark: tuple[int, int] | None = None
        self._judging = threading.Lock()

    def context(self, revising: int | None = None) -> Context:
        """What judging knows now: the rules, every call's roster, the senders staff confirmed, the past (as
        it was before message `revising`, when that recorded message is judged again)."""
        with Session(self.engine) as session:
            mark = nominations_mark(session)
            if mark != self._mark:
                self._rosters, self._mark = database_rosters(session), mark
            senders = {s.address: s.city for s in session.exec(select(BureauSender))}
        history = self.history if revising is None else DatabaseHistory(self.engine, self.blobs, before=revising)
        return Context(self.rules, self._rosters, senders, history, volumes_across_emails=True)

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
        ahead: Foresight | None = None,
    ) -> Recorded:
        """Judge and record a raw message already in the blob store (under `sha256`).

        `on_record` runs inside the recording transaction (to queue the reply with the verdict, all or
        nothing). `oversize`: the blob holds only the headers of a message of that size, too large to fetch.
        `ahead`: the message judged ahead (`foresee`), used when it still holds.
        """
        existing = self._existing(sha256)
        if existing is not None:
            return existing
        context = self.context()
        if ahead is not None and ahead.holds(context):
            assert ahead.judgement is not None
            judgement = ahead.judgement
        else:
            if ahead is not None:
                log.debug("%s is judged again in its turn: its judgement made ahead does not hold", sha256[:12])
            with self._workdir() as workdir:
                judgement = self._judge(sha256, context, Path(workdir), internaldate, oversize)
        try:
            return self._insert(
                judgement, sha256, oversize or self.blobs.path(sha256).stat().st_size, source, on_record
            )
        except IntegrityError:  # recorded meanwhile by another process
            existing = self._existing(sha256)
            if existing is None:
                raise
            return existing

    def foresee(self, sha256: str, internaldate: datetime | None, oversize: int | None) -> Callable[[], Foresight]:
        """Judging a stored message ahead of its turn (service/foresight.py). What judging knows is taken now,
        in the calling thread; the call returned judges with it, in another thread, and stores its files."""
        context = self.context()
        ahead = replace(context, history=NotedHistory(context.history))

        def judged() -> Foresight:
            try:
                with self._workdir() as workdir:  # its files are in the blob store when it is done
                    return Foresight(ahead, self._judge(sha256, ahead, Path(workdir), internaldate, oversize))
            except Exception as error:  # judged again in its turn, where the error counts and is reported
                log.debug("judging %s ahead failed; it is judged again in its turn", sha256[:12], exc_info=error)
                return Foresight(ahead, None)

        return judged

    def _judge(
        self, sha256: str, context: Context, workdir: Path, internaldate: datetime | None, oversize: int | None
    ) -> Judgement:
        """Judge a stored message and store its files. One message at a time: a message judged ahead and one
        judged again in its turn would otherwise both hold their files and readers at once."""
        with self._judging:
            judgement = judge(
                self.blobs.path(sha256), context=context, workdir=workdir, internaldate=internaldate, oversize=oversize
            )
            self._store_files(judgement)
        return judgement

    def _workdir(self) -> tempfile.TemporaryDirectory[str]:
        """An empty folder for judging one message, removed once its files are in the blob store."""
        return tempfile.TemporaryDirectory(prefix="shenbao-intake-", dir=self._workroot())

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
            return Recorded(row.id, row.outcome, _enterprise_of(session, row), created=False)

    def _store_files(self, judgement: Judgement) -> None:
        """Every attached file, and every file read from an archive that the verdict refers to."""
        if judgement.message is not None:
            for attachment in judgement.message.attachments:
                self.blobs.put_file(attachment.path, attachment.sha256)
        for sha256, path in judgement.files:
            self.blobs.put_file(path, sha256)

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
            self._write_verdict(session, row, judgement, new=True)
            if on_record is not None:
                session.flush()
                on_record(session, row, judgement)
            record_id = row.id  # read before the commit expires it: no query to read it back
            session.commit()
            assert record_id is not None
            return Recorded(record_id, verdict.outcome, verdict.enterprise, created=True)

    def revise(
        self,
        record_id: int,
        reason: str,
        extra: Collection[Path] = (),
        on_record: OnRecord | None = None,
        *,
        dry_run: bool = False,
        clock: datetime | None = None,
    ) -> Revision:
        """Judge a stored message again under today's rosters and rules (with `extra`, archives staff fetched
        by hand, as if they had been attached) and record the new verdict; the old one is kept in the
        revision history. `dry_run`: judge and say, record nothing. `clock`: judge as of this time."""
        with Session(self.engine) as session:
            row = session.get(MessageRecord, record_id)
            if row is None:
                raise LookupError(f"no message #{record_id}")
            internaldate, sha256 = row.received_at, row.raw_sha256
            added = session.exec(
                select(AttachmentRecord).where(
                    AttachmentRecord.message_id == record_id, col(AttachmentRecord.by_staff).is_(True)
                )
            ).all()
        with tempfile.TemporaryDirectory(prefix="shenbao-revise-", dir=self._workroot()) as workdir:
            extras = [attachment_from_file(self.blobs.path(a.sha256), Path(workdir), a.filename) for a in added]
            extras += [attachment_from_file(path, Path(workdir)) for path in extra]
            judgement = judge(
                self.blobs.path(sha256),
                context=self.context(revising=record_id),
                workdir=Path(workdir),
                internaldate=internaldate,
                extra=tuple(extras),
                clock=clock,
            )
            self._store_files(judgement)
        by_staff = {a.sha256 for a in extras}
        with Session(self.engine) as session:
            row = session.get(MessageRecord, record_id)
            assert row is not None
            before = (row.outcome, _codes(session, record_id))
            for table in (ProblemRecord, DocumentRecord, AttachmentRecord, BureauFile):
                session.exec(delete(table).where(col(table.message_id) == record_id))
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
        *,
        new: bool = False,
    ) -> None:
        """The verdict's rows for `row`: packages, problems, files, documents, the bureau's letter and table,
        the table's nominations, and a version for each accepted package. `new`: `row` was just made, and
        has no rows yet."""
        verdict, message = judgement.verdict, judgement.message
        assert row.id is not None
        row.kind = verdict.kind
        row.city = verdict.bureau.city if verdict.bureau else None
        row.call = verdict.bureau.call if verdict.bureau else None
        position = 0
        for problem in verdict.own:
            session.add(_problem(row.id, None, position, problem))
            position += 1
        packages = self._packages(session, row.id, verdict.packages, new=new)
        for package, record in zip(verdict.packages, packages, strict=True):
            assert record.id is not None
            for problem in package.problems:
                session.add(_problem(row.id, record.id, position, problem))
                position += 1
            for document in package.documents:
                session.add(_document(row.id, record.id, document))
        archive_volumes = {v.sha256 for p in verdict.packages if p.archive for v in p.archive.volumes}
        for index, attachment in enumerate(message.attachments if message else ()):
            session.add(
                AttachmentRecord(
                    message_id=row.id,
                    position=index,
                    filename=attachment.filename,
                    content_type=attachment.content_type,
                    size=attachment.size,
                    sha256=attachment.sha256,
                    is_archive=attachment.sha256 in archive_volumes,
                    by_staff=attachment.sha256 in by_staff,
                )
            )
        self._bureau_files(session, row, verdict)
        self._join(session, judgement.joined, packages)
        for package, record in zip(verdict.packages, packages, strict=True):
            accepted = record.outcome is Outcome.ACCEPTED and record.enterprise_id is not None
            if accepted and Code.SAME_AS_ACCEPTED not in {p.code for p in package.problems}:
                add_version(session, record)

    def _packages(
        self, session: Session, message_id: int, packages: tuple[Package, ...], *, new: bool
    ) -> list[PackageRecord]:
        """The package rows, updated in place by position when the message is judged again (not `new`)."""
        query = select(PackageRecord).where(PackageRecord.message_id == message_id)
        existing = {} if new else {p.position: p for p in session.exec(query)}
        records = []
        for position, package in enumerate(packages):
            record = existing.get(position) or PackageRecord(
                message_id=message_id, position=position, outcome=package.outcome
            )
            enterprise = enterprise_for(session, package.enterprise) if package.enterprise else None
            record.enterprise_id = enterprise.id if enterprise else None
            record.enterprise_name = package.enterprise
            record.call = package.call
            record.outcome = package.outcome
            archive = package.archive
            record.archive_name = archive.name if archive else None
            record.archive_size = archive.size if archive else None
            record.archive_fingerprint = archive.fingerprint if archive else None
            record.seal = package.seal.status if package.seal else None
            record.seal_document = package.seal.document if package.seal else None
            record.seal_picture = package.seal.picture if package.seal else None
            record.title = package.title
            session.add(record)
            records.append(record)
        session.flush()
        return records

    @staticmethod
    def _bureau_files(session: Session, row: MessageRecord, verdict: Verdict) -> None:
        """A bureau's letter and table; once the sender is confirmed, the table's rows list its enterprises."""
        mail = verdict.bureau
        assert row.id is not None
        if mail is None:
            return
        if mail.letter is not None:
            session.add(
                BureauFile(
                    message_id=row.id,
                    city=mail.city or "",
                    call=mail.call or "",
                    kind="letter",
                    name=mail.letter.name,
                    sha256=mail.letter.sha256,
                    pages=mail.letter.pages,
                )
            )
        if mail.table is not None:
            session.add(
                BureauFile(
                    message_id=row.id,
                    city=mail.city or "",
                    call=mail.call or "",
                    kind="table",
                    name=mail.table.name,
                    sha256=mail.table.sha256,
                    rows=len(mail.table.rows),
                    table_call=mail.table.call,
                    entries="\n".join(entry.name for entry in mail.table.rows),
                )
            )
            if Code.BUREAU_UNCONFIRMED not in verdict.codes and mail.call is not None:
                for entry in mail.table.rows:
                    nominate(session, entry, mail.call, NominationSource.TABLE, row.id)

    @staticmethod
    def _join(session: Session, joined: tuple[str, ...], packages: list[PackageRecord]) -> None:
        """Pending sets of volumes that this message's package completed point to it from now on."""
        if not joined or not packages:
            return
        earlier = session.exec(
            select(PackageRecord)
            .join(AttachmentRecord, col(AttachmentRecord.message_id) == PackageRecord.message_id)
            .where(
                col(AttachmentRecord.sha256).in_(joined),
                PackageRecord.outcome == Outcome.PENDING,
                PackageRecord.message_id != packages[0].message_id,
            )
        ).all()
        for package in earlier:
            package.joined_into = packages[0].id
            session.add(package)


def _problem(message_id: int, package_id: int | None, position: int, problem: Problem) -> ProblemRecord:
    return ProblemRecord(
        message_id=message_id,
        package_id=package_id,
        position=position,
        code=problem.code.value,
        role=problem.role,
        suggestion=problem.suggestion,
        detail=problem.detail,
        enterprise=problem.enterprise,
        severity=problem.severity,
    )


def _document(message_id: int, package_id: int, document: Document) -> DocumentRecord:
    contents = document.contents
    record = DocumentRecord(
        message_id=message_id,
        package_id=package_id,
        role=document.role,
        name=document.name,
        size=document.size,
        sha256=document.sha256,
        is_word=document.is_word,
    )
    if contents is not None:
        record.read = True
        record.words, record.pages, record.pictures = contents.words, contents.pages, contents.pictures
        record.title, record.signature = contents.title, contents.signature
        record.seal, record.seal_picture = contents.seal, contents.seal_picture
    return record


def _enterprise_of(session: Session, row: MessageRecord) -> str | None:
    """The enterprise of an enterprise's own email (None for a bureau's, which has several)."""
    if row.kind is not MessageKind.SUBMISSION:
        return None
    return session.exec(
        select(PackageRecord.enterprise_name).where(PackageRecord.message_id == row.id, PackageRecord.position == 0)
    ).first()
