"""SIGTERM and SIGINT, as the daemon's main thread learns of them whichever thread the kernel gives them to.

The kernel hands a process's signal to any of its threads that does not block it. Python runs the handler
only in the main thread, when that thread next runs Python code, and a signal another thread took does not
wake a main thread asleep in a lock: an Event's wait sleeps on, for ever when it has no timeout. So the main
thread sleeps in select() on a socket to which Python's C-level handler writes each signal's number, from
whatever thread took it (`signal.set_wakeup_fd`), and reads the number from there.

The Python-level handler does nothing: it is there so that the signal is caught rather than ending the
process. It runs between any two steps of the main thread, even inside a method of an Event, whose lock is
not reentrant: setting that Event from the handler could wait for the lock the same thread holds.
"""

from __future__ import annotations

import contextlib
import select
import signal
import socket
from collections.abc import Iterable
from types import FrameType, TracebackType


class StopSignals:
    """Catches the signals while open (a context manager, in the main thread only)."""

    def __init__(self, signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT)) -> None:
        self.signals = frozenset(signals)
        self.received: signal.Signals | None = None
        self._reader, self._writer = socket.socketpair()
        for end in (self._reader, self._writer):
            end.setblocking(False)
        self._wakeup = -1

    def __enter__(self) -> StopSignals:
        self._wakeup = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        self._handlers = {sig: signal.getsignal(sig) for sig in self.signals}
        for sig in self.signals:
            signal.signal(sig, _caught)
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        for sig, handler in self._handlers.items():  # None: one set outside Python, which cannot be put back
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        signal.set_wakeup_fd(self._wakeup)
        self._reader.close()
        self._writer.close()

    def wait(self, seconds: float) -> signal.Signals | None:
        """Sleep up to `seconds`, less when a signal comes; the first signal received so far, if any."""
        if self.received is None:
            select.select([self._reader], [], [], seconds)
            with contextlib.suppress(BlockingIOError):
                for number in self._reader.recv(4096):
                    if number in self.signals and self.received is None:
                        self.received = signal.Signals(number)
        return self.received


def _caught(_signum: int, _frame: FrameType | None) -> None:
    """The signal's number is on the wakeup socket, where `StopSignals.wait` reads it."""
