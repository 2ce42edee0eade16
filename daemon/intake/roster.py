"""The summary table (汇总表) in, as the roster of enterprises invited to submit.

The workbook is read as a city bureau's table is (`spreadsheet.py`), in the readers' isolated child: the
daemon itself never loads the workbook parser (openpyxl, which brings numpy and Pillow: 24 MB that stayed for
good after the first roster). Here a table that cannot be read, or lists nobody, becomes a `RosterError` for
the staff member loading it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..domain import RosterEntry
from .spreadsheet import TableError


class RosterError(Exception):
    """The file is not a usable summary table; the message says what to fix."""


def read_roster(path: Path) -> list[RosterEntry]:
    """The listed enterprises; raises EnvironmentFault when the reader could not run (our side, not the file)."""
    from .readers import read_summary  # here: commands that read no roster start without the readers

    with tempfile.TemporaryDirectory(prefix="shenbao-roster-") as workdir:
        table = read_summary(path, Path(workdir))
    if isinstance(table, TableError):
        raise RosterError(f"{path}: {table.reason}")
    if not table.rows:
        raise RosterError(f"{path}: 汇总表的企业名称列下没有任何企业")
    return list(table.rows)
