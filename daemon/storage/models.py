"""The database tables. Every received message is a row; nothing is ever deleted.

A message carries packages: an enterprise's own email one, a city bureau's email one per recommended
enterprise. Each package is judged and recorded on its own. A later accepted package of the same enterprise
and call is a new Submission with the next version: the earlier one stays, superseded (the current version
is the latest received, derived when read, not stored).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict
from sqlalchemy import BigInteger, CheckConstraint, DateTime, String, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Column, Field, SQLModel

from ..domain import MessageKind, Outcome, SealStatus, Severity
from .states import ItemState, NominationSource, OutboxState, UserRole, check_constraint


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (which keeps no offset) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_column(nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(UtcDateTime(), nullable=nullable)


class EnumText(TypeDecorator[Any]):
    """An enum stored as its value's text; the table's CHECK constraint keeps the column within the values."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[StrEnum]) -> None:
        super().__init__()
        self.enum = enum
        # looked up for each row read: staff views read tens of thousands, where calling the enum is slower
        self._members = {member.value: member for member in enum}

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> StrEnum | None:
        if value is None:
            return None
        member = self._members.get(value)
        return self.enum(value) if member is None else member


def enum_column(enum: type[StrEnum], *, index: bool = False, nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(EnumText(enum), nullable=nullable, index=index)


def now() -> datetime:
    return datetime.now(UTC)


class _Table(SQLModel):
    """Every table's base: pydantic builds a table's validator when one is first needed, not at import (a
    fifth of the tables' import time, at every start of every command), since rows come from the database
    and the code, not from input to validate."""

    model_config = ConfigDict(defer_build=True)  # type: ignore[assignment]  # SQLModel's config extends it


class Enterprise(_Table, table=True):
    """An enterprise known to the mailbox: from a roster, a bureau's table, or its own mail."""

    id: int | None = Field(default=None, primary_key=True)
    name: str
    key: str = Field(unique=True, index=True)
    """The normalised name, as subjects are matched."""
    city: str = ""
    title: str = ""
    contact: str = ""
    phone: str = ""
    email: str = ""


class Nomination(_Table, table=True):
    """An enterprise listed for one call: by the staff's roster, a bureau's summary table, or a person."""

    __table_args__ = (
        UniqueConstraint("enterprise_id", "call", "source"),
        CheckConstraint(check_constraint("source", NominationSource), name="ck_nomination_source"),
    )

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    call: str = Field(index=True)
    source: NominationSource = Field(sa_column=enum_column(NominationSource))
    city: str = ""
    title: str = ""
    """The benchmark's title (质量标杆名称) as the source gave it."""
    contact: str = ""
    phone: str = ""
    email: str = ""
    message_id: int | None = Field(default=None, foreign_key="message.id")
    """The bureau email whose table listed it, or whose decision added it."""


class MessageRecord(_Table, table=True):
    __tablename__ = "message"
    __table_args__ = (
        CheckConstraint(check_constraint("outcome", Outcome), name="ck_message_outcome"),
        CheckConstraint(check_constraint("kind", MessageKind), name="ck_message_kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    raw_sha256: str = Field(unique=True, index=True)
    raw_size: int
    source: str
    """Where it came from: a file path, or the mailbox folder and UID."""
    message_id: str | None = None
    subject: str = ""
    sender: str | None = None
    sender_name: str = ""
    received_at: datetime = Field(sa_column=utc_column())
    processed_at: datetime = Field(sa_column=utc_column())
    outcome: Outcome = Field(sa_column=enum_column(Outcome, index=True))
    kind: MessageKind = Field(default=MessageKind.SUBMISSION, sa_column=enum_column(MessageKind))
    city: str | None = None
    """A bureau's email: the city it speaks for."""
    call: str | None = None
    """A bureau's email: the call it is for."""


class PackageRecord(_Table, table=True):
    """One enterprise's files in a message, and their verdict."""

    __tablename__ = "package"
    __table_args__ = (
        UniqueConstraint("message_id", "position"),
        CheckConstraint(check_constraint("outcome", Outcome), name="ck_package_outcome"),
        CheckConstraint(check_constraint("seal", SealStatus), name="ck_package_seal"),
    )

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    position: int
    enterprise_id: int | None = Field(default=None, foreign_key="enterprise.id", index=True)
    enterprise_name: str | None = Field(default=None, index=True)
    """Who the package is for, as judged; each submission asks for that enterprise's accepted archive."""
    call: str | None = None
    outcome: Outcome = Field(sa_column=enum_column(Outcome, index=True))
    archive_name: str | None = None
    archive_size: int | None = None
    archive_fingerprint: str | None = None
    """The archive's SHA-256 (a set's volumes' joined): the same archive sent again is recognised."""
    joined_into: int | None = Field(default=None, foreign_key="package.id")
    """A pending set of volumes that a later package completed and was judged with."""
    seal: SealStatus | None = Field(default=None, sa_column=enum_column(SealStatus, nullable=True))
    """None when no form was read, or seals are not looked for."""
    seal_document: str | None = None
    seal_picture: str | None = None
    title: str | None = None
    """The 质量标杆名称 its documents give."""


class ProblemRecord(_Table, table=True):
    __tablename__ = "problem"
    __table_args__ = (CheckConstraint(check_constraint("severity", Severity), name="ck_problem_severity"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    package_id: int | None = Field(default=None, foreign_key="package.id", index=True)
    """None for a problem of the message itself (classification, a bureau's cross-checks)."""
    position: int
    code: str
    role: str | None = None
    suggestion: str | None = None
    detail: str | None = None
    enterprise: str | None = None
    severity: Severity | None = Field(default=None, sa_column=enum_column(Severity, nullable=True))


class AttachmentRecord(_Table, table=True):
    """Every file the message carried, stored, whatever the verdict."""

    __tablename__ = "attachment"

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    position: int
    filename: str
    content_type: str
    size: int
    sha256: str
    is_archive: bool = False
    by_staff: bool = False
    """Added by staff with `shenbao attach` (fetched by hand from a download link), not sent by mail."""


class DocumentRecord(_Table, table=True):
    __tablename__ = "document"
    __table_args__ = (CheckConstraint(check_constraint("seal", SealStatus), name="ck_document_seal"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    package_id: int = Field(foreign_key="package.id", index=True)
    role: str
    name: str
    size: int
    sha256: str = Field(index=True)
    is_word: bool = False
    read: bool = False
    """Its contents were read (the columns below); False for files the readers could not or did not read."""
    words: int | None = None
    pages: int | None = None
    pictures: int | None = None
    title: str | None = None
    signature: str | None = None
    """A write-up's MinHash signature (hex): near-identical texts of two enterprises are found by it."""
    seal: SealStatus | None = Field(default=None, sa_column=enum_column(SealStatus, nullable=True))
    seal_picture: str | None = None


class Submission(_Table, table=True):
    """An accepted package; version n is the enterprise's n-th for that call."""

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    package_id: int = Field(foreign_key="package.id", unique=True)
    call: str
    version: int


class BureauFile(_Table, table=True):
    """A bureau's recommendation letter or summary table, as received (the file itself is in the store)."""

    __tablename__ = "bureau_file"
    __table_args__ = (CheckConstraint("kind IN ('letter', 'table')", name="ck_bureau_file_kind"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    city: str = Field(index=True)
    call: str
    kind: str
    """letter or table"""
    name: str
    sha256: str
    pages: int | None = None
    """A letter's page count (None when it could not be opened)."""
    rows: int | None = None
    """A table's number of enterprises."""
    table_call: str | None = None
    """The call a table's title names (附件3, 全国…), None when it names none."""
    entries: str | None = None
    """A table's enterprises' names, one per line, as read."""


class BureauSender(_Table, table=True):
    """An address staff confirmed as speaking for a city's bureau (on top of the configuration's)."""

    __tablename__ = "bureau_sender"

    address: str = Field(primary_key=True)
    city: str
    message_id: int | None = Field(default=None, foreign_key="message.id")
    """The message whose confirmation added it."""
    added_at: datetime = Field(sa_column=utc_column())


class Meta(_Table, table=True):
    """Small facts about the database itself, e.g. which roster file was loaded last."""

    key: str = Field(primary_key=True)
    value: str


class OutboxItem(_Table, table=True):
    """A reply to send. Rendered and given its Message-ID when queued, in the same transaction as the
    verdict, so a retry after a lost server answer carries the same Message-ID."""

    __tablename__ = "outbox"
    __table_args__ = (CheckConstraint(check_constraint("state", OutboxState), name="ck_outbox_state"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: int | None = Field(default=None, foreign_key="message.id", index=True)
    """The received message this answers; None for mail shenbao starts itself (reminders, digests)."""
    kind: str
    recipient: str = Field(index=True)
    header_message_id: str = Field(unique=True, index=True)
    subject: str
    raw: bytes
    state: OutboxState = Field(default=OutboxState.QUEUED, sa_column=enum_column(OutboxState, index=True))
    """Changed only through `states.advance` with `OUTBOX_STEPS`."""
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=utc_column())
    last_error: str | None = None
    created_at: datetime = Field(sa_column=utc_column())
    sent_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    copy_saved: bool = False
    """Whether a copy was appended to the mailbox's Sent folder, for staff reading it in their client."""


class FolderState(_Table, table=True):
    """What we know of one watched IMAP folder."""

    __tablename__ = "folder_state"

    folder: str = Field(primary_key=True)
    uidvalidity: int = Field(sa_type=BigInteger)
    """Unsigned 32-bit in IMAP: past PostgreSQL's `integer`."""


class MailboxItem(_Table, table=True):
    """One message on the IMAP server, by UIDVALIDITY and UID, and how far its handling got."""

    __tablename__ = "mailbox_item"
    __table_args__ = (
        UniqueConstraint("folder", "uidvalidity", "uid"),
        CheckConstraint(check_constraint("state", ItemState), name="ck_mailbox_item_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    folder: str
    uidvalidity: int = Field(sa_type=BigInteger)
    uid: int = Field(sa_type=BigInteger)
    size: int = Field(sa_type=BigInteger)
    """As the server announces it (RFC822.SIZE), however large."""
    internaldate: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    raw_sha256: str | None = None
    message_id: int | None = Field(default=None, foreign_key="message.id")
    state: ItemState = Field(sa_column=enum_column(ItemState))
    """Changed only through `states.advance` with `ITEM_STEPS`."""
    target: str | None = None
    subject: str = ""
    """As the server lists it, so that staff can tell which message is meant before it is recorded."""
    attempts: int = 0
    """Handlings that failed since it was first seen or last requeued; too many quarantine it."""
    last_error: str | None = None


class Alert(_Table, table=True):
    """Something staff must hear about: the digest, `doctor` and the web page list these.

    A condition that lasts (IMAP failing, the disk full) has a `key` and stays open until `cleared_at`;
    a one-off event (a reply bounced, a message quarantined) has none."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=utc_column())
    source: str
    text: str
    key: str | None = Field(default=None, index=True)
    cleared_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class Decision(_Table, table=True):
    """A person's verdict on a package (or a message), overriding the automatic one; the history keeps both."""

    __table_args__ = (CheckConstraint("outcome IN ('accepted', 'rejected')", name="ck_decision_outcome"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    package_id: int | None = Field(default=None, foreign_key="package.id", index=True)
    actor: str = ""
    """Who decided: the login of a web console user, or the system user of a command."""
    outcome: Outcome = Field(sa_column=enum_column(Outcome))
    """accepted or rejected"""
    note: str = ""
    decided_at: datetime = Field(sa_column=utc_column())


class DigestRecord(_Table, table=True):
    """The day's digest was sent: a restart or a late scheduler never sends two or skips one."""

    __tablename__ = "digest"

    day: str = Field(primary_key=True)
    """The day in Asia/Shanghai, ISO (2022-07-06)."""
    outbox_id: int | None = Field(default=None, foreign_key="outbox.id")
    created_at: datetime = Field(sa_column=utc_column())


class ReminderRecord(_Table, table=True):
    """A deadline reminder for one enterprise on one scheduled day: never two for the same day."""

    __tablename__ = "reminder"
    __table_args__ = (UniqueConstraint("enterprise_id", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    day: str
    outbox_id: int | None = Field(default=None, foreign_key="outbox.id")
    created_at: datetime = Field(sa_column=utc_column())


class BureauReminder(_Table, table=True):
    """A deadline reminder to one city's bureau for one call on one scheduled day: never two."""

    __tablename__ = "bureau_reminder"
    __table_args__ = (UniqueConstraint("city", "call", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    city: str
    call: str
    day: str
    outbox_id: int | None = Field(default=None, foreign_key="outbox.id")
    created_at: datetime = Field(sa_column=utc_column())


class Revision(_Table, table=True):
    """A message judged again (after a roster fix, or with an archive staff fetched by hand): the verdict
    before and after, so the history keeps both."""

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    at: datetime = Field(sa_column=utc_column())
    reason: str
    old_outcome: str
    old_codes: str
    new_outcome: str
    new_codes: str

    @property
    def changed(self) -> bool:
        return (self.old_outcome, self.old_codes) != (self.new_outcome, self.new_codes)


class WebUser(_Table, table=True):
    """A person who may log in to the web console. The password is kept only as an Argon2 hash."""

    __tablename__ = "web_user"
    __table_args__ = (CheckConstraint(check_constraint("role", UserRole), name="ck_web_user_role"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    role: UserRole = Field(sa_column=enum_column(UserRole))
    password_hash: str
    created_at: datetime = Field(sa_column=utc_column())


class AuditEntry(_Table, table=True):
    """Something a person did (in the web console, or with a staff command): who, what, when, about which
    message or enterprise."""

    __tablename__ = "audit"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=utc_column())
    actor: str = Field(index=True)
    action: str
    """login, logout, accepted, rejected, confirmed, resent, attached, download, ..."""
    message_id: int | None = Field(default=None, foreign_key="message.id", index=True)
    enterprise_id: int | None = Field(default=None, foreign_key="enterprise.id", index=True)
    detail: str = ""
    """What was done, in Chinese, as shown to the person (the note of a decision, a file's name)."""
    address: str = ""
    """The client's address, as the server (or the trusted proxy in front of it) saw it; 命令行 for a command."""
