"""Summary tables (汇总表) as offices really fill them: .xlsx or old .xls, title rows above the header row.

One reader serves the roster and the city bureaus' tables. The files come from strangers, so the format is
told by content (never by the name), everything read is capped, and a bad file gives a `TableError` whose
reason a person can act on, instead of an exception.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import re
import warnings
import zipfile
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..domain import RosterEntry
from .match import normalise

if TYPE_CHECKING:
    import xlrd

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_HEADER_SEARCH_ROWS = 30
_MB = 1024 * 1024


@dataclass(frozen=True)
class TableLimits:
    """Caps that keep a hostile workbook from costing much memory or time."""

    max_file_bytes: int = 10 * _MB
    max_unpacked_bytes: int = 32 * _MB
    """An .xlsx's XML parts, as its zip directory declares them (zipfile never inflates past that)."""
    max_sheets: int = 20
    max_rows: int = 10_000
    max_columns: int = 64
    max_cell_chars: int = 500


@dataclass(frozen=True)
class Table:
    sheet_title_text: str
    """The worksheet's name (its tab), sometimes the only place that says 附件6."""
    heading: str
    """The rows above the header row, joined: 「附件3 2022年全省质量标杆申报汇总表（济南市）」."""
    rows: tuple[RosterEntry, ...]


@dataclass(frozen=True)
class TableError:
    """Why the file gives no table, in words for the sender."""

    reason: str


_SAVE_AS = "请用 Excel 或 WPS 另存为 .xlsx 后重新发送"
_NOT_A_WORKBOOK = f"不是 Excel 工作簿（.xlsx 或 .xls），{_SAVE_AS}"
_DAMAGED = f"工作簿已损坏，无法读取，{_SAVE_AS}"
_ENCRYPTED = "工作簿设有打开密码，请取消密码后另存为 .xlsx 重新发送"
_NO_HEADER = (
    f"各工作表前 {_HEADER_SEARCH_ROWS} 行中都没有「企业名称」「单位名称」「申报单位全称」等表头，"
    "请使用通知所附汇总表的格式"
)


