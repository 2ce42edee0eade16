"""Summary tables (汇总表) as the roster and the city bureaus send them: `read_table` and `call_hint` (issue 9)."""

from __future__ import annotations

import io
import json
import random
import re
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from conftest import FIXTURES
from openpyxl import Workbook
from openpyxl.styles import Font

from daemon.domain import RosterEntry
from daemon.intake.spreadsheet import (
    CallLabel,
    Table,
    TableError,
    TableLimits,
    call_hint,
    read_table,
)

HEADER = ["序号", "市", "企业名称", "质量标杆名称", "联系人", "联系电话"]
ROWS = [
    [1, "泰安", "泰安岱岳精工机械有限公司", "岱岳精工零缺陷质量管理", "孙工", "13905381001"],
    [2, "泰安", "泰安汶河生物材料有限公司", "汶河生物全过程质量追溯", "周工", "0538-6201002"],
]
EXPECTED = (
    RosterEntry("泰安岱岳精工机械有限公司", "泰安", "岱岳精工零缺陷质量管理", "孙工", "13905381001"),
    RosterEntry("泰安汶河生物材料有限公司", "泰安", "汶河生物全过程质量追溯", "周工", "0538-6201002"),
)
DEFAULTS = TableLimits()
Maker = Callable[[Path, Sequence[Sequence[object]]], Path]
PROVINCE_TITLE = [["附件3"], ["2022年全省质量标杆申报汇总表（泰安市）"]]


def xlsx(path: Path, rows: Sequence[Sequence[object]], *, sheet: str = "Sheet1") -> Path:
    book = Workbook()
    active = book.active
    assert active is not None
    active.title = sheet
    for row in rows:
        active.append(list(row))
    book.save(path)
    return path


def xls_bytes(rows: Sequence[Sequence[object]]) -> bytes:
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("Sheet1")
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value is not None:
                sheet.write(r, c, value)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def xls(path: Path, rows: Sequence[Sequence[object]]) -> Path:
    path.write_bytes(xls_bytes(rows))
    return path


def table_of(path: Path, limits: TableLimits = DEFAULTS) -> Table:
    table = read_table(path, limits)
    assert isinstance(table, Table), table
    return table


def reason_of(path: Path, limits: TableLimits = DEFAULTS) -> str:
    table = read_table(path, limits)
    assert isinstance(table, TableError), table
    return table.reason


def names(path: Path) -> list[str]:
    return [row.name for row in table_of(path).rows]


# -- formats -------------------------------------------------------------------------------------------------


def test_an_xlsx_table_under_its_title_rows_is_read_by_its_headers(tmp_path: Path) -> None:
    table = table_of(xlsx(tmp_path / "t.xlsx", [*PROVINCE_TITLE, HEADER, *ROWS], sheet="汇总表"))

    assert table == Table("汇总表", "附件3 2022年全省质量标杆申报汇总表（泰安市）", EXPECTED)


def test_an_old_xls_table_reads_the_same_with_numbers_as_digits(tmp_path: Path) -> None:
    rows = [*PROVINCE_TITLE, HEADER, [1.0, "泰安", *ROWS[0][2:5], 13905381001.0], ROWS[1]]

    table = table_of(xls(tmp_path / "t.xls", rows))

    assert (table.heading, table.rows) == ("附件3 2022年全省质量标杆申报汇总表（泰安市）", EXPECTED)


@pytest.mark.parametrize(("name", "maker"), [("t.xls", xlsx), ("t.xlsx", xls), ("汇总表", xlsx)])
def test_the_format_is_told_by_content_not_by_the_file_name(tmp_path: Path, name: str, maker: Maker) -> None:
    path = maker(tmp_path / name, [HEADER, *ROWS])

    assert table_of(path).rows == EXPECTED


BUREAUS = FIXTURES / "bureaus"


def bureau_cases() -> list[dict[str, object]]:
    cases: dict[str, dict[str, object]] = json.loads((BUREAUS / "expected.json").read_text())["cases"]
    return [case for case in cases.values() if case["table_enterprises"] is not None]


