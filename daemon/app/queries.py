"""The read side: typed views of messages, enterprises, city bundles and the mailbox's health.

Each function is a few bulk queries (never one per row), filtering in SQL, so that staff views of a call
with thousands of enterprises answer within a second. What counts for a package is a person's latest
decision on it, else the automatic verdict.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVarTuple

from sqlalchemy import Row, Select, or_
from sqlalchemy import select as sql_select
from sqlmodel import Session, SQLModel, col, func, select

from ..addresses import BadRecipient, single_address
from ..campaign import CallRules
from ..domain import Code, Contents, CopyKind, MessageKind, Outcome, Problem, Seal, SealStatus
from ..intake.match import normalise
from ..storage.conditions import confirmed_bureau_messages
from ..storage.db import get_meta
from ..storage.models import (
    Alert,
    AuditEntry,
    BureauFile,
    Decision,
    DigestRecord,
    DocumentRecord,
    Enterprise,
    MessageRecord,
    Nomination,
    OutboxItem,
    PackageRecord,
    ProblemRecord,
    Submission,
)
from ..storage.states import NominationSource, OutboxState
from .errors import NotFound
from .views import (
    AlertView,
    AuditView,
    BundleView,
    CopyView,
    DecisionView,
    DocumentView,
    EnterpriseRow,
    Health,
    Ledger,
    MessageView,
    PackageView,
    ReplyView,
    Standing,
    StoredFile,
)


def _plain(model: type[SQLModel], *more: Any, without: tuple[Any, ...] = ()) -> Select[Any]:
    """A query for a table's rows as plain tuples (attributes named after the columns), plus `more` columns,
    less the model's attributes `without` (bulk no view shows). Staff views read tens of thousands of rows,
    and making a model object of each (pydantic) took seconds."""
    left_out = {attribute.key for attribute in without}
    columns = [column for column in model.__table__.columns if column.key not in left_out]  # type: ignore[attr-defined]
    return sql_select(*columns, *more)


_Columns = TypeVarTuple("_Columns")


def _rows(session: Session, query: Select[*_Columns]) -> Sequence[Row[*_Columns]]:
    """A query's rows straight from the database driver, all at once: read through the ORM, or one by one,
    each row was copied again, a tenth of a staff view's time. What the session changed is flushed first, as
    the ORM would."""
    session.flush()
    return session.connection().execute(query).all()


_REFERENCE = re.compile(r"^(?:SB-?|#)?0*(\d+)$", re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s;；,，、/]+")


def message_id_of(text: str) -> int | None:
    """The record id in a reference as staff type it: SB-000012, SB12, #12 or 12."""
    found = _REFERENCE.match(text.strip())
    return int(found.group(1)) if found else None


def find_message(session: Session, text: str) -> MessageRecord:
    """A message by its 登记编号 (SB-000012), #12 or 12."""
    number = message_id_of(text)
    row = session.get(MessageRecord, number) if number is not None else None
    if row is None:
        raise NotFound(f"没有编号为 {text} 的邮件（请使用回复中的登记编号，如 SB-000012）")
    return row


def contact_addresses(cell: str) -> list[str]:
    """The addresses in a roster's email cell, which offices fill with one, two, or a typo."""
    found = []
    for piece in _SEPARATORS.split(cell.strip()):
        try:
            found.append(single_address(piece))
        except BadRecipient:
            continue
    return [address.lower() for address in dict.fromkeys(found)]


# -- messages --------------------------------------------------------------------------------------------------


