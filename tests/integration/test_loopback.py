"""The loopback servers (daemon/demo/servers.py, tests/support/child_servers.py), driven by the daemon's clients.

Each IMAP operation the daemon relies on is checked against pymap and, where it can run (root, dovecot
installed), against Dovecot, so a difference between the two shows up here rather than in the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
from child_servers import DovecotServer, PymapProcess
from daemon_support import FaultyProxy
from imapclient import IMAPClient
from imapclient.exceptions import LoginError
from imapclient.imapclient import SENT

from daemon.config import ImapSettings, Security
from daemon.demo.servers import LoopbackServer, PymapServer, SmtpCapture, free_port, port_accepts
from daemon.mail.imap import Mailbox

SHANGHAI = timezone(timedelta(hours=8))
RECEIVED_AT = datetime(2022, 6, 28, 9, 30, 15, tzinfo=SHANGHAI)
ACCEPTED_FOLDER = "已受理"
TIMEOUT = 10.0

needs_dovecot = pytest.mark.skipif(
    not DovecotServer.available(), reason=f"Dovecot tests skipped: {DovecotServer.unavailable_reason()}"
)


def raw_message(subject: str = "济南明湖软件科技有限公司", body_size: int = 3000) -> bytes:
    """A submission-like message, longer than 1000 bytes so a partial fetch is really partial."""
    message = EmailMessage()
    message["From"] = "ops@minghu-soft.cn"
    message["To"] = "kejichu2019@shandong.cn"
    message["Subject"] = subject
    message["Message-ID"] = "<loopback@minghu-soft.cn>"
    message.set_content("您好，附件为申报材料，请查收。\n" + "x" * body_size + "\n")
    return message.as_bytes().replace(b"\n", b"\r\n")


def connect(server: LoopbackServer) -> IMAPClient:
    """A logged-in imapclient connection, with aware datetimes (INTERNALDATE keeps its offset)."""
    client = IMAPClient(server.host, server.port, ssl=False, timeout=TIMEOUT)
    client.normalise_times = False
    client.login(server.user, server.password)
    return client


def idle_until_exists(client: IMAPClient, timeout: float = TIMEOUT) -> list[tuple[object, ...]]:
    """IDLE responses until an EXISTS arrives, waiting at most `timeout` s in all."""
    deadline = time.monotonic() + timeout
    responses: list[tuple[object, ...]] = []
    while not any(len(r) > 1 and r[1] == b"EXISTS" for r in responses):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no EXISTS within {timeout} s; got {responses!r}")
        responses.extend(client.idle_check(timeout=remaining))
    return responses


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(params=["pymap", pytest.param("dovecot", marks=needs_dovecot)])
def imap_server(request: pytest.FixtureRequest) -> Iterator[LoopbackServer]:
    """Each IMAP server the daemon is checked against, fresh for every test."""
    server: LoopbackServer = PymapServer() if request.param == "pymap" else DovecotServer()
    with server:
        yield server


@pytest.fixture
def imap(imap_server: LoopbackServer) -> Iterator[IMAPClient]:
    """A logged-in client, logged out before its server stops."""
    client = connect(imap_server)
    yield client
    client.logout()


# ------------------------------------------------------------------------------------------ helpers


def test_free_port_can_be_bound() -> None:
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


# --------------------------------------------------------------------------------- common IMAP operations


def test_login_id_and_select(imap_server: LoopbackServer, imap: IMAPClient) -> None:
    assert imap_server.user == "demo@example.cn"
    assert b"IDLE" in imap.capabilities()
    assert b"MOVE" in imap.capabilities()
    imap.id_({"name": "shenbao", "version": "0.1"})  # Coremail/163 refuse SELECT without it
    selected = imap.select_folder("INBOX")
    assert selected[b"EXISTS"] == 0


def test_wrong_password_is_refused(imap_server: LoopbackServer) -> None:
    client = IMAPClient(imap_server.host, imap_server.port, ssl=False, timeout=TIMEOUT)
    with pytest.raises(LoginError):
        client.login(imap_server.user, "wrong")
    client.shutdown()


def test_append_keeps_internaldate_then_search_and_fetch(imap: IMAPClient) -> None:
    raw = raw_message()
    imap.select_folder("INBOX")
    imap.append("INBOX", raw, flags=(), msg_time=RECEIVED_AT)
    imap.noop()
    uids = imap.search(["ALL"])
    assert len(uids) == 1
    info = imap.fetch(uids, ["RFC822.SIZE", "INTERNALDATE"])[uids[0]]
    assert info[b"RFC822.SIZE"] == len(raw)
    # The same instant on both; pymap keeps the +08:00 it was given, Dovecot answers in its own zone.
    assert info[b"INTERNALDATE"] == RECEIVED_AT
    assert info[b"INTERNALDATE"].utcoffset() is not None


def test_partial_fetch_returns_exactly_the_slice(imap: IMAPClient) -> None:
    raw = raw_message(body_size=5000)
    imap.append("INBOX", raw, msg_time=RECEIVED_AT)
    imap.select_folder("INBOX")
    (uid,) = imap.search(["ALL"])
    head = imap.fetch(uid, [b"BODY.PEEK[]<0.1000>"])[uid][b"BODY[]<0>"]
    assert head == raw[:1000]
    tail = imap.fetch(uid, [b"BODY.PEEK[]<4000.100000>"])[uid][b"BODY[]<4000>"]
    assert tail == raw[4000:]
    flags = imap.get_flags(uid)[uid]
    assert b"\\Seen" not in flags  # PEEK leaves the message unread


def test_create_non_ascii_folder_and_move(imap: IMAPClient) -> None:
    imap.append("INBOX", raw_message("第一封"), msg_time=RECEIVED_AT)
    imap.append("INBOX", raw_message("第二封"), msg_time=RECEIVED_AT)
    imap.create_folder(ACCEPTED_FOLDER)  # modified UTF-7 on the wire: &XfJT0ZCG-
    assert ACCEPTED_FOLDER in [name for _flags, _delimiter, name in imap.list_folders()]
    imap.select_folder("INBOX")
    first, second = imap.search(["ALL"])
    imap.move([first], ACCEPTED_FOLDER)
    assert imap.search(["ALL"]) == [second]
    imap.select_folder(ACCEPTED_FOLDER)
    (moved,) = imap.search(["ALL"])
    subject = imap.fetch(moved, [b"BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])[moved]
    assert b"=?utf-8?" in next(iter(v for k, v in subject.items() if k.startswith(b"BODY[HEADER")))


def test_idle_wakes_when_another_connection_appends(imap_server: LoopbackServer, imap: IMAPClient) -> None:
    imap.select_folder("INBOX")
    imap.idle()
    try:
        other = connect(imap_server)
        other.append("INBOX", raw_message(), msg_time=RECEIVED_AT)
        other.logout()
        responses = idle_until_exists(imap)
    finally:
        imap.idle_done()
    assert (1, b"EXISTS") in responses


def test_a_dot_in_a_folder_name(imap_server: LoopbackServer, imap: IMAPClient) -> None:
    """Maildir++ (the usual Dovecot layout) stores folders as .a.b and refuses dots; pymap takes any name."""
    if isinstance(imap_server, DovecotServer):
        with pytest.raises(IMAPClient.Error, match="not allowed"):
            imap.create_folder("A.B Co., Ltd.")
    else:
        imap.create_folder("A.B Co., Ltd.")
    imap.create_folder(f"{ACCEPTED_FOLDER}/2022")  # hierarchy with "/" works on both
    assert f"{ACCEPTED_FOLDER}/2022" in [name for _flags, _delimiter, name in imap.list_folders()]


# ------------------------------------------------------------------------------------ pymap specifics


def test_pymap_has_no_sent_folder_until_one_is_created() -> None:
    """pymap offers no SPECIAL-USE: the daemon must create "Sent" itself; imapclient then finds it by name."""
    with PymapServer(user="kejichu@shandong.cn", password="s3cret") as server:
        client = connect(server)
        assert b"SPECIAL-USE" not in client.capabilities()
        assert client.find_special_folder(SENT) is None
        client.create_folder("Sent")
        assert client.find_special_folder(SENT) == "Sent"
        client.logout()


def test_pymap_server_stops_with_a_client_still_idling() -> None:
    server = PymapServer()
    server.start()
    client = connect(server)
    client.select_folder("INBOX")
    client.idle()
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 5
    assert not port_accepts(server.host, server.port)
    client.shutdown()
    server.stop()  # a second stop is harmless


def test_pymap_cannot_start_on_a_taken_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        with pytest.raises(RuntimeError, match="could not start"):
            PymapServer(port=sock.getsockname()[1]).start()


def test_pymap_process_runs_in_another_process() -> None:
    with PymapProcess() as server:
        assert server.pid is not None
        assert server.pid != os.getpid()
        client = connect(server)
        client.append("INBOX", raw_message(), msg_time=RECEIVED_AT)
        client.select_folder("INBOX")
        (uid,) = client.search(["ALL"])
        assert client.fetch(uid, ["INTERNALDATE"])[uid][b"INTERNALDATE"] == RECEIVED_AT
        client.logout()
        pid = server.pid
    assert server.pid is None
    assert not port_accepts(server.host, server.port)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# ---------------------------------------------------------------------------------- Dovecot specifics


@needs_dovecot
def test_dovecot_offers_a_special_use_sent_folder() -> None:
    with DovecotServer() as server:
        client = connect(server)
        assert b"SPECIAL-USE" in client.capabilities()
        assert client.find_special_folder(SENT) == "Sent"
        client.append("Sent", raw_message(), flags=[b"\\Seen"], msg_time=RECEIVED_AT)
        assert client.select_folder("Sent")[b"EXISTS"] == 1
        client.logout()
        folder = server.folder
        assert server.maildir is not None and server.maildir.is_dir()
    assert folder is not None and not folder.exists()
    assert not port_accepts(server.host, server.port)


@needs_dovecot
def test_dovecot_in_a_given_folder_keeps_it() -> None:
    parent = Path(tempfile.mkdtemp(prefix="shenbao-test-"))  # not tmp_path: nobody cannot reach into it
    parent.chmod(0o755)
    folder = parent / "dovecot"
    try:
        with DovecotServer(folder=folder) as server:
            client = connect(server)
            client.select_folder("INBOX")
            client.logout()
        assert (folder / "dovecot.conf").is_file()
        assert "Login: user=<demo@example.cn>" in (folder / "dovecot.log").read_text()
    finally:
        shutil.rmtree(parent)


@needs_dovecot
def test_dovecot_refuses_a_folder_its_mail_user_cannot_reach(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    with pytest.raises(ValueError, match="not searchable by others"):
        DovecotServer(folder=tmp_path / "dovecot").start()


def test_dovecot_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DovecotServer, "binary", staticmethod(lambda: "/usr/sbin/dovecot"))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert not DovecotServer.available()
    assert "root" in (DovecotServer.unavailable_reason() or "")
    with pytest.raises(RuntimeError, match="cannot start Dovecot"):
        DovecotServer().start()


def test_dovecot_refuses_a_user_its_passwd_file_cannot_hold() -> None:
    with pytest.raises(ValueError, match="passwd-file"):
        DovecotServer(user="demo:x@example.cn")


# ------------------------------------------------------------------------------------------------- SMTP


def reply(subject: str = "【已受理】济南明湖软件科技有限公司", to: str = "ops@minghu-soft.cn") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "kejichu2019@shandong.cn"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("您的申报材料已受理。")
    return message


def send(
    capture: SmtpCapture, message: EmailMessage, username: str | None = None, password: str | None = None
) -> tuple[object, str]:
    """Send as the daemon does: aiosmtplib, plain SMTP on loopback (no TLS)."""
    sending = aiosmtplib.send(
        message,
        hostname=capture.host,
        port=capture.port,
        start_tls=False,
        timeout=TIMEOUT,
        username=username,
        password=password,
    )
    return asyncio.run(sending)


def test_smtp_capture_keeps_plain_messages_and_writes_eml(tmp_path: Path) -> None:
    with SmtpCapture(folder=tmp_path / "out") as capture:
        send(capture, reply())
        send(capture, reply("【退回】另一家公司", to="ym-xcl@qq.com"))
        first, second = capture.wait_for(2, TIMEOUT)
    assert first.mail_from == "kejichu2019@shandong.cn"
    assert first.rcpt_tos == ["ops@minghu-soft.cn"]
    assert second.rcpt_tos == ["ym-xcl@qq.com"]
    assert b"Subject: =?utf-8?" in first.data
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["001.eml", "002.eml"]
    assert (tmp_path / "out" / "002.eml").read_bytes() == second.data


def test_smtp_capture_accepts_any_login_when_auth_is_on() -> None:
    with SmtpCapture(auth=True) as capture:
        send(capture, reply(), username="kejichu2019@shandong.cn", password="授权码")
        (message,) = capture.wait_for(1, TIMEOUT)
    assert capture.logins == ["kejichu2019@shandong.cn"]
    assert message.rcpt_tos == ["ops@minghu-soft.cn"]


def test_smtp_capture_without_auth_offers_no_login() -> None:
    with SmtpCapture() as capture:
        with pytest.raises(aiosmtplib.SMTPException, match="AUTH"):
            send(capture, reply(), username="someone", password="secret")
        assert capture.messages == []


def test_smtp_capture_451_then_250() -> None:
    with SmtpCapture(responses=["451 4.3.0 try again later", "250 OK"]) as capture:
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            send(capture, reply())
        assert refused.value.code == 451
        assert capture.messages == []
        send(capture, reply())
        assert len(capture.wait_for(1, TIMEOUT)) == 1
        send(capture, reply())  # the script is used up: default 250
        assert len(capture.wait_for(2, TIMEOUT)) == 2
    assert capture.attempts == 3


def test_smtp_capture_550_is_a_permanent_failure() -> None:
    capture = SmtpCapture(responses=["550 5.1.1 mailbox unavailable"])
    with capture, pytest.raises(aiosmtplib.SMTPDataError) as refused:
        send(capture, reply())
    assert refused.value.code == 550
    assert capture.messages == []
    assert capture.attempts == 1
    assert not port_accepts(capture.host, capture.port)


def test_smtp_capture_wait_for_times_out() -> None:
    with SmtpCapture() as capture, pytest.raises(TimeoutError, match="0 of 1"):
        capture.wait_for(1, timeout=0.05)


def test_smtp_capture_rejects_a_script_without_a_code() -> None:
    with pytest.raises(ValueError, match="3-digit"):
        SmtpCapture(responses=["try again later"])


@pytest.mark.parametrize("imap_server", [pytest.param("dovecot", marks=needs_dovecot)], indirect=True)
def test_mail_that_came_after_the_last_search_ends_the_wait_at_once(imap_server: LoopbackServer) -> None:
    """Dovecot sends "* 1 EXISTS" with IDLE's continuation; imaplib buffers it, and polling the socket alone
    (imapclient's idle_check) would wait for the next news or the whole `idle_seconds`. (pymap reports only
    what changes during IDLE, so there is nothing to read ahead there.)"""
    with mailbox_of(imap_server) as mailbox:
        mailbox.select("INBOX")
        append_elsewhere(imap_server)
        started = time.monotonic()
        told = mailbox.wait(600, threading.Event(), lambda: None)
        waited = time.monotonic() - started
    assert told
    assert waited < TIMEOUT  # far from the 600 s it would wait for a next news that never comes


def test_news_split_across_packets_during_idle_is_read_whole(imap_server: LoopbackServer) -> None:
    """imapclient's idle_check reads a non-blocking socket and failed on half a line ("unterminated line",
    mjs/imapclient#519; seen on CI with pymap's "* 1 FETCH (FLAGS (\\Recent))"): the daemon reconnected and
    the news waited a second. The mailbox reads whole lines once something has come."""
    with (
        FaultyProxy(imap_server.host, imap_server.port, stutter=0.05) as proxy,
        mailbox_of(imap_server, via=proxy) as mailbox,
    ):
        mailbox.select("INBOX")
        appending = threading.Timer(0.5, lambda: append_elsewhere(imap_server))
        appending.start()
        told = mailbox.wait(600, threading.Event(), lambda: None)
        appending.join()
        assert mailbox.uids()  # the connection still works: the wait left no half-read line behind
    assert told


@contextlib.contextmanager
def mailbox_of(server: LoopbackServer, via: FaultyProxy | None = None) -> Iterator[Mailbox]:
    """The daemon's mailbox, connected to `server` (through `via`), closed afterwards."""
    host, port = (via.host, via.port) if via else (server.host, server.port)
    settings = ImapSettings(host=host, port=port, security=Security.NONE, username=server.user)
    mailbox = Mailbox(settings, server.password, timeout=TIMEOUT)
    mailbox.connect()
    try:
        yield mailbox
    finally:
        mailbox.close()


