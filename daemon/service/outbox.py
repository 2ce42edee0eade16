"""Sending queued replies, each at most once.

An item is marked `sending` (committed) before its SMTP conversation and `sent` after the server accepted
it. When the outcome is unknown, because the server may have the whole message but no answer said what
became of it (the connection lost or the answer too slow after the end of the data), or because the process
died mid-conversation, the item becomes `uncertain` and staff are told, rather than risking a second copy.
Before that point 4xx and network errors retry with backoff; 5xx fails for good.

A batch (`send_due`) runs on one event loop over a few SMTP connections at once, each reused reply after
reply: a server slow to answer one reply holds up that connection only. `SendingMeanwhile` keeps such a loop
and its connections for the whole of `run --once`, so replies go out while the rest of the mailbox is judged.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from ..config import SmtpSettings
from ..mail.smtp import Delivery, SendResult, SmtpConnection
from ..storage.models import Alert, OutboxItem, now
from ..storage.states import OUTBOX_STEPS, OutboxState, advance
from .crashpoints import reached

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 12
_BACKOFF = timedelta(minutes=1)
_BACKOFF_CAP = timedelta(hours=2)
_LOOK_AGAIN = 2.0
"""Seconds between looks at the queue while replies are in flight, for those queued since the batch began."""


@dataclass(frozen=True)
class Sender:
    """The relay replies go through, and the password to log in with (None: no login)."""

    settings: SmtpSettings
    password: str | None

    def connection(self) -> SmtpConnection:
        return SmtpConnection(self.settings, self.password)


@dataclass(frozen=True)
class Sent:
    """What became of the items a batch tried: sent, queued again for later, failed, uncertain."""

    sent: int = 0
    deferred: int = 0
    failed: int = 0
    uncertain: int = 0

    @classmethod
    def of(cls, states: Iterable[OutboxState]) -> Sent:
        count = Counter(states)
        return cls(
            sent=count[OutboxState.SENT],
            deferred=count[OutboxState.QUEUED],
            failed=count[OutboxState.FAILED],
            uncertain=count[OutboxState.UNCERTAIN],
        )


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


def recover_interrupted(engine: Engine) -> int:
    """Items left `sending` by a crash: the server may have them, so they are not sent again blindly."""
    with Session(engine) as session:
        items = list(session.exec(select(OutboxItem).where(OutboxItem.state == OutboxState.SENDING)))
        for item in items:
            log.warning(
                "%s %s to %s was interrupted while sending: uncertain",
                item.kind,
                item.header_message_id,
                item.recipient,
            )
            _uncertain(session, item, "发送途中程序中断", now())
        session.commit()
    return len(items)


def oldest_deferred(engine: Engine) -> datetime | None:
    """When the oldest reply still waiting after a failed attempt was queued: how long sending has failed."""
    with Session(engine) as session:
        found: datetime | None = session.exec(
            select(func.min(OutboxItem.created_at)).where(
                OutboxItem.state == OutboxState.QUEUED, OutboxItem.attempts > 0
            )
        ).one()
    return found


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
    next run may be a day later), and those that fall due while the batch runs. `immediate_retries`: retry
    a deferral this many times now, before leaving it queued for later."""

    async def batch() -> dict[int, OutboxState]:
        idle: list[SmtpConnection] = []
        try:
            return await _send_batch(engine, sender, _due(engine, at, everything), immediate_retries, idle, Counter())
        finally:
            await _close(idle)

    return Sent.of(asyncio.run(batch()).values())


