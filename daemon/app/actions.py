"""What staff do: decide a message or a package by hand, attribute it, confirm a bureau, attach an archive
fetched from a download link, send an answer again, judge stored mail again.

Every face (command line, web page) calls these, so history and replies are written one way. A decision
never erases the automatic verdict: both stay, and the latest decision is what counts. Each action returns
a typed result; the reply it queued is sent by the caller's outbox.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from sqlmodel import Session, col, select

from ..domain import Code, MessageKind, Outcome, RosterEntry
from ..explain import OUTCOME_WORDS, reference
from ..intake.match import normalise
from ..service.recorder import OnRecord, Recorder, add_version
from ..service.replies import REPLY_KINDS, ReplyPlanner
from ..service.roster_sync import nominate
from ..storage.models import (
    BureauSender,
    Decision,
    DocumentRecord,
    Enterprise,
    MessageRecord,
    Nomination,
    OutboxItem,
    PackageRecord,
    ProblemRecord,
    now,
)
from ..storage.states import NominationSource
from .errors import ActionError
from .queries import find_message


@dataclass(frozen=True)
class Queued:
    """A reply an action queued (sent by the outbox)."""

    id: int
    kind: str
    recipient: str


@dataclass(frozen=True)
class Done:
    reference: str
    action: str
    """accepted, rejected, confirmed, resent, attached, attributed"""
    enterprise: str | None
    reply: Queued | None
    text: str
    """What happened, in Chinese, for staff."""
    before: Outcome | None = None
    after: Outcome | None = None
    """The message's verdict before and after, where the action judged it again (attach)."""


@dataclass(frozen=True)
class Change:
    reference: str
    enterprise: str | None
    before: Outcome
    before_codes: str
    after: Outcome
    after_codes: str


def _queued(item: OutboxItem | None) -> Queued | None:
    if item is None or item.id is None:
        return None
    return Queued(item.id, item.kind, item.recipient)


def _packages(session: Session, row: MessageRecord) -> list[PackageRecord]:
    return list(
        session.exec(
            select(PackageRecord).where(PackageRecord.message_id == row.id).order_by(col(PackageRecord.position))
        )
    )


def _codes(session: Session, package: PackageRecord) -> set[Code]:
    return {Code(c) for c in session.exec(select(ProblemRecord.code).where(ProblemRecord.package_id == package.id))}


def decide(
    session: Session,
    planner: ReplyPlanner,
    recorder: Recorder,
    text: str,
    *,
    accept: bool,
    note: str,
    actor: str,
    moment: datetime,
    enterprise: str | None = None,
    call: str | None = None,
    city: str | None = None,
) -> Done:
    """A person's verdict on a message: a bureau's email confirmed, or a package accepted or rejected (and,
    with `enterprise`, attributed to that enterprise first); the sender is told."""
    row = find_message(session, text)
    assert row.id is not None
    own = {Code(c) for c in session.exec(select(ProblemRecord.code).where(ProblemRecord.message_id == row.id))}
    if Code.BUREAU_UNCONFIRMED in own and accept:
        return _confirm_bureau(session, planner, recorder, row, city, actor, note, moment)
    packages = _packages(session, row)
    if row.kind is MessageKind.BUREAU:
        package = _package_named(packages, enterprise, row)
    elif packages:
        package = packages[0]
    else:
        if accept:
            raise ActionError(
                f"{reference(row.id)} 没有申报材料可以受理（如材料在下载链接中，请先用 attach 添加压缩包）"
            )
        session.add(Decision(message_id=row.id, outcome=Outcome.REJECTED, note=note, actor=actor, decided_at=moment))
        item = planner.queue(session, row, moment, kind="decision", note=note, guard=False, by_staff=True)
        return Done(reference(row.id), "rejected", None, _queued(item), f"{reference(row.id)} 已处理并答复")
    if enterprise is not None and row.kind is not MessageKind.BUREAU:
        _attribute(session, package, enterprise, call or planner.rules.default_call)
    elif Code.DIRECT_SENDER in _codes(session, package) and accept:
        _admit(session, package, call or planner.rules.default_call, row.id)
    if accept:
        _accept(session, package)
    assert package.id is not None
    outcome = Outcome.ACCEPTED if accept else Outcome.REJECTED
    session.add(
        Decision(message_id=row.id, package_id=package.id, outcome=outcome, note=note, actor=actor, decided_at=moment)
    )
    session.flush()
    item = None
    if row.kind is not MessageKind.BUREAU:
        kind = "receipt" if accept else "decision"
        item = planner.queue(session, row, moment, kind=kind, note=note, guard=False, by_staff=True)
    word = "受理" if accept else "退回"
    return Done(
        reference(row.id),
        outcome.value,
        package.enterprise_name,
        _queued(item),
        f"{reference(row.id)}（{package.enterprise_name or '未识别企业'}）已{word}",
    )