def message_views(
    session: Session, *, ids: Sequence[int] | None = None, since: datetime | None = None
) -> list[MessageView]:
    """Messages, oldest first (all of them, those with these ids, or those processed since then)."""
    query = _plain(MessageRecord).order_by(col(MessageRecord.received_at), col(MessageRecord.id))
    if ids is not None:
        query = query.where(col(MessageRecord.id).in_(list(ids)))
    if since is not None:
        query = query.where(col(MessageRecord.processed_at) > since)
    records = _rows(session, query)
    wanted = [r.id for r in records if r.id is not None]
    if not wanted:
        return []
    within = wanted if ids is not None or since is not None else None
    problems = _problems(session, within)
    decisions = _decisions(session, within)
    packages = _packages(session, within, problems, decisions)
    replies: dict[int, list[ReplyView]] = defaultdict(list)
    # not the replies' MIME, which no view shows: most of a campaign's database
    reply_query = (
        _plain(OutboxItem, without=(OutboxItem.raw,))
        .where(col(OutboxItem.message_id).is_not(None))
        .order_by(col(OutboxItem.id))
    )
    if within is not None:
        reply_query = reply_query.where(col(OutboxItem.message_id).in_(within))
    for item in _rows(session, reply_query):
        assert item.message_id is not None and item.id is not None
        replies[item.message_id].append(
            ReplyView(
                item.id,
                item.kind,
                item.recipient,
                item.state,
                item.subject,
                item.created_at,
                item.sent_at,
                item.last_error,
            )
        )
    views = []
    for record in records:
        assert record.id is not None
        own = tuple(problems[(record.id, None)])
        mine = tuple(packages[record.id])
        made = tuple(decisions[(record.id, None)]) + tuple(d for p in mine for d in decisions[(record.id, p.id)])
        views.append(
            MessageView(
                id=record.id,
                received_at=record.received_at,
                processed_at=record.processed_at,
                sender=record.sender,
                sender_name=record.sender_name,
                subject=record.subject,
                kind=record.kind,
                outcome=_message_outcome(record, mine, decisions[(record.id, None)]),
                city=record.city,
                call=record.call,
                problems=own,
                packages=mine,
                replies=tuple(replies[record.id]),
                decisions=tuple(sorted(made, key=lambda d: d.at)),
                links=_links(own + tuple(p for package in mine for p in package.problems)),
            )
        )
    return views


def _message_outcome(record: Row[Any], packages: tuple[PackageView, ...], decided: list[DecisionView]) -> Outcome:
    if decided:
        return decided[-1].outcome
    if record.kind is MessageKind.SUBMISSION and len(packages) == 1:
        return packages[0].outcome
    return Outcome(record.outcome)


