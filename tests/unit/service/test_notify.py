"""sd_notify over a real unix datagram socket: a path socket, the watchdog's rate, and doing nothing off systemd."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.service.notify import Notifier


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket bound to a short path (sun_path holds 108 bytes; pytest's tmp_path may be longer)."""
    with tempfile.TemporaryDirectory(prefix="sd-") as folder, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        path = str(Path(folder) / "notify")
        sock.bind(path)
        sock.settimeout(5)
        yield sock, path


def pending(sock: socket.socket) -> list[str]:
    found = []
    sock.setblocking(False)
    try:
        while True:
            found.append(sock.recv(4096).decode("utf-8"))
    except BlockingIOError:
        return found
    finally:
        sock.settimeout(5)


def test_ready_status_and_stopping_reach_a_path_socket(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path})

    notifier.ready("正在监视 INBOX")
    notifier.status("等待新邮件")
    notifier.stopping()
    notifier.close()

    assert sock.recv(4096).decode("utf-8") == "READY=1\nSTATUS=正在监视 INBOX"
    assert sock.recv(4096).decode("utf-8") == "STATUS=等待新邮件"
    assert sock.recv(4096).decode("utf-8").startswith("STOPPING=1\nSTATUS=")


def test_the_watchdog_is_fed_at_most_once_per_half_its_timeout(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": str(3600 * 10**6)})

    for _ in range(5):
        notifier.watchdog()

    assert notifier.interval == 1800
    assert pending(sock) == ["WATCHDOG=1"]


@pytest.mark.parametrize(
    ("under_systemd", "watchdog"),
    [
        (False, {"WATCHDOG_USEC": "1000000"}),  # no NOTIFY_SOCKET
        (True, {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid() + 1)}),  # another process's watchdog
        (True, {}),  # no WatchdogSec=
    ],
)
def test_no_watchdog_datagram_unless_asked_of_this_process(
    listener: tuple[socket.socket, str], under_systemd: bool, watchdog: dict[str, str]
) -> None:
    sock, path = listener
    notifier = Notifier({**watchdog, **({"NOTIFY_SOCKET": path} if under_systemd else {})})

    notifier.watchdog()
    notifier.status("still sent")

    assert pending(sock) == (["STATUS=still sent"] if under_systemd else [])
