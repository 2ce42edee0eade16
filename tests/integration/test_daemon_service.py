"""`shenbao run` as a service: quiet logs while idle, systemd's notify protocol, no tick between IDLE and work.

Real servers on loopback (pymap, aiosmtpd); the daemon as a subprocess where its output and signals matter,
in-process where the order of its log records does.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import re
import signal
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_support import (
    TIMEOUT,
    Background,
    FaultyProxy,
    append,
    daemon_env,
    imap_env,
    query,
    valid,
    wait_until,
    write_config,
)
from sqlalchemy.exc import OperationalError

from daemon import runner
from daemon.config import load
from daemon.demo.servers import PymapServer, SmtpCapture
from daemon.runner import Daemon


def test_an_idle_daemon_writes_nothing_at_warning_or_above(
    imap: PymapServer, smtp: SmtpCapture, tmp_path: Path
) -> None:
    """Issue 7, point 5: IDLE cycles used to log an APScheduler warning about once a second."""
    office = tmp_path / "office"
    config = write_config(office, imap, smtp, idle_seconds=1)
    append(imap, valid("before"))  # some work first, so replies and Sent copies have run too
    args = ("run", "--config", config, "--log-level", "debug")
    with Background(*args, env=daemon_env(imap), cwd=office, journal=True) as daemon:
        smtp.wait_for(1, TIMEOUT)
        wait_until(lambda: daemon.output().count("sync started") >= 10, 60, "ten IDLE cycles")
        assert daemon.terminate() == 0

    lines = daemon.output().splitlines()
    unprefixed = [line for line in lines if not re.match(r"<[0-7]>", line)]
    assert unprefixed == []  # every line, tracebacks and warnings included, carries a syslog priority
    assert [line for line in lines if int(line[1]) <= 4] == []
    assert not any(re.match(r"<\d>\d{4}-\d\d-\d\d", line) for line in lines)  # the journal stamps lines itself
    assert "<6>daemon.runner: shenbao running: watching INBOX" in lines
    assert lines.count("<7>daemon.service.watcher: sync started") >= 10


def test_systemd_hears_ready_the_watchdog_and_stopping(imap: PymapServer, smtp: SmtpCapture, tmp_path: Path) -> None:
    office = tmp_path / "office"
    config = write_config(office, imap, smtp, idle_seconds=600)
    name = f"shenbao-test-{uuid.uuid4().hex}"
    env = daemon_env(imap, {"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "1000000"})
    heard: list[list[str]] = []

    def hear_until(field: str, count: int = 1) -> None:
        while sum(field in fields for fields in heard) < count:
            heard.append(listener.recv(4096).decode("utf-8").split("\n"))

    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind("\0" + name)  # an abstract socket, as NOTIFY_SOCKET=@name says
        listener.settimeout(TIMEOUT)
        with Background("run", "--config", config, env=env, cwd=office) as daemon:
            hear_until("READY=1")
            hear_until("WATCHDOG=1", 3)  # fed while the watcher waits on IDLE
            assert not any("STOPPING=1" in fields for fields in heard)
            daemon.process.send_signal(signal.SIGTERM)
            hear_until("STOPPING=1")
            assert daemon.process.wait(15) == 0

    ready = next(fields for fields in heard if "READY=1" in fields)
    assert "STATUS=正在监视 INBOX" in ready
    statuses = [field for fields in heard for field in fields if field.startswith("STATUS=")]
    assert any("等待新邮件（IDLE）" in status for status in statuses)


@contextlib.contextmanager
def watching(config: Path) -> Iterator[Daemon]:
    """The daemon in this process with its watcher thread, as `shenbao run` starts them; stopped after."""
    daemon = Daemon(load(config))
    daemon.start()
    watcher = threading.Thread(target=daemon.watch_loop, name="watcher")
    watcher.start()
    try:
        yield daemon
    finally:
        daemon.stop.set()
        daemon.wake.set()
        watcher.join(TIMEOUT)
        daemon.close()


@pytest.mark.parametrize("held", [b"UID SEARCH", b"NOOP"])
def test_mail_that_comes_while_the_sync_searches_is_found_without_waiting_for_idle(
    imap: PymapServer, smtp: SmtpCapture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, held: bytes
) -> None:
    """Mail that comes while the first sync's search is on its way, or after it and before IDLE: pymap
    announces it (EXISTS) with the search's answer, which does not include it, and reports in IDLE only what
    changes once IDLE has begun. Either way the message waited for the next IDLE to end (`idle_seconds`, 240 s
    by default; CI failed on it once). The mailbox now sees the announcement, and asks with a NOOP before IDLE.
    The message comes while the search or that NOOP is held back."""
    for key, value in imap_env(imap).items():
        monkeypatch.setenv(key, value)
    office = tmp_path / "office"
    with (
        FaultyProxy(imap.host, imap.port, hold_on=held) as proxy,
        watching(write_config(office, imap, smtp, imap_port=proxy.port, idle_seconds=600)),
    ):
        assert proxy.held.wait(TIMEOUT), f"no {held.decode()} in the first sync"
        append(imap, valid("meanwhile"))
        proxy.release.set()
        wait_until(lambda: query(office, "SELECT count(*) FROM message") == [(1,)], TIMEOUT, "the message judged")


def test_the_sync_starts_the_moment_idle_reports_mail(
    imap: PymapServer,
    smtp: SmtpCapture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 13, point 3: no scheduler tick between IDLE's news and the sync (it used to be up to a second)."""
    for key, value in imap_env(imap).items():
        monkeypatch.setenv(key, value)
    office = tmp_path / "office"
    caplog.set_level(logging.DEBUG, logger="daemon")
    with watching(write_config(office, imap, smtp, idle_seconds=600)):  # only news ends the wait
        wait_until(lambda: "IDLE started" in caplog.text, TIMEOUT, "the first sync done and IDLE begun")
        append(imap, valid("news"))
        wait_until(lambda: query(office, "SELECT count(*) FROM message") == [(1,)], TIMEOUT, "the message judged")

    records = caplog.records
    news = next(i for i, r in enumerate(records) if r.getMessage().startswith("IDLE ended"))
    sync = next(r for r in records[news:] if r.getMessage() == "sync started")
    assert sync.threadName == records[news].threadName == "watcher"
    assert sync.created - records[news].created < 0.3