def _links(problems: Iterable[Problem]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for problem in problems:
        if problem.code is Code.ATTACHMENT_LINK and problem.detail:
            for url in problem.detail.split():
                found.setdefault(url)
    return tuple(found)


def _problems(session: Session, within: list[int] | None) -> dict[tuple[int, int | None], list[Problem]]:
    query = _problem_rows()
    if within is not None:
        query = query.where(col(ProblemRecord.message_id).in_(within))
    found: dict[tuple[int, int | None], list[Problem]] = defaultdict(list)
    for message_id, package_id, *problem in _rows(session, query):
        found[(message_id, package_id)].append(_problem(*problem))
    return found


def _problem_rows() -> Select[*tuple[Any, ...]]:
    """Problems in their order, as (message_id, package_id, then `_problem`'s arguments): unpacked by
    position, which a view reading thousands of them does faster than by name."""
    columns: list[Any] = [
        ProblemRecord.message_id,
        ProblemRecord.package_id,
        ProblemRecord.code,
        ProblemRecord.role,
        ProblemRecord.suggestion,
        ProblemRecord.detail,
        ProblemRecord.enterprise,
        ProblemRecord.severity,
    ]
    return sql_select(*columns).order_by(col(ProblemRecord.position))


def _problem(
    code: str, role: str | None, suggestion: str | None, detail: str | None, enterprise: str | None, severity: Any
) -> Problem:
    return Problem(Code(code), role, suggestion, detail, enterprise, severity)


def _decisions(session: Session, within: list[int] | None) -> dict[tuple[int, int | None], list[DecisionView]]:
    query = _plain(Decision).order_by(col(Decision.decided_at), col(Decision.id))
    if within is not None:
        query = query.where(col(Decision.message_id).in_(within))
    found: dict[tuple[int, int | None], list[DecisionView]] = defaultdict(list)
    for row in _rows(session, query):
        found[(row.message_id, row.package_id)].append(
            DecisionView(row.outcome, row.note, row.actor, row.decided_at, row.package_id)
        )
    return found


def _packages(
    session: Session,
    within: list[int] | None,
    problems: dict[tuple[int, int | None], list[Problem]],
    decisions: dict[tuple[int, int | None], list[DecisionView]],
) -> dict[int, list[PackageView]]:
    query = (
        _plain(PackageRecord, col(Submission.version).label("version"))
        .outerjoin(Submission, col(Submission.package_id) == PackageRecord.id)
        .order_by(col(PackageRecord.position))
    )
    if within is not None:
        query = query.where(col(PackageRecord.message_id).in_(within))
    found: dict[int, list[PackageView]] = defaultdict(list)
    for row in _rows(session, query):
        decided = decisions[(row.message_id, row.id)]
        found[row.message_id].append(
            PackageView(
                id=row.id,
                message_id=row.message_id,
                enterprise=row.enterprise_name,
                enterprise_id=row.enterprise_id,
                call=row.call,
                outcome=decided[-1].outcome if decided else row.outcome,
                automatic=row.outcome,
                problems=tuple(problems[(row.message_id, row.id)]),
                archive_name=row.archive_name,
                archive_size=row.archive_size,
                archive_fingerprint=row.archive_fingerprint,
                joined=row.joined_into is not None,
                version=row.version,
                seal=Seal(row.seal, row.seal_document, row.seal_picture) if row.seal else None,
                title=row.title,
            )
        )
    return found


def reply_state(session: Session, outbox_id: int) -> OutboxState | None:
    """Where a queued reply got to (after the outbox tried to send it)."""
    item = session.get(OutboxItem, outbox_id)
    return item.state if item is not None else None


def verdict_counts(session: Session) -> dict[Outcome, int]:
    """Messages by their automatic verdict (a person's decision is counted apart, in `decision_counts`)."""
    rows = session.exec(select(MessageRecord.outcome, func.count()).group_by(MessageRecord.outcome)).all()
    return {Outcome(outcome): int(count) for outcome, count in rows}


def decision_counts(session: Session) -> dict[Outcome, int]:
    rows = session.exec(select(Decision.outcome, func.count()).group_by(Decision.outcome)).all()
    return {Outcome(outcome): int(count) for outcome, count in rows}


# -- files staff may download ----------------------------------------------------------------------------------


def document_file(session: Session, document_id: int) -> StoredFile | None:
    """A document of a package, by its id."""
    found = session.exec(
        select(DocumentRecord, PackageRecord.enterprise_id)
        .join(PackageRecord, col(PackageRecord.id) == DocumentRecord.package_id)
        .where(DocumentRecord.id == document_id)
    ).first()
    if found is None:
        return None
    row, enterprise_id = found
    return StoredFile(document_id, row.name, row.sha256, row.message_id, enterprise_id, "document")


def bureau_file(session: Session, file_id: int) -> StoredFile | None:
    """A bureau's letter or table, by its id."""
    row = session.get(BureauFile, file_id)
    if row is None:
        return None
    return StoredFile(file_id, row.name, row.sha256, row.message_id, None, row.kind)


def bureau_files_of(session: Session, message_ids: Sequence[int]) -> dict[int, list[StoredFile]]:
    """The letters and tables each of these messages carried."""
    found: dict[int, list[StoredFile]] = defaultdict(list)
    if not message_ids:
        return found
    query = select(BureauFile).where(col(BureauFile.message_id).in_(list(message_ids))).order_by(col(BureauFile.id))
    for row in session.exec(query):
        found[row.message_id].append(StoredFile(row.id or 0, row.name, row.sha256, row.message_id, None, row.kind))
    return found


def documents_of(session: Session, package_ids: Sequence[int]) -> dict[int, list[DocumentView]]:
    if not package_ids:
        return defaultdict(list)
    return _documents(session, col(DocumentRecord.package_id).in_(list(package_ids)))


def _documents(session: Session, which: Any) -> dict[int, list[DocumentView]]:
    found: dict[int, list[DocumentView]] = defaultdict(list)
    # not the write-ups' MinHash signatures, which no view shows: the copies view reads them itself
    query = _plain(DocumentRecord, without=(DocumentRecord.signature,))
    for row in _rows(session, query.where(which).order_by(col(DocumentRecord.id))):
        found[row.package_id].append(DocumentView(row.role, row.name, row.size, row.sha256, row.id, _contents(row)))
    return found


def _contents(row: Row[Any]) -> Contents | None:
    if not row.read:
        return None
    return Contents(row.words, row.pages, row.pictures or 0, row.title, seal=row.seal, seal_picture=row.seal_picture)


# -- enterprises -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Listing:
    """An enterprise listed for a call, each detail from the most authoritative source that gives it (the
    roster, a bureau's table, a person), else the enterprise's own."""

    enterprise_id: int
    name: str
    call: str
    details: dict[str, str]
    """city, title, contact, phone, email"""
    sources: tuple[str, ...]
    """Who listed it, most authoritative first."""


_DETAILS = ("city", "title", "contact", "phone", "email")
_AUTHORITY = {NominationSource.ROSTER: 0, NominationSource.TABLE: 1, NominationSource.STAFF: 2}


def _effective_outcome() -> object:
    """SQL: a person's latest decision on the package, else its verdict."""
    decided = (
        select(Decision.outcome)
        .where(col(Decision.package_id) == PackageRecord.id)
        .order_by(col(Decision.id).desc())
        .limit(1)
        .correlate(PackageRecord)
        .scalar_subquery()
    )
    return func.coalesce(decided, PackageRecord.outcome)


def enterprise_rows(
    session: Session,
    *,
    call: str | None = None,
    city: str | None = None,
    standing: Standing | None = None,
    search: str | None = None,
    enterprise_id: int | None = None,
    documents: bool = False,
) -> list[EnterpriseRow]:
    """One row per enterprise and call it is listed for, in the order they were first listed; with
    `documents`, each row carries what its counted package's documents are (the workbook, `show`)."""
    nominations = _nominations(call, city, search, enterprise_id)
    listings = _listings(session, nominations)
    if not listings:
        return []
    listed = col(PackageRecord.enterprise_id).in_(nominations.with_only_columns(col(Nomination.enterprise_id)))
    outcome = _effective_outcome().label("outcome")  # type: ignore[attr-defined]
    columns: list[Any] = [
        PackageRecord.enterprise_id,
        PackageRecord.call,
        PackageRecord.id,
        outcome,
        PackageRecord.joined_into,
        MessageRecord.id,
        MessageRecord.received_at,
        MessageRecord.sender,
        MessageRecord.kind,
        PackageRecord.title,
        PackageRecord.seal,
    ]
    rows = _rows(
        session,
        sql_select(*columns)
        .join(MessageRecord, col(MessageRecord.id) == PackageRecord.message_id)
        .where(listed)
        .order_by(col(MessageRecord.received_at), col(PackageRecord.id)),
    )
    by_listing: dict[tuple[int, str | None], list[tuple[int, Outcome, bool, int, datetime, str | None]]] = defaultdict(
        list
    )
    facts: dict[int, tuple[str | None, SealStatus | None]] = {}
    # the verdict is an Outcome as read: the coalesce is read as the decision's column is
    for enterprise, package_call, package_id, verdict, joined, message_id, received, sender, kind, title, seal in rows:
        facts[package_id] = (title, seal)
        if verdict is not Outcome.IGNORED:
            # a bureau sends its enterprises' archives: its address is no enterprise's contact to compare
            own_sender = None if kind is MessageKind.BUREAU else sender
            by_listing[(enterprise, package_call)].append(
                (package_id, verdict, joined is not None, message_id, received, own_sender)
            )
    of_listed = select(PackageRecord.id).where(listed)
    latest = {items[-1][0] for items in by_listing.values() if items}
    problems = _package_problems(session, col(ProblemRecord.package_id).in_(of_listed), latest)
    counted = {key: _counted(items) for key, items in by_listing.items() if items}
    files = _documents(session, col(DocumentRecord.package_id).in_(of_listed)) if documents else {}
    found = []
    for listing in listings:
        key = (listing.enterprise_id, listing.call)
        package_id = counted.get(key)
        title, seal = facts[package_id] if package_id is not None else (None, None)
        shown = tuple(files[package_id]) if package_id in files else ()
        row = _row(listing, by_listing.get(key, []), problems, form_title=title, seal=seal, documents=shown)
        if standing is None or row.standing is standing:
            found.append(row)
    return found


def enterprise_names(session: Session) -> list[str]:
    """Every listed enterprise's name, sorted: those a person may attribute a message to."""
    listed = col(Enterprise.id).in_(select(Nomination.enterprise_id))
    return sorted(set(session.exec(select(Enterprise.name).where(listed)).all()))


def _counted(items: list[tuple[int, Outcome, bool, int, datetime, str | None]]) -> int:
    """The package whose documents count: the latest accepted, else the latest."""
    accepted = [item[0] for item in items if item[1] is Outcome.ACCEPTED]
    return accepted[-1] if accepted else items[-1][0]


def ledger(session: Session, rules: CallRules) -> Ledger:
    copies_found = _copies_ahead(session, rules)
    return Ledger(
        enterprise_rows(session, documents=True),
        message_views(session),
        bundle_views(session, rules),
        copies_found(),
    )


def _nominations(call: str | None, city: str | None, search: str | None, enterprise_id: int | None) -> Select[Any]:
    """The listings wanted, as a query of nominations with their enterprises' details (`enterprise_name`,
    `enterprise_city`…, as `_listings` reads them), which also serves as a subquery of their enterprises."""
    details = (
        column.label(f"enterprise_{column.key}")
        for column in Enterprise.__table__.columns  # type: ignore[attr-defined]
        if column.key != "id"  # the nomination's enterprise_id
    )
    query = _plain(Nomination, *details).join(Enterprise, col(Enterprise.id) == Nomination.enterprise_id)
    if enterprise_id is not None:
        query = query.where(col(Nomination.enterprise_id) == enterprise_id)
    if call is not None:
        query = query.where(col(Nomination.call) == call)
    if city is not None:
        query = query.where(col(Nomination.city).startswith(city) | col(Enterprise.city).startswith(city))
    if search:
        key = normalise(search)
        number = message_id_of(search)
        matches = col(Enterprise.key).contains(key)
        if number is not None:
            sent = select(PackageRecord.enterprise_id).where(PackageRecord.message_id == number)
            matches = matches | col(Enterprise.id).in_(sent)
        query = query.where(matches)
    return query


def _listings(session: Session, nominations: Select[Any]) -> list[_Listing]:
    rows = _rows(session, nominations.order_by(col(Nomination.id)))
    if not rows:
        return []
    # columns by position: a row looks an attribute up by its name each time, eight times a listing here
    at = {name: position for position, name in enumerate(rows[0]._fields)}
    grouped: dict[tuple[int, str], list[Row[Any]]] = defaultdict(list)
    for row in rows:
        grouped[(row[at["enterprise_id"]], row[at["call"]])].append(row)
    source, enterprise_name = at["source"], at["enterprise_name"]
    positions = [(field, at[field], at[f"enterprise_{field}"]) for field in _DETAILS]
    listings = []
    for (enterprise_id, call), found in grouped.items():
        found.sort(key=lambda nomination: _AUTHORITY[nomination[source]])
        listings.append(
            _Listing(
                enterprise_id,
                str(found[0][enterprise_name]),
                call,
                {field: _best(found, given, own) for field, given, own in positions},
                tuple(dict.fromkeys(n[source].value for n in found)),
            )
        )
    return listings


def _best(nominations: list[Row[Any]], given: int, own: int) -> str:
    """The detail at position `given` from the first nomination that gives it, else the enterprise's own."""
    for nomination in nominations:
        if value := nomination[given]:
            return str(value)
    return str(nominations[0][own])


def _package_problems(session: Session, which: Any, package_ids: set[int]) -> dict[int, list[Problem]]:
    """The problems of these packages (`which`: a condition in SQL that covers them, to read in one pass)."""
    found: dict[int, list[Problem]] = defaultdict(list)
    if not package_ids:
        return found
    for _, package_id, *problem in _rows(session, _problem_rows().where(which)):
        if package_id in package_ids:
            found[package_id].append(_problem(*problem))
    return found


def _row(
    listing: _Listing,
    items: list[tuple[int, Outcome, bool, int, datetime, str | None]],
    problems: dict[int, list[Problem]],
    *,
    form_title: str | None,
    seal: SealStatus | None,
    documents: tuple[DocumentView, ...],
) -> EnterpriseRow:
    """The last three: what the package that counts shows (its form's title and seal, its documents)."""
    outcomes = [(outcome, joined) for _, outcome, joined, _, _, _ in items]
    accepted = [item for item in items if item[1] is Outcome.ACCEPTED]
    standing = standing_of(outcomes)
    latest = items[-1] if items else None
    email = listing.details["email"]
    sender = accepted[-1][5] if accepted else None
    contacts = contact_addresses(email) if sender is not None else []
    stranger = bool(contacts) and sender not in contacts
    return EnterpriseRow(
        enterprise_id=listing.enterprise_id,
        name=listing.name,
        call=listing.call,
        city=listing.details["city"],
        title=listing.details["title"],
        contact=listing.details["contact"],
        phone=listing.details["phone"],
        email=email,
        standing=standing,
        packages=len(items),
        versions=len(accepted),
        last_received=latest[4] if latest else None,
        open_problems=tuple(problems[latest[0]]) if latest and standing is not Standing.ACCEPTED else (),
        latest_message=latest[3] if latest else None,
        latest_accepted=accepted[-1][0] if accepted else None,
        stranger=stranger,
        sources=listing.sources,
        form_title=form_title,
        seal=seal,
        documents=documents,
    )


def counted_packages(session: Session) -> dict[tuple[int, str | None], int]:
    """For each enterprise and call, the package whose documents count now: its latest accepted package
    (a person's decision included), else its latest one waiting for a person."""
    outcome = _effective_outcome().label("outcome")  # type: ignore[attr-defined]
    columns: list[Any] = [PackageRecord.enterprise_id, PackageRecord.call, PackageRecord.id, outcome]
    rows = _rows(
        session,
        sql_select(*columns).where(col(PackageRecord.enterprise_id).is_not(None)).order_by(col(PackageRecord.id)),
    )
    accepted: dict[tuple[int, str | None], int] = {}
    waiting: dict[tuple[int, str | None], int] = {}
    for enterprise_id, call, package_id, result in rows:
        if Outcome(result) is Outcome.ACCEPTED:
            accepted[(enterprise_id, call)] = package_id
        elif Outcome(result) is Outcome.REVIEW:
            waiting[(enterprise_id, call)] = package_id
    return {**waiting, **accepted}


def copies(session: Session, rules: CallRules) -> list[CopyView]:
    """Documents two enterprises both sent in the packages that count: the same file (any role), or
    write-ups whose texts are at least `rules.similar_texts` similar. Each pair once."""
    return _copies_ahead(session, rules)()


def _copies_ahead(session: Session, rules: CallRules) -> Callable[[], list[CopyView]]:
    """`copies`, whose texts are compared in the document reader's server while the caller goes on: call
    the result for them. The server's start alone takes a second, which the ledger's other views overlap."""
    from ..intake.readers import similar_texts  # the document reader's client: only this view needs it

    counted = counted_packages(session)
    owner = {package_id: enterprise_id for (enterprise_id, _call), package_id in counted.items()}
    if not owner:
        return lambda: []
    wanted = set(owner.values())
    names = dict(session.exec(select(Enterprise.id, Enterprise.name).where(col(Enterprise.id).in_(wanted))).all())
    columns: list[Any] = [
        DocumentRecord.id,
        DocumentRecord.package_id,
        DocumentRecord.role,
        DocumentRecord.name,
        DocumentRecord.sha256,
        DocumentRecord.signature,
    ]
    documents = _rows(session, sql_select(*columns).where(col(DocumentRecord.package_id).in_(list(owner))))
    texts = [(d.id, d.signature) for d in documents if d.id is not None and d.signature]
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="similar-texts")
    compared = pool.submit(similar_texts, texts, rules.similar_texts, rules.document_limits)
    pool.shutdown(wait=False)  # its one thread ends with the comparison

    def found() -> list[CopyView]:
        by_file: dict[str, list[Row[Any]]] = defaultdict(list)
        for document in documents:
            by_file[document.sha256].append(document)
        pairs = [
            (CopyKind.SAME_FILE, first, second, 1.0)
            for same in by_file.values()
            for index, first in enumerate(same)
            for second in same[index + 1 :]
        ]
        by_id = {d.id: d for d in documents}
        pairs += [(CopyKind.SIMILAR_TEXT, by_id[a], by_id[b], score) for a, b, score in compared.result()]
        views: dict[tuple[str, int, int], CopyView] = {}
        for kind, first, second, score in pairs:
            a, b = owner[first.package_id], owner[second.package_id]
            key = (first.role, min(a, b), max(a, b))
            if a != b and key not in views:  # the same file is said once, not again as a similar text
                views[key] = CopyView(kind, first.role, a, names[a], first.name, b, names[b], second.name, score)
        return list(views.values())

    return found