def append_elsewhere(server: LoopbackServer) -> None:
    other = connect(server)
    other.append("INBOX", raw_message(), msg_time=RECEIVED_AT)
    other.logout()


def test_a_size_the_server_repeats_is_no_news_and_a_larger_one_is(imap_server: LoopbackServer) -> None:
    """Before IDLE the mailbox checks what the server announced since its search (and asks with a NOOP): a
    server that repeats the folder's size, or gives it after our moves, must not make the daemon sync again
    and again, while a size past what the search found and what was moved since means mail came."""
    append_elsewhere(imap_server)
    with mailbox_of(imap_server) as mailbox:
        mailbox.select("INBOX")
        assert len(mailbox.uids()) == 1
        announced = mailbox.client._imap.untagged_responses
        announced["EXISTS"] = [b"1"]  # the size the search found, said again
        assert not mailbox.wait(0.2, threading.Event(), lambda: None)
        announced["EXISTS"], announced["EXPUNGE"] = [b"1"], [b"1"]  # one moved out, then one came
        assert mailbox.wait(0.2, threading.Event(), lambda: None)


def test_a_folder_deleted_by_a_person_after_the_mailbox_saw_it_is_made_again(imap_server: LoopbackServer) -> None:
    """The mailbox lists a folder once a connection, not before every move and copy to Sent; when staff
    delete one in their client meanwhile, the next move or copy makes it again instead of failing."""
    for _ in range(2):
        append_elsewhere(imap_server)
    with mailbox_of(imap_server) as mailbox:
        mailbox.select("INBOX")
        first, second = mailbox.uids()
        mailbox.move(first, ACCEPTED_FOLDER)
        mailbox.save_sent(raw_message("回执一"), RECEIVED_AT)
        sent = mailbox.sent_folder()
        with connect(imap_server) as person:
            person.delete_folder(ACCEPTED_FOLDER)
            person.delete_folder(sent)
        mailbox.move(second, ACCEPTED_FOLDER)
        mailbox.save_sent(raw_message("回执二"), RECEIVED_AT)
    with connect(imap_server) as client:
        for folder in (ACCEPTED_FOLDER, sent):
            client.select_folder(folder, readonly=True)
            assert len(client.search(["ALL"])) == 1, folder
