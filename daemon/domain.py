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
    """What happens to a message as a whole."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    REVIEW = "review"
    IGNORED = "ignored"


class Code(StrEnum):
    """One reason a message is not simply accepted."""

    # classification: the message is not addressed to us by a person
    BOUNCE = "bounce"
    AUTO_REPLY = "auto_reply"
    BULK = "bulk"
    # the message itself
    UNREADABLE_MESSAGE = "unreadable_message"
    NOT_A_SUBMISSION = "not_a_submission"
    REVIEW_SENDER = "review_sender"
    UNKNOWN_ENTERPRISE = "unknown_enterprise"
    LATE = "late"
    # the attachment
    NO_ATTACHMENT = "no_attachment"
    ATTACHMENT_LINK = "attachment_link"
    NOT_RAR = "not_rar"
    TOO_LARGE = "too_large"
    ENCRYPTED_ARCHIVE = "encrypted_archive"
    INCOMPLETE_ARCHIVE = "incomplete_archive"
    CORRUPT_ARCHIVE = "corrupt_archive"
    UNSAFE_ARCHIVE = "unsafe_archive"
    ARCHIVE_NAME_MISMATCH = "archive_name_mismatch"
    DUPLICATE_MEMBER = "duplicate_member"
    # the documents inside
    MISSING_DOCUMENT = "missing_document"
    NOT_WORD_DOCUMENT = "not_word_document"
    INVALID_DOCUMENT = "invalid_document"


IGNORING_CODES = frozenset({Code.BOUNCE, Code.AUTO_REPLY, Code.BULK})
"""Codes that mean nobody should ever be answered."""

REVIEW_CODES = frozenset({Code.ATTACHMENT_LINK, Code.UNSAFE_ARCHIVE, Code.NOT_A_SUBMISSION, Code.REVIEW_SENDER})
"""Codes that need a person to decide: the machine cannot tell right from wrong here."""


@dataclass(frozen=True)
class Problem:
    code: Code
    role: str | None = None
    suggestion: str | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, str]:
        data = {"code": self.code.value}
        for key in ("role", "suggestion", "detail"):
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

    def as_dict(self) -> dict[str, str | int]:
        return {"role": self.role, "name": self.name, "size": self.size, "sha256": self.sha256}


def outcome_of(problems: Iterable[Problem]) -> Outcome:
    """The single rule that turns problem codes into an outcome."""
    codes = {p.code for p in problems}
    if codes & IGNORING_CODES:
        return Outcome.IGNORED
    if codes & REVIEW_CODES:
        return Outcome.REVIEW
    if codes:
        return Outcome.REJECTED
    return Outcome.ACCEPTED


@dataclass(frozen=True)
class Verdict:
    enterprise: str | None
    problems: tuple[Problem, ...] = ()
    documents: tuple[Document, ...] = ()
    archive: ArchiveFile | None = None

    @property
    def outcome(self) -> Outcome:
        return outcome_of(self.problems)

    @property
    def codes(self) -> frozenset[Code]:
        return frozenset(p.code for p in self.problems)


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

    @property
    def size(self) -> int:
        return sum(v.size for v in self.volumes)


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
    """One enterprise of the summary table (汇总表)."""

    name: str
    city: str = ""
    title: str = ""
    """The benchmark's title (质量标杆名称)."""
    contact: str = ""
    phone: str = ""
    email: str = ""
