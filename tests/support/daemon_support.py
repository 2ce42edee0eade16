"""Helpers shared by the daemon's integration and end-to-end tests (imported by name, not a conftest).

A config file for given loopback servers, messages with distinct Message-IDs, appending with an
INTERNALDATE, reading folders and the database, the captured replies, the `shenbao` command as a
subprocess (to its end, or in the background), and a TCP proxy that drops the connection mid-stream or
holds a command back.
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import hashlib
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import IO, Any

from conftest import ENTERPRISE, RAR, RECEIVED, rar, submission, write_roster
from imapclient import IMAPClient
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from daemon.config import load
from daemon.demo.servers import LoopbackServer, SmtpCapture, wait_until
from daemon.runner import Daemon, OnceResult

ROOT = Path(__file__).resolve().parents[2]
MAILBOX = "kejichu2019@shandong.cn"
OFFICE_DOMAIN = "shandong.cn"
SENDER = f"山东省工业和信息化厅科技处 <{MAILBOX}>"
SUBMITTER = "ops@minghu-soft.cn"
IMAP_PASSWORD_ENV = "SHENBAO_TEST_IMAP_PASSWORD"
SMTP_PASSWORD_ENV = "SHENBAO_TEST_SMTP_PASSWORD"
SMTP_PASSWORD = "smtp-secret"
TIMEOUT = 30.0
FOLDERS = {
    "accepted": "已受理",
    "rejected": "已退回",
    "review": "待人工",
    "ignored": "已忽略",
    "pending": "待补齐",
    "bureau": "市局报送",
}
SUBJECT_PREFIX = {"receipt": "【受理回执】", "rejection": "【退回通知】", "review": "【已收到】"}
_NOT_INHERITED = frozenset(
    {"SHENBAO_CRASH_AT", "SHENBAO_FAIL_ON_SUBJECT", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}
)
"""Test hooks, and systemd's variables should the tests themselves run under systemd."""

__all__ = [
    "ENTERPRISE",
    "FOLDERS",
    "MAILBOX",
    "OFFICE_DOMAIN",
    "RECEIVED",
    "ROOT",
    "SUBJECT_PREFIX",
    "SUBMITTER",
    "TIMEOUT",
    "Background",
    "FaultyProxy",
    "append",
    "auto_reply",
    "blob",
    "bounce_for",
    "bulk",
    "connect",
    "connected",
    "daemon_env",
    "document_hashes",
    "encoded_subject",
    "folder_messages",
    "folder_names",
    "imap_env",
    "message_ids_in",
    "missing_proof",
    "not_a_submission",
    "parse",
    "query",
    "replies",
    "replies_to",
    "run_once",
    "shenbao",
    "submission",
    "text_and_html",
    "valid",
    "wait_until",
    "with_message_id",
    "write_config",
]


# ------------------------------------------------------------------------------------------ configuration