def _package_named(packages: list[PackageRecord], enterprise: str | None, row: MessageRecord) -> PackageRecord:
    if enterprise is None:
        names = "、".join(p.enterprise_name or "?" for p in packages)
        raise ActionError(
            f"{reference(row.id or 0)} 是市局报送的邮件，含 {len(packages)} 家企业（{names}）："
            "请用 --enterprise 指明企业"
        )
    for package in packages:
        if package.enterprise_name and normalise(package.enterprise_name) == normalise(enterprise):
            return package
    raise ActionError(f"{reference(row.id or 0)} 中没有“{enterprise}”的材料")


def _attribute(session: Session, package: PackageRecord, name: str, call: str) -> None:
    """The package is the enterprise's, whatever the subject said (a listed enterprise, found by name)."""
    found = session.exec(
        select(Enterprise)
        .join(Nomination, col(Nomination.enterprise_id) == Enterprise.id)
        .where(col(Enterprise.key).contains(normalise(name)))
        .distinct()
    ).all()
    if len(found) != 1:
        names = "、".join(e.name for e in found) or "没有"
        raise ActionError(f"名单中与“{name}”相符的企业：{names}。请给出唯一的企业全称")
    package.enterprise_id, package.enterprise_name = found[0].id, found[0].name
    package.call = package.call or call
    session.add(package)


def _admit(session: Session, package: PackageRecord, call: str, message_id: int) -> None:
    """A direct sender accepted into a call: it joins that call's roster."""
    assert package.enterprise_name is not None
    nominate(session, RosterEntry(package.enterprise_name), call, NominationSource.STAFF, message_id)
    package.call = call
    session.add(package)


def _accept(session: Session, package: PackageRecord) -> None:
    documents = session.exec(select(DocumentRecord).where(DocumentRecord.package_id == package.id)).first()
    if documents is None:
        raise ActionError("该邮件没有可受理的材料记录（如材料在下载链接中，请先用 attach 添加下载的压缩包）")
    if package.enterprise_id is None:
        raise ActionError("该邮件未对应到名单中的企业：请用 --enterprise 指明企业全称")
    add_version(session, package)


def _confirm_bureau(
    session: Session,
    planner: ReplyPlanner,
    recorder: Recorder,
    row: MessageRecord,
    city: str | None,
    actor: str,
    note: str,
    moment: datetime,
) -> Done:
    """A bureau-like email confirmed as a city's: the sender joins the city's list and the email is judged
    again as that city's bundle (its enterprises recorded, the bureau answered)."""
    assert row.id is not None and row.sender is not None
    where = city or _guessed_city(session, row, planner)
    if where is None:
        raise ActionError(f"{reference(row.id)}：无法判断是哪个市的工业和信息化局，请用 --city 指明")
    session.merge(BureauSender(address=row.sender.lower(), city=where, message_id=row.id, added_at=moment))
    session.add(Decision(message_id=row.id, outcome=Outcome.ACCEPTED, note=note, actor=actor, decided_at=moment))
    session.commit()
    recorder.revise(row.id, "confirmed", on_record=_answer(planner, moment))
    return Done(reference(row.id), "confirmed", None, None, f"{reference(row.id)} 已确认为{where}市工业和信息化局报送")


def _guessed_city(session: Session, row: MessageRecord, planner: ReplyPlanner) -> str | None:
    from ..intake.bureau import city_named

    return row.city or city_named(row.subject, [b.city for b in planner.rules.bureaus])


def _answer(planner: ReplyPlanner, moment: datetime) -> OnRecord:
    def answer(session: Session, row: MessageRecord, _judgement: object) -> None:
        planner.queue(session, row, moment, guard=False)

    return answer


def resend(session: Session, planner: ReplyPlanner, text: str, moment: datetime) -> Done:
    """Queue the message's last answer again (rendered afresh, with a new Message-ID)."""
    row = find_message(session, text)
    assert row.id is not None
    last = session.exec(
        select(OutboxItem).where(OutboxItem.message_id == row.id).order_by(col(OutboxItem.id).desc())
    ).first()
    decision = session.exec(
        select(Decision).where(Decision.message_id == row.id).order_by(col(Decision.id).desc())
    ).first()
    kind = last.kind if last else REPLY_KINDS.get(row.outcome)
    if kind is None:
        raise ActionError(f"{reference(row.id)} 已忽略（{row.outcome}），不作回复")
    item = planner.queue(
        session, row, moment, kind=kind, note=decision.note if decision else "", guard=False, by_staff=bool(decision)
    )
    name = _enterprise_named(session, row.id)
    return Done(reference(row.id), "resent", name, _queued(item), f"{reference(row.id)} 的回复已重新发送")


