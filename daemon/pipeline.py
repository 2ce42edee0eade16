"""The order of work for one message: parse -> classify -> match -> validate -> verdict.

Every step but reading the archive is a pure function of its inputs; the archive is read in a limited child
process. Whatever arrives, the result is a Verdict: exceptions never leave this function for input reasons.
EnvironmentFault leaves it for ours (a full disk, a missing or killed tool): the caller must then record
nothing and leave the message to be judged again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from .campaign import CallRules
from .domain import Attachment, Code, ParsedMessage, Problem, Verdict
from .intake.archive import Inspection, inspect_archive
from .intake.attachments import choose_archive, find_archives
from .intake.classify import classify
from .intake.links import download_links
from .intake.match import Roster, match_subject
from .intake.parse import Unreadable, parse_message
from .intake.rules import check_before_opening, check_deadline, check_inspection, check_review_sender


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    message: ParsedMessage | None = None
    """None when the message could not be parsed at all."""
    inspection: Inspection | None = None
    """The archive as read, when it was read: its members' files are in `inspection.folder`."""


def judge(
    source: Path | bytes,
    *,
    roster: Roster | None,
    rules: CallRules,
    workdir: Path,
    internaldate: datetime | None = None,
    oversize: int | None = None,
    extra: tuple[Attachment, ...] = (),
) -> Judgement:
    """Judge one raw message. `workdir` is an empty folder the caller removes afterwards.

    `oversize` is the size of a message too large to download: `source` then holds only its headers.
    `extra`: files to judge as if attached (an archive staff fetched by hand from a download link).
    """
    message = parse_message(source, workdir, internaldate)
    if not isinstance(message, Unreadable) and extra:
        message = replace(message, attachments=message.attachments + extra)
    if isinstance(message, Unreadable):
        return Judgement(Verdict(None, (Problem(Code.UNREADABLE_MESSAGE, detail=message.reason),)))
    ignored = classify(message)
    if ignored is not None:
        return Judgement(Verdict(None, (ignored,)), message)

    match = match_subject(message.subject, roster)
    links = download_links(message.body_text)
    problems = check_review_sender(message, rules)
    if match.problem is not None and not message.attachments and not links:
        return Judgement(Verdict(None, (*problems, Problem(Code.NOT_A_SUBMISSION))), message)

    problems += [match.problem] if match.problem else []
    problems += check_deadline(message, rules)
    if oversize is not None:
        problems.append(Problem(Code.TOO_LARGE, detail=str(oversize)))
        return Judgement(Verdict(match.enterprise, tuple(problems)), message)
    archive = choose_archive(find_archives(message.attachments), match.enterprise)
    if archive is None:
        problems.append(_why_no_archive(message, links))
        return Judgement(Verdict(match.enterprise, tuple(problems)), message)

    blocking = check_before_opening(archive, rules)
    if blocking:
        return Judgement(Verdict(match.enterprise, tuple(problems + blocking), archive=archive), message)

    inspection = inspect_archive(archive, workdir, rules.limits)
    documents, found = check_inspection(archive, inspection, match.enterprise, rules)
    verdict = Verdict(match.enterprise, tuple(problems + found), tuple(documents), archive)
    return Judgement(verdict, message, inspection)


def _why_no_archive(message: ParsedMessage, links: list[str]) -> Problem:
    if links:
        return Problem(Code.ATTACHMENT_LINK, detail=" ".join(links))
    if not message.attachments:
        return Problem(Code.NO_ATTACHMENT)
    return Problem(Code.NOT_RAR, detail="、".join(a.filename or a.content_type for a in message.attachments))
