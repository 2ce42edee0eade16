"""A bureau's letter and table read in an isolated child, like archives: PDF and workbook parsers meet files
from strangers, so each read gets a memory cap and a time limit, and a hostile file costs a bounded moment.

A reader that runs out of time or memory on a file is the file's doing: the letter or table is reported
unreadable (with a reason the bureau can act on). Our own trouble (the child could not start, the disk is
full) raises EnvironmentFault, as everywhere in intake.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .isolation import Isolation, Limits, TimedOut
from .pdf import PdfError, PdfInfo, read_pdf
from .spreadsheet import Table, TableError, read_table

_READERS = Isolation(preload=("daemon.intake.pdf", "daemon.intake.spreadsheet", "pypdf", "openpyxl", "xlrd"))
_LIMITS = Limits(memory_bytes=768 << 20, timeout_seconds=60.0)
_TOO_SLOW = "文件结构异常，无法在合理时间内读取，请重新导出后发送"


def read_letter(path: Path, workdir: Path) -> PdfInfo | PdfError:
    try:
        return _READERS.run(_LIMITS, Path(tempfile.mkdtemp(prefix="letter-", dir=workdir)), read_pdf, path)
    except (TimedOut, MemoryError):
        return PdfError(_TOO_SLOW)


def read_summary(path: Path, workdir: Path) -> Table | TableError:
    try:
        return _READERS.run(_LIMITS, Path(tempfile.mkdtemp(prefix="table-", dir=workdir)), read_table, path)
    except (TimedOut, MemoryError):
        return TableError(_TOO_SLOW)
