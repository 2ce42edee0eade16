"""The summary workbook (汇总表) out: a sheet per call in the notice's columns, the bureaus' bundles, and
every received message.

Plain openpyxl features only (frozen header, column widths, fills), so that it opens cleanly in Excel, WPS
and LibreOffice alike. Styles are built once and shared by every cell, and rows are appended without
looking them up again: 15,000 rows take seconds (bench/staff.py), not minutes. Every text is data: made fit
for a cell (text.for_cell) and stored as text, so that a subject such as `=HYPERLINK(…)` or `#N/A` is never
read as a formula or an error value.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import TYPE_CHECKING

from ..app.views import Ledger, Standing
from ..campaign import CallRules
from ..domain import Code
from ..explain import (
    OUTCOME_WORDS,
    REPLY_WORDS,
    SEAL_WORDS,
    SHANGHAI,
    STATE_WORDS,
    TITLES,
    copy_text,
    documents_text,
    titles,
)
from ..tables import display_width
from ..text import for_cell

if TYPE_CHECKING:  # openpyxl (with numpy and Pillow, 25 MB) is loaded when a workbook is first made
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.worksheet.worksheet import Worksheet

ENTERPRISE_HEADERS = (
    "序号",
    "市",
    "企业名称",
    "质量标杆名称",
    "联系人",
    "联系电话",
    "状态",
    "提交次数",
    "最近提交时间",
    "问题",
    "电子邮箱",
    "受理版本数",
    "公章",
    "材料字数与图片",
    "雷同提示",
)
BUNDLE_HEADERS = ("市", "评选", "推荐文件", "汇总表", "列出企业", "已受理", "缺少", "迟报", "待解决")
MESSAGE_HEADERS = ("序号", "收到时间", "发件人", "主题", "企业", "结论", "人工决定", "问题", "回复", "编号")
_FONT_NAME = "等线"  # Office's default Chinese font; WPS and LibreOffice substitute their own
_CENTRED_HEADERS = {"序号", "提交次数", "受理版本数", "状态", "结论", "列出企业", "已受理"}
_TIMES = {"最近提交时间", "收到时间"}
_MAX_WIDTH = 60
_TIME_FORMAT = "yyyy-mm-dd hh:mm"


@dataclass(frozen=True)
class _Styles:
    """One style object of each kind, shared by every cell."""

    standing: dict[Standing, PatternFill]
    header: PatternFill
    font: Font
    bold: Font
    middle: Alignment
    centred: Alignment
    left: Alignment


@cache
def _styles() -> _Styles:
    from openpyxl.styles import Alignment, Font, PatternFill

    return _Styles(
        standing={
            Standing.ACCEPTED: PatternFill("solid", fgColor="C6EFCE"),
            Standing.REVIEW: PatternFill("solid", fgColor="FFEB9C"),
            Standing.PENDING: PatternFill("solid", fgColor="E4DFEC"),  # not the header's blue
            Standing.REJECTED: PatternFill("solid", fgColor="FFC7CE"),
            Standing.MISSING: PatternFill("solid", fgColor="EDEDED"),
        },
        header=PatternFill("solid", fgColor="DDEBF7"),
        font=Font(name=_FONT_NAME),
        bold=Font(name=_FONT_NAME, bold=True),
        middle=Alignment(vertical="center"),
        centred=Alignment(horizontal="center"),
        left=Alignment(horizontal="left"),
    )


def filename(day: date) -> str:
    return f"汇总表-{day:%Y%m%d}.xlsx"


def build(ledger: Ledger, rules: CallRules) -> bytes:
    from openpyxl import Workbook

    rows, messages, bundles = ledger.rows, ledger.messages, ledger.bundles
    workbook = Workbook()
    first = workbook.active
    assert first is not None
    workbook.remove(first)
    cities = {bureau.city: index for index, bureau in enumerate(rules.bureaus)}
    for call in rules.calls:
        mine = sorted((r for r in rows if r.call == call.code), key=lambda r: _city_order(r.city, cities))
        sheet = workbook.create_sheet(_sheet_title(call.name or "汇总表", workbook))
        _header(sheet, ENTERPRISE_HEADERS)
        for number, row in enumerate(mine, start=1):
            _append(
                sheet,
                [
                    number,
                    row.city,
                    row.name,
                    row.benchmark_title,
                    row.contact,
                    row.phone,
                    row.standing.value,
                    row.packages,
                    _local(row.last_received),
                    titles(row.open_problems, rules),
                    row.email,
                    row.versions,
                    SEAL_WORDS[row.seal] if row.seal else "",
                    documents_text(((d.role, d.contents) for d in row.documents), rules),
                    "；".join(
                        copy_text(c.kind, c.role, c.other, c.similarity, rules)
                        for c in ledger.copies_of(row.enterprise_id)
                    ),
                ],
            )
            sheet.cell(row=number + 1, column=7).fill = _styles().standing[row.standing]
        _style(sheet)
    if bundles:
        sheet = workbook.create_sheet("各市报送")
        _header(sheet, BUNDLE_HEADERS)
        for bundle in bundles:
            listed_call = rules.call(bundle.call)
            _append(
                sheet,
                [
                    bundle.city,
                    listed_call.name if listed_call else bundle.call,
                    f"{bundle.letter}（{bundle.letter_pages} 页）"
                    if bundle.letter and bundle.letter_pages
                    else bundle.letter or "—",
                    bundle.table or "—",
                    len(bundle.listed),
                    len(bundle.accepted),
                    "、".join(bundle.missing),
                    "是" if bundle.late else "",
                    "；".join(TITLES[Code(code)] for code in bundle.codes),
                ],
            )
        _style(sheet)
    log = workbook.create_sheet("全部来信")
    _header(log, MESSAGE_HEADERS)
    for number, view in enumerate(messages, start=1):
        decision = view.decisions[-1] if view.decisions else None
        _append(
            log,
            [
                number,
                _local(view.received_at),
                view.sender or "",
                view.subject,
                view.enterprise or (f"{view.city}市工业和信息化局" if view.city else ""),
                OUTCOME_WORDS[view.outcome],
                f"{OUTCOME_WORDS[decision.outcome]}：{decision.note}" if decision else "",
                titles(view.all_problems, rules),
                "、".join(
                    f"{REPLY_WORDS.get(r.kind, r.kind)}（{STATE_WORDS.get(r.state.value, r.state.value)}）"
                    for r in view.replies
                ),
                view.reference,
            ],
        )
    _style(log)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _append(sheet: Worksheet, values: list[object]) -> None:
    """A row of data, its texts fit for a cell and kept as text. The cells are made here rather than looked
    up after the append: `sheet.max_row` scans every cell, which made a workbook of 15,000 rows take minutes."""
    from openpyxl.cell.cell import Cell

    row: list[object] = []
    for value in values:
        if isinstance(value, str):
            cell = Cell(sheet, value=for_cell(value))
            cell.data_type = "s"  # never a formula, whatever it starts with
            row.append(cell)
        else:
            row.append(value)
    sheet.append(row)


def _city_order(city: str, cities: dict[str, int]) -> tuple[int, str]:
    """Rows in the order of the configured cities (济南 … 菏泽), the table's 济南市 counting as 济南; with no
    cities configured, the roster's own order."""
    if not cities:
        return 0, ""
    for name, index in cities.items():
        if city.startswith(name):
            return index, city
    return len(cities), city


