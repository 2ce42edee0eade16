"""The rules of the calls for submissions, as data.

The defaults are the notice of the 质量标杆 call: one RAR archive of at most 200 MB holding the application
form, the typical-experience write-up and the proof materials, each in Word format. One mailbox may serve
several calls (the provincial and the national one), each with its own deadlines; city bureaus send their
recommendations for each call, and for some calls the enterprises also send their own email. A deployment
changes all of this in the `[campaign]` and `[bureaus]` sections of its configuration, never in code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

MIB = 1 << 20

DEFAULT_CALL = "default"
"""The code of the one call of a configuration that lists no `[[campaign.calls]]`."""


class Reading(StrEnum):
    """What is read out of a role's documents besides their length and pictures."""

    FORM = "form"
    """The stamped form: its seal, the enterprise it names, the 质量标杆名称 in its table."""
    WRITE_UP = "write_up"
    """A text two enterprises must not share: its title and a signature for near-identical copies."""
    PLAIN = "plain"


@dataclass(frozen=True)
class Role:
    """One document the archive must hold, and how it is recognised."""

    code: str
    label: str
    """The name the notice uses, for messages to people."""
    keywords: tuple[str, ...]
    """A file whose name (or one of whose folders' names) contains one of these plays this role."""
    formats: tuple[str, ...] = ("doc", "docx")
    """Accepted file extensions, without the dot."""
    reading: Reading = Reading.PLAIN


DEFAULT_ROLES: tuple[Role, ...] = (
    Role("application_form", "申报书", ("申报书",), reading=Reading.FORM),
    Role("experience", "典型经验材料", ("典型经验",), reading=Reading.WRITE_UP),
    Role("proof", "证明材料", ("证明材料", "佐证材料")),
)


class SealPolicy(StrEnum):
    """What a form without a seal seen on it gets."""

    NOTE = "note"
    """Accepted; the receipt asks to confirm the form was stamped, and staff see it."""
    REVIEW = "review"
    REJECT = "reject"
    OFF = "off"
    """Seals are not looked for."""


@dataclass(frozen=True)
class DocumentLimits:
    """Caps on reading one document's contents (a document is hostile input too)."""

    timeout_seconds: float = 60.0
    memory_bytes: int = 2048 * MIB
    """The reader's address-space cap: its image libraries alone map about 435 MB (each on one thread)."""


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps that keep a hostile archive from exhausting the machine. Tripping one sends it to a person."""

    max_members: int = 1000
    max_unpacked_bytes: int = 2048 * MIB
    max_ratio: float = 200.0
    """Largest unpacked/packed ratio, checked only once the unpacked size passes `ratio_floor_bytes`."""
    ratio_floor_bytes: int = 16 * MIB
    timeout_seconds: float = 300.0
    memory_bytes: int = 1024 * MIB


@dataclass(frozen=True)
class Call:
    """One call for submissions (e.g. 2022年全国质量标杆) and its deadlines."""

    code: str = DEFAULT_CALL
    name: str = ""
    table: str = ""
    """The notice's label of the bureaus' summary table for this call (附件3, 附件6)."""
    bureau_deadline: datetime | None = None
    """When city bureaus' recommendations must have arrived."""
    deadline: datetime | None = None
    """When enterprises' own emails must have arrived."""
    own_emails: bool = True
    """Whether enterprises send their own email for this call (else only their bureau sends)."""
    max_per_city: int | None = None
    """How many enterprises one city may recommend."""
    online_filing: str = ""
    """A prerequisite outside the mailbox that receipts remind of (e.g. 中国质量网 online filing)."""


class NameMatch(StrEnum):
    """How strictly a subject or an archive's name must equal the enterprise's full name."""

    EXACT = "exact"
    CONTAINS = "contains"
    """The subject contains exactly one roster name (and no other): that enterprise, with a note."""
    PREFIX = "prefix"
    """The archive's name starts with the full name (a date or 申报材料 after it): that enterprise, with a note."""


@dataclass(frozen=True)
class Bureau:
    """A city's bureau of industry and information technology, and the addresses that speak for it."""

    city: str
    senders: tuple[str, ...]
    """Addresses (with @) or whole domains (without)."""


@dataclass(frozen=True)
class CallRules:
    """Everything intake needs to know about the calls: their deadlines and the rules they share."""

    calls: tuple[Call, ...] = (Call(),)
    max_archive_bytes: int = 200 * MIB
    max_message_bytes: int = 300 * MIB
    """Larger messages are not downloaded (room for a 200 MiB archive after base64)."""
    roles: tuple[Role, ...] = DEFAULT_ROLES
    limits: ArchiveLimits = field(default_factory=ArchiveLimits)
    review_senders: tuple[str, ...] = ()
    """Addresses or whole domains (colleagues) whose mail a person always decides."""
    bureaus: tuple[Bureau, ...] = ()
    subject_match: NameMatch = NameMatch.CONTAINS
    archive_name_match: NameMatch = NameMatch.PREFIX
    volume_window: timedelta = timedelta(hours=72)
    """How long the volumes of one set may take to arrive over several emails."""
    judging_seconds: float = 900.0
    """The time budget for judging one whole message (every archive, letter and table in it together); past
    it, the message goes to a person."""
    seal: SealPolicy = SealPolicy.NOTE
    similar_texts: float = 0.8
    """Write-ups of two enterprises at least this similar (estimated Jaccard similarity of their 5-character
    shingles, 0 to 1) are flagged to staff as near-identical."""
    document_limits: DocumentLimits = field(default_factory=DocumentLimits)
    listed_only: bool = False
    """Enterprises must be listed (a roster file or the bureaus' tables name them); otherwise, with nobody
    listed yet, an enterprise's subject is taken as its name."""

    def call(self, code: str | None) -> Call | None:
        return next((c for c in self.calls if c.code == code), None)

    @property
    def own_calls(self) -> tuple[Call, ...]:
        """The calls for which enterprises send their own email."""
        return tuple(c for c in self.calls if c.own_emails)

    @property
    def own_call(self) -> Call | None:
        """The call an enterprise's own email is for, when there is exactly one such call."""
        own = self.own_calls
        return own[0] if len(own) == 1 else None

    @property
    def default_call(self) -> str:
        """The call an enterprise's own email is recorded under when nothing else says."""
        return (self.own_call or self.calls[0]).code

    @property
    def deadline(self) -> datetime | None:
        """The enterprises' own deadline of the one call they write to (None when there is none)."""
        own = self.own_call
        return own.deadline if own else None

    @property
    def bureau_senders(self) -> Mapping[str, str]:
        """Each listed address or domain (lower-case) and its city."""
        return MappingProxyType(
            {sender.strip().lower(): bureau.city for bureau in self.bureaus for sender in bureau.senders}
        )