def test_a_database_error_while_the_outbox_checks_on_sending_ends_the_turn_not_the_outbox(
    imap: PymapServer, smtp: SmtpCapture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cut connection once killed the outbox thread: the alert check after sending was outside its guard."""
    for key, value in imap_env(imap).items():
        monkeypatch.setenv(key, value)
    office = tmp_path / "office"
    daemon = Daemon(load(write_config(office, imap, smtp, idle_seconds=600)))
    daemon.start()
    cut = OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))
    calls: list[int] = []

    def failing_once(engine: object) -> None:
        calls.append(1)
        if len(calls) == 1:
            daemon.outbox_wake.set()  # the next turn at once rather than in ten seconds
            raise cut
        return None

    monkeypatch.setattr(runner, "oldest_deferred", failing_once)
    outbox = threading.Thread(target=daemon.outbox_loop, name="outbox")
    outbox.start()
    try:
        wait_until(lambda: len(calls) >= 2, TIMEOUT, "a second turn of the outbox")
        assert outbox.is_alive()
    finally:
        daemon.stop.set()
        daemon.outbox_wake.set()
        outbox.join(TIMEOUT)
        daemon.close()
    assert daemon.failure is None


def test_the_readers_are_up_before_the_first_message(imap: PymapServer, smtp: SmtpCapture, tmp_path: Path) -> None:
    """Issue 13: the document reader's server imports the image libraries for about half a second; started
    with the daemon, that overlaps its own start instead of delaying the first reply."""
    office = tmp_path / "office"
    config = write_config(office, imap, smtp, idle_seconds=600)
    with Background("run", "--config", config, "--log-level", "debug", env=daemon_env(imap), cwd=office) as daemon:
        daemon.wait_for_output("IDLE started")
        servers = {
            preloaded
            for child in children_of(daemon.process.pid)
            for preloaded in ("daemon.intake.archive_worker", "daemon.intake.document_reader")
            if preloaded in child
        }
        assert daemon.terminate() == 0
    assert servers == {"daemon.intake.archive_worker", "daemon.intake.document_reader"}
    assert query(office, "SELECT count(*) FROM message") == [(0,)]


def test_a_sigterm_that_another_thread_takes_still_stops_the_daemon(
    imap: PymapServer, smtp: SmtpCapture, tmp_path: Path
) -> None:
    """The kernel may hand a process's SIGTERM to any of its threads. Python runs the handler in the main
    thread only, and the main thread used to sleep in an Event's wait, which such a signal does not wake: the
    daemon then ignored the stop for good (seen once in CI as a stop that took over 15 s)."""
    office = tmp_path / "office"
    config = write_config(office, imap, smtp, idle_seconds=600)
    with Background("run", "--config", config, "--log-level", "debug", env=daemon_env(imap), cwd=office) as daemon:
        daemon.wait_for_output("IDLE started")
        signal_a_thread_not_the_main_one(daemon.process.pid, signal.SIGTERM)
        assert daemon.process.wait(TIMEOUT) == 0
    assert "received SIGTERM" in daemon.output()


def signal_a_thread_not_the_main_one(pid: int, sig: signal.Signals) -> None:
    """`sig` to the earliest-started of the process's other threads (the longest-lived: the daemon starts
    its scheduler and its loops first), with tgkill(2), as the kernel may deliver a process's signal."""
    libc = ctypes.CDLL(None, use_errno=True)
    others = sorted(int(task.name) for task in Path(f"/proc/{pid}/task").iterdir() if int(task.name) != pid)
    for thread in others:  # one that ended meanwhile (ESRCH) is passed over
        if libc.tgkill(pid, thread, sig) == 0:
            return
    raise AssertionError(f"no thread of {pid} but the main one took the signal")


def children_of(pid: int) -> list[str]:
    """The command lines of the processes `pid` started."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            if f"\nPPid:\t{pid}\n" in status.read_text():
                found.append((status.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
    return found
