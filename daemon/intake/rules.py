"""The calls' rules applied to one package: each broken rule is a Problem.

Pure functions of the parsed message, the matched enterprise, the archive inspection and the rules; the
order of the checks is the order in which the reply explains them.
"""

from __future__ import annotations

from datetime import datetime

from ..campaign import CallRules, NameMatch
from ..domain import ArchiveFile, Code, Document, ParsedMessage, Problem
from .archive import Inspection, Status
from .attachments import is_rar
from .documents import check_documents
from .match import check_archive_name

_STATUS_CODES = {
    Status.ENCRYPTED: Code.ENCRYPTED_ARCHIVE,
    Status.INCOMPLETE: Code.INCOMPLETE_ARCHIVE,
    Status.CORRUPT: Code.CORRUPT_ARCHIVE,
    Status.UNSAFE: Code.UNSAFE_ARCHIVE,
}


def check_review_sender(message: ParsedMessage, rules: CallRules) -> list[Problem]:
    """Mail from a listed address or domain is never auto-rejected: a person decides."""
    sender = message.sender or ""
    domain = sender.rpartition("@")[2]
    for entry in rules.review_senders:
        if sender == entry if "@" in entry else (domain == entry or domain.endswith("." + entry)):
            return [Problem(Code.REVIEW_SENDER, detail=sender)]
    return []


def check_deadline(message: ParsedMessage, deadline: datetime | None) -> list[Problem]:
    if deadline is None or message.received_at is None or message.received_at <= deadline:
        return []
    return [Problem(Code.LATE, detail=message.received_at.isoformat())]


def check_before_opening(archive: ArchiveFile, rules: CallRules) -> list[Problem]:
    """Problems that make the archive unfit to open at all, known before opening it."""
    if not is_rar(archive.volumes[0]):
        return [Problem(Code.NOT_RAR, detail="、".join(v.filename for v in archive.volumes))]
    if archive.size > rules.max_archive_bytes:
        return [Problem(Code.TOO_LARGE, detail=str(archive.size))]
    if archive.missing:
        return [Problem(Code.INCOMPLETE_ARCHIVE, detail="、".join(archive.missing))]
    return []


def check_inspection(
    archive: ArchiveFile, inspection: Inspection, enterprise: str | None, rules: CallRules, mode: NameMatch
) -> tuple[list[Document], list[Problem]]:
    """Problems found by reading the archive: its state, its name, then the documents inside."""
    if inspection.status is not Status.OK:
        return [], [Problem(_STATUS_CODES[inspection.status], detail=inspection.detail)]
    problems = []
    if enterprise is not None and (named := check_archive_name(archive.name, enterprise, mode)) is not None:
        problems.append(named)
    if inspection.duplicates:  # a reviewer unpacking it would see only one of each
        problems.append(Problem(Code.DUPLICATE_MEMBER, detail="、".join(inspection.duplicates)))
    documents, document_problems = check_documents(inspection.members, rules.roles)
    return documents, problems + document_problems