def standing_of(outcomes: Sequence[tuple[Outcome, bool]]) -> Standing:
    """已受理 when any package is accepted, else 待人工 when one waits for a person, else 待补齐 when volumes
    are still coming, else 已退回 when anything came at all, else 未提交. (outcome, joined) pairs."""
    found = {outcome for outcome, joined in outcomes if not (outcome is Outcome.PENDING and joined)}
    if Outcome.ACCEPTED in found:
        return Standing.ACCEPTED
    if Outcome.REVIEW in found:
        return Standing.REVIEW
    if Outcome.PENDING in found:
        return Standing.PENDING
    if outcomes:
        return Standing.REJECTED
    return Standing.MISSING


def _waiting() -> Select[Any]:
    """SQL: the ids of messages waiting for a person. A message waits when one of its packages was judged
    `review` and no one has decided on it, or when the message as a whole was and no one has decided on the
    message (unless it is one enterprise's submission of one package: that package's outcome is its own)."""
    decided_packages = select(Decision.package_id).where(col(Decision.package_id).is_not(None))
    decided_messages = select(Decision.message_id).where(col(Decision.package_id).is_(None))
    single = select(PackageRecord.message_id).group_by(col(PackageRecord.message_id)).having(func.count() == 1)
    parts = select(PackageRecord.message_id).where(
        PackageRecord.outcome == Outcome.REVIEW, col(PackageRecord.id).not_in(decided_packages)
    )
    whole = select(MessageRecord.id).where(
        MessageRecord.outcome == Outcome.REVIEW,
        col(MessageRecord.id).not_in(decided_messages),
        ~((col(MessageRecord.kind) == MessageKind.SUBMISSION) & col(MessageRecord.id).in_(single)),
    )
    return sql_select(col(MessageRecord.id)).where(col(MessageRecord.id).in_(parts) | col(MessageRecord.id).in_(whole))


