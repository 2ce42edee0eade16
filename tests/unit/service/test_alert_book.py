"""The alert book: an alert opens once, clears once, and each time its mail is queued the outbox is told at
once (a real SQLite file; the webhook is left out)."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, select

from daemon.config import AlertsSettings
from daemon.render import Renderer
from daemon.service.alerts import AlertBook
from daemon.storage.db import open_database
from daemon.storage.models import OutboxItem


def test_each_alert_mail_queued_wakes_the_outbox_once(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'shenbao.db'}")
    woken: list[int] = []

    def queued() -> None:
        with Session(engine) as session:  # the mail is already there when the outbox is told
            woken.append(len(session.exec(select(OutboxItem)).all()))

    settings = AlertsSettings(recipients=("duty@shandong.cn",), after_minutes=1)
    book = AlertBook(engine, settings, Renderer("科技处 <kejichu2019@shandong.cn>"), queued)

    book.failing("disk", "storage", "存储空间不足", at_once=True)
    book.failing("disk", "storage", "存储空间不足", at_once=True)  # still open: nothing more
    book.failing("imap", "imap", "收信失败")  # not long enough yet
    book.recovered("disk")
    book.recovered("disk")

    assert woken == [1, 2]
