"""systemd's notification protocol (sd_notify(3)): READY, STATUS, WATCHDOG and STOPPING datagrams.

A `Type=notify` unit learns from these that the daemon has started, what it is doing (`systemctl status`),
and, with `WatchdogSec=`, that the watcher still turns: when it stops feeding the watchdog, systemd restarts
the service. The protocol is one datagram to the unix socket named by NOTIFY_SOCKET (abstract when it starts
with `@`). Without NOTIFY_SOCKET (not under systemd) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


def _address(value: str) -> str | None:
    if not value:
        return None
    return "\0" + value[1:] if value.startswith("@") else value


def _watchdog_interval(environ: Mapping[str, str]) -> float | None:
    """Half the watchdog timeout, as sd_watchdog_enabled(3) advises; None when no watchdog is asked of us."""
    pid = environ.get("WATCHDOG_PID")
    try:
        if pid and int(pid) != os.getpid():
            return None
        microseconds = int(environ.get("WATCHDOG_USEC", "0"))
    except ValueError:
        return None
    return microseconds / 2e6 if microseconds > 0 else None


class Notifier:
    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        self.address = _address(environ.get("NOTIFY_SOCKET", ""))
        self.interval = _watchdog_interval(environ)
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._fed = float("-inf")

    def send(self, *fields: str) -> None:
        """One datagram of `KEY=value` lines; a failure to send is logged, never raised."""
        if self.address is None:
            return
        with self._lock:
            try:
                if self._socket is None:
                    self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._socket.sendto("\n".join(fields).encode("utf-8"), self.address)
            except OSError as error:
                log.debug("sd_notify %s failed: %s", fields, error)

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=正在停止：处理完手头的邮件后退出")

    def watchdog(self) -> None:
        """Feed the watchdog, at most once per half its timeout; cheap enough to call from every loop step."""
        if self.interval is None:
            return
        moment = time.monotonic()
        if moment - self._fed < self.interval:
            return
        self._fed = moment
        self.send("WATCHDOG=1")

    def close(self) -> None:
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None