def review_queue(session: Session) -> list[MessageView]:
    """Messages waiting for a person, oldest first."""
    return message_views(session, ids=list(session.execute(_waiting()).scalars()))


def review_count(session: Session) -> int:
    """How many messages wait for a person, without reading them."""
    return int(session.execute(sql_select(func.count()).select_from(_waiting().subquery())).scalar_one())


def messages_about(session: Session, enterprise_id: int) -> list[MessageView]:
    """Every message with a package of the enterprise, or whose subject the system read as meaning it."""
    enterprise = session.get(Enterprise, enterprise_id)
    assert enterprise is not None
    packaged = select(PackageRecord.message_id).where(PackageRecord.enterprise_id == enterprise_id)
    suggested = select(ProblemRecord.message_id).where(ProblemRecord.suggestion == enterprise.name)
    ids = session.exec(
        select(MessageRecord.id).where(col(MessageRecord.id).in_(packaged) | col(MessageRecord.id).in_(suggested))
    ).all()
    return message_views(session, ids=[i for i in ids if i is not None])


# -- city bundles ----------------------------------------------------------------------------------------------


def bundle_views(
    session: Session, rules: CallRules, *, city: str | None = None, call: str | None = None
) -> list[BundleView]:
    """What each city's bureau sent for each call, from its confirmed emails, in the configured cities' order."""
    query = select(MessageRecord).where(col(MessageRecord.id).in_(confirmed_bureau_messages()))
    if city is not None:
        query = query.where(MessageRecord.city == city)
    if call is not None:
        query = query.where(MessageRecord.call == call)
    records = session.exec(query.order_by(col(MessageRecord.received_at), col(MessageRecord.id))).all()
    by_bundle: dict[tuple[str, str], list[MessageRecord]] = defaultdict(list)
    for record in records:
        if record.city and record.call:
            by_bundle[(record.city, record.call)].append(record)
    if not by_bundle:
        return []
    ids = [r.id for r in records if r.id is not None]
    views = {v.id: v for v in message_views(session, ids=ids)}
    files = session.exec(select(BureauFile).where(col(BureauFile.message_id).in_(ids))).all()
    tables = session.exec(
        select(Nomination.message_id, Enterprise.name)
        .join(Enterprise, col(Enterprise.id) == Nomination.enterprise_id)
        .where(Nomination.source == NominationSource.TABLE, col(Nomination.message_id).in_(ids))
        .order_by(col(Nomination.id))
    ).all()
    order = {bureau.city: index for index, bureau in enumerate(rules.bureaus)}
    found = []
    for (where, listed_call), messages in sorted(by_bundle.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0])):
        mine = {m.id for m in messages}
        letters = [f for f in files if f.message_id in mine and f.kind == "letter"]
        table_files = [f for f in files if f.message_id in mine and f.kind == "table"]
        listed = tuple(dict.fromkeys(name for message_id, name in tables if message_id in mine))
        packages = [p for m in messages if m.id is not None for p in views[m.id].packages]
        accepted = tuple(
            dict.fromkeys(p.enterprise for p in packages if p.outcome is Outcome.ACCEPTED and p.enterprise)
        )
        latest = views[messages[-1].id] if messages[-1].id is not None else None
        found.append(
            BundleView(
                city=where,
                call=listed_call,
                messages=tuple(m.id for m in messages if m.id is not None),
                letter=letters[-1].name if letters else None,
                letter_pages=letters[-1].pages if letters else None,
                table=table_files[-1].name if table_files else None,
                listed=listed,
                accepted=accepted,
                missing=tuple(name for name in listed if normalise(name) not in {normalise(a) for a in accepted}),
                late=any(Code.LATE in {p.code for p in views[m.id].problems} for m in messages if m.id is not None),
                codes=tuple(dict.fromkeys(p.code.value for p in latest.problems)) if latest else (),
            )
        )
    return found


