"""The daily digest: where the calls stand, in one email a day, read entirely from the database.

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

from ..app.quarantine import set_aside
from ..app.queries import health, ledger, message_views, review_queue
from ..app.views import BundleView, EnterpriseRow, MessageView, Standing
from ..campaign import Call, CallRules
from ..domain import Code, Outcome, SealStatus
from ..explain import (
    OUTCOME_WORDS,
    REPLY_WORDS,
    SEAL_WORDS,
    STATE_WORDS,
    TITLES,
    copy_text,
    days_left,
    shanghai_time,
    titles,
    today,
)
from ..render import Renderer
from ..service.outbox import enqueue
from ..storage.models import DigestRecord, OutboxItem, PackageRecord
from ..storage.states import OutboxState
from . import workbook

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


def gather(session: Session, rules: CallRules, campaign: str, moment: datetime) -> Digest:
    """Everything the digest says, for the day of `moment`."""
    day = today(moment)
    book = ledger(session, rules)
    rows, bundles = book.rows, book.bundles
    last = session.exec(select(DigestRecord).order_by(col(DigestRecord.created_at).desc())).first()
    since = last.created_at if last else None
    arrived = [view for view in book.messages if since is None or view.processed_at > since]
    waiting = review_queue(session)
    failed = session.exec(
        select(OutboxItem).where(col(OutboxItem.state).in_(_FAILED_STATES)).order_by(col(OutboxItem.id))
    ).all()
    state = health(session, alerts_since=since or moment - timedelta(days=1))
    context = {
        "campaign": campaign or "、".join(c.name for c in rules.calls if c.name),
        "day": f"{day:%Y年%m月%d日}",
        "standings": [s.value for s in Standing],
        "calls": [_call(call, [r for r in rows if r.call == call.code], bundles, day) for call in rules.calls],
        "counts": _counts(rows),
        "total": len(rows),
        "arrived": [_message_line(v, rules) for v in arrived],
        "last_fetch": shanghai_time(state.last_fetch) if state.last_fetch else "",
        "alerts": [{"at": shanghai_time(a.at), "text": a.text} for a in state.alerts],
        "set_aside": [entry.context() for entry in set_aside(session)],
        "failed": [
            {
                "kind": REPLY_WORDS.get(f.kind, f.kind),
                "recipient": f.recipient,
                "state": STATE_WORDS.get(f.state.value, f.state.value),
                "error": f.last_error or "",
            }
            for f in failed
        ],
        "needs_person": _needs_person(session, rows, waiting, rules),
        "copies": [
            {
                "enterprise": c.enterprise,
                "text": copy_text(c.kind, c.role, c.other, c.similarity, rules),
                "documents": f"{c.document}；{c.other_document}",
            }
            for c in book.copies
        ],
        "unsealed": [
            {"name": r.name, "city": r.city, "seal": SEAL_WORDS[r.seal]}
            for r in rows
            if r.standing is Standing.ACCEPTED and r.seal is not None and r.seal is not SealStatus.FOUND
        ],
        "links": [
            {"reference": v.reference, "sender": v.sender or "—", "who": v.enterprise or v.city or "—", "url": url}
            for v in waiting
            for url in v.links
        ],
        "missing": [
            {
                "city": r.city,
                "name": r.name,
                "call": (rules.call(r.call) or Call()).name,
                "standing": r.standing.value,
                "problems": titles(r.open_problems, rules),
                "contact": r.contact,
                "email": r.email,
                "phone": r.phone,
            }
            for r in rows
            if r.standing is not Standing.ACCEPTED
        ],
    }
    return Digest(day, context, workbook.build(book, rules))


def _counts(rows: list[EnterpriseRow]) -> dict[str, int]:
    counter = Counter(r.standing for r in rows)
    return {s.value: counter[s] for s in Standing}


def _call(call: Call, rows: list[EnterpriseRow], bundles: list[BundleView], day: date) -> dict[str, Any]:
    """One call's section: its deadlines, counts, cities, and the bureaus' bundles."""
    by_city: dict[str, Counter[Standing]] = {}
    for row in rows:
        by_city.setdefault(row.city or "—", Counter())[row.standing] += 1
    return {
        "name": call.name,
        "deadline": shanghai_time(call.deadline) if call.deadline else "",
        "days_left": days_left(call.deadline, day),
        "bureau_deadline": shanghai_time(call.bureau_deadline) if call.bureau_deadline else "",
        "bureau_days_left": days_left(call.bureau_deadline, day),
        "counts": _counts(rows),
        "total": len(rows),
        "cities": [
            {"city": city, "counts": {s.value: counter[s] for s in Standing}, "total": sum(counter.values())}
            for city, counter in by_city.items()
        ],
        "bundles": [
            {
                "city": b.city,
                "letter": f"✔ {b.letter_pages} 页" if b.letter and b.letter_pages else ("✔" if b.letter else "—"),
                "table": f"{len(b.listed)} 家" if b.table else "—",
                "archives": f"{len(b.accepted)}/{len(b.listed)}",
                "missing": "、".join(b.missing),
                "late": "迟报" if b.late else "",
                "open": "；".join(TITLES[Code(code)] for code in b.codes),
                "complete": b.complete,
            }
            for b in bundles
            if b.call == call.code
        ],
    }


def _message_line(view: MessageView, rules: CallRules) -> dict[str, str]:
    who = view.enterprise or (f"{view.city}市工业和信息化局" if view.city else None) or view.suggestion
    return {
        "reference": view.reference,
        "received": shanghai_time(view.received_at),
        "sender": view.sender or "—",
        "subject": view.subject,
        "enterprise": who or "—",
        "outcome": OUTCOME_WORDS[view.outcome],
        "outcome_code": view.outcome.value,
        "problems": titles(sorted(view.all_problems, key=lambda problem: problem.is_note), rules),  # notes last
    }


def _needs_person(
    session: Session, rows: list[EnterpriseRow], waiting: list[MessageView], rules: CallRules
) -> list[dict[str, str]]:
    """Messages waiting for a person, and accepted packages sent from an address not the listed contact's
    (with that address, and the accepted message's number)."""
    found = [{**_message_line(v, rules), "why": "待人工审核"} for v in waiting]
    strangers = {r.latest_accepted: r for r in rows if r.stranger and r.latest_accepted is not None}
    carried = dict(
        session.exec(
            select(PackageRecord.id, PackageRecord.message_id).where(col(PackageRecord.id).in_(list(strangers)))
        ).all()
    )
    views = {v.id: v for v in message_views(session, ids=list(carried.values()))} if carried else {}
    for package_id, row in strangers.items():
        view = views.get(carried.get(package_id, -1))
        if view is not None:
            found.append(
                {
                    **_message_line(view, rules),
                    "enterprise": row.name,
                    "outcome": OUTCOME_WORDS[Outcome.ACCEPTED],
                    "outcome_code": Outcome.ACCEPTED.value,
                    "problems": "",
                    "why": f"已受理，但发件人不是名单中的联系邮箱（{row.email}）",
                }
            )
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