class _Refused(Exception):
    """A reason to give up on the file, raised from inside the readers."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_table(path: Path, limits: TableLimits = TableLimits()) -> Table | TableError:
    """The first worksheet with an enterprise column, read by its headers; never raises on a bad file."""
    try:
        with path.open("rb") as stream:
            data = stream.read(limits.max_file_bytes + 1)
    except OSError:
        return TableError("文件无法读取")
    if len(data) > limits.max_file_bytes:
        return TableError(f"文件超过 {limits.max_file_bytes / _MB:g} MB，不像是汇总表，请核对后重新发送")
    if data.startswith(b"PK\x03\x04"):
        sheets = _xlsx_sheets(data, limits)
    elif data.startswith(_OLE_MAGIC):
        sheets = _xls_sheets(data, limits)
    else:
        return TableError(_NOT_A_WORKBOOK)
    try:
        with warnings.catch_warnings(), contextlib.closing(sheets):
            warnings.simplefilter("ignore")  # openpyxl warns about styles and extensions it skips
            for title, rows in sheets:
                table = _table(title, rows, limits)
                if table is not None:
                    return table
    except _Refused as refused:
        return TableError(refused.reason)
    except Exception:  # noqa: BLE001 - openpyxl, xlrd and olefile raise many types on damaged files
        return TableError(_DAMAGED)
    return TableError(_NO_HEADER)


def is_workbook(path: Path) -> bool:
    """Whether the file is an Excel workbook by its content: a zip holding xl/workbook.xml, or an OLE2 file
    with a Workbook stream. Never raises."""
    try:
        with path.open("rb") as stream:
            head = stream.read(len(_OLE_MAGIC))
        if head.startswith(b"PK\x03\x04"):
            with zipfile.ZipFile(path) as archive:
                return "xl/workbook.xml" in archive.namelist()
        if head == _OLE_MAGIC:
            import olefile

            with olefile.OleFileIO(str(path)) as ole:
                return bool(ole.exists("Workbook") or ole.exists("Book"))
    except Exception:  # noqa: BLE001 - zipfile and olefile raise many types on damaged files
        return False
    return False


_Sheets = Generator[tuple[str, Iterator[Sequence[object]]], None, None]


def _xlsx_sheets(data: bytes, limits: TableLimits) -> _Sheets:
    from openpyxl import load_workbook

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        parts = archive.infolist()
    if "xl/workbook.xml" not in {part.filename for part in parts}:
        raise _Refused(_NOT_A_WORKBOOK)
    if sum(p.file_size for p in parts if p.filename.endswith((".xml", ".rels"))) > limits.max_unpacked_bytes:
        raise _Refused(f"工作簿解压后超过 {limits.max_unpacked_bytes / _MB:g} MB，不像是汇总表，请核对后重新发送")
    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        for sheet in book.worksheets[: limits.max_sheets]:
            rows = sheet.iter_rows(max_row=limits.max_rows + 1, max_col=limits.max_columns, values_only=True)
            yield str(sheet.title), rows
    finally:
        book.close()


def _xls_sheets(data: bytes, limits: TableLimits) -> _Sheets:
    import olefile
    import xlrd
    from xlrd.biffh import XLRDError

    with olefile.OleFileIO(io.BytesIO(data)) as ole:
        if ole.exists("EncryptedPackage"):  # an .xlsx with an open password is an OLE2 file
            raise _Refused(_ENCRYPTED)
        if not (ole.exists("Workbook") or ole.exists("Book")):
            raise _Refused(_NOT_A_WORKBOOK)
    try:
        # ragged_rows: a lone cell far out does not pad every row of the sheet to its column
        book = xlrd.open_workbook(file_contents=data, on_demand=True, ragged_rows=True, logfile=io.StringIO())
    except XLRDError as error:
        raise _Refused(_ENCRYPTED if "encrypted" in str(error).lower() else _DAMAGED) from error
    try:
        for index in range(min(book.nsheets, limits.max_sheets)):
            sheet = book.sheet_by_index(index)
            yield sheet.name, _xls_rows(sheet, limits)
            book.unload_sheet(index)
    finally:
        book.release_resources()


_XLS_VALUES = (1, 2)  # xlrd's XL_CELL_TEXT and XL_CELL_NUMBER; error codes and dates are no text we need


def _xls_rows(sheet: xlrd.sheet.Sheet, limits: TableLimits) -> Iterator[Sequence[object]]:
    for index in range(min(sheet.nrows, limits.max_rows + 1)):
        yield [c.value if c.ctype in _XLS_VALUES else None for c in sheet.row_slice(index, 0, limits.max_columns)]


# -- the table inside a sheet ---------------------------------------------------------------------------------

_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("name", ("企业名称", "单位名称", "企业全称", "单位全称", "申报单位")),
    ("title", ("标杆名称", "经验名称", "项目名称")),
    ("phone", ("电话", "手机", "手机号", "联系方式")),
    ("email", ("邮箱", "信箱", "邮件", "mail")),
    ("contact", ("联系人", "姓名")),
    ("city", ("市", "地市", "地区")),
)
"""A header names a field when it ends with one of its words; earlier fields win (联系人电话 is a phone)."""
_HEADER_SLACK = 4
"""Characters a header may put before its word: 申报企业名称, 所属地市, 企业联系人."""
_NOTE = re.compile(r"\([^)]*\)|[*※]|(?:号码|地址)$")
_FOOTER = re.compile(
    r"^(?:填表人|填报人|制表人|经办人|审核人|负责人|联系人|合计|总计|小计|备注|说明|注[:\d])|盖章|签字|填报日期|填表日期"
)


def _field(cell: str) -> str | None:
    """The field a header cell names. A cell with a colon is a form line (申报单位：…), not a header."""
    text = _NOTE.sub("", normalise(cell).lower())
    if not text or ":" in text:
        return None
    for field, words in _FIELDS:
        if any(text.endswith(w) and len(text) - len(w) <= _HEADER_SLACK for w in words):
            return field
    return None


def _fields(cells: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for column, cell in enumerate(cells):
        field = _field(cell)
        if field is not None:
            found.setdefault(field, column)
    return found


def _table(title: str, source: Iterator[Sequence[object]], limits: TableLimits) -> Table | None:
    rows: Iterator[tuple[int, list[str]]] = (
        (number, [_text(value, limits) for value in row]) for number, row in enumerate(source, start=1)
    )
    heading: list[str] = []
    for _, cells in itertools.islice(rows, _HEADER_SEARCH_ROWS):
        columns = _fields(cells)
        if "name" in columns:
            break
        heading += filter(None, cells)
    else:
        return None
    following = next(rows, None)
    if following is not None:
        below = _fields(following[1])
        if below and "name" not in below and not _cell(following[1], columns["name"]):
            columns |= below  # a two-line header: 联系人 above 姓名 | 手机 | 邮箱
        else:
            rows = itertools.chain([following], rows)
    entries: dict[str, RosterEntry] = {}
    for number, cells in rows:
        if not any(cells):
            continue
        if number > limits.max_rows:
            raise _Refused(f"表格超过 {limits.max_rows} 行，不像是汇总表，请核对后重新发送")
        if _FOOTER.search(normalise(next(filter(None, cells)))):
            break  # 填表人、合计、盖章: what follows is notes, not enterprises
        name = _cell(cells, columns["name"])
        key = normalise(name)
        if not key or key in entries or _field(name) == "name":
            continue  # no name, a name listed twice, or the header repeated on a second page
        fields = {field: _cell(cells, columns.get(field)) for field, _ in _FIELDS[1:]}
        entries[key] = RosterEntry(name=name, **fields)
    return Table(title, " ".join(heading), tuple(entries.values()))


def _text(value: object, limits: TableLimits) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 13863100001 stored as a number; 1.0 in an .xls 序号 column
    return " ".join(str(value)[: limits.max_cell_chars].split())


def _cell(cells: Sequence[str], column: int | None) -> str:
    if column is None or column >= len(cells):
        return ""
    return cells[column]


# -- which call a table is for --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallLabel:
    """How the notice names one call's summary table."""

    code: str
    """The call in configuration: "province", "national"."""
    table_label: str
    """The table's label in the notice: 附件3."""
    name: str
    """The call's name: 2022年全省质量标杆."""


