"""The summary table (汇总表) in: an .xlsx as offices really fill it.

The header row need not be the first (a merged title row above it is common); the enterprise column is the
one whose header contains 企业名称 or 单位名称, the others are found by their usual headers.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from ..domain import RosterEntry
from ..intake.match import normalise

_NAME_HEADERS = ("企业名称", "单位名称")
_COLUMN_HEADERS: dict[str, tuple[str, ...]] = {
    "city": ("市",),
    "title": ("标杆名称", "项目名称", "典型经验名称"),
    "contact": ("联系人",),
    "phone": ("电话", "手机"),
    "email": ("邮箱", "email", "e-mail", "电子邮件"),
}
_HEADER_SEARCH_ROWS = 30
_MAX_HEADER_CHARS = 12


class RosterError(Exception):
    """The file is not a usable summary table; the message says what to fix."""


def read_roster(path: Path) -> list[RosterEntry]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
        raise RosterError(f"{path}: not an .xlsx workbook ({error}); save it from Excel or WPS as .xlsx") from error
    try:
        for sheet in workbook.worksheets:
            rows = [[_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
            entries = _entries(rows)
            if entries == []:
                raise RosterError(f"{path}: the table lists no enterprise under its 企业名称/单位名称 column")
            if entries is not None:
                return entries
    finally:
        workbook.close()
    raise RosterError(
        f"{path}: no column headed 企业名称 or 单位名称 in the first {_HEADER_SEARCH_ROWS} rows of any sheet"
    )


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _entries(rows: list[list[str]]) -> list[RosterEntry] | None:
    for index, row in enumerate(rows[:_HEADER_SEARCH_ROWS]):
        name_column = _find(row, _NAME_HEADERS)
        if name_column is None or (len(row[name_column]) > _MAX_HEADER_CHARS and sum(map(bool, row)) < 2):
            continue  # a merged title row (…申报单位名称汇总表): one long cell, not the header
        columns = {field: _find(row, words, exclude=name_column) for field, words in _COLUMN_HEADERS.items()}
        entries: dict[str, RosterEntry] = {}
        for data in rows[index + 1 :]:
            name = _cell(data, name_column)
            if not name or normalise(name) in entries:
                continue
            fields = {field: _cell(data, column) for field, column in columns.items()}
            entries[normalise(name)] = RosterEntry(name=name, **fields)
        return list(entries.values())
    return None


def _find(row: list[str], words: tuple[str, ...], exclude: int | None = None) -> int | None:
    for column, header in enumerate(row):
        compact = normalise(header).lower()
        if column != exclude and any(word.lower() in compact for word in words):
            return column
    return None


def _cell(row: list[str], column: int | None) -> str:
    if column is None or column >= len(row):
        return ""
    return row[column]
