"""The read models every face renders (command line, --json, digest, workbook, export, web page).

Plain frozen data built by `queries`: a face never reads a table itself, so every face says the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ..domain import Contents, CopyKind, MessageKind, Outcome, Problem, Seal, SealStatus
from ..storage.states import OutboxState


class Standing(StrEnum):
    """Where an enterprise stands in one call."""

    ACCEPTED = "已受理"
    REVIEW = "待人工"
    PENDING = "待补齐"
    REJECTED = "已退回"
    MISSING = "未提交"

    @property
    def code(self) -> str:
        return self.name.lower()


def reference(record_id: int) -> str:
    """The number staff and senders use for a message (登记编号)."""
    return f"SB-{record_id:06d}"


@dataclass(frozen=True)
class DocumentView:
    role: str
    name: str
    size: int
    sha256: str
    id: int
    contents: Contents | None = None
    """What reading it found; None when it was not read."""


@dataclass(frozen=True)
class StoredFile:
    """A file kept in the blob store that staff may download: found by its row's id, never by a path."""

    id: int
    name: str
    sha256: str
    message_id: int
    enterprise_id: int | None
    kind: str
    """document, letter or table"""


@dataclass(frozen=True)
class PackageView:
    """One enterprise's package in a message, with what counts: a person's latest decision, else the verdict."""

    id: int
    message_id: int
    enterprise: str | None
    enterprise_id: int | None
    call: str | None
    outcome: Outcome
    automatic: Outcome
    """The verdict before any decision."""
    problems: tuple[Problem, ...]
    archive_name: str | None
    archive_size: int | None
    archive_fingerprint: str | None
    joined: bool
    """A pending set of volumes that a later package completed (no longer open)."""
    version: int | None
    """Its version number when accepted (1 for the first accepted package of the enterprise in the call)."""
    seal: Seal | None = None
    title: str | None = None


@dataclass(frozen=True)
class ReplyView:
    id: int
    kind: str
    recipient: str
    state: OutboxState
    subject: str
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class DecisionView:
    outcome: Outcome
    note: str
    actor: str
    at: datetime
    package_id: int | None


@dataclass(frozen=True)
class MessageView:
    """One received message: who sent what, what was found, what was answered."""

    id: int
    received_at: datetime
    processed_at: datetime
    sender: str | None
    sender_name: str
    subject: str
    kind: MessageKind
    outcome: Outcome
    """What counts for the message as a whole (a decision included)."""
    city: str | None
    call: str | None
    problems: tuple[Problem, ...]
    """The message's own problems (not a package's)."""
    packages: tuple[PackageView, ...]
    replies: tuple[ReplyView, ...]
    decisions: tuple[DecisionView, ...]
    links: tuple[str, ...]

    @property
    def reference(self) -> str:
        return reference(self.id)

    @property
    def all_problems(self) -> tuple[Problem, ...]:
        return self.problems + tuple(p for package in self.packages for p in package.problems)

    @property
    def enterprise(self) -> str | None:
        """The enterprise of an enterprise's own email (a bureau's email names several)."""
        if self.kind is MessageKind.SUBMISSION and self.packages:
            return self.packages[0].enterprise
        return None

    @property
    def suggestion(self) -> str | None:
        """The enterprise the sender most likely meant, when the subject named none."""
        return next((p.suggestion for p in self.all_problems if p.suggestion), None)


@dataclass(frozen=True)
class EnterpriseRow:
    """One enterprise listed for one call, and where it stands."""

    enterprise_id: int
    name: str
    call: str
    city: str
    title: str
    """质量标杆名称"""
    contact: str
    phone: str
    email: str
    standing: Standing
    packages: int
    """Packages received (not ignored), over every message."""
    versions: int
    """Accepted packages."""
    last_received: datetime | None
    open_problems: tuple[Problem, ...]
    """What is wrong with the latest package, unless already accepted."""
    latest_message: int | None
    latest_accepted: int | None
    """The accepted package whose documents count (the latest accepted)."""
    stranger: bool
    """The accepted version came from an address that is not the listed contact's."""
    sources: tuple[str, ...]
    """Who listed it: roster, table, staff."""
    form_title: str | None = None
    """The 质量标杆名称 the documents of its latest accepted (else latest) package give."""
    seal: SealStatus | None = None
    """Whether a seal was seen on that package's form (None: not looked for, or no form)."""
    documents: tuple[DocumentView, ...] = ()
    """That package's documents, with what reading them found."""

    @property
    def benchmark_title(self) -> str:
        """The 质量标杆名称: the roster's or table's, else the form's."""
        return self.title or self.form_title or ""


@dataclass(frozen=True)
class BundleView:
    """What one city's bureau sent for one call."""

    city: str
    call: str
    messages: tuple[int, ...]
    letter: str | None
    """The letter's file name."""
    letter_pages: int | None
    table: str | None
    listed: tuple[str, ...]
    """The enterprises its tables list."""
    accepted: tuple[str, ...]
    missing: tuple[str, ...]
    """Listed enterprises with no accepted archive."""
    late: bool
    codes: tuple[str, ...]
    """Problems still open (cross-checks of the latest email)."""

    @property
    def complete(self) -> bool:
        return bool(self.letter and self.table and not self.missing)


@dataclass(frozen=True)
class AlertView:
    id: int
    at: datetime
    source: str
    text: str
    ongoing: bool
    """A condition still open (IMAP failing, the disk full), rather than a one-off event."""


@dataclass(frozen=True)
class Health:
    """How the mailbox is doing, for staff."""

    last_fetch: datetime | None
    last_digest: datetime | None
    outbox: dict[str, int]
    """Replies by state."""
    alerts: tuple[AlertView, ...]


@dataclass(frozen=True)
class AuditView:
    at: datetime
    actor: str
    action: str
    message_id: int | None
    enterprise_id: int | None
    detail: str
    address: str


@dataclass(frozen=True)
class CopyView:
    """A document one enterprise sent that another sent too, or nearly: flagged for staff, never a verdict.
    Each pair is listed once; `facing` turns it to be about the other side."""

    kind: CopyKind
    role: str
    enterprise_id: int
    enterprise: str
    document: str
    other_id: int
    other: str
    other_document: str
    similarity: float
    """1.0 for the same file; else the estimated similarity of the two texts."""

    def facing(self, enterprise_id: int) -> CopyView:
        """The pair as seen from `enterprise_id`'s side."""
        if enterprise_id == self.enterprise_id:
            return self
        return CopyView(
            self.kind,
            self.role,
            self.other_id,
            self.other,
            self.other_document,
            self.enterprise_id,
            self.enterprise,
            self.document,
            self.similarity,
        )


@dataclass(frozen=True)
class Ledger:
    """Everything the summary workbook shows: the enterprises, every message, the bureaus' bundles, and the
    documents two enterprises both sent."""

    rows: list[EnterpriseRow]
    messages: list[MessageView]
    bundles: list[BundleView]
    copies: list[CopyView]

    def copies_of(self, enterprise_id: int) -> list[CopyView]:
        return [c.facing(enterprise_id) for c in self.copies if enterprise_id in (c.enterprise_id, c.other_id)]
