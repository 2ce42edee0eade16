"""Deadline reminders: each enterprise still without an accepted submission, once per scheduled day.

What was sent is recorded in the database (one row per enterprise and day, in the transaction that queues
the reminder), never trusted to the scheduler's memory, so a restart never sends two for the same day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session, select

from ..campaign import MIB, CallRules
from ..config import RemindersSettings
from ..explain import SHANGHAI, shanghai_time, titles
from ..render import Renderer
from ..service.outbox import enqueue
from ..storage.models import ReminderRecord
from .digest import days_left, today
from .status import EnterpriseStatus, Standing, contact_addresses, enterprise_statuses


@dataclass(frozen=True)
class Candidate:
    status: EnterpriseStatus
    day: date
    days_left: int
    remind: bool
    reason: str


def candidates(session: Session, rules: CallRules, settings: RemindersSettings, moment: datetime) -> list[Candidate]:
    """Every enterprise not yet accepted, with whether it is reminded now and why (or why not)."""
    day = today(moment)
    left = days_left(rules.deadline, day)
    if left is None or left not in settings.days:
        return []
    if moment.astimezone(SHANGHAI).time() < settings.time:
        return []
    already = {
        r.enterprise_id for r in session.exec(select(ReminderRecord).where(ReminderRecord.day == day.isoformat()))
    }
    found = []
    for status in enterprise_statuses(session):
        if status.standing is Standing.ACCEPTED:
            continue
        enterprise = status.enterprise
        if not enterprise.email:
            found.append(Candidate(status, day, left, False, "名单中没有联系邮箱"))
        elif not contact_addresses(enterprise.email):
            found.append(Candidate(status, day, left, False, f"名单中的联系邮箱无法使用：{enterprise.email}"))
        elif enterprise.id in already:
            found.append(Candidate(status, day, left, False, "今天已提醒"))
        else:
            why = f"距截止还有 {left} 天，状态：{status.standing.value}"
            if status.open_problems:
                why += f"（{titles(status.open_problems, rules)}）"
            found.append(Candidate(status, day, left, True, why))
    return found


def queue(
    session: Session,
    renderer: Renderer,
    rules: CallRules,
    campaign: str,
    mailbox: str,
    due: list[Candidate],
    moment: datetime,
) -> int:
    """Queue a reminder for each candidate to remind; the (enterprise, day) row makes it once only."""
    queued = 0
    for candidate in due:
        enterprise = candidate.status.enterprise
        if not candidate.remind or enterprise.id is None:
            continue
        context = {
            "campaign": campaign,
            "enterprise": enterprise.name,
            "days_left": candidate.days_left,
            "deadline": shanghai_time(rules.deadline) if rules.deadline else "",
            "mailbox": mailbox,
            "standing": candidate.status.standing.value,
            "problems": titles(candidate.status.open_problems, rules),
            "max_archive_mb": f"{rules.max_archive_bytes / MIB:g}",
            "roles": "、".join(role.label for role in rules.roles),
        }
        items = [
            enqueue(
                session, renderer.email("reminder", context, to=to, now=moment, auto_reply=False), "reminder", moment
            )
            for to in contact_addresses(enterprise.email)
        ]
        record = ReminderRecord(
            enterprise_id=enterprise.id, day=candidate.day.isoformat(), outbox_id=items[0].id, created_at=moment
        )
        session.add(record)
        queued += 1
    return queued
