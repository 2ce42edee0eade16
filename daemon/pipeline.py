"""The order of work for one message: parse -> classify -> who wrote it -> unpack -> match -> validate -> verdict.

A message is an enterprise's own submission (one package: its archive and documents), a city bureau's email
(a letter, a summary table, and one package per recommended enterprise, possibly inside an outer archive),
or a letter to the office. Every step but reading archives is a pure function of its inputs and the
`Context`; archives are read in a limited child process. Whatever arrives, the result is a Verdict:
exceptions never leave this function for input reasons.
`EnvironmentFault` leaves it for ours (a full disk, a missing or killed tool): the caller must then record
nothing and leave the message to be judged again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path, PurePosixPath

from .campaign import Call, Reading
from .domain import (
    ArchiveFile,
    Attachment,
    BureauMail,
    Code,
    Document,
    Letter,
    MessageKind,
    Package,
    ParsedMessage,
    Problem,
    RosterEntry,
    SummaryTable,
    Verdict,
)
from .intake.archive import Inspection, Status, inspect_archive, member_attachment, start_archive_reader
from .intake.attachments import choose_archive, find_archives, is_rar, join_volumes
from .intake.bureau import (
    Bundle,
    FileKind,
    ThisEmail,
    bureau_city,
    call_labels,
    call_named,
    city_named,
    cross_checks,
    kind_of,
    letter_rank,
    looks_like_bureau,
    match_archive,
)
from .intake.classify import classify
from .intake.contents import NotRead, Read, judge_contents
from .intake.context import Context
from .intake.documents import Content, Member
from .intake.links import download_links
from .intake.match import Match, differences, is_typo, match_subject, normalise
from .intake.parse import Unreadable, parse_message, reply_ids
from .intake.pdf import PdfError
from .intake.readers import read_documents, read_letter, read_summary, start_document_reader
from .intake.rules import check_before_opening, check_deadline, check_inspection, check_review_sender
from .intake.spreadsheet import TableError, call_hint, is_workbook


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    message: ParsedMessage | None = None
    """None when the message could not be parsed at all."""
    files: tuple[tuple[str, Path], ...] = ()
    """Every file the verdict refers to that the message did not carry as such (documents and files read
    from archives), as (SHA-256, where it is now): the recorder keeps them."""
    joined: tuple[str, ...] = ()
    """SHA-256s of volumes that earlier emails carried and this verdict judged with its own."""


def start_readers() -> None:
    """Start the archive and document readers' servers now, so that their imports (half a second for the
    image libraries) overlap the caller's own start instead of delaying its first message."""
    start_archive_reader()
    start_document_reader()


def judge(
    source: Path | bytes,
    *,
    context: Context,
    workdir: Path,
    internaldate: datetime | None = None,
    oversize: int | None = None,
    extra: tuple[Attachment, ...] = (),
    clock: datetime | None = None,
) -> Judgement:
    """Judge one raw message. `workdir` is an empty folder the caller removes afterwards.

    `oversize` is the size of a message too large to download: `source` then holds only its headers.
    `extra`: files to judge as if attached (an archive staff fetched by hand from a download link).
    `clock`: the time it is now, when later than the message (the window for volumes may have closed).
    """
    message = parse_message(source, workdir, internaldate)
    if isinstance(message, Unreadable):
        return Judgement(Verdict(MessageKind.UNREADABLE, (Problem(Code.UNREADABLE_MESSAGE, detail=message.reason),)))
    message = replace(message, attachments=message.attachments + extra)
    ignored = classify(message)
    if ignored is not None:
        return Judgement(Verdict(MessageKind.IGNORED, (ignored,)), message)
    budget = Budget(time.monotonic() + context.rules.judging_seconds)
    city = bureau_city(message.sender, context.senders())
    kinds = [(a.filename, _kind(a)) for a in message.attachments]
    bureau = city is not None or (oversize is None and looks_like_bureau(message, kinds))
    try:
        if bureau:
            cities = [b.city for b in context.rules.bureaus]
            where = city or city_named(message.subject, cities)
            return _Bureau(message, context, workdir, budget).judge(where, confirmed=city is not None)
        return _submission(message, context, workdir, oversize, clock, budget)
    except OutOfTime:
        kind = MessageKind.BUREAU if bureau else MessageKind.SUBMISSION
        timeout = Problem(Code.JUDGING_TIMEOUT, detail=f"{context.rules.judging_seconds:g}")
        return Judgement(Verdict(kind, (timeout,)), message)


