"""Sending queued replies, each at most once.

An item is marked `sending` (committed) before the SMTP conversation and `sent` after the server accepted
it. A crash in between leaves it `sending`: at the next start it becomes `uncertain` and staff are told,
rather than risking a second copy. 4xx and network errors retry with backoff; 5xx fails for good.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ..config import SmtpSettings
from ..mail.smtp import Delivery, SendResult, send
from ..storage.models import Alert, OutboxItem, now
from ..storage.states import OUTBOX_STEPS, OutboxState, advance
from .crashpoints import reached

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 12
_BACKOFF = timedelta(minutes=1)
_BACKOFF_CAP = timedelta(hours=2)

Sender = Callable[[str, bytes], SendResult]


@dataclass
class Sent:
    sent: int = 0
    deferred: int = 0
    failed: int = 0


def enqueue(
    session: Session,
    email: EmailMessage,
    kind: str,
    moment: datetime,
    *,
    message_id: int | None = None,
    state: OutboxState = OutboxState.QUEUED,
) -> OutboxItem:
    """Put a rendered email in the outbox (in the caller's transaction); its Message-ID is fixed from now on."""
    item = OutboxItem(
        message_id=message_id,
        kind=kind,
        recipient=str(email["To"]),
        header_message_id=str(email["Message-ID"]),
        subject=str(email["Subject"]),
        raw=email.as_bytes(),
        state=state,
        next_attempt_at=moment,
        created_at=moment,
    )
    session.add(item)
    session.flush()
    return item


def smtp_sender(settings: SmtpSettings, password: str | None) -> Sender:
    return lambda recipient, raw: send(settings, password, recipient, raw)


def recover_interrupted(engine: Engine) -> int:
    """Items left `sending` by a crash: the server may have them, so they are not sent again blindly."""
    with Session(engine) as session:
        items = list(session.exec(select(OutboxItem).where(OutboxItem.state == OutboxState.SENDING)))
        for item in items:
            advance(item, OutboxState.UNCERTAIN, OUTBOX_STEPS)
            session.add(item)
            session.add(
                Alert(
                    at=now(),
                    source="outbox",
                    text=f"reply {item.header_message_id} to "
                    f"{item.recipient} may or may not have been sent (interrupted); check and resend",
                )
            )
        session.commit()
    return len(items)


def release_held(engine: Engine) -> int:
    """Replies held by a dry run become due once the daemon runs for real."""
    with Session(engine) as session:
        items = list(session.exec(select(OutboxItem).where(OutboxItem.state == OutboxState.HELD)))
        for item in items:
            advance(item, OutboxState.QUEUED, OUTBOX_STEPS)
            session.add(item)
        session.commit()
    return len(items)


def send_due(
    engine: Engine, sender: Sender, *, at: datetime | None = None, immediate_retries: int = 0, everything: bool = False
) -> Sent:
    """Send every queued item that is due (`everything`: every queued item, as `run --once` does, whose
    next run may be a day later). `immediate_retries`: retry a deferral this many times now, before leaving
    it queued for later."""
    moment = at or now()
    query = select(OutboxItem.id).where(OutboxItem.state == OutboxState.QUEUED).order_by(col(OutboxItem.id))
    if not everything:
        query = query.where(OutboxItem.next_attempt_at <= moment)
    with Session(engine) as session:
        due = session.exec(query).all()
    tally = Sent()
    for item_id in due:
        assert item_id is not None
        for attempt in range(immediate_retries + 1):
            result = _attempt(engine, item_id, sender)
            if result is None or result.delivery is not Delivery.RETRY or attempt == immediate_retries:
                break
        if result is None:
            continue
        if result.delivery is Delivery.SENT:
            tally.sent += 1
        elif result.delivery is Delivery.FAILED:
            tally.failed += 1
        else:
            tally.deferred += 1
    return tally


def _attempt(engine: Engine, item_id: int, sender: Sender) -> SendResult | None:
    with Session(engine) as session:
        # Locked while claimed: on PostgreSQL a staff command sending at the same moment as the daemon would
        # otherwise also read `queued` and send a second copy (SQLite lets one writer in at a time).
        item = session.get(OutboxItem, item_id, with_for_update=True)
        if item is None or item.state is not OutboxState.QUEUED:
            return None
        advance(item, OutboxState.SENDING, OUTBOX_STEPS)
        item.attempts += 1
        session.add(item)
        session.commit()
        recipient, raw, attempts = item.recipient, item.raw, item.attempts
    reached("sending")
    result = sender(recipient, raw)
    if result.delivery is Delivery.SENT:
        reached("smtp_accepted")
    with Session(engine) as session:
        item = session.get(OutboxItem, item_id)
        assert item is not None
        moment = now()
        if result.delivery is Delivery.SENT:
            advance(item, OutboxState.SENT, OUTBOX_STEPS)
            item.sent_at, item.last_error = moment, None
            log.info("sent %s %s to %s", item.kind, item.header_message_id, recipient)
        elif result.delivery is Delivery.RETRY and attempts < MAX_ATTEMPTS:
            advance(item, OutboxState.QUEUED, OUTBOX_STEPS)
            item.last_error = result.detail
            item.next_attempt_at = moment + min(_BACKOFF * 2 ** (attempts - 1), _BACKOFF_CAP)
            log.warning("deferred %s to %s (attempt %d): %s", item.kind, recipient, attempts, result.detail)
        else:
            advance(item, OutboxState.FAILED, OUTBOX_STEPS)
            item.last_error = result.detail
            session.add(Alert(at=moment, source="outbox", text=f"{item.kind} to {recipient} failed: {result.detail}"))
            log.error("failed %s to %s: %s", item.kind, recipient, result.detail)
        session.add(item)
        session.commit()
    return result