@pytest.mark.parametrize("path", sorted((BUREAUS / "tables").iterdir()), ids=lambda p: p.name)
def test_each_bureau_table_yields_its_enterprises_and_its_call(path: Path) -> None:
    found = re.search(r"(附件\d).*（(.+)市）", path.name)
    assert found is not None
    call = {"附件3": "province", "附件6": "national"}[found.group(1)]
    (case,) = [c for c in bureau_cases() if (c["city"], c["call"]) == (found.group(2), call)]

    table = table_of(path)

    assert [row.name for row in table.rows] == case["table_enterprises"]
    assert all(row.city == found.group(2) and row.contact and row.phone and row.title for row in table.rows)
    assert call_hint(table) == call


def test_the_national_layout_keeps_its_form_line_in_the_heading_and_e_mails_in_the_rows() -> None:
    path = BUREAUS / "tables" / "附件6-2022年全国质量标杆申报汇总表（临沂市）.xlsx"

    table = table_of(path)

    assert table.heading.startswith("附件6 2022年全国质量标杆申报汇总表 填报单位（盖章）：临沂市工业和信息化局")
    assert [row.email for row in table.rows] == ["zl21@163.com", "zl22@163.com", "zl23@163.com"]


# -- the header row ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "企业名称",
        "申报单位全称",
        "企业全称",
        "单位名称",
        "申报单位",
        "企业\n名称",
        " 企 业 名 称 ",
        "企业名称（全称）",
        "*申报企业名称",
    ],
)
def test_the_enterprise_column_is_found_under_any_of_its_usual_headers(tmp_path: Path, header: str) -> None:
    path = xlsx(tmp_path / "t.xlsx", [["附件3"], ["序号", header, "联系人"], [1, "泰安岱岳精工机械有限公司", "孙工"]])

    assert table_of(path).rows == (RosterEntry("泰安岱岳精工机械有限公司", contact="孙工"),)


@pytest.mark.parametrize(
    "title",
    ["2022年全国质量标杆申报单位名称汇总表", "附件6", "附件2：申报企业名称", "申报单位（盖章）：泰安市工业和信息化局"],
)
def test_a_title_or_form_line_above_the_header_is_not_taken_for_it(tmp_path: Path, title: str) -> None:
    path = xlsx(tmp_path / "t.xlsx", [[title, None, "填报日期：2022年6月"], HEADER, *ROWS])

    table = table_of(path)

    assert (table.heading, table.rows) == (f"{title} 填报日期：2022年6月", EXPECTED)


def test_other_columns_are_found_by_their_header_words_in_any_order(tmp_path: Path) -> None:
    header = ["E-mail", "联系人手机号码", "企业联系人", "申报单位全称", "典型经验名称", "所属地市"]
    row = ["qa@dy-jg.cn", "13905381001", "孙工", "泰安岱岳精工机械有限公司", "零缺陷", "泰安市"]

    table = table_of(xlsx(tmp_path / "t.xlsx", [header, row]))

    assert table.rows == (
        RosterEntry("泰安岱岳精工机械有限公司", "泰安市", "零缺陷", "孙工", "13905381001", "qa@dy-jg.cn"),
    )


def test_a_two_line_header_takes_the_sub_columns_from_the_second_line(tmp_path: Path) -> None:
    rows = [
        ["序号", "企业名称", "联系人", None, None],
        [None, None, "姓名", "手机", "邮箱"],
        [1, "泰安岱岳精工机械有限公司", "孙工", "13905381001", "qa@dy-jg.cn"],
    ]

    table = table_of(xlsx(tmp_path / "t.xlsx", rows))

    assert table.rows == (
        RosterEntry("泰安岱岳精工机械有限公司", contact="孙工", phone="13905381001", email="qa@dy-jg.cn"),
    )


def test_a_header_beyond_the_first_thirty_rows_is_not_looked_for(tmp_path: Path) -> None:
    path = xlsx(tmp_path / "t.xlsx", [*[[f"说明第{i}行"] for i in range(30)], HEADER, *ROWS])

    assert "企业名称" in reason_of(path)