def _sheet_title(name: str, workbook: Workbook) -> str:
    """A sheet title Excel accepts: at most 31 characters, none of []:*?/\\, distinct."""
    cleaned = "".join("_" if ch in "[]:*?/\\" else ch for ch in name)[:31] or "汇总表"
    title, counter = cleaned, 2
    while title in workbook.sheetnames:
        title, counter = f"{cleaned[:28]}（{counter}）", counter + 1
    return title


def _header(sheet: Worksheet, headers: tuple[str, ...]) -> None:
    styles = _styles()
    sheet.append(list(headers))
    for cell in sheet[1]:
        cell.font = styles.bold
        cell.fill = styles.header
        cell.alignment = styles.middle
    sheet.freeze_panes = "A2"
    # printed: landscape, as wide as one page, the header repeated on every page
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_title_rows = "1:1"
    sheet.print_options.gridLines = True


def _local(moment: datetime | None) -> datetime | None:
    """Excel has no time zones: times are written as Beijing time."""
    return moment.astimezone(SHANGHAI).replace(tzinfo=None) if moment else None


def _display_width(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, datetime):
        return 17
    return display_width(str(value))


def _style(sheet: Worksheet) -> None:
    """Fonts, alignment and number formats by column, then widths; one shared style object each."""
    from openpyxl.utils import get_column_letter

    styles = _styles()
    headers = [cell.value for cell in sheet[1]]
    widths = [_display_width(h) for h in headers]
    for row in sheet.iter_rows(min_row=2):
        for index, (cell, header) in enumerate(zip(row, headers, strict=False)):
            cell.font = styles.font
            if header in _TIMES:
                cell.number_format = _TIME_FORMAT
                cell.alignment = styles.left
            elif header in _CENTRED_HEADERS:
                cell.alignment = styles.centred
            widths[index] = max(widths[index], _display_width(cell.value))
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = min(max(width + 2, 6), _MAX_WIDTH)