# -- the mailbox's health --------------------------------------------------------------------------------------


def health(session: Session, *, alerts_since: datetime | None = None) -> Health:
    last_fetch = get_meta(session, "imap_last_ok")
    last_digest = session.exec(select(func.max(DigestRecord.created_at))).one()
    counts = dict(session.exec(select(OutboxItem.state, func.count()).group_by(OutboxItem.state)).all())
    open_now = col(Alert.key).is_not(None) & col(Alert.cleared_at).is_(None)
    events = (
        col(Alert.key).is_(None) & (Alert.at > alerts_since) if alerts_since is not None else col(Alert.key).is_(None)
    )
    query = select(Alert).where(open_now | events).order_by(col(Alert.at))
    return Health(
        last_fetch=datetime.fromisoformat(last_fetch) if last_fetch else None,
        last_digest=last_digest,
        outbox={str(state): int(count) for state, count in counts.items()},
        alerts=tuple(AlertView(a.id or 0, a.at, a.source, a.text, a.key is not None) for a in session.exec(query)),
    )


# -- the audit log ---------------------------------------------------------------------------------------------


def audit_entries(
    session: Session,
    *,
    message_ids: Sequence[int] | None = None,
    enterprise_id: int | None = None,
    limit: int | None = None,
) -> list[AuditView]:
    """What people did, newest first: everything, or what was about these messages or this enterprise."""
    query = select(AuditEntry).order_by(col(AuditEntry.at).desc(), col(AuditEntry.id).desc())
    if message_ids is not None or enterprise_id is not None:
        about: list[Any] = [col(AuditEntry.message_id).in_(list(message_ids or ()))]
        if enterprise_id is not None:
            about.append(AuditEntry.enterprise_id == enterprise_id)
        query = query.where(or_(*about))
    if limit is not None:
        query = query.limit(limit)
    return [
        AuditView(row.at, row.actor, row.action, row.message_id, row.enterprise_id, row.detail, row.address)
        for row in session.exec(query)
    ]