def attach(
    recorder: Recorder, planner: ReplyPlanner, text: str, files: Sequence[Path], *, notify: bool, moment: datetime
) -> Done:
    """Judge a message again with the archives staff downloaded by hand from its 超大附件 links; the sender
    is told the new verdict."""
    with Session(recorder.engine) as session:
        row = find_message(session, text)
        assert row.id is not None
        record_id = row.id
    revision = recorder.revise(record_id, "attach", extra=files, on_record=_answer(planner, moment) if notify else None)
    before, after = Outcome(revision.old_outcome), Outcome(revision.new_outcome)
    with Session(recorder.engine) as session:
        name = _enterprise_named(session, record_id)
    return Done(
        reference(record_id),
        "attached",
        name,
        None,
        f"{reference(record_id)}{f' {name}' if name else ''}：{OUTCOME_WORDS[before]} → {OUTCOME_WORDS[after]}",
        before,
        after,
    )


def _enterprise_named(session: Session, record_id: int) -> str | None:
    """The enterprise a message's first package was judged as (None when it has none, or named none)."""
    return session.exec(select(PackageRecord.enterprise_name).where(PackageRecord.message_id == record_id)).first()


def link_messages(session: Session) -> list[tuple[MessageRecord, list[str]]]:
    """Messages waiting for a person because their files are behind download links, with the names of
    the enterprises (or table rows) whose archives are awaited."""
    rows = session.exec(
        select(MessageRecord)
        .join(ProblemRecord, col(ProblemRecord.message_id) == MessageRecord.id)
        .where(ProblemRecord.code == Code.ATTACHMENT_LINK.value, MessageRecord.outcome == Outcome.REVIEW)
        .distinct()
    ).all()
    found = []
    for row in rows:
        names = [p.enterprise_name for p in _packages(session, row) if p.enterprise_name]
        names += [
            e.name
            for e in session.exec(
                select(Enterprise)
                .join(Nomination, col(Nomination.enterprise_id) == Enterprise.id)
                .where(Nomination.message_id == row.id)
            )
        ]
        names += [
            p.suggestion
            for p in session.exec(select(ProblemRecord).where(ProblemRecord.message_id == row.id))
            if p.suggestion
        ]
        if not names and row.subject:
            names.append(row.subject)
        found.append((row, list(dict.fromkeys(names))))
    return found


def match_downloads(session: Session, files: Sequence[Path]) -> dict[int, list[Path]]:
    """Downloaded archives matched to the link messages awaiting them, by the archive's name."""
    waiting = link_messages(session)
    matched: dict[int, list[Path]] = {}
    for path in files:
        stem = normalise(PurePosixPath(path.name).name.split(".")[0])
        for row, names in waiting:
            if row.id is not None and any(stem.startswith(normalise(name)) for name in names if name):
                matched.setdefault(row.id, []).append(path)
                break
    return matched


def recheck(
    recorder: Recorder,
    planner: ReplyPlanner | None,
    *,
    since: datetime | None = None,
    dry_run: bool = False,
    progress: Callable[[int, int], object] = lambda done, total: None,
) -> tuple[int, list[Change]]:
    """Judge stored messages again under today's rosters and rules; with a planner, the senders whose verdict
    changed are told (unless a person already decided their message)."""
    with Session(recorder.engine) as session:
        query = select(MessageRecord.id).order_by(col(MessageRecord.id))
        if since is not None:
            query = query.where(MessageRecord.received_at >= since)
        ids = [i for i in session.exec(query).all() if i is not None]
    moment = now()

    def notify(session: Session, row: MessageRecord, judgement: object) -> None:
        decided = session.exec(select(Decision).where(Decision.message_id == row.id)).first()
        if planner is not None and decided is None:
            planner.queue(session, row, moment, guard=False)

    changes = []
    for done, record_id in enumerate(ids, start=1):
        revision = recorder.revise(record_id, "recheck", on_record=notify if planner else None, dry_run=dry_run)
        progress(done, len(ids))
        if revision.changed:
            with Session(recorder.engine) as session:
                name = _enterprise_named(session, record_id)
            changes.append(
                Change(
                    reference(record_id),
                    name,
                    Outcome(revision.old_outcome),
                    revision.old_codes,
                    Outcome(revision.new_outcome),
                    revision.new_codes,
                )
            )
    return len(ids), changes