def write_config(
    folder: Path,
    imap: LoopbackServer,
    smtp: SmtpCapture | None,
    *,
    folders: Sequence[str] = ("INBOX",),
    opens: str | None = None,
    review_senders: Sequence[str] = (),
    max_message_mb: float | None = None,
    max_per_address_per_hour: int | None = None,
    poll_seconds: float | None = None,
    idle_seconds: float | None = None,
    timeout_seconds: float | None = None,
    reconnect_max_seconds: float | None = None,
    imap_port: int | None = None,
    smtp_connections: int | None = None,
    roster: bool = True,
    reserve_mb: float | None = None,
    database: str = "sqlite:///shenbao.db",
    give_up_seconds: float | None = None,
) -> Path:
    """Write `shenbao.toml` (and `roster.xlsx`) into `folder` for these servers; security "none", passwords
    from the environment variables that `daemon_env()` / `imap_env()` set; `database` is a URL (relative
    SQLite paths are relative to `folder`), e.g. the `database_url` fixture's."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        "[imap]",
        f'host = "{imap.host}"',
        f"port = {imap_port or imap.port}",
        'security = "none"',
        f'username = "{imap.user}"',
        f'password_env = "{IMAP_PASSWORD_ENV}"',
        "folders = [" + ", ".join(f'"{name}"' for name in folders) + "]",
    ]
    for key, value in (
        ("poll_seconds", poll_seconds),
        ("idle_seconds", idle_seconds),
        ("timeout_seconds", timeout_seconds),
        ("reconnect_max_seconds", reconnect_max_seconds),
    ):
        if value is not None:
            lines.append(f"{key} = {value}")
    if smtp is not None:
        lines += [
            "",
            "[smtp]",
            f'host = "{smtp.host}"',
            f"port = {smtp.port}",
            'security = "none"',
            f'username = "{MAILBOX}"',
            f'password_env = "{SMTP_PASSWORD_ENV}"',
            f'sender = "{SENDER}"',
        ]
        if smtp_connections is not None:
            lines.append(f"connections = {smtp_connections}")
    lines += [
        "",
        "[storage]",
        f'database = "{database}"',
        'files = "files"',
        *([f"reserve_mb = {reserve_mb}"] if reserve_mb is not None else []),
        *([f"give_up_seconds = {give_up_seconds}"] if give_up_seconds is not None else []),
        "",
        "[campaign]",
        'name = "2022年全国质量标杆"',
        'deadline = "2022-07-05T23:59:59+08:00"',
    ]
    if roster:
        write_roster(folder / "roster.xlsx")
        lines.append('roster = "roster.xlsx"')
    if opens is not None:
        lines.append(f'opens = "{opens}"')
    if max_message_mb is not None:
        lines.append(f"max_message_mb = {max_message_mb}")
    if review_senders:
        lines.append("review_senders = [" + ", ".join(f'"{entry}"' for entry in review_senders) + "]")
    if max_per_address_per_hour is not None:
        lines += ["", "[replies]", f"max_per_address_per_hour = {max_per_address_per_hour}"]
    path = folder / "shenbao.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def imap_env(imap: LoopbackServer) -> dict[str, str]:
    """The secret variables the config names (for monkeypatch.setenv or a subprocess's env)."""
    return {IMAP_PASSWORD_ENV: imap.password, SMTP_PASSWORD_ENV: SMTP_PASSWORD}


def daemon_env(imap: LoopbackServer | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a `shenbao` subprocess: ours, the secrets (of `imap`'s account when given), this
    checkout on PYTHONPATH."""
    env = {key: value for key, value in os.environ.items() if key not in _NOT_INHERITED}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    if imap is not None:
        env.update(imap_env(imap))
    env.update(extra or {})
    return env


def shenbao(
    *args: str | Path, env: Mapping[str, str], cwd: Path, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run `python -m daemon.cli ARGS` to its end (killed at `timeout`)."""
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli", *map(str, args)],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Background:
    """`shenbao ARGS` running in the background, its output in a file; killed on exit if still running."""

    def __init__(self, *args: str | Path, env: Mapping[str, str], cwd: Path, journal: bool = False) -> None:
        """`journal`: JOURNAL_STREAM names the output file, as systemd does for a service's journal stream."""
        self.log_path = cwd / f"shenbao-{time.monotonic_ns()}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        status = os.fstat(self._log.fileno())
        journal_stream = {"JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino}"} if journal else {}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daemon.cli", *map(str, args)],
            cwd=cwd,
            env={**env, **journal_stream},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_output(self, text: str, timeout: float = TIMEOUT) -> None:
        def seen() -> bool:
            if self.process.poll() is not None and text not in self.output():
                raise AssertionError(
                    f"shenbao exited ({self.process.returncode}) before printing {text!r}:\n{self.output()}"
                )
            return text in self.output()

        wait_until(seen, timeout, f"shenbao to print {text!r}")

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM, then its exit status (TimeoutExpired if it does not exit within `timeout`)."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


# ------------------------------------------------------------------------------------------------ messages


def run_once(config: Path, *, dry_run: bool = False) -> OnceResult:
    """One pass of the daemon in this process, where the database and the result can be inspected."""
    return Daemon(load(config), dry_run=dry_run).run_once()


def with_message_id(raw: bytes, message_id: str) -> bytes:
    """`raw` (built by conftest's `submission`) with its fixed Message-ID replaced by `message_id`."""
    assert raw.count(b"<test@minghu-soft.cn>") == 1
    return raw.replace(b"<test@minghu-soft.cn>", message_id.encode("ascii"))


def valid(tag: str, *, sender: str = SUBMITTER, **kwargs: Any) -> bytes:
    """A valid submission (ENTERPRISE, valid.rar) with Message-ID <tag@minghu-soft.cn>."""
    raw = submission(attachments=[(f"{ENTERPRISE}.rar", rar("valid.rar"))], sender=sender, **kwargs)
    return with_message_id(raw, f"<{tag}@minghu-soft.cn>")


def missing_proof(tag: str, *, sender: str = SUBMITTER, **kwargs: Any) -> bytes:
    """A submission rejected for its missing 证明材料."""
    raw = submission(attachments=[(f"{ENTERPRISE}.rar", rar("missing_proof.rar"))], sender=sender, **kwargs)
    return with_message_id(raw, f"<{tag}@minghu-soft.cn>")


def not_a_submission(tag: str, *, sender: str = SUBMITTER, subject: str = "请问申报截止时间") -> bytes:
    """A question with no attachment: verdict review (not_a_submission)."""
    return with_message_id(submission(subject, sender=sender, body="请问申报截止到哪天？"), f"<{tag}@minghu-soft.cn>")


def auto_reply(tag: str, *, sender: str = SUBMITTER) -> bytes:
    raw = submission("自动回复：我正在休假", sender=sender, headers=[("Auto-Submitted", "auto-replied")])
    return with_message_id(raw, f"<{tag}@minghu-soft.cn>")


def bulk(tag: str, *, sender: str = "news@promo.example.cn") -> bytes:
    raw = submission("本周优惠", sender=sender, headers=[("Precedence", "bulk"), ("List-Id", "<promo.example.cn>")])
    return with_message_id(raw, f"<{tag}@minghu-soft.cn>")


def bounce_for(original_message_id: str, recipient: str = SUBMITTER, *, tag: str = "bounce") -> bytes:
    """A delivery status notification (multipart/report) quoting the headers of the message that bounced."""
    boundary = "==bounce-boundary=="
    text = (
        f"Received: from mx.minghu-soft.cn by mail.shandong.cn with ESMTP; {RECEIVED:%a, %d %b %Y %H:%M:%S %z}\r\n"
        "From: Mail Delivery System <MAILER-DAEMON@mx.minghu-soft.cn>\r\n"
        f"To: {MAILBOX}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <{tag}@mx.minghu-soft.cn>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        f"Your message could not be delivered to {recipient}: mailbox full.\r\n\r\n"
        f"--{boundary}\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.minghu-soft.cn\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        "Action: failed\r\nStatus: 5.2.2\r\n\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        f"From: {MAILBOX}\r\n"
        f"To: {recipient}\r\n"
        f"Message-ID: {original_message_id}\r\n"
        "Subject: =?utf-8?b?44CQ5Y+X55CG5Zue5omn44CR?=\r\n\r\n"
        f"--{boundary}--\r\n"
    )
    return text.encode("ascii")


def encoded_subject(text: str) -> str:
    """`text` as one RFC 2047 encoded word (so it may carry CR/LF once decoded)."""
    return "=?utf-8?b?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="


def document_hashes(archive: str = "valid.rar") -> dict[str, str]:
    """name -> SHA-256 of each file in a committed RAR fixture, read independently of shenbao."""
    import rarfile

    with rarfile.RarFile(str(RAR / archive)) as opened:
        return {
            info.filename.rpartition("/")[2]: hashlib.sha256(opened.read(info)).hexdigest()
            for info in opened.infolist()
            if info.is_file()
        }


# ---------------------------------------------------------------------------------------------------- IMAP


def connect(server: LoopbackServer) -> IMAPClient:
    client = IMAPClient(server.host, server.port, ssl=False, timeout=TIMEOUT)
    client.normalise_times = False
    client.login(server.user, server.password)
    return client


@contextlib.contextmanager
def connected(server: LoopbackServer) -> Iterator[IMAPClient]:
    client = connect(server)
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.logout()


def append(server: LoopbackServer, raw: bytes, *, when: datetime = RECEIVED, folder: str = "INBOX") -> None:
    """Append `raw` to `folder` (created if missing) with INTERNALDATE `when`, as delivery would."""
    with connected(server) as client:
        if not client.folder_exists(folder):
            client.create_folder(folder)
        client.append(folder, raw, msg_time=when)


def folder_names(server: LoopbackServer) -> list[str]:
    with connected(server) as client:
        return [str(name) for _flags, _delimiter, name in client.list_folders()]


def folder_messages(server: LoopbackServer, folder: str) -> list[bytes]:
    """The raw messages in `folder`, by UID; [] when the folder does not exist."""
    with connected(server) as client:
        if not client.folder_exists(folder):
            return []
        client.select_folder(folder, readonly=True)
        uids = sorted(client.search(["ALL"]))
        if not uids:
            return []
        found = client.fetch(uids, [b"BODY.PEEK[]"])
        return [found[uid][b"BODY[]"] for uid in uids]


def message_ids_in(server: LoopbackServer, folder: str) -> list[str]:
    """The Message-ID of each message in `folder`, by UID."""
    return [str(parse(raw)["Message-ID"]) for raw in folder_messages(server, folder)]


# ------------------------------------------------------------------------------------------------- replies


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def replies(smtp: SmtpCapture) -> list[EmailMessage]:
    return [parse(captured.data) for captured in smtp.messages]


def replies_to(smtp: SmtpCapture, message_id: str) -> list[EmailMessage]:
    """The captured replies whose In-Reply-To is `message_id`."""
    return [reply for reply in replies(smtp) if str(reply.get("In-Reply-To", "")) == message_id]


def text_and_html(reply: EmailMessage) -> tuple[str, str]:
    """The plain-text and the HTML part (AssertionError if either is missing)."""
    plain = reply.get_body(preferencelist=("plain",))
    html = reply.get_body(preferencelist=("html",))
    assert plain is not None and html is not None, f"reply lacks a text or HTML part: {reply.get_content_type()}"
    assert isinstance(plain, EmailMessage) and isinstance(html, EmailMessage)
    return str(plain.get_content()), str(html.get_content())


# ------------------------------------------------------------------------------------------------ database


def query(folder: Path, sql: str, parameters: Sequence[object] = ()) -> list[tuple[Any, ...]]:
    """Rows of `sql` (with `?` for each of `parameters`) run on the database of the config in `folder`,
    SQLite or PostgreSQL."""
    numbers = itertools.count()
    statement = re.sub(r"\?", lambda _: f":p{next(numbers)}", sql)
    engine = create_engine(load(folder / "shenbao.toml").database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            found = connection.execute(text(statement), {f"p{n}": value for n, value in enumerate(parameters)})
            return [tuple(row) for row in found]
    finally:
        engine.dispose()


def blob(folder: Path, sha256: str) -> Path:
    """Where the blob store keeps `sha256` for the config in `folder`."""
    return folder / "files" / sha256[:2] / sha256


# ---------------------------------------------------------------------------------------------- TCP proxy


class FaultyProxy:
    """A TCP proxy to `target` that misbehaves once, as a flaky network or server would.

    `cut_after`: the first connection whose server-to-client stream passes that many bytes is closed there
    (the client gets exactly `cut_after` bytes of it); later connections are forwarded whole.
    `hold_on`: the first client command containing these bytes is held back from the server until
    `release` is set (`held` is set meanwhile), so a test can act while the client waits for its answer.
    `hide_capability`: removed from every CAPABILITY the server announces, as if it lacked it.
    `stutter`: each piece of the server's stream is passed on in two halves, this many seconds apart, as a
    line split across two packets arrives.
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        cut_after: int | None = None,
        hold_on: bytes | None = None,
        hide_capability: bytes | None = None,
        stutter: float = 0.0,
    ) -> None:
        self.target = (target_host, target_port)
        self.stutter = stutter
        self.cut_after = cut_after
        self.hold_on = hold_on
        self.hide_capability = hide_capability
        self.cut = threading.Event()
        self.held = threading.Event()
        self.release = threading.Event()
        self.client_sent_before_cut = b""
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = self._listener.getsockname()[:2]
        self._closing = False
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> FaultyProxy:
        self._spawn(self._accept)
        return self

    def stop(self) -> None:
        self._closing = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() below
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> FaultyProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.stop()

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # halves go out as they are sent
            with self._lock:
                self._sockets += [client, server]
            sent: list[bytes] = []
            self._spawn(self._upstream, client, server, sent)
            self._spawn(self._downstream, server, client, sent)

    def _upstream(self, client: socket.socket, server: socket.socket, sent: list[bytes]) -> None:
        """Client to server, whole, remembering what the client asked."""
        try:
            while data := client.recv(65536):
                if self.hold_on is not None and self.hold_on in data and not self.held.is_set():
                    self.held.set()
                    self.release.wait(TIMEOUT)
                sent.append(data)
                server.sendall(data)
        except OSError:
            pass
        finally:
            _shut(client, server)

    def _downstream(self, server: socket.socket, client: socket.socket, sent: list[bytes]) -> None:
        """Server to client; the first connection to pass `cut_after` bytes is closed right there."""
        passed = 0
        try:
            while data := server.recv(65536):
                if self.cut_after is not None and not self.cut.is_set() and passed + len(data) >= self.cut_after:
                    client.sendall(data[: self.cut_after - passed])
                    self.client_sent_before_cut = b"".join(sent)
                    self.cut.set()
                    break
                passed += len(data)
                data = self._without_capability(data)
                if self.stutter and len(data) > 1:
                    client.sendall(data[: len(data) // 2])
                    time.sleep(self.stutter)
                    data = data[len(data) // 2 :]
                client.sendall(data)
        except OSError:
            pass
        finally:
            _shut(client, server)

    def _without_capability(self, data: bytes) -> bytes:
        if self.hide_capability is None or b"CAPABILITY" not in data:
            return data
        lines = data.split(b"\r\n")
        token = b" " + self.hide_capability
        return b"\r\n".join(
            line.replace(token + b" ", b" ").removesuffix(token) if b"CAPABILITY" in line else line for line in lines
        )


def _shut(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
