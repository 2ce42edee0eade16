"""The mailbox's past, as intake asks for it (`intake.context.History`), read from the database.

Each answer is one small query at the moment a message is judged, so a bureau's second email sees what its
first one brought even within one sync.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from ..domain import Attachment, Outcome, RosterEntry
from ..intake.bureau import Bundle
from ..intake.context import EarlierVolumes
from ..intake.match import normalise
from ..storage.blobs import BlobStore
from ..storage.conditions import confirmed_bureau_messages
from ..storage.models import (
    AttachmentRecord,
    BureauFile,
    Enterprise,
    MessageRecord,
    Nomination,
    OutboxItem,
    PackageRecord,
)
from ..storage.states import NominationSource


class DatabaseHistory:
    def __init__(self, engine: Engine, blobs: BlobStore, before: int | None = None) -> None:
        self.engine = engine
        self.blobs = blobs
        self.before = before
        """When a recorded message is judged again: its id, so that it is not compared with itself or with
        messages recorded after it."""

    def bundle(self, city: str, call: str) -> Bundle:
        with Session(self.engine) as session:
            confirmed = confirmed_bureau_messages(call)
            files = session.exec(
                select(BureauFile.kind).where(
                    BureauFile.city == city, BureauFile.call == call, col(BureauFile.message_id).in_(confirmed)
                )
            ).all()
            tables = session.exec(
                select(Nomination, Enterprise, MessageRecord.city)
                .join(Enterprise, col(Enterprise.id) == Nomination.enterprise_id)
                .join(MessageRecord, col(MessageRecord.id) == Nomination.message_id)
                .where(
                    Nomination.call == call,
                    Nomination.source == NominationSource.TABLE,
                    col(Nomination.message_id).in_(confirmed),
                )
                .order_by(col(Nomination.id))
            ).all()
            arrived = session.exec(
                select(PackageRecord.enterprise_name)
                .join(MessageRecord, col(MessageRecord.id) == PackageRecord.message_id)
                .where(MessageRecord.city == city, col(MessageRecord.id).in_(confirmed))
            ).all()
        rows = tuple(
            RosterEntry(e.name, n.city, n.title, n.contact, n.phone, n.email) for n, e, where in tables if where == city
        )
        return Bundle(
            letter="letter" in files,
            table="table" in files,
            rows=rows,
            arrived=frozenset(normalise(name) for name in arrived if name),
            elsewhere={e.key: where for _, e, where in tables if where and where != city},
        )

    def replied_enterprise(self, message_ids: Sequence[str]) -> str | None:
        if not message_ids:
            return None
        with Session(self.engine) as session:
            found = session.exec(
                select(PackageRecord.enterprise_name)
                .join(OutboxItem, col(OutboxItem.message_id) == PackageRecord.message_id)
                .where(col(OutboxItem.header_message_id).in_(list(message_ids)))
                .where(col(PackageRecord.enterprise_name).is_not(None))
                .order_by(col(OutboxItem.id).desc())
            ).first()
        return found

    def earlier_volumes(self, stem: str, sender: str | None, since: datetime) -> EarlierVolumes | None:
        if sender is None:
            return None
        later = aliased(PackageRecord)
        with Session(self.engine) as session:
            rows = session.exec(
                select(MessageRecord.received_at, AttachmentRecord, PackageRecord.archive_name)
                .join(PackageRecord, col(PackageRecord.message_id) == MessageRecord.id)
                .join(AttachmentRecord, col(AttachmentRecord.message_id) == MessageRecord.id)
                .outerjoin(later, col(later.id) == PackageRecord.joined_into)
                .where(
                    MessageRecord.sender == sender,
                    MessageRecord.received_at >= since,
                    PackageRecord.outcome == Outcome.PENDING,
                    col(PackageRecord.joined_into).is_(None) | (later.outcome == Outcome.PENDING),
                    col(AttachmentRecord.is_archive).is_(True),
                )
            ).all()
        found = [(received, a) for received, a, name in rows if name and normalise(name) == normalise(stem)]
        if not found:
            return None
        volumes = tuple(
            Attachment(a.filename, a.content_type, self._path(a.sha256), a.size, a.sha256, self._head(a.sha256))
            for _, a in found
        )
        return EarlierVolumes(volumes, min(received for received, _ in found))

    def accepted_archive(self, enterprise: str) -> str | None:
        query = (
            select(PackageRecord.archive_fingerprint)
            .join(MessageRecord, col(MessageRecord.id) == PackageRecord.message_id)
            .where(PackageRecord.enterprise_name == enterprise, PackageRecord.outcome == Outcome.ACCEPTED)
            .order_by(col(MessageRecord.received_at).desc())
        )
        if self.before is not None:
            query = query.where(PackageRecord.message_id < self.before)
        with Session(self.engine) as session:
            return session.exec(query).first()

    def _path(self, sha256: str) -> Path:
        return self.blobs.path(sha256)

    def _head(self, sha256: str) -> bytes:
        with self.blobs.path(sha256).open("rb") as stream:
            return stream.read(16)
