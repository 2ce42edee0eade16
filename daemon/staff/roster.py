"""The summary table (汇总表) in, as the roster of enterprises invited to submit.

Reading the workbook is intake's job (`intake.spreadsheet`, shared with the city bureaus' tables); here a
table that cannot be read, or lists nobody, becomes a `RosterError` for the staff member loading it.
"""

from __future__ import annotations

from pathlib import Path

from ..domain import RosterEntry
from ..intake.spreadsheet import TableError, read_table


class RosterError(Exception):
    """The file is not a usable summary table; the message says what to fix."""


def read_roster(path: Path) -> list[RosterEntry]:
    table = read_table(path)
    if isinstance(table, TableError):
        raise RosterError(f"{path}: {table.reason}")
    if not table.rows:
        raise RosterError(f"{path}: 汇总表的企业名称列下没有任何企业")
    return list(table.rows)