class OutOfTime(Exception):
    """Judging one message took longer than its budget."""


@dataclass(frozen=True)
class Budget:
    """The time left for judging one message, checked after each step that may take long."""

    deadline: float

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise OutOfTime


# -- an enterprise's own email ---------------------------------------------------------------------------------


def _submission(
    message: ParsedMessage,
    context: Context,
    workdir: Path,
    oversize: int | None,
    clock: datetime | None,
    budget: Budget,
) -> Judgement:
    rules = context.rules
    roster = context.everyone
    match = match_subject(message.subject, roster, rules.subject_match)
    if match.enterprise is None and (replied := context.history.replied_enterprise(reply_ids(message))):
        match = Match(replied)  # an answer to our reply about this enterprise, whatever its subject says
    links = download_links(message.body_text)
    own = check_review_sender(message, rules)
    if match.enterprise is None and not message.attachments and not links:
        return Judgement(Verdict(MessageKind.QUESTION, (*own, Problem(Code.NOT_A_SUBMISSION))), message)

    call = rules.own_call or rules.calls[0]
    problems = [*own, *filter(None, (match.problem, match.note)), *check_deadline(message, call.deadline)]
    name = match.enterprise or match.suggestion  # every other check runs against the name meant
    if oversize is not None:
        problems.append(Problem(Code.TOO_LARGE, detail=str(oversize)))
        return _one(message, Package(match.enterprise, call.code, tuple(problems)))
    archive = choose_archive(find_archives(message.attachments), name)
    if archive is None:
        problems.append(_why_no_archive(message, links))
        return _one(message, Package(match.enterprise, call.code, tuple(problems)))

    archive, window_open, joined = _volumes(archive, message, context, clock)
    package, files = _judge_archive(archive, name, call, context, workdir, window_open, budget)
    budget.check()
    found = list(package.problems)
    if match.problem is not None and match.suggestion and normalise(archive.name) == normalise(message.subject):
        # the archive repeats the subject's mistake: one problem says both (「泊」应为「舶」 in each)
        found = [p for p in found if p.code is not Code.ARCHIVE_NAME_MISMATCH]
        problems[problems.index(match.problem)] = replace(match.problem, enterprise=archive.name)
    problems += found
    enterprise = match.enterprise
    if _direct_sender(match, message.subject, archive, package):
        enterprise = message.subject.strip()
        problems = [*own, Problem(Code.DIRECT_SENDER, enterprise=enterprise, detail=message.sender)]
        call_code: str | None = None
    else:
        call_code = call.code
        if enterprise and not problems and context.history.accepted_archive(enterprise) == archive.fingerprint:
            problems.append(Problem(Code.SAME_AS_ACCEPTED, detail=archive.fingerprint))
    verdict = Verdict(
        MessageKind.SUBMISSION,
        packages=(replace(package, enterprise=enterprise, call=call_code, problems=tuple(problems), archive=archive),),
    )
    return Judgement(verdict, message, files, joined)


def _one(message: ParsedMessage, package: Package) -> Judgement:
    return Judgement(Verdict(MessageKind.SUBMISSION, packages=(package,)), message)


