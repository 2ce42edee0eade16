"""Deadline reminders, once per scheduled day: to each city bureau whose bundle for a call is incomplete
before the bureaus' deadline, and, for calls where enterprises send their own email, to each recommended
enterprise not yet accepted before theirs.

What was sent is recorded in the database (one row per recipient and day, in the transaction that queues
the reminder), never trusted to the scheduler's memory, so a restart never sends two for the same day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session, select

from ..app.queries import bundle_views, contact_addresses, enterprise_rows
from ..campaign import MIB, Call, CallRules
from ..config import RemindersSettings
from ..explain import SHANGHAI, days_left, shanghai_time, titles, today
from ..render import Renderer
from ..service.outbox import enqueue
from ..storage.models import BureauReminder, ReminderRecord


@dataclass(frozen=True)
class Candidate:
    """Someone who may be reminded today, and whether (and why, or why not)."""

    call: Call
    name: str
    """The enterprise, or 济南市工业和信息化局."""
    addresses: tuple[str, ...]
    days_left: int
    remind: bool
    reason: str
    enterprise_id: int | None = None
    city: str | None = None
    """For a bureau: its city."""
    standing: str = ""
    problems: str = ""
    lacks: str = ""
    """For a bureau: what its bundle lacks."""


def candidates(session: Session, rules: CallRules, settings: RemindersSettings, moment: datetime) -> list[Candidate]:
    """Everyone who could be reminded today, with whether they are and why (or why not)."""
    if moment.astimezone(SHANGHAI).time() < settings.time:
        return []
    day = today(moment)
    found: list[Candidate] = []
    for call in rules.calls:
        left = days_left(call.bureau_deadline, day)
        if left is not None and left in settings.days and rules.bureaus:
            found += _bureaus(session, rules, call, left, day)
        left = days_left(call.deadline, day)
        if call.own_emails and left is not None and left in settings.days:
            found += _enterprises(session, rules, call, left, day)
    return found


def _enterprises(session: Session, rules: CallRules, call: Call, left: int, day: date) -> list[Candidate]:
    already = {
        r.enterprise_id for r in session.exec(select(ReminderRecord).where(ReminderRecord.day == day.isoformat()))
    }
    found = []
    for row in enterprise_rows(session, call=call.code):
        if row.standing.value == "已受理":
            continue
        addresses = tuple(contact_addresses(row.email))
        if not row.email:
            remind, why = False, "名单中没有联系邮箱"
        elif not addresses:
            remind, why = False, f"名单中的联系邮箱无法使用：{row.email}"
        elif row.enterprise_id in already:
            remind, why = False, "今天已提醒"
        else:
            remind, why = True, f"距截止还有 {left} 天，状态：{row.standing.value}"
            if row.open_problems:
                why += f"（{titles(row.open_problems, rules)}）"
        found.append(
            Candidate(
                call,
                row.name,
                addresses,
                left,
                remind,
                why,
                enterprise_id=row.enterprise_id,
                standing=row.standing.value,
                problems=titles(row.open_problems, rules),
            )
        )
    return found


def _bureaus(session: Session, rules: CallRules, call: Call, left: int, day: date) -> list[Candidate]:
    bundles = {b.city: b for b in bundle_views(session, rules, call=call.code)}
    already = {
        r.city
        for r in session.exec(
            select(BureauReminder).where(BureauReminder.call == call.code, BureauReminder.day == day.isoformat())
        )
    }
    found = []
    for bureau in rules.bureaus:
        bundle = bundles.get(bureau.city)
        if bundle is not None and bundle.complete:
            continue
        if bundle is None:
            lacks = "推荐文件、汇总表及各企业申报材料"
        else:
            lacks = "、".join(
                filter(
                    None,
                    (
                        "" if bundle.letter else "推荐文件",
                        "" if bundle.table else "汇总表",
                        f"{'、'.join(bundle.missing)}的申报材料" if bundle.missing else "",
                    ),
                )
            )
        addresses = tuple(s for s in bureau.senders if "@" in s)
        if not addresses:
            remind, why = False, "配置中只有该局的域名，没有可发送提醒的邮箱地址"
        elif bureau.city in already:
            remind, why = False, "今天已提醒"
        else:
            remind, why = True, f"距各市报送截止还有 {left} 天，尚缺：{lacks}"
        found.append(
            Candidate(
                call, f"{bureau.city}市工业和信息化局", addresses, left, remind, why, city=bureau.city, lacks=lacks
            )
        )
    return found


def queue(
    session: Session,
    renderer: Renderer,
    rules: CallRules,
    mailbox: str,
    due: list[Candidate],
    moment: datetime,
) -> int:
    """Queue a reminder for each candidate to remind; a row per recipient and day makes it once only."""
    queued = 0
    for candidate in due:
        if not candidate.remind:
            continue
        call = candidate.call
        context = {
            "campaign": call.name,
            "enterprise": candidate.name,
            "city": candidate.city,
            "days_left": candidate.days_left,
            "deadline": shanghai_time(call.deadline) if call.deadline else "",
            "bureau_deadline": shanghai_time(call.bureau_deadline) if call.bureau_deadline else "",
            "mailbox": mailbox,
            "standing": candidate.standing,
            "problems": candidate.problems,
            "lacks": candidate.lacks,
            "table": call.table,
            "max_archive_mb": f"{rules.max_archive_bytes / MIB:g}",
            "roles": "、".join(role.label for role in rules.roles),
        }
        kind = "reminder_bureau" if candidate.city else "reminder"
        items = [
            enqueue(session, renderer.email(kind, context, to=to, now=moment, auto_reply=False), "reminder", moment)
            for to in candidate.addresses
        ]
        day = today(moment).isoformat()
        if candidate.city is not None:
            session.add(
                BureauReminder(city=candidate.city, call=call.code, day=day, outbox_id=items[0].id, created_at=moment)
            )
        else:
            assert candidate.enterprise_id is not None
            session.add(
                ReminderRecord(enterprise_id=candidate.enterprise_id, day=day, outbox_id=items[0].id, created_at=moment)
            )
        queued += 1
    return queued
