"""The daily digest: where the call stands, in one email a day, read entirely from the database.

One digest per day: the day is recorded in the same transaction that queues it, so a restart or a late
scheduler never sends two or skips one. `--output` writes the same email and workbook to a folder without
counting as the day's digest.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from ..campaign import CallRules
from ..domain import Outcome
from ..explain import OUTCOME_WORDS, SHANGHAI, shanghai_time, titles
from ..render import Renderer
from ..service.outbox import enqueue
from ..storage.db import get_meta
from ..storage.models import Alert, DigestRecord, OutboxItem, now
from ..storage.states import OutboxState
from . import workbook
from .quarantine import set_aside
from .status import EnterpriseStatus, MessageView, Standing, enterprise_statuses, message_views

XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
_FAILED_STATES = (OutboxState.FAILED, OutboxState.UNCERTAIN, OutboxState.BOUNCED)


@dataclass(frozen=True)
class Digest:
    day: date
    context: dict[str, Any]
    workbook: bytes

    @property
    def workbook_name(self) -> str:
        return workbook.filename(self.day)


def today(moment: datetime | None = None) -> date:
    return (moment or now()).astimezone(SHANGHAI).date()


def days_left(deadline: datetime | None, day: date) -> int | None:
    return None if deadline is None else (deadline.astimezone(SHANGHAI).date() - day).days


def gather(session: Session, rules: CallRules, campaign: str, moment: datetime) -> Digest:
    """Everything the digest says, for the day of `moment`."""
    day = today(moment)
    every = message_views(session)
    statuses = enterprise_statuses(session, views=every)
    last = session.exec(select(DigestRecord).order_by(col(DigestRecord.created_at).desc())).first()
    since = last.created_at if last else None
    arrived = [v for v in every if since is None or v.record.processed_at > since]
    alerts = session.exec(
        select(Alert).where(Alert.at > (since or moment - timedelta(days=1))).order_by(col(Alert.at))
    ).all()
    failed = session.exec(
        select(OutboxItem).where(col(OutboxItem.state).in_(_FAILED_STATES)).order_by(col(OutboxItem.id))
    ).all()
    left = days_left(rules.deadline, day)
    by_city: dict[str, Counter[Standing]] = {}
    for status in statuses:
        by_city.setdefault(status.enterprise.city or "—", Counter())[status.standing] += 1
    last_fetch = get_meta(session, "imap_last_ok")
    context = {
        "campaign": campaign,
        "day": f"{day:%Y年%m月%d日}",
        "deadline": shanghai_time(rules.deadline) if rules.deadline else "",
        "days_left": left,
        "standings": [s.value for s in Standing],
        "counts": {s.value: sum(1 for x in statuses if x.standing is s) for s in Standing},
        "total": len(statuses),
        "cities": [
            {"city": city, "counts": {s.value: counter[s] for s in Standing}, "total": sum(counter.values())}
            for city, counter in by_city.items()
        ],
        "arrived": [_message_line(v, rules) for v in arrived],
        "last_fetch": shanghai_time(datetime.fromisoformat(last_fetch)) if last_fetch else "",
        "alerts": [{"at": shanghai_time(a.at), "text": a.text} for a in alerts],
        "set_aside": [entry.context() for entry in set_aside(session)],
        "failed": [
            {"kind": f.kind, "recipient": f.recipient, "state": f.state, "error": f.last_error or ""} for f in failed
        ],
        "needs_person": _needs_person(statuses, every, rules),
        "missing": [
            {
                "city": s.enterprise.city,
                "name": s.enterprise.name,
                "standing": s.standing.value,
                "problems": titles(s.open_problems, rules),
                "contact": s.enterprise.contact,
                "email": s.enterprise.email,
                "phone": s.enterprise.phone,
            }
            for s in statuses
            if s.standing is not Standing.ACCEPTED
        ],
    }
    return Digest(day, context, workbook.build(statuses, every, rules))


def _message_line(view: MessageView, rules: CallRules) -> dict[str, str]:
    record = view.record
    return {
        "reference": f"SB-{record.id:06d}",
        "received": shanghai_time(record.received_at),
        "sender": record.sender or "—",
        "subject": record.subject,
        "enterprise": record.enterprise_name or "—",
        "outcome": OUTCOME_WORDS[view.outcome],
        "outcome_code": view.outcome.value,
        "problems": titles(view.found, rules),
    }


def _needs_person(statuses: list[EnterpriseStatus], every: list[MessageView], rules: CallRules) -> list[dict[str, str]]:
    """Messages waiting for a person, and accepted packages sent from an address not the roster's contact."""
    found = [{**_message_line(v, rules), "why": "待人工审核"} for v in every if v.outcome is Outcome.REVIEW]
    for status in statuses:
        latest = status.latest_accepted
        if latest is not None and status.sent_by_stranger:
            why = f"已受理，但发件人不是名单中的联系邮箱（{status.enterprise.email}）"
            found.append({**_message_line(latest, rules), "why": why})
    return found


def email(digest: Digest, renderer: Renderer, recipient: str, moment: datetime) -> EmailMessage:
    message = renderer.email("digest", digest.context, to=recipient, now=moment, auto_reply=False)
    message.add_attachment(digest.workbook, maintype=XLSX[0], subtype=XLSX[1], filename=digest.workbook_name)
    return message


def write(digest: Digest, renderer: Renderer, folder: Path, recipient: str, moment: datetime) -> list[Path]:
    """The digest as an .eml and its workbook, into `folder`; nothing is sent or recorded."""
    folder.mkdir(parents=True, exist_ok=True)
    eml = folder / f"digest-{digest.day:%Y%m%d}.eml"
    eml.write_bytes(email(digest, renderer, recipient, moment).as_bytes())
    book = folder / digest.workbook_name
    book.write_bytes(digest.workbook)
    return [eml, book]


def queue(session: Session, renderer: Renderer, recipients: tuple[str, ...], digest: Digest, moment: datetime) -> bool:
    """Queue the day's digest to each recipient; False when that day's digest was already queued."""
    key = digest.day.isoformat()
    if session.get(DigestRecord, key) is not None:
        return False
    first_id = None
    for recipient in recipients:
        message = email(digest, renderer, recipient, moment)
        item = enqueue(session, message, "digest", moment)
        first_id = first_id or item.id
    session.add(DigestRecord(day=key, outbox_id=first_id, created_at=moment))
    return True
