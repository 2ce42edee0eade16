"""The outbox against a real SMTP server on loopback (aiosmtpd): each reply sent at most once.

A reply whose whole message may have reached the server without an answer saying what became of it is
`uncertain`, never sent again by itself; before that point trouble is retried, and a refusal is final. A
batch shares a few connections, and a server slow to answer one reply holds up no other.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from daemon.config import Security, SmtpSettings, SmtpTimeouts
from daemon.demo.servers import SmtpCapture
from daemon.domain import Outcome
from daemon.service.outbox import Sender, Sent, enqueue, send_due
from daemon.storage.db import open_database
from daemon.storage.models import Alert, MessageRecord, OutboxItem, now
from daemon.storage.states import OutboxState

OFFICE = "kejichu2019@shandong.cn"
SLOW = 30.0
"""A timeout no test waits for: the answer it guards comes long before, or the test fails on its own wait."""


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return open_database(f"sqlite:///{tmp_path / 'shenbao.db'}")


@pytest.fixture
def smtp() -> Iterator[SmtpCapture]:
    with SmtpCapture() as capture:
        yield capture


def sender(capture: SmtpCapture, *, connections: int = 4, data_end: float = SLOW) -> Sender:
    settings = SmtpSettings(
        host=capture.host,
        port=capture.port,
        security=Security.NONE,
        username=OFFICE,
        sender=f"山东省工业和信息化厅科技处 <{OFFICE}>",
        connections=connections,
        timeouts=SmtpTimeouts(
            greeting=SLOW, mail=SLOW, rcpt=SLOW, data_command=SLOW, data_block=SLOW, data_end=data_end
        ),
    )
    return Sender(settings, None)


def queue_reply(engine: Engine, number: int, *, answering: bool = False) -> int:
    """Queue a receipt to enterprise `number`, answering a recorded message when `answering`; its id."""
    recipient = f"ops{number}@enterprise{number}.cn"
    email = EmailMessage()
    email["From"] = OFFICE
    email["To"] = recipient
    email["Subject"] = f"【受理回执】第{number}号企业"
    email["Message-ID"] = f"<reply-{number}@shandong.cn>"
    email.set_content(f"第{number}号企业：您的申报材料已受理。\n.\n一行以点开头的正文。\n")
    with Session(engine) as session:
        message_id = None
        if answering:
            record = MessageRecord(
                raw_sha256=f"{number:064x}",
                raw_size=1,
                source="test",
                received_at=now(),
                processed_at=now(),
                outcome=Outcome.ACCEPTED,
            )
            session.add(record)
            session.flush()
            message_id = record.id
        item = enqueue(session, email, "receipt", now(), message_id=message_id)
        session.commit()
        assert item.id is not None
        return item.id


def outbox(engine: Engine, item_id: int) -> OutboxItem:
    with Session(engine) as session:
        item = session.get(OutboxItem, item_id)
        assert item is not None
        return item


def alerts(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return [alert.text for alert in session.exec(select(Alert).where(Alert.source == "outbox"))]


def tally(sent: Sent) -> tuple[int, int, int, int]:
    return sent.sent, sent.deferred, sent.failed, sent.uncertain


# -- past the end of the data: only a reply code is an answer --------------------------------------------


def test_a_connection_dropped_after_the_whole_message_leaves_the_reply_uncertain_and_staff_told(
    engine: Engine,
) -> None:
    item_id = queue_reply(engine, 1, answering=True)
    with SmtpCapture(responses=[SmtpCapture.DROP]) as dropping:
        assert tally(send_due(engine, sender(dropping))) == (0, 0, 0, 1)
        assert tally(send_due(engine, sender(dropping), everything=True)) == (0, 0, 0, 0)
        assert dropping.attempts == 1  # the whole message arrived once, and was never sent again

    item = outbox(engine, item_id)
    assert item.state is OutboxState.UNCERTAIN and item.attempts == 1
    assert "SMTPServerDisconnected" in (item.last_error or "")
    (alert,) = alerts(engine)
    assert "可能已送达，也可能没有" in alert
    assert "【受理回执】第1号企业" in alert and "ops1@enterprise1.cn" in alert
    assert "shenbao resend SB-000001" in alert


def test_an_answer_to_the_end_of_the_data_slower_than_the_timeout_leaves_the_reply_uncertain(engine: Engine) -> None:
    item_id = queue_reply(engine, 1)
    with SmtpCapture(responses=[SmtpCapture.HOLD]) as slow:
        assert tally(send_due(engine, sender(slow, data_end=0.3))) == (0, 0, 0, 1)
        assert tally(send_due(engine, sender(slow, data_end=0.3), everything=True)) == (0, 0, 0, 0)
        assert slow.attempts == 1
        assert slow.messages == []

    item = outbox(engine, item_id)
    assert item.state is OutboxState.UNCERTAIN
    assert "SMTPReadTimeoutError" in (item.last_error or "")
    (alert,) = alerts(engine)
    assert "ops1@enterprise1.cn" in alert and "如需补发" in alert  # a reply to no message: no resend command


# -- before the end of the data: retried, or refused for good ---------------------------------------------


def test_a_4xx_to_rcpt_is_retried_later_and_then_sent(engine: Engine) -> None:
    item_id = queue_reply(engine, 1)
    with SmtpCapture(rcpt_responses=["450 4.2.1 Mailbox busy"]) as busy:
        assert tally(send_due(engine, sender(busy))) == (0, 1, 0, 0)
        deferred = outbox(engine, item_id)
        assert deferred.state is OutboxState.QUEUED and "450" in (deferred.last_error or "")
        assert deferred.next_attempt_at > now()
        assert busy.attempts == 0  # refused before any data
        assert tally(send_due(engine, sender(busy))) == (0, 0, 0, 0)  # not due yet

        assert tally(send_due(engine, sender(busy), at=deferred.next_attempt_at)) == (1, 0, 0, 0)
        (captured,) = busy.wait_for(1)
    assert captured.rcpt_tos == ["ops1@enterprise1.cn"]
    assert outbox(engine, item_id).attempts == 2
    assert alerts(engine) == []


def test_a_451_to_the_end_of_the_data_is_retried_and_the_second_copy_is_the_only_one(engine: Engine) -> None:
    item_id = queue_reply(engine, 1)
    with SmtpCapture(responses=["451 4.3.0 Try again later"]) as deferring:
        assert tally(send_due(engine, sender(deferring))) == (0, 1, 0, 0)
        assert tally(send_due(engine, sender(deferring), everything=True)) == (1, 0, 0, 0)
        assert deferring.attempts == 2
        assert len(deferring.messages) == 1
    assert outbox(engine, item_id).state is OutboxState.SENT


def test_a_550_to_the_end_of_the_data_fails_for_good_with_an_alert(engine: Engine) -> None:
    item_id = queue_reply(engine, 1, answering=True)
    with SmtpCapture(responses=["550 5.1.1 Mailbox unavailable"]) as refusing:
        assert tally(send_due(engine, sender(refusing))) == (0, 0, 1, 0)
        assert tally(send_due(engine, sender(refusing), everything=True)) == (0, 0, 0, 0)
        assert refusing.attempts == 1
    assert outbox(engine, item_id).state is OutboxState.FAILED
    (alert,) = alerts(engine)
    assert "未能发出" in alert and "550" in alert and "shenbao resend SB-000001" in alert


def test_a_refused_connection_is_retried_later(engine: Engine) -> None:
    item_id = queue_reply(engine, 1)
    with SmtpCapture() as first:
        port = first.port
        gone = sender(first)
    assert tally(send_due(engine, gone, immediate_retries=2)) == (0, 1, 0, 0)  # nothing listens any more
    refused = outbox(engine, item_id)
    assert refused.state is OutboxState.QUEUED and refused.attempts == 3
    assert "SMTPConnectError" in (refused.last_error or "")

    with SmtpCapture(port=port) as back:
        assert tally(send_due(engine, sender(back), everything=True)) == (1, 0, 0, 0)
        assert len(back.wait_for(1)) == 1


# -- a batch: a few connections, reused --------------------------------------------------------------------


def test_a_reply_held_at_the_end_of_the_data_does_not_hold_up_the_next_one(engine: Engine) -> None:
    first, second = queue_reply(engine, 1), queue_reply(engine, 2)
    with SmtpCapture(responses=[SmtpCapture.HOLD]) as capture, ThreadPoolExecutor(1) as background:
        batch = background.submit(send_due, engine, sender(capture, connections=2))

        (held,) = capture.wait_for_held(1)
        (delivered,) = capture.wait_for(1)  # well before the held one's 30 s timeout
        assert delivered.rcpt_tos != held.rcpt_tos
        assert not batch.done()

        capture.release()
        assert tally(batch.result(timeout=SLOW)) == (2, 0, 0, 0)
        assert len(capture.messages) == 2
    assert {outbox(engine, first).state, outbox(engine, second).state} == {OutboxState.SENT}


def test_a_reply_queued_while_another_waits_for_its_answer_goes_out_before_that_answer(engine: Engine) -> None:
    queue_reply(engine, 1)
    with SmtpCapture(responses=[SmtpCapture.HOLD]) as capture, ThreadPoolExecutor(1) as background:
        batch = background.submit(send_due, engine, sender(capture, connections=2))
        capture.wait_for_held(1)

        queue_reply(engine, 2)

        (delivered,) = capture.wait_for(1)
        assert delivered.rcpt_tos == ["ops2@enterprise2.cn"]
        assert not batch.done()
        capture.release()
        assert tally(batch.result(timeout=SLOW)) == (2, 0, 0, 0)


@pytest.mark.parametrize("connections", [1, 4])
def test_ten_replies_in_one_batch_go_over_at_most_the_configured_connections(
    engine: Engine, smtp: SmtpCapture, connections: int
) -> None:
    for number in range(10):
        queue_reply(engine, number)

    assert tally(send_due(engine, sender(smtp, connections=connections))) == (10, 0, 0, 0)

    delivered = smtp.wait_for(10)
    assert sorted(rcpt for message in delivered for rcpt in message.rcpt_tos) == sorted(
        f"ops{number}@enterprise{number}.cn" for number in range(10)
    )
    assert 1 <= smtp.connections <= connections


def test_a_line_of_a_single_dot_arrives_intact_rather_than_ending_the_data(engine: Engine, smtp: SmtpCapture) -> None:
    queue_reply(engine, 1)
    assert send_due(engine, sender(smtp)).sent == 1
    (captured,) = smtp.wait_for(1)
    assert "已受理。\r\n.\r\n一行以点开头的正文。\r\n".encode() in captured.data
