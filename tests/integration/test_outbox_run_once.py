"""`shenbao run --once` sends every queued reply, the new ones and those left from before, over the few SMTP
connections it is allowed (pymap and aiosmtpd on loopback, the daemon in-process)."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from daemon_support import MAILBOX, TIMEOUT, append, folder_messages, imap_env, parse, query, valid, write_config
from sqlmodel import Session

from daemon.config import load
from daemon.demo.servers import PymapServer, SmtpCapture
from daemon.runner import Daemon
from daemon.service.outbox import Sent, enqueue
from daemon.service.recorder import Recorded, Recorder
from daemon.storage.db import open_database
from daemon.storage.models import now

LEFT_OVER = 5


def left_over_notice(number: int) -> EmailMessage:
    email = EmailMessage()
    email["From"] = MAILBOX
    email["To"] = f"contact{number}@enterprise{number}.cn"
    email["Subject"] = f"【截止提醒】第{number}号企业"
    email["Message-ID"] = f"<reminder-{number}@shandong.cn>"
    email.set_content("申报截止日期临近，请尽快提交。")
    return email


def test_run_once_sends_new_and_left_over_replies_over_the_configured_connections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with PymapServer(MAILBOX, "imap-secret") as imap, SmtpCapture(auth=True) as smtp:
        for name, value in imap_env(imap).items():
            monkeypatch.setenv(name, value)
        office = tmp_path / "office"
        settings = load(write_config(office, imap, smtp, smtp_connections=2))
        engine = open_database(settings.database_url)
        with Session(engine) as session:  # deferred by an earlier outage: due only hours from now
            for number in range(LEFT_OVER):
                enqueue(session, left_over_notice(number), "reminder", now() + timedelta(hours=2))
            session.commit()
        append(imap, valid("new"))

        result = Daemon(settings).run_once()

        assert result.report.handled == 1
        assert result.sent == Sent(sent=LEFT_OVER + 1)
        delivered = smtp.wait_for(LEFT_OVER + 1, TIMEOUT)
        assert 1 <= smtp.connections <= 2
        assert set(smtp.logins) == {MAILBOX}
        copies = {str(parse(raw)["Message-ID"]) for raw in folder_messages(imap, "已发送")}
    assert copies == {str(parse(message.data)["Message-ID"]) for message in delivered}
    assert query(office, "SELECT state, count(*) FROM outbox GROUP BY state") == [("sent", LEFT_OVER + 1)]


def test_run_once_sends_each_reply_while_the_rest_of_the_mailbox_is_judged_over_one_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last message is recorded only once the first reply has reached the relay: were replies sent after
    the whole mailbox, the wait would run out and the test fail."""
    with PymapServer(MAILBOX, "imap-secret") as imap, SmtpCapture(auth=True) as smtp:
        for name, value in imap_env(imap).items():
            monkeypatch.setenv(name, value)
        settings = load(write_config(tmp_path / "office", imap, smtp, smtp_connections=1))
        for number in range(3):
            append(imap, valid(f"batch-{number}"))
        recorded: list[str] = []
        record_stored = Recorder.record_stored

        def record_after_the_first_reply(recorder: Recorder, *args: Any, **kwargs: Any) -> Recorded:
            if recorded:  # the second and third messages wait for the first reply to go out
                smtp.wait_for(len(recorded), TIMEOUT)
            done = record_stored(recorder, *args, **kwargs)
            recorded.append(args[0])
            return done

        monkeypatch.setattr(Recorder, "record_stored", record_after_the_first_reply)

        result = Daemon(settings).run_once()

        assert result.report.handled == 3
        assert result.sent == Sent(sent=3)
        assert len(smtp.wait_for(3, TIMEOUT)) == 3
        assert smtp.connections == 1
