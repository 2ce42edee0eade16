"""The summary table (汇总表) as offices really fill it: `read_roster` finds the columns by their headers."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import ENTERPRISE, ROSTER_ROWS, write_roster
from openpyxl import Workbook

from daemon.domain import RosterEntry
from daemon.intake.roster import RosterError, read_roster

EXPECTED = [
    RosterEntry(name=name, city=city, title=title, contact=contact, phone=phone, email=email)
    for city, name, title, contact, phone, email in ROSTER_ROWS
]


def workbook(path: Path, rows: Sequence[Sequence[object]], *, notes_sheet: bool = False) -> Path:
    """A workbook holding `rows` as given; with `notes_sheet`, a sheet of instructions comes before it."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    if notes_sheet:
        sheet.title = "填表说明"
        sheet.append(["请按营业执照填写全称"])
        sheet = book.create_sheet("汇总表")
    for row in rows:
        sheet.append(list(row))
    book.save(path)
    return path


def rewrite_sheet(path: Path, old: bytes, new: bytes) -> None:
    """Edit the first sheet's XML in place, as another spreadsheet program might have written it."""
    with zipfile.ZipFile(path) as source:
        members = {info.filename: source.read(info) for info in source.infolist()}
    sheet = "xl/worksheets/sheet1.xml"
    assert old in members[sheet]
    members[sheet] = members[sheet].replace(old, new)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in members.items():
            target.writestr(name, data)


def test_the_header_row_is_found_under_a_merged_title_row(tmp_path: Path) -> None:
    path = write_roster(tmp_path / "roster.xlsx", title=True)

    assert read_roster(path) == EXPECTED


def test_the_header_row_may_be_the_first_row(tmp_path: Path) -> None:
    path = write_roster(tmp_path / "roster.xlsx", title=False)

    assert read_roster(path) == EXPECTED


def test_a_title_row_that_mentions_the_name_header_is_not_taken_for_the_header_row(tmp_path: Path) -> None:
    rows = [
        ["附件2：2022年全国质量标杆申报单位名称汇总表"],
        ["序号", "所属市", "企业名称", "质量标杆名称", "联系人", "联系电话", "电子邮箱"],
        [1, *ROSTER_ROWS[0]],
    ]

    assert read_roster(workbook(tmp_path / "titled.xlsx", rows)) == [EXPECTED[0]]


def test_columns_are_found_by_their_header_words_in_any_order(tmp_path: Path) -> None:
    header = ["电子邮箱", "联系人", "企业名称", "联系电话", "质量标杆名称", "所属市"]
    path = workbook(
        tmp_path / "reordered.xlsx",
        [header, ["ops@minghu-soft.cn", "张工", ENTERPRISE, "13863100001", "明湖软件质量数字化管理经验", "济南"]],
    )

    assert read_roster(path) == [EXPECTED[0]]


def test_a_name_column_headed_danwei_mingcheng_is_the_enterprise_column(tmp_path: Path) -> None:
    header = ["序号", "单位名称", "所属市", "联系人", "联系电话", "电子邮箱", "质量标杆名称"]
    city, name, title, contact, phone, email = ROSTER_ROWS[1]
    path = workbook(tmp_path / "units.xlsx", [header, [1, name, city, contact, phone, email, title]])

    assert read_roster(path) == [EXPECTED[1]]


@pytest.mark.parametrize("name_header", ["申报单位全称", "企业全称"])
def test_the_national_layout_with_an_attachment_label_above_the_title_is_read(tmp_path: Path, name_header: str) -> None:
    rows = [
        ["附件6"],
        ["2022年全国质量标杆申报汇总表"],
        ["序号", "市", name_header, "质量标杆名称", "联系人", "联系电话", "电子邮箱"],
        *[[number, *row] for number, row in enumerate(ROSTER_ROWS, start=1)],
    ]

    assert read_roster(workbook(tmp_path / "national.xlsx", rows)) == EXPECTED


def test_a_roster_saved_as_old_xls_is_read(tmp_path: Path) -> None:
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("汇总表")
    for r, row in enumerate([["所属市", "企业名称", "质量标杆名称", "联系人", "联系电话", "电子邮箱"], *ROSTER_ROWS]):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    book.save(str(path := tmp_path / "roster.xls"))

    assert read_roster(path) == EXPECTED


def test_phone_numbers_stored_as_numbers_come_back_as_digits(tmp_path: Path) -> None:
    header = ["企业名称", "联系电话"]
    rows = [header, [ENTERPRISE, 13863100001], ["青岛海岳橡胶制品有限公司", 13863100002]]
    path = workbook(tmp_path / "numbers.xlsx", rows)
    # Excel and WPS may write a large number as a float in scientific notation; openpyxl then reads a float.
    rewrite_sheet(path, b"<v>13863100002</v>", b"<v>1.3863100002E10</v>")

    phones = [entry.phone for entry in read_roster(path)]

    assert phones == ["13863100001", "13863100002"]


def test_empty_rows_and_rows_without_a_name_are_skipped(tmp_path: Path) -> None:
    header = ["所属市", "企业名称", "联系人"]
    path = workbook(
        tmp_path / "gaps.xlsx",
        [header, ["济南", ENTERPRISE, "张工"], [None, None, None], ["青岛", None, "李工"], ["临沂", "  ", None]],
    )

    assert [entry.name for entry in read_roster(path)] == [ENTERPRISE]


def test_a_name_listed_twice_is_read_once_keeping_the_first_row(tmp_path: Path) -> None:
    header = ["企业名称", "联系人"]
    path = workbook(
        tmp_path / "twice.xlsx",
        [
            header,
            ["临沂沂蒙新材料科技（集团）有限公司", "王工"],
            [ENTERPRISE, "张工"],
            ["临沂沂蒙新材料科技(集团)有限公司", "赵工"],
            [ENTERPRISE, "钱工"],
        ],
    )

    entries = read_roster(path)

    assert [(entry.name, entry.contact) for entry in entries] == [
        ("临沂沂蒙新材料科技（集团）有限公司", "王工"),
        (ENTERPRISE, "张工"),
    ]


def test_the_table_may_be_on_a_later_sheet(tmp_path: Path) -> None:
    path = workbook(tmp_path / "sheets.xlsx", [["企业名称"], [ENTERPRISE]], notes_sheet=True)

    assert [entry.name for entry in read_roster(path)] == [ENTERPRISE]


def test_a_workbook_without_a_name_column_is_refused_naming_the_headers_it_needs(tmp_path: Path) -> None:
    path = workbook(tmp_path / "nameless.xlsx", [["序号", "所属市", "联系人"], [1, "济南", "张工"]])

    with pytest.raises(RosterError) as raised:
        read_roster(path)

    assert "企业名称" in str(raised.value)
    assert "单位名称" in str(raised.value)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("roster.xlsx", "序号,企业名称\n1,济南明湖软件科技有限公司\n".encode()),
        ("roster.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 4),
        ("roster.csv", "企业名称\n济南明湖软件科技有限公司\n".encode("gb18030")),
    ],
    ids=["text-named-xlsx", "xls-like-garbage", "csv"],
)
def test_a_file_that_is_not_an_xlsx_workbook_is_refused_asking_for_xlsx(
    tmp_path: Path, name: str, content: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(RosterError) as raised:
        read_roster(path)

    assert ".xlsx" in str(raised.value)
