"""The main thread learns of SIGTERM at once, whichever of the process's threads the signal was given to."""

from __future__ import annotations

import select
import signal
import threading
import time
from typing import Any

import pytest

from daemon.service.stop_signals import StopSignals


def signal_another_thread(sig: signal.Signals, after: threading.Event | None = None) -> threading.Thread:
    """`sig` sent to, and taken by, a thread that is not the main one (as the kernel may choose), once `after`
    is set; the thread, started."""

    def take() -> None:
        if after is not None:
            after.wait(60)
        signal.pthread_kill(threading.get_ident(), sig)

    thread = threading.Thread(target=take)
    thread.start()
    return thread


def test_a_signal_that_another_thread_takes_while_the_main_thread_waits_ends_the_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waiting = threading.Event()
    real_select = select.select

    def select_noting_the_wait(*args: Any) -> Any:
        waiting.set()
        return real_select(*args)

    monkeypatch.setattr(select, "select", select_noting_the_wait)
    with StopSignals() as signals:
        taker = signal_another_thread(signal.SIGTERM, after=waiting)
        started = time.monotonic()
        received = signals.wait(60)
        waited = time.monotonic() - started
        taker.join()
        assert signals.wait(0) is signal.SIGTERM  # and it stays received

    assert received is signal.SIGTERM
    assert waited < 30  # woken by the signal, not by the end of the minute


def test_the_first_signal_is_the_one_said() -> None:
    with StopSignals() as signals:
        signal_another_thread(signal.SIGINT).join()
        signal_another_thread(signal.SIGTERM).join()
        assert signals.wait(60) is signal.SIGINT


def test_the_handlers_and_the_wakeup_socket_are_given_back() -> None:
    def before(_signum: int, _frame: object) -> None:
        return None

    previous = signal.signal(signal.SIGTERM, before)
    try:
        with StopSignals():
            assert signal.getsignal(signal.SIGTERM) is not before
        assert signal.getsignal(signal.SIGTERM) is before
        assert signal.set_wakeup_fd(-1) == -1  # none was set before: none is left set
    finally:
        signal.signal(signal.SIGTERM, previous)
