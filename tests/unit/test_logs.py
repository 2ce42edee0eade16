"""The logging setup: syslog priority prefixes when writing to the journal, timestamps elsewhere, levels."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon import logs


@pytest.fixture
def stderr_file(tmp_path: Path) -> Iterator[Path]:
    """A file to stand for stderr; the root logger's handlers and level are restored afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield tmp_path / "stderr.txt"
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@contextlib.contextmanager
def writing_to(path: Path) -> Iterator[None]:
    """sys.stderr is `path` meanwhile (set inside the test: pytest swaps sys.stderr between its phases)."""
    with path.open("a", encoding="utf-8") as stream, contextlib.redirect_stderr(stream):
        yield


def journal_of(path: Path) -> str:
    status = os.stat(path)
    return f"{status.st_dev}:{status.st_ino}"


@pytest.mark.parametrize(
    ("level", "expected"),
    [(logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6), (logging.DEBUG, 7), (5, 7)],
)
def test_levels_map_to_syslog_priorities(level: int, expected: int) -> None:
    assert logs.priority(level) == expected


def test_under_systemd_every_line_carries_its_priority_and_no_timestamp(
    stderr_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stderr_file.touch()
    monkeypatch.setenv("JOURNAL_STREAM", journal_of(stderr_file))
    log = logging.getLogger("daemon.test")
    with writing_to(stderr_file):
        logs.setup("debug")
        log.debug("fine detail")
        log.info("started")
        log.warning("slow server")
        try:
            raise ValueError("bad message")
        except ValueError:
            log.exception("cycle failed")

    lines = stderr_file.read_text(encoding="utf-8").splitlines()
    assert lines[:4] == [
        "<7>daemon.test: fine detail",
        "<6>daemon.test: started",
        "<4>daemon.test: slow server",
        "<3>daemon.test: cycle failed",
    ]
    assert len(lines) > 5 and all(line.startswith("<3>") for line in lines[3:])  # the traceback too
    assert lines[-1] == "<3>ValueError: bad message"


def test_elsewhere_lines_are_timestamped_and_below_the_level_dropped(
    stderr_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")  # another stream's: stderr was redirected away from the journal
    log = logging.getLogger("daemon.test")
    with writing_to(stderr_file):
        logs.setup("warning")
        log.info("not shown")
        log.warning("shown")

    (line,) = stderr_file.read_text(encoding="utf-8").splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING daemon\.test: shown", line)


def test_setting_up_again_replaces_the_handler_and_quiets_the_scheduler(stderr_file: Path) -> None:
    with writing_to(stderr_file):
        logs.setup("info")
        logs.setup("info")
        logging.getLogger("apscheduler.scheduler").info("Added job")
        logging.getLogger("daemon.test").info("once")

    lines = stderr_file.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 and lines[0].endswith("INFO daemon.test: once")
