"""One logging setup for every command: a level, and a format that suits where the lines go.

Under systemd (JOURNAL_STREAM names the stream we write to) every line starts with its syslog priority as
sd-daemon(3) describes (`<3>` error, `<4>` warning, `<6>` info, `<7>` debug) and carries no timestamp: the
journal stamps each line and filters by priority itself. Anywhere else lines carry a timestamp.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

LEVELS = ("debug", "info", "warning", "error")

_PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))
_DEBUG_PRIORITY = 7
_PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_JOURNAL = "%(name)s: %(message)s"
_CHATTY = ("apscheduler",)
"""Libraries whose INFO lines narrate every job run: shown only at debug."""


def priority(levelno: int) -> int:
    """The syslog priority of a logging level."""
    return next((value for level, value in _PRIORITIES if levelno >= level), _DEBUG_PRIORITY)


class JournalFormatter(logging.Formatter):
    """Each line prefixed with its priority: a traceback's lines stay at the record's priority too."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


class _Stderr(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is when a line is logged (tests swap it), like logging's last resort."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def to_journal(stream: TextIO) -> bool:
    """Whether `stream` is the journal's: JOURNAL_STREAM holds its device and inode (systemd.exec(5))."""
    value = os.environ.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(part) for part in value.split(":"))
        status = os.fstat(stream.fileno())
    except (ValueError, OSError):
        return False
    return (status.st_dev, status.st_ino) == (device, inode)


_installed: logging.Handler | None = None


def setup(level: str = "info") -> None:
    """Log at `level` (one of LEVELS) and above to stderr; calling it again replaces the earlier setup."""
    global _installed
    handler = _Stderr()
    handler.setFormatter(JournalFormatter(_JOURNAL) if to_journal(sys.stderr) else logging.Formatter(_PLAIN))
    root = logging.getLogger()
    if _installed is not None:
        root.removeHandler(_installed)
    root.addHandler(handler)
    _installed = handler
    numeric = logging.getLevelNamesMapping()[level.upper()]
    root.setLevel(numeric)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(numeric if numeric <= logging.DEBUG else logging.WARNING)