DEFAULT_CALLS = (
    CallLabel("province", "附件3", "2022年全省质量标杆"),
    CallLabel("national", "附件6", "2022年全国质量标杆"),
)
_YEAR = re.compile(r"^\d{4}年度?")


def call_words(calls: Sequence[CallLabel]) -> dict[str, tuple[str, ...]]:
    """Each call's words: its label, and what sets its name apart from the others' (全省, 全国).

    Tables drop the year and word the rest of the title freely, so only the part of a name that the other
    calls' names do not share is looked for.
    """
    names = [_YEAR.sub("", normalise(call.name)) for call in calls]
    ends = [name[::-1] for name in names]
    shared = len(os.path.commonprefix(ends)) if len(names) > 1 else 0  # noqa: RUF071 - characters, not paths
    return {
        call.code: tuple(filter(None, (normalise(call.table_label), name[: len(name) - shared] or name)))
        for call, name in zip(calls, names, strict=True)
    }


def call_hint(table: Table, calls: Sequence[CallLabel] = DEFAULT_CALLS) -> str | None:
    """The call whose words the table's title text uses; None when it names none, or more than one."""
    text = normalise(f"{table.sheet_title_text}|{table.heading}")
    found = [code for code, words in call_words(calls).items() if any(w in text for w in words)]
    return found[0] if len(found) == 1 else None
