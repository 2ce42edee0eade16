"""The summary workbook (汇总表) out: one row per roster enterprise, then every received message.

Plain openpyxl features only (frozen header, column widths, fills), so that it opens cleanly in Excel, WPS
and LibreOffice alike. Every text is data: made fit for a cell (text.for_cell) and stored as text, so that a
subject such as `=HYPERLINK(…)` or `#N/A` is never read as a formula or an error value.
"""

from __future__ import annotations

import io
from datetime import date, datetime

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from ..campaign import CallRules
from ..domain import Outcome
from ..explain import OUTCOME_WORDS, SHANGHAI, titles
from ..tables import display_width
from ..text import for_cell
from .status import EnterpriseStatus, MessageView, Standing

ENTERPRISE_HEADERS = (
    "序号",
    "所属市",
    "企业名称",
    "状态",
    "提交次数",
    "最近提交时间",
    "问题",
    "联系人",
    "电子邮箱",
    "受理版本数",
)
MESSAGE_HEADERS = ("序号", "收到时间", "发件人", "主题", "企业", "结论", "人工决定", "问题", "回复", "编号")
STANDING_FILLS = {
    Standing.ACCEPTED: "C6EFCE",
    Standing.REVIEW: "FFEB9C",
    Standing.REJECTED: "FFC7CE",
    Standing.MISSING: "EDEDED",
}
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_FONT = "等线"  # Office's default Chinese font; WPS and LibreOffice substitute their own
_CENTRED = {"序号", "提交次数", "受理版本数", "状态", "结论"}
_TIMES = {"最近提交时间", "收到时间"}
_MAX_WIDTH = 60
_TIME_FORMAT = "yyyy-mm-dd hh:mm"


def filename(day: date) -> str:
    return f"汇总表-{day:%Y%m%d}.xlsx"


def build(statuses: list[EnterpriseStatus], messages: list[MessageView], rules: CallRules) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "汇总表"
    _header(sheet, ENTERPRISE_HEADERS)
    for number, status in enumerate(statuses, start=1):
        enterprise = status.enterprise
        _append(
            sheet,
            [
                number,
                enterprise.city,
                enterprise.name,
                status.standing.value,
                len(status.messages),
                _local(status.last_received),
                titles(status.open_problems, rules),
                enterprise.contact,
                enterprise.email,
                status.versions,
            ],
        )
        sheet.cell(row=number + 1, column=4).fill = PatternFill("solid", fgColor=STANDING_FILLS[status.standing])
    _style(sheet)

    log = workbook.create_sheet("全部来信")
    _header(log, MESSAGE_HEADERS)
    for number, view in enumerate(messages, start=1):
        record = view.record
        decision = view.decision
        _append(
            log,
            [
                number,
                _local(record.received_at),
                record.sender or "",
                record.subject,
                record.enterprise_name or "",
                OUTCOME_WORDS[view.outcome],
                f"{OUTCOME_WORDS[Outcome(decision.outcome)]}：{decision.note}" if decision else "",
                titles(view.found, rules),
                "、".join(view.reply_states),
                f"SB-{record.id:06d}",
            ],
        )
    _style(log)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _append(sheet: Worksheet, values: list[object]) -> None:
    """A row of data, its texts fit for a cell and kept as text."""
    sheet.append([for_cell(value) if isinstance(value, str) else value for value in values])
    for cell in sheet[sheet.max_row]:
        if isinstance(cell.value, str):
            cell.data_type = "s"


def _header(sheet: Worksheet, headers: tuple[str, ...]) -> None:
    sheet.append(list(headers))
    for cell in sheet[1]:
        cell.font = Font(name=_FONT, bold=True)
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(vertical="center")
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
    """Fonts, alignment and number formats by column, then widths."""
    headers = [cell.value for cell in sheet[1]]
    for row in sheet.iter_rows(min_row=2):
        for cell, header in zip(row, headers, strict=False):
            cell.font = Font(name=_FONT)
            if header in _TIMES:
                cell.number_format = _TIME_FORMAT
                cell.alignment = Alignment(horizontal="left")
            elif header in _CENTRED:
                cell.alignment = Alignment(horizontal="center")
    _fit(sheet)


def _fit(sheet: Worksheet) -> None:
    """Column widths fit to Chinese text (a CJK character is two columns wide)."""
    for index, column in enumerate(sheet.iter_cols(values_only=True), start=1):
        width = max((_display_width(value) for value in column), default=4)
        sheet.column_dimensions[get_column_letter(index)].width = min(max(width + 2, 6), _MAX_WIDTH)