def _volumes(
    archive: ArchiveFile, message: ParsedMessage, context: Context, clock: datetime | None
) -> tuple[ArchiveFile, bool, tuple[str, ...]]:
    """A set of volumes joined with those earlier emails carried; whether the window for the rest is still
    open; the SHA-256s of the earlier volumes used."""
    if not archive.numbers or not context.volumes_across_emails:
        return archive, False, ()
    received = message.received_at or clock
    if received is None:
        return archive, False, ()
    window = context.rules.volume_window
    earlier = context.history.earlier_volumes(archive.name, message.sender, received - window)
    first = received
    joined: tuple[str, ...] = ()
    if earlier is not None:
        archive = join_volumes(archive, earlier.volumes)
        first = min(first, earlier.first_received)
        ours = {v.sha256 for v in earlier.volumes}
        joined = tuple(v.sha256 for v in archive.volumes if v.sha256 in ours)
    return archive, max(received, clock or received) < first + window, joined


def _judge_archive(
    archive: ArchiveFile,
    enterprise: str | None,
    call: Call,
    context: Context,
    workdir: Path,
    window_open: bool,
    budget: Budget,
    inspection: Inspection | None = None,
) -> tuple[Package, tuple[tuple[str, Path], ...]]:
    """One archive judged by the calls' rules as `enterprise`'s package (the files its documents are in)."""
    rules = context.rules
    blocking = check_before_opening(archive, rules)
    if blocking and window_open and blocking[0].code is Code.INCOMPLETE_ARCHIVE:
        return Package(enterprise, call.code, (_pending(archive, blocking[0].detail),), archive=archive), ()
    if blocking:
        return Package(enterprise, call.code, tuple(blocking), archive=archive), ()
    inspection = inspection or inspect_archive(archive, workdir, rules.limits)
    if inspection.status is Status.INCOMPLETE and window_open:
        return Package(enterprise, call.code, (_pending(archive, inspection.detail),), archive=archive), ()
    documents, found = check_inspection(archive, inspection, enterprise, rules, rules.archive_name_match)
    results = _read_documents(documents, inspection, context, workdir, budget)
    roster = context.everyone
    names = [entry.name for entry in roster.entries] if roster else []
    judged = judge_contents(documents, results, rules.roles, enterprise, names, rules.seal)
    wanted = {d.sha256 for d in documents}
    files = tuple(
        (m.sha256, inspection.folder / m.stored_as)
        for m in inspection.members
        if m.sha256 in wanted and inspection.folder is not None
    )
    problems = (*found, *judged.problems)
    return Package(enterprise, call.code, problems, judged.documents, archive, judged.seal, judged.title), files


_READABLE = frozenset({Content.DOCX, Content.DOC, Content.PDF})
_READING_ORDER = (Reading.FORM, Reading.WRITE_UP, Reading.PLAIN)


def _read_documents(
    documents: list[Document], inspection: Inspection, context: Context, workdir: Path, budget: Budget
) -> dict[str, Read | NotRead]:
    """Each Word document and PDF among the package's documents read once (by SHA-256), as its most
    demanding role asks (a file playing the form and another role is read as the form)."""
    if inspection.folder is None:
        return {}
    members = {m.sha256: m for m in inspection.members if m.content in _READABLE}
    readings = {role.code: role.reading for role in context.rules.roles}
    wanted: dict[str, Reading] = {}
    for document in documents:
        if document.sha256 in members:
            reading = readings.get(document.role, Reading.PLAIN)
            wanted[document.sha256] = min(wanted.get(document.sha256, Reading.PLAIN), reading, key=_READING_ORDER.index)
    folder = inspection.folder
    requests = [
        (folder / members[sha].stored_as, reading, members[sha].content is Content.PDF)
        for sha, reading in wanted.items()
    ]
    found = read_documents(requests, workdir, context.rules.document_limits)
    budget.check()
    return dict(zip(wanted, found, strict=True))


def _pending(archive: ArchiveFile, missing: str | None) -> Problem:
    present = "、".join(f"第 {n} 卷" for n in archive.numbers)
    return Problem(Code.VOLUMES_PENDING, detail=f"{present}|{missing or ''}")