def test_the_table_may_be_on_a_later_sheet(tmp_path: Path) -> None:
    book = Workbook()
    notes = book.active
    assert notes is not None
    notes.title = "填表说明"
    notes.append(["请按营业执照填写企业全称"])
    book.create_sheet("附件6").append(HEADER)
    book.save(path := tmp_path / "t.xlsx")

    table = table_of(path)

    assert (table.sheet_title_text, table.rows) == ("附件6", ())


# -- the rows ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "footer",
    [["填表人：", "孙工"], ["合计", None, "2家"], [None, "泰安市工业和信息化局（盖章）"], ["注：每市限报2家"]],
)
def test_reading_stops_at_a_footer_row(tmp_path: Path, footer: list[object]) -> None:
    notes = [None, None, "2.企业名称须与营业执照一致"]
    path = xlsx(tmp_path / "t.xlsx", [HEADER[:3], *[r[:3] for r in ROWS], footer, notes])

    assert names(path) == [row.name for row in EXPECTED]


def test_empty_rows_rows_without_a_name_repeated_headers_and_repeated_names_are_skipped(tmp_path: Path) -> None:
    rows = [
        HEADER,
        ROWS[0],
        [None] * 6,
        [2, "泰安", None, "无名称", "周工"],
        HEADER,
        [3, "泰安", " 泰安岱岳精工机械有限公司 ", "重复"],
        ROWS[1],
    ]

    assert table_of(xlsx(tmp_path / "t.xlsx", rows)).rows == EXPECTED


def test_line_breaks_and_runs_of_spaces_inside_a_cell_become_one_space(tmp_path: Path) -> None:
    path = xlsx(tmp_path / "t.xlsx", [["企业名称", "联系人"], ["泰安岱岳精工\n机械有限公司", "孙工 \n  周工"]])

    assert table_of(path).rows == (RosterEntry("泰安岱岳精工 机械有限公司", contact="孙工 周工"),)


# -- call hints ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sheet", "heading", "call"),
    [
        ("Sheet1", "附件3 2022年全省质量标杆申报汇总表（泰安市）", "province"),
        ("Sheet1", "全省质量标杆推荐汇总表", "province"),
        ("Sheet1", "附件6", "national"),
        ("附件6", "", "national"),
        ("Sheet1", "２０２２年全国质量标杆申报汇总表", "national"),
        ("Sheet1", "附件3 2022年全国质量标杆申报汇总表", None),
        ("Sheet1", "质量标杆申报汇总表", None),
    ],
)
def test_the_call_is_recognised_from_the_label_or_the_name_in_the_title(sheet: str, heading: str, call: str) -> None:
    assert call_hint(Table(sheet, heading, ())) == call


def test_the_call_words_come_from_the_calls_the_caller_passes() -> None:
    calls = (CallLabel("city", "附件1", "2023年全市质量标杆"), CallLabel("county", "附件2", "2023年全县质量标杆"))

    hints = [call_hint(Table("Sheet1", heading, ()), calls) for heading in ("全县质量标杆汇总", "附件1", "附件3 全省")]

    assert hints == ["county", "city", None]


# -- bad and hostile files -----------------------------------------------------------------------------------


def encrypted_xlsx() -> bytes:
    """An OLE2 file holding an EncryptedPackage stream: what Excel and WPS save for a password-protected .xlsx."""
    data = bytearray(xls_bytes([HEADER]))
    old, new = "Workbook".encode("utf-16-le") + b"\0\0", "EncryptedPackage".encode("utf-16-le") + b"\0\0"
    at = data.index(old)
    data[at : at + len(new)] = new
    data[at + 64 : at + 66] = len(new).to_bytes(2, "little")
    return bytes(data)


def docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("企业名称\n泰安岱岳精工机械有限公司\n".encode("gb18030"), "不是 Excel 工作簿"),
        (docx(), "不是 Excel 工作簿"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 4, "已损坏"),
        (encrypted_xlsx(), "密码"),
        (b"", "不是 Excel 工作簿"),
    ],
    ids=["csv", "docx", "ole-garbage", "encrypted-xlsx", "empty"],
)
def test_a_file_that_is_no_readable_workbook_gives_a_reason_in_chinese(
    tmp_path: Path, content: bytes, words: str
) -> None:
    path = tmp_path / "汇总表.xlsx"
    path.write_bytes(content)

    reason = reason_of(path)

    assert words in reason
    assert ".xlsx" in reason


def test_a_missing_file_gives_a_reason_instead_of_raising(tmp_path: Path) -> None:
    assert reason_of(tmp_path / "gone.xlsx") == "文件无法读取"


@pytest.mark.parametrize("kind", ["xlsx", "xls"])
def test_damaged_workbooks_never_raise(tmp_path: Path, kind: str) -> None:
    original = xlsx(tmp_path / "t", [HEADER, *ROWS]) if kind == "xlsx" else xls(tmp_path / "t", [HEADER, *ROWS])
    data = original.read_bytes()
    rng = random.Random(9)
    variants = [data[: len(data) * i // 10] for i in range(1, 10)]
    for _ in range(30):
        damaged = bytearray(data)
        for at in rng.sample(range(8, len(data)), 8):
            damaged[at] ^= 0xFF
        variants.append(bytes(damaged))

    outcomes = []
    for number, variant in enumerate(variants):
        (path := tmp_path / f"v{number}").write_bytes(variant)
        outcomes.append(read_table(path))

    assert all(isinstance(o, Table | TableError) for o in outcomes)
    assert any(isinstance(o, TableError) for o in outcomes)


def test_a_sheet_longer_than_the_row_cap_is_refused(tmp_path: Path) -> None:
    rows = [HEADER[:3], *[[n, "泰安", f"泰安第{n}机械有限公司"] for n in range(1, 61)]]

    assert "超过 50 行" in reason_of(xlsx(tmp_path / "t.xlsx", rows), TableLimits(max_rows=50))
    assert "超过 50 行" in reason_of(xls(tmp_path / "t.xls", rows), TableLimits(max_rows=50))


def test_formatted_empty_rows_past_the_row_cap_do_not_count(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in [HEADER, *ROWS]:
        sheet.append(row)
    sheet.cell(row=5000, column=20).font = Font(bold=True)  # WPS keeps styles far below the table
    book.save(path := tmp_path / "t.xlsx")

    assert table_of(path, TableLimits(max_rows=50)).rows == EXPECTED


def test_columns_past_the_column_cap_are_not_read(tmp_path: Path) -> None:
    path = xlsx(
        tmp_path / "t.xlsx", [["联系人", *[None] * 10, "企业名称"], ["孙工", *[None] * 10, "泰安岱岳精工机械有限公司"]]
    )

    assert "企业名称" in reason_of(path, TableLimits(max_columns=10))
    assert names(path) == ["泰安岱岳精工机械有限公司"]


def test_long_cells_are_cut_at_the_cell_cap(tmp_path: Path) -> None:
    path = xlsx(tmp_path / "t.xlsx", [["企业名称"], ["泰" * 100_000]])

    assert table_of(path, TableLimits(max_cell_chars=40)).rows == (RosterEntry("泰" * 40),)


def test_a_file_over_the_size_cap_is_not_read(tmp_path: Path) -> None:
    path = xlsx(tmp_path / "t.xlsx", [HEADER, *ROWS])

    assert "超过" in reason_of(path, TableLimits(max_file_bytes=1000))


def test_an_xlsx_that_inflates_past_the_unpacked_cap_is_not_opened(tmp_path: Path) -> None:
    rows = [HEADER, *[[n, "泰安", f"泰安第{n}机械有限公司", "x" * 200] for n in range(1, 2001)]]
    path = xlsx(tmp_path / "t.xlsx", rows)
    assert path.stat().st_size < 200_000  # compresses well: only the declared sizes give it away

    assert "解压后超过" in reason_of(path, TableLimits(max_unpacked_bytes=200_000))
