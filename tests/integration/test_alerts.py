"""Alerts that reach staff when the mailbox breaks (issue 12, point 3), with the daemon on loopback servers.

A wrong IMAP password opens one alert after `[alerts] after_minutes`: one mail to the alert recipients and one
POST to the webhook (a loopback HTTP server here), nothing more while it lasts, and one 恢复 of each once the
password is fixed. With SMTP down, the webhook is the channel that still works.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from daemon_support import Background, append, daemon_env, parse, valid, write_config

from daemon.demo.servers import PymapServer, SmtpCapture, free_port, wait_until

STAFF = "duty@shandong.cn"
WAIT = 60.0


class Hook:
    """A loopback HTTP server that keeps the JSON bodies POSTed to it (a group robot, as far as we care)."""

    def __init__(self) -> None:
        bodies: list[dict[str, object]] = []
        self.bodies = bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b'{"errcode":0}')

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/robot/send?key=test"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def texts(self) -> list[str]:
        return [str(body["text"]["content"]) for body in self.bodies]  # type: ignore[index]


@pytest.fixture
def hook() -> Iterator[Hook]:
    served = Hook()
    yield served
    served.server.shutdown()


def configure(folder: Path, imap: PymapServer, smtp: SmtpCapture | None, hook: Hook, *, smtp_port: int = 0) -> Path:
    config = write_config(
        folder, imap, smtp, poll_seconds=1, idle_seconds=2, timeout_seconds=5, reconnect_max_seconds=1
    )
    text = config.read_text(encoding="utf-8")
    if smtp is None:  # a mail server that is down: nothing listens on its port
        text = text.replace(
            "[storage]",
            f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
            f'username = "{imap.user}"\npassword_env = "SHENBAO_TEST_SMTP_PASSWORD"\n'
            f'sender = "科技处 <{imap.user}>"\n\n[storage]',
        )
    text += f'\n[alerts]\nrecipients = ["{STAFF}"]\nwebhook = "{hook.url}"\nafter_minutes = 0.03\n'
    config.write_text(text, encoding="utf-8")
    return config


def alert_mails(smtp: SmtpCapture) -> list[str]:
    found = []
    for captured in smtp.messages:
        message = parse(captured.data)
        if STAFF in captured.rcpt_tos:
            body = message.get_body(("plain",))
            assert body is not None
            found.append(str(body.get_content()))
    return found


def test_a_wrong_imap_password_alerts_once_by_mail_and_webhook_and_says_when_it_recovers(
    tmp_path: Path, hook: Hook
) -> None:
    with PymapServer("kejichu2019@shandong.cn", "right") as imap, SmtpCapture(auth=True) as smtp:
        config = configure(tmp_path / "conf", imap, smtp, hook)
        wrong = daemon_env(imap, {"SHENBAO_TEST_IMAP_PASSWORD": "wrong"})
        with Background("run", "--config", config, env=wrong, cwd=tmp_path) as daemon:
            wait_until(lambda: len(hook.bodies) >= 1 and len(alert_mails(smtp)) >= 1, WAIT, "the alert")
            failures = daemon.output().count("mailbox error")
            wait_until(lambda: daemon.output().count("mailbox error") >= failures + 2, WAIT, "more failed logins")
            assert daemon.terminate() == 0
        assert len(hook.bodies) == 1
        assert len(alert_mails(smtp)) == 1
        assert "邮箱登录被拒绝" in hook.texts()[0]
        assert "邮箱登录被拒绝" in alert_mails(smtp)[0]

        with Background("run", "--config", config, env=daemon_env(imap), cwd=tmp_path) as daemon:
            wait_until(lambda: len(hook.bodies) >= 2 and len(alert_mails(smtp)) >= 2, WAIT, "the recovery")
            assert daemon.terminate() == 0

    assert hook.texts()[1].startswith("【恢复】")
    assert "【恢复】" in alert_mails(smtp)[1]
    assert len(hook.bodies) == 2 and len(alert_mails(smtp)) == 2


def test_with_smtp_down_the_webhook_still_tells_staff(tmp_path: Path, hook: Hook) -> None:
    with PymapServer("kejichu2019@shandong.cn", "right") as imap:
        config = configure(tmp_path / "conf", imap, None, hook, smtp_port=free_port())
        append(imap, valid("smtp-down"))
        with Background("run", "--config", config, env=daemon_env(imap), cwd=tmp_path) as daemon:
            wait_until(lambda: any("发信失败" in text for text in hook.texts()), WAIT, "the webhook alert")
            assert daemon.terminate() == 0

    assert [text for text in hook.texts() if "发信失败" in text][:1] == [hook.texts()[0]]
