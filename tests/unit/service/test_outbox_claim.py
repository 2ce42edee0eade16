"""An outbox item is claimed under a row lock: on PostgreSQL a staff command sending at the same moment as
the daemon waits for the daemon's claim and then sees the item taken, instead of sending a second copy."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from daemon.config import Security, SmtpSettings
from daemon.demo.servers import SmtpCapture, wait_until
from daemon.service.outbox import Sender, enqueue, send_due
from daemon.storage.db import open_database
from daemon.storage.models import OutboxItem
from daemon.storage.states import OUTBOX_STEPS, OutboxState, advance

MOMENT = datetime(2022, 6, 28, 1, 30, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = open_database(database_url)
    yield engine
    engine.dispose()


def queued(engine: Engine) -> int:
    email = EmailMessage()
    email["To"] = "ops@minghu-soft.cn"
    email["Subject"] = "【受理回执】"
    email["Message-ID"] = "<receipt@shandong.cn>"
    email.set_content("已受理")
    with Session(engine) as session:
        item = enqueue(session, email, "receipt", MOMENT)
        session.commit()
        assert item.id is not None
        return item.id


def waiting_on_a_lock(engine: Engine) -> bool:
    with engine.connect() as connection:
        found = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
    return bool(found)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_item_another_process_is_claiming_is_not_sent_twice(engine: Engine) -> None:
    item_id = queued(engine)
    with SmtpCapture() as smtp:
        _claimed_while_sending(engine, item_id, Sender(_settings(smtp), None))
        assert smtp.messages == []  # the daemon sends it; the staff command saw it taken


def _settings(smtp: SmtpCapture) -> SmtpSettings:
    return SmtpSettings(
        host=smtp.host, port=smtp.port, security=Security.NONE, username="office@example.cn", sender="office@example.cn"
    )


def _claimed_while_sending(engine: Engine, item_id: int, sender: Sender) -> None:
    with Session(engine) as daemon:  # the daemon's claim, not yet committed
        item = daemon.get(OutboxItem, item_id, with_for_update=True)
        assert item is not None and item.state is OutboxState.QUEUED
        staff = threading.Thread(target=send_due, args=(engine, sender), kwargs={"at": MOMENT})
        staff.start()
        wait_until(lambda: waiting_on_a_lock(engine), 30, "the staff command to wait for the daemon's claim")
        advance(item, OutboxState.SENDING, OUTBOX_STEPS)
        daemon.add(item)
        daemon.commit()
    staff.join(30)
    assert not staff.is_alive()
