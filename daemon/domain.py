"""The nouns passed between the intake steps.

Everything here is plain immutable data: the pipeline's pure functions take and return these types, so a
verdict can be tested, stored and rendered without any I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path


class Outcome(StrEnum):
    """What happens to a message, or to one enterprise's package in it."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    REVIEW = "review"
    IGNORED = "ignored"
    PENDING = "pending"
    """Waiting for the rest of a set of volumes sent over several emails."""
    BUREAU = "bureau"
    """A city bureau's email: each enterprise's package has its own outcome."""


class MessageKind(StrEnum):
    """Who wrote the message and why, which decides how it is judged."""

    SUBMISSION = "submission"
    """An enterprise's own email with its package."""
    BUREAU = "bureau"
    """A city bureau's recommendation: letter, summary table, one archive per enterprise."""
    QUESTION = "question"
    """A letter to the office rather than a submission."""
    IGNORED = "ignored"
    UNREADABLE = "unreadable"


class Severity(StrEnum):
    """What a problem does to the outcome when configuration, not its code, decides (the missing seal)."""

    NOTE = "note"
    REVIEW = "review"
    REJECT = "reject"


class SealStatus(StrEnum):
    """Whether a company seal was seen on a picture of the form."""

    FOUND = "found"
    NOT_FOUND = "not_found"
    UNREADABLE = "unreadable"
    """No picture could be decoded: nobody can tell from the file."""


class CopyKind(StrEnum):
    """How a document of one enterprise is another's too: flagged to staff, never a verdict."""

    SAME_FILE = "same_file"
    """The same document (the same SHA-256) under two enterprises."""
    SIMILAR_TEXT = "similar_text"
    """Write-ups whose texts are nearly the same."""


class Code(StrEnum):
    """One reason a message or a package is not simply accepted, or a note that goes with it."""

    # classification: the message is not addressed to us by a person
    BOUNCE = "bounce"
    AUTO_REPLY = "auto_reply"
    BULK = "bulk"
    # the message itself
    UNREADABLE_MESSAGE = "unreadable_message"
    JUDGING_TIMEOUT = "judging_timeout"
    NOT_A_SUBMISSION = "not_a_submission"
    REVIEW_SENDER = "review_sender"
    UNKNOWN_ENTERPRISE = "unknown_enterprise"
    DIRECT_SENDER = "direct_sender"
    LATE = "late"
    # the attachment
    NO_ATTACHMENT = "no_attachment"
    ATTACHMENT_LINK = "attachment_link"
    NOT_RAR = "not_rar"
    TOO_LARGE = "too_large"
    ENCRYPTED_ARCHIVE = "encrypted_archive"
    INCOMPLETE_ARCHIVE = "incomplete_archive"
    VOLUMES_PENDING = "volumes_pending"
    CORRUPT_ARCHIVE = "corrupt_archive"
    UNSAFE_ARCHIVE = "unsafe_archive"
    ARCHIVE_NAME_MISMATCH = "archive_name_mismatch"
    DUPLICATE_MEMBER = "duplicate_member"
    # the documents inside
    MISSING_DOCUMENT = "missing_document"
    NOT_WORD_DOCUMENT = "not_word_document"
    INVALID_DOCUMENT = "invalid_document"
    UNREADABLE_DOCUMENT = "unreadable_document"
    """Reading a document's content took too long or too much memory: a person looks."""
    FOREIGN_DOCUMENT = "foreign_document"
    """The form names another enterprise of the roster, not the sender."""
    SEAL_NOT_FOUND = "seal_not_found"
    """No company seal was seen on the form; its severity is the call's `seal` setting."""
    # a city bureau's bundle
    BUREAU_UNCONFIRMED = "bureau_unconfirmed"
    UNKNOWN_CALL = "unknown_call"
    MISSING_LETTER = "missing_letter"
    INVALID_LETTER = "invalid_letter"
    MISSING_TABLE = "missing_table"
    INVALID_TABLE = "invalid_table"
    MISSING_ARCHIVE = "missing_archive"
    UNLISTED_ARCHIVE = "unlisted_archive"
    NAME_NEAR_MISS = "name_near_miss"
    TOO_MANY_NATIONAL = "too_many_national"
    RECOMMENDED_TWICE = "recommended_twice"
    # notes: said in the reply, never change the outcome
    SUBJECT_NOT_EXACT = "subject_not_exact"
    ARCHIVE_NAME_NOT_EXACT = "archive_name_not_exact"
    SAME_AS_ACCEPTED = "same_as_accepted"
    FORM_NAMES_NOBODY = "form_names_nobody"
    """The form's text holds no enterprise name of the roster: staff may look, the sender is not told."""


IGNORING_CODES = frozenset({Code.BOUNCE, Code.AUTO_REPLY, Code.BULK})
"""Codes that mean nobody should ever be answered."""