class SendingMeanwhile:
    """For `run --once`: a thread that sends each reply as soon as it is queued (`wake` is set), on one event
    loop and over connections kept from reply to reply, until `finish` sends what is left."""

    def __init__(self, engine: Engine, sender: Sender, wake: threading.Event) -> None:
        self.engine, self.sender, self.wake = engine, sender, wake
        self._finishing = threading.Event()
        self._final_retries: int | None = None
        self._ended: dict[int, OutboxState] = {}
        self._attempts: Counter[int] = Counter()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="outbox")

    def __enter__(self) -> SendingMeanwhile:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        """Stops sending (after the batch in hand) when `finish` was not reached, e.g. the sync failed."""
        self._stop()

    def finish(self, *, immediate_retries: int) -> Sent:
        """Send every queued item, due or not, retrying a deferral `immediate_retries` times; what became of
        every item tried since the start. Raises what stopped the sending thread."""
        self._final_retries = immediate_retries
        self._stop()
        if self._error is not None:
            raise self._error
        return Sent.of(self._ended.values())

    def _stop(self) -> None:
        self._finishing.set()
        self.wake.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except Exception as error:  # noqa: BLE001 - raised again by finish(), in the caller's thread
            self._error = error

    async def _serve(self) -> None:
        idle: list[SmtpConnection] = []
        due_now, everything = _due(self.engine, None, False), _due(self.engine, None, True)
        try:
            while not self._finishing.is_set():
                self.wake.clear()
                self._ended |= await _send_batch(self.engine, self.sender, due_now, 0, idle, self._attempts)
                await asyncio.to_thread(self.wake.wait, _LOOK_AGAIN)
            if (retries := self._final_retries) is not None:
                self._ended |= await _send_batch(self.engine, self.sender, everything, retries, idle, self._attempts)
        finally:
            await _close(idle)


def _due(engine: Engine, at: datetime | None, everything: bool) -> Callable[[], list[int]]:
    def due() -> list[int]:
        query = select(OutboxItem.id).where(OutboxItem.state == OutboxState.QUEUED).order_by(col(OutboxItem.id))
        if not everything:
            query = query.where(OutboxItem.next_attempt_at <= (at or now()))
        with Session(engine) as session:
            return [item_id for item_id in session.exec(query).all() if item_id is not None]

    return due


async def _close(connections: list[SmtpConnection]) -> None:
    for connection in connections:
        await connection.close()


