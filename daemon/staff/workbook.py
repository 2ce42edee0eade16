"""The summary workbook (汇总表) out: a sheet per call in the notice's columns, the bureaus' bundles, and
every received message.

Plain openpyxl features only (frozen header, column widths, fills, named cell styles), so that it opens
cleanly in Excel, WPS and LibreOffice alike. Text is in the workbook's default font, whose theme gives
Chinese its own typeface. Sheets are streamed (openpyxl's write-only mode), and a cell object is made only
for a value that needs more than the defaults: 15,000 rows take a few seconds (bench/staff.py). Every text
is data: made fit for a cell (text.for_cell) and stored as text, so that a subject such as `=HYPERLINK(…)`
or `#N/A` is never read as a formula or an error value.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from copy import copy
from datetime import date, datetime
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
_CENTRED_HEADERS = {"序号", "提交次数", "受理版本数", "状态", "结论", "列出企业", "已受理"}
_TIMES = {"最近提交时间", "收到时间"}
_STANDING_COLUMN = ENTERPRISE_HEADERS.index("状态")
_MAX_WIDTH = 60
_TIME_FORMAT = "yyyy-mm-dd hh:mm"

_CENTRED, _TIME, _HEADER = "汇总表·居中", "汇总表·时间", "汇总表·表头"
_FILLS = {
    Standing.ACCEPTED: "C6EFCE",
    Standing.REVIEW: "FFEB9C",
    Standing.PENDING: "E4DFEC",  # not the header's blue
    Standing.REJECTED: "FFC7CE",
    Standing.MISSING: "EDEDED",
}
_HEADER_FILL = "DDEBF7"


def _standing_style(standing: Standing) -> str:
    return f"汇总表·{standing.value}"


def _add_styles(workbook: Workbook) -> None:
    from openpyxl.styles import DEFAULT_FONT, Alignment, NamedStyle, PatternFill

    font, bold = copy(DEFAULT_FONT), copy(DEFAULT_FONT)
    bold.b = True
    centred = Alignment(horizontal="center")
    styles = [
        NamedStyle(_CENTRED, font=font, alignment=centred),
        NamedStyle(_TIME, font=font, alignment=Alignment(horizontal="left"), number_format=_TIME_FORMAT),
        NamedStyle(
            _HEADER, font=bold, alignment=Alignment(vertical="center"), fill=PatternFill("solid", fgColor=_HEADER_FILL)
        ),
    ]
    styles += [
        NamedStyle(_standing_style(standing), font=font, alignment=centred, fill=PatternFill("solid", fgColor=colour))
        for standing, colour in _FILLS.items()
    ]
    for style in styles:
        workbook.add_named_style(style)


class _Table:
    """One sheet. A streamed sheet takes its column widths before its first row, so the rows are kept, each
    text's width measured, until `finish` writes them."""

    def __init__(self, workbook: Workbook, title: str, headers: Sequence[str]) -> None:
        self.workbook = workbook
        self.title = title
        self.headers = list(headers)
        self.styles = [_TIME if h in _TIMES else _CENTRED if h in _CENTRED_HEADERS else None for h in headers]
        self.widths = [display_width(header) for header in headers]
        self.rows: list[tuple[list[object], dict[int, str] | None]] = []

    def append(self, values: list[object], *, styles: dict[int, str] | None = None) -> None:
        """A row of data, its texts fit for a cell and kept as text; `styles` overrides a column's style."""
        values = [for_cell(value) if isinstance(value, str) else value for value in values]
        self.widths = [max(width, _display_width(value)) for width, value in zip(self.widths, values, strict=True)]
        self.rows.append((values, styles))

    def finish(self) -> None:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ERROR_CODES
        from openpyxl.utils import get_column_letter
        from openpyxl.worksheet.worksheet import Worksheet

        sheet = self.workbook.create_sheet(self.title)
        for index, width in enumerate(self.widths, start=1):
            sheet.column_dimensions[get_column_letter(index)].width = min(max(width + 2, 6), _MAX_WIDTH)
        sheet.freeze_panes = "A2"
        # printed: landscape, as wide as one page, the header repeated on every page
        sheet.page_setup.orientation = "landscape"
        sheet.page_setup.paperSize = Worksheet.PAPERSIZE_A4
        sheet.page_setup.fitToWidth = 1
        sheet.page_setup.fitToHeight = 0
        sheet.sheet_properties.pageSetUpPr.fitToPage = True
        sheet.print_title_rows = "1:1"
        sheet.print_options.gridLines = True

        def streamed(value: object, style: str | None) -> object:
            """The value itself, or a cell where it needs a style or must be kept as text although it reads
            as a formula or an error value."""
            formula_like = isinstance(value, str) and (value.startswith("=") or value in ERROR_CODES)
            if style is None and not formula_like:
                return value
            cell = WriteOnlyCell(sheet, value=value)
            if formula_like:
                cell.data_type = "s"
            if style is not None:
                cell.style = style
            return cell

        sheet.append([streamed(header, _HEADER) for header in self.headers])
        for values, styles in self.rows:
            chosen = [styles.get(i, s) for i, s in enumerate(self.styles)] if styles else self.styles
            sheet.append([streamed(value, style) for value, style in zip(values, chosen, strict=True)])


def filename(day: date) -> str:
    return f"汇总表-{day:%Y%m%d}.xlsx"


def build(ledger: Ledger, rules: CallRules) -> bytes:
    from openpyxl import Workbook

    rows, messages, bundles = ledger.rows, ledger.messages, ledger.bundles
    workbook = Workbook(write_only=True)
    _add_styles(workbook)
    cities = {bureau.city: index for index, bureau in enumerate(rules.bureaus)}
    for call in rules.calls:
        mine = sorted((r for r in rows if r.call == call.code), key=lambda r: _city_order(r.city, cities))
        table = _Table(workbook, _sheet_title(call.name or "汇总表", workbook), ENTERPRISE_HEADERS)
        for number, row in enumerate(mine, start=1):
            table.append(
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
                styles={_STANDING_COLUMN: _standing_style(row.standing)},
            )
        table.finish()
    if bundles:
        table = _Table(workbook, "各市报送", BUNDLE_HEADERS)
        for bundle in bundles:
            listed_call = rules.call(bundle.call)
            table.append(
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
        table.finish()
    log = _Table(workbook, "全部来信", MESSAGE_HEADERS)
    for number, view in enumerate(messages, start=1):
        decision = view.decisions[-1] if view.decisions else None
        log.append(
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
    log.finish()
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


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


def _local(moment: datetime | None) -> datetime | None:
    """Excel has no time zones: times are written as Beijing time."""
    return moment.astimezone(SHANGHAI).replace(tzinfo=None) if moment else None


def _display_width(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, datetime):
        return 17
    return display_width(str(value))