REVIEW_CODES = frozenset(
    {
        Code.ATTACHMENT_LINK,
        Code.UNSAFE_ARCHIVE,
        Code.NOT_A_SUBMISSION,
        Code.REVIEW_SENDER,
        Code.DIRECT_SENDER,
        Code.BUREAU_UNCONFIRMED,
        Code.UNKNOWN_CALL,
        Code.UNLISTED_ARCHIVE,
        Code.JUDGING_TIMEOUT,
        Code.UNREADABLE_DOCUMENT,
        Code.FOREIGN_DOCUMENT,
    }
)
"""Codes that need a person to decide: the machine cannot tell right from wrong here."""

BUREAU_REVIEW_CODES = frozenset(
    {Code.BUREAU_UNCONFIRMED, Code.UNKNOWN_CALL, Code.ATTACHMENT_LINK, Code.JUDGING_TIMEOUT}
)
"""What sends a bureau's whole email to a person (other problems concern one enterprise, or the bundle)."""

NOTE_CODES = frozenset(
    {Code.SUBJECT_NOT_EXACT, Code.ARCHIVE_NAME_NOT_EXACT, Code.SAME_AS_ACCEPTED, Code.FORM_NAMES_NOBODY}
)
"""Codes that are said to the sender or to staff but change nothing."""

STAFF_NOTES = frozenset({Code.SAME_AS_ACCEPTED, Code.FORM_NAMES_NOBODY})
"""Notes for staff only: the sender's reply does not mention them."""

BUNDLE_CODES = frozenset(
    {
        Code.MISSING_LETTER,
        Code.INVALID_LETTER,
        Code.MISSING_TABLE,
        Code.INVALID_TABLE,
        Code.MISSING_ARCHIVE,
        Code.UNLISTED_ARCHIVE,
        Code.NAME_NEAR_MISS,
        Code.TOO_MANY_NATIONAL,
        Code.RECOMMENDED_TWICE,
    }
)
"""What a city's bundle lacks or gets wrong: reported to the bureau and staff, judged per enterprise."""