async def _send_batch(
    engine: Engine,
    sender: Sender,
    due: Callable[[], list[int]],
    immediate_retries: int,
    idle: list[SmtpConnection],
    attempts: Counter[int],
) -> dict[int, OutboxState]:
    """Send what is due, oldest first, up to `connections` items at once, taking connections from `idle` and
    putting them back there; the state each item tried ended in. `attempts`: each item's tries so far in this
    run, which together make at most 1 + `immediate_retries`.

    A connection done with one item takes the next, so a batch is one connection per item in flight at
    most. Until the last item in flight is done, the queue is looked at again whenever one is, and every few
    seconds: a reply queued while another waits for its server's answer goes out at once, not after it. The
    database work is done on the loop, in short transactions, which keeps the order of work plain: an item
    is committed `sending` before its conversation starts.
    """
    tried: set[int] = set()
    in_flight: set[asyncio.Task[tuple[int, OutboxState | None]]] = set()
    ended: dict[int, OutboxState] = {}
    bug: BaseException | None = None

    async def deliver(item_id: int) -> tuple[int, OutboxState | None]:
        connection = idle.pop() if idle else sender.connection()
        try:
            return item_id, await _deliver(engine, connection, item_id, immediate_retries, attempts)
        finally:
            idle.append(connection)

    while True:
        if bug is None:  # after a bug, the items in flight are finished, and no other started
            free = sender.settings.connections - len(in_flight)
            for item_id in [item_id for item_id in due() if item_id not in tried][:free]:
                tried.add(item_id)
                in_flight.add(asyncio.create_task(deliver(item_id)))
        if not in_flight:
            break
        done, in_flight = await asyncio.wait(in_flight, timeout=_LOOK_AGAIN, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if (error := task.exception()) is not None:
                bug = bug or error
            elif (state := task.result()[1]) is not None:
                ended[task.result()[0]] = state
    if bug is not None:
        raise bug
    return ended


@dataclass(frozen=True)
class _Claim:
    recipient: str
    raw: bytes


async def _deliver(
    engine: Engine, connection: SmtpConnection, item_id: int, immediate_retries: int, attempts: Counter[int]
) -> OutboxState | None:
    """Send one item and record what became of it; None when it was no longer queued."""
    while (claim := _claim(engine, item_id)) is not None:
        attempts[item_id] += 1
        reached("sending")
        result = await connection.send(claim.recipient, claim.raw)
        if result.delivery is Delivery.SENT:
            reached("smtp_accepted")
        state = _record(engine, item_id, result)
        if state is not OutboxState.QUEUED or attempts[item_id] > immediate_retries:
            return state
    return None


def _claim(engine: Engine, item_id: int) -> _Claim | None:
    """Mark the item `sending` and commit, before a byte of it leaves; None when it is no longer queued."""
    with Session(engine) as session:
        # Locked while claimed: on PostgreSQL a staff command sending at the same moment as the daemon would
        # otherwise also read `queued` and send a second copy (SQLite lets one writer in at a time).
        item = session.get(OutboxItem, item_id, with_for_update=True)
        if item is None or item.state is not OutboxState.QUEUED:
            return None
        advance(item, OutboxState.SENDING, OUTBOX_STEPS)
        item.attempts += 1
        claim = _Claim(item.recipient, item.raw)
        session.add(item)
        session.commit()
    return claim


def _record(engine: Engine, item_id: int, result: SendResult) -> OutboxState:
    """Record the outcome of one attempt; the item's new state."""
    with Session(engine) as session:
        item = session.get(OutboxItem, item_id)
        assert item is not None
        moment = now()
        if result.delivery is Delivery.SENT:
            advance(item, OutboxState.SENT, OUTBOX_STEPS)
            item.sent_at, item.last_error = moment, None
            log.info("sent %s %s to %s", item.kind, item.header_message_id, item.recipient)
        elif result.delivery is Delivery.RETRY and item.attempts < MAX_ATTEMPTS:
            advance(item, OutboxState.QUEUED, OUTBOX_STEPS)
            item.last_error = result.detail
            item.next_attempt_at = moment + min(_BACKOFF * 2 ** (item.attempts - 1), _BACKOFF_CAP)
            log.warning("deferred %s to %s (attempt %d): %s", item.kind, item.recipient, item.attempts, result.detail)
        elif result.delivery is Delivery.UNCERTAIN:
            item.last_error = result.detail
            log.error("uncertain %s %s to %s: %s", item.kind, item.header_message_id, item.recipient, result.detail)
            _uncertain(session, item, f"邮件已全部发给邮件服务器，却没有收到它的答复（{result.detail}）", moment)
        else:
            advance(item, OutboxState.FAILED, OUTBOX_STEPS)
            item.last_error = result.detail
            text = f"回复未能发出：「{item.subject}」发往 {item.recipient}，原因：{result.detail}。{_resend_hint(item)}"
            session.add(Alert(at=moment, source="outbox", text=text))
            log.error("failed %s to %s: %s", item.kind, item.recipient, result.detail)
        state = item.state
        session.add(item)
        session.commit()
    return state


def _uncertain(session: Session, item: OutboxItem, cause: str, moment: datetime) -> None:
    """Mark an item whose outcome is unknown `uncertain`, never to be sent again by itself, and tell staff."""
    advance(item, OutboxState.UNCERTAIN, OUTBOX_STEPS)
    session.add(item)
    text = (
        f"回复可能已送达，也可能没有：「{item.subject}」发往 {item.recipient}（{item.header_message_id}），"
        f"{cause}。系统不会自动重发，请向对方核实是否收到。{_resend_hint(item)}"
    )
    session.add(Alert(at=moment, source="outbox", text=text))


def _resend_hint(item: OutboxItem) -> str:
    if item.message_id is None:
        return "如需补发，请手工发送。"
    return f"如需重发：shenbao resend SB-{item.message_id:06d}"