def _direct_sender(match: Match, subject: str, archive: ArchiveFile, package: Package) -> bool:
    """A correct submission whose subject and archive name agree but name no enterprise in any roster or
    table (a 省属 enterprise, say): a person decides, it is never rejected. A subject one or two characters
    off a roster name is a typo, not a stranger."""
    if match.problem is None or match.problem.code is not Code.UNKNOWN_ENTERPRISE:
        return False
    if match.suggestion and is_typo(subject, match.suggestion):
        return False
    if not normalise(archive.name).startswith(normalise(subject)) or not normalise(subject):
        return False
    return all(p.code is Code.ARCHIVE_NAME_MISMATCH or p.is_note for p in package.problems)


def _why_no_archive(message: ParsedMessage, links: list[str]) -> Problem:
    if links:
        return Problem(Code.ATTACHMENT_LINK, detail=" ".join(links))
    if not message.attachments:
        return Problem(Code.NO_ATTACHMENT)
    return Problem(Code.NOT_RAR, detail="、".join(a.filename or a.content_type for a in message.attachments))


def _kind(attachment: Attachment) -> FileKind:
    return kind_of(attachment.filename, attachment.head, is_workbook(attachment.path))


# -- a city bureau's email -------------------------------------------------------------------------------------


class _Bureau:
    """Judging one bureau email: its files unpacked, its letter and table read, each enterprise's archive
    judged as that enterprise's package, and the city's bundle cross-checked."""

    def __init__(self, message: ParsedMessage, context: Context, workdir: Path, budget: Budget) -> None:
        self.budget = budget
        self.message = message
        self.context = context
        self.rules = context.rules
        self.workdir = workdir
        self.files: list[tuple[str, Path]] = []

    def judge(self, city: str | None, *, confirmed: bool) -> Judgement:
        message, rules = self.message, self.rules
        attachments, inspected = self._unpack(message.attachments)
        kinds = [(a, _kind(a)) for a in attachments]
        letter, letter_problems = self._letter([a for a, k in kinds if k is FileKind.LETTER])
        table, table_problems = self._table([a for a, k in kinds if k is FileKind.TABLE])
        code = call_named(message.subject, rules.calls) or (table.call if table else None)
        call = rules.call(code)
        links = tuple(download_links(message.body_text))
        own = [] if confirmed else [Problem(Code.BUREAU_UNCONFIRMED, detail=message.sender)]
        if call is None:
            own.append(Problem(Code.UNKNOWN_CALL))
        late = check_deadline(message, call.bureau_deadline) if call else []
        own += late + [Problem(Code.ATTACHMENT_LINK, detail=url) for url in links]
        bundle = self.context.history.bundle(city, call.code) if city and call else Bundle()
        rows = bundle.rows + (table.rows if table else ())
        packages, checks = self._packages(kinds, inspected, call, rows, late)
        if city is not None:
            now = ThisEmail(
                letter is not None,
                table.rows if table else None,
                tuple(p.enterprise or "" for p in packages),
                bool(links),
            )
            checks = cross_checks(city, call, bundle, now) + checks
        mail = BureauMail(city, call.code if call else None, letter, table, links)
        verdict = Verdict(
            MessageKind.BUREAU, tuple(own + letter_problems + table_problems + checks), tuple(packages), mail
        )
        return Judgement(verdict, message, tuple(self.files))

    def _unpack(self, attachments: tuple[Attachment, ...]) -> tuple[list[Attachment], dict[str, Inspection]]:
        """The email's files, with those of an outer archive (one holding the letter, the table or the
        enterprises' archives) in its place; the inspections of archives read on the way, by name."""
        zips = [a for a in attachments if _kind(a) is FileKind.ZIP]
        files = [a for a in attachments if not is_rar(a) and a not in zips]
        inspected: dict[str, Inspection] = {}
        archives = find_archives(attachments) + [
            ArchiveFile(PurePosixPath(z.filename).stem, (z,), ("archive.zip",)) for z in zips
        ]
        for archive in archives:
            inspection = inspect_archive(archive, self.workdir, self.rules.limits)
            self.budget.check()
            members = inspection.members if inspection.status is Status.OK else ()
            if _is_outer(members):
                for member in members:
                    attachment = member_attachment(inspection, member)
                    files.append(attachment)
                    self.files.append((attachment.sha256, attachment.path))
            else:
                files += archive.volumes
                inspected[archive.name] = inspection
        return files, inspected

    def _letter(self, candidates: list[Attachment]) -> tuple[Letter | None, list[Problem]]:
        if not candidates:
            return None, []
        chosen = min(candidates, key=lambda a: letter_rank(a.filename))
        read = read_letter(chosen.path, self.workdir)
        self.budget.check()
        if isinstance(read, PdfError):
            return Letter(chosen.filename, chosen.sha256, None), [
                Problem(Code.INVALID_LETTER, detail=f"{chosen.filename}：{read.reason}")
            ]
        return Letter(chosen.filename, chosen.sha256, read.pages), []

    def _table(self, candidates: list[Attachment]) -> tuple[SummaryTable | None, list[Problem]]:
        for candidate in candidates:
            read = read_summary(candidate.path, self.workdir)
            self.budget.check()
            if isinstance(read, TableError):
                return None, [Problem(Code.INVALID_TABLE, detail=f"{candidate.filename}：{read.reason}")]
            rows = read.rows
            hint = call_hint(read, call_labels(self.rules.calls)) if len(self.rules.calls) > 1 else None
            return SummaryTable(candidate.filename, candidate.sha256, hint, rows), []
        return None, []

    def _packages(
        self,
        kinds: list[tuple[Attachment, FileKind]],
        inspected: dict[str, Inspection],
        call: Call | None,
        rows: tuple[RosterEntry, ...],
        late: list[Problem],
    ) -> tuple[list[Package], list[Problem]]:
        """Each enterprise archive judged as its enterprise's package, with the bundle problems its name
        raises (an archive in no row; a name one character off a row)."""
        roster = self.context.rosters.get(call.code) if call else None
        packages: list[Package] = []
        checks: list[Problem] = []
        archives = find_archives(tuple(a for a, k in kinds if k in (FileKind.RAR, FileKind.ZIP)))
        archives += [  # an enterprise's files in a ZIP: its package, told what format the notice asks for
            ArchiveFile(PurePosixPath(a.filename).stem, (a,), ("archive.zip",)) for a, k in kinds if k is FileKind.ZIP
        ]
        for archive in archives:
            found = match_archive(archive.name, rows, roster, self.rules.archive_name_match)
            judged, files = _judge_archive(
                archive,
                found.enterprise,
                call or Call(code=""),
                self.context,
                self.workdir,
                window_open=False,
                budget=self.budget,
                inspection=inspected.get(archive.name),
            )
            self.budget.check()
            self.files += files
            extra = list(late)
            if not found.listed:
                extra.append(Problem(Code.UNLISTED_ARCHIVE, enterprise=found.enterprise))
                checks.append(Problem(Code.UNLISTED_ARCHIVE, enterprise=found.enterprise))
            if found.near_miss:
                checks.append(
                    Problem(
                        Code.NAME_NEAR_MISS,
                        enterprise=found.enterprise,
                        detail=differences(archive.name, found.enterprise),
                    )
                )
            packages.append(replace(judged, call=call.code if call else None, problems=tuple(extra) + judged.problems))
        return packages, checks


_TABLES = frozenset({".xlsx", ".xls", ".et"})


def _is_outer(members: tuple[Member, ...]) -> bool:
    """An archive holding other archives or a summary table is a bureau's outer archive, not an
    enterprise's (which may hold a PDF scan beside its forms, but no archive and no table)."""
    return any(
        m.content in (Content.RAR, Content.ZIP) or PurePosixPath(m.name).suffix.lower() in _TABLES for m in members
    )
