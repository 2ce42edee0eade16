"""Functions the isolation tests run in a child: they must be importable by name there (tests/support is on
the path), not defined in a test module's __main__."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def where_and_who(value: int) -> tuple[int, str, bool, int]:
    """The value doubled, the working folder, whether this process leads its own group, and its pid."""
    return value * 2, os.getcwd(), os.getpgid(0) == os.getpid(), os.getpid()


def threads_with_image_libraries() -> int:
    """Import what reads documents' pictures (numpy, OpenCV: each has a thread pool of its own), run an
    OpenCV function, and count this process's threads."""
    import cv2
    import numpy

    cv2.GaussianBlur(numpy.zeros((512, 512), numpy.uint8), (5, 5), 0)
    return len(os.listdir("/proc/self/task"))


def fail(text: str) -> None:
    raise ValueError(text)


def allocate(size: int) -> int:
    """Touch `size` bytes: a MemoryError under a smaller cap."""
    return len(bytearray(size))


def sleep_with_a_grandchild(marker: Path) -> None:
    """Start a long `sleep` (as a tool would be started), write its pid to `marker`, then wait forever."""
    sleeper = subprocess.Popen(["sleep", "60"])
    marker.write_text(f"{os.getpid()} {sleeper.pid}")
    time.sleep(60)


def kill_myself() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def unpicklable_error() -> None:
    raise _Stubborn("status", "detail")


class _Stubborn(Exception):
    """An exception whose __init__ does not match its args, so pickle cannot rebuild it."""

    def __init__(self, status: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status


_KEPT: list[bytearray] = []


def keep(size: int) -> int:
    """Allocate `size` bytes and keep them after the call: the child's address space stays grown."""
    _KEPT.append(bytearray(size))
    return size


def burn(seconds: float) -> None:
    """Use `seconds` of processor time."""
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass


def leave_running() -> int:
    """Start a long `sleep` and return without waiting for it: its pid."""
    return subprocess.Popen(["sleep", "60"]).pid