@dataclass(frozen=True)
class Problem:
    code: Code
    role: str | None = None
    suggestion: str | None = None
    detail: str | None = None
    enterprise: str | None = None
    """The enterprise a bundle's cross-check is about; for an unknown subject, the archive's name when it
    carries the same mistake."""
    severity: Severity | None = None
    """Set where configuration decides what the problem does; None: its code decides."""

    @property
    def is_note(self) -> bool:
        """Said to the sender or to staff, but changes nothing."""
        return self.severity is Severity.NOTE or (self.severity is None and self.code in NOTE_CODES)

    def as_dict(self) -> dict[str, str]:
        data = {"code": self.code.value}
        for key in ("role", "suggestion", "detail", "enterprise", "severity"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


@dataclass(frozen=True)
class Contents:
    """What reading a document found: what reviewers want to know without opening it."""

    words: int | None = None
    """字数 of a Word document; None for a PDF."""
    pages: int | None = None
    """Pages of a PDF (Word documents have no pages until laid out)."""
    pictures: int = 0
    title: str | None = None
    """The 质量标杆名称 a form's table gives, or a write-up's first heading."""
    signature: str | None = None
    """A write-up's MinHash signature (hex), to find near-identical texts sent by two enterprises."""
    seal: SealStatus | None = None
    """For the form and scans of it: whether a seal was seen."""
    seal_picture: str | None = None
    """The picture the seal was seen in."""

    def as_dict(self) -> dict[str, str | int]:
        data: dict[str, str | int] = {"pictures": self.pictures}
        for key in ("words", "pages", "title", "seal", "seal_picture"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


@dataclass(frozen=True)
class Document:
    """A file inside the archive that plays one of the call's roles."""

    role: str
    name: str
    size: int
    sha256: str
    is_word: bool = False
    contents: Contents | None = None
    """None until read (or when it could not be: not a Word document, or the reader gave up)."""

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"role": self.role, "name": self.name, "size": self.size, "sha256": self.sha256}
        if self.contents is not None:
            data["contents"] = self.contents.as_dict()
        return data


@dataclass(frozen=True)
class Seal:
    """The package's seal: seen on which picture of which document, or why not."""

    status: SealStatus
    document: str | None = None
    picture: str | None = None

    def as_dict(self) -> dict[str, str]:
        data = {"status": self.status.value}
        if self.document is not None:
            data["document"] = self.document
        if self.picture is not None:
            data["picture"] = self.picture
        return data


def outcome_of(problems: Iterable[Problem]) -> Outcome:
    """The single rule that turns problems into an outcome: by code, or by the severity configuration gave."""
    problems = [p for p in problems if not p.is_note]
    severities = {p.severity for p in problems}
    codes = {p.code for p in problems if p.severity is None} - BUNDLE_CODES.difference(REVIEW_CODES)
    if codes & IGNORING_CODES:
        return Outcome.IGNORED
    if codes & REVIEW_CODES or Severity.REVIEW in severities:
        return Outcome.REVIEW
    if codes - {Code.VOLUMES_PENDING} or Severity.REJECT in severities:
        return Outcome.REJECTED
    if codes:
        return Outcome.PENDING
    return Outcome.ACCEPTED


@dataclass(frozen=True)
class Package:
    """One enterprise's files in a message, judged on their own."""

    enterprise: str | None
    """The roster's (or table's) spelling of the name; None when no enterprise could be named."""
    call: str | None = None
    problems: tuple[Problem, ...] = ()
    documents: tuple[Document, ...] = ()
    archive: ArchiveFile | None = None
    seal: Seal | None = None
    """None when the form was not read (or the call does not look for seals)."""
    title: str | None = None
    """The 质量标杆名称 the documents give."""

    @property
    def outcome(self) -> Outcome:
        return outcome_of(self.problems)

    def as_dict(self) -> dict[str, object]:
        return {
            "enterprise": self.enterprise,
            "verdict": self.outcome.value,
            "problems": [p.as_dict() for p in self.problems],
            "documents": [d.as_dict() for d in self.documents],
            "archive": f"{self.archive.name}.rar" if self.archive else None,
            "seal": self.seal.as_dict() if self.seal else None,
            "title": self.title,
        }


@dataclass(frozen=True)
class Letter:
    """A bureau's recommendation letter (推荐文件)."""

    name: str
    sha256: str
    pages: int | None
    """None when the PDF could not be opened."""


@dataclass(frozen=True)
class SummaryTable:
    """A bureau's summary table (汇总表) as read."""

    name: str
    sha256: str
    call: str | None
    """The call its title names (附件3 / 全省 …), None when it names none."""
    rows: tuple[RosterEntry, ...] = ()


@dataclass(frozen=True)
class BureauMail:
    """What a city bureau's email carries besides the enterprises' packages."""

    city: str | None
    call: str | None
    letter: Letter | None = None
    table: SummaryTable | None = None
    links: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    """The judgement of one message: its kind, its own problems, and each enterprise's package."""

    kind: MessageKind
    own: tuple[Problem, ...] = ()
    """Problems of the message itself (not of one package): classification, a bureau's cross-checks."""
    packages: tuple[Package, ...] = ()
    bureau: BureauMail | None = None

    @property
    def outcome(self) -> Outcome:
        if self.kind is MessageKind.BUREAU:
            return Outcome.REVIEW if {p.code for p in self.own} & BUREAU_REVIEW_CODES else Outcome.BUREAU
        return outcome_of(self.problems)

    @property
    def problems(self) -> tuple[Problem, ...]:
        """The message's own problems, then its packages' (for an enterprise's email: all of them)."""
        return self.own + tuple(p for package in self.packages for p in package.problems)

    @property
    def codes(self) -> frozenset[Code]:
        return frozenset(p.code for p in self.problems)

    @property
    def package(self) -> Package | None:
        """The one package of an enterprise's email."""
        return self.packages[0] if len(self.packages) == 1 and self.kind is not MessageKind.BUREAU else None

    @property
    def enterprise(self) -> str | None:
        return self.package.enterprise if self.package else None

    @property
    def documents(self) -> tuple[Document, ...]:
        return tuple(d for package in self.packages for d in package.documents)

    @property
    def archive(self) -> ArchiveFile | None:
        return self.package.archive if self.package else None


# -- the parsed message --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    """One file carried by the message, already decoded to disk."""

    filename: str
    content_type: str
    path: Path
    size: int
    sha256: str
    head: bytes = b""
    """The first bytes of the content: enough to recognise the file type by its signature."""


@dataclass(frozen=True)
class ArchiveFile:
    """The archive the verdict is about (several attachments when it is a multi-volume set)."""

    name: str
    """The file name without .rar (and without .partN for a set), as the sender wrote it."""
    volumes: tuple[Attachment, ...]
    local_names: tuple[str, ...]
    """Safe names for the volumes, in order, that keep the set's numbering (the RAR tool finds the next
    volume by name)."""
    missing: tuple[str, ...] = ()
    """Volumes absent from the middle or the start of the set, as the sender would name them."""
    numbers: tuple[int, ...] = ()
    """For a set of volumes, the numbers of those present (1-based); empty for a single archive."""

    @property
    def size(self) -> int:
        return sum(v.size for v in self.volumes)

    @property
    def fingerprint(self) -> str:
        """The archive's SHA-256 (for a set, the volumes' SHA-256s joined): the same file sent twice."""
        return "+".join(v.sha256 for v in self.volumes)


@dataclass(frozen=True)
class ParsedMessage:
    message_id: str | None
    subject: str
    sender: str | None
    """The single address in From, lower-cased; None when From is not exactly one mailbox."""
    sender_name: str
    received_at: datetime | None
    headers: tuple[tuple[str, str], ...]
    """Every top-level header, decoded, in order (names lower-cased): classification reads these."""
    content_type: str
    attachments: tuple[Attachment, ...] = ()
    body_text: str = ""
    """Plain text and HTML bodies joined: where download links are looked for."""

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def has_header(self, name: str) -> bool:
        return self.header(name) is not None


@dataclass(frozen=True)
class RosterEntry:
    """One enterprise of a summary table (汇总表): the roster staff load, or a row of a bureau's table."""

    name: str
    city: str = ""
    title: str = ""
    """The benchmark's title (质量标杆名称)."""
    contact: str = ""
    phone: str = ""
    email: str = ""
