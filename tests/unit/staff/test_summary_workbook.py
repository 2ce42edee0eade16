"""The summary workbook (issue 4, point 3), built from a real SQLite file and reopened with openpyxl.

A sheet per call, named after the call (汇总表 for a single call without a name): the header row, then one row
per roster enterprise in roster order, 状态 holding exactly one of the five words (coloured), header frozen,
widths fit to Chinese text. Then 各市报送 when city bureaus sent bundles, and 全部来信: every received message.
"""

from __future__ import annotations

import io
import sqlite3
import tomllib
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pytest
from conftest import FIXTURES, ROSTER_ROWS, SHANGHAI, rar, submission
from hostile_mail import with_subject
from openpyxl import Workbook, load_workbook
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import event
from sqlmodel import Session

from daemon.app.actions import decide
from daemon.app.queries import ledger
from daemon.app.views import reference
from daemon.campaign import DEFAULT_CALL, Bureau, Call, CallRules
from daemon.domain import RosterEntry
from daemon.render import Renderer
from daemon.service.recorder import Recorder
from daemon.service.replies import ReplyPlanner
from daemon.service.roster_sync import import_roster
from daemon.staff import workbook
from daemon.storage.blobs import BlobStore
from daemon.storage.db import open_database
from daemon.text import CELL_MAX_CHARS

DEADLINE = datetime(2022, 7, 5, 23, 59, 59, tzinfo=SHANGHAI)
RULES = CallRules(calls=(Call(deadline=DEADLINE),))
LINK = "https://mail.qq.com/cgi-bin/ftnExs_download?k=1&t=exs_ftn_download&code=2"
STANDINGS = {"已受理", "待人工", "待补齐", "已退回", "未提交"}

JINAN, QINGDAO, LINYI = (row[1] for row in ROSTER_ROWS)
ZIBO = "淄博鲁中陶瓷有限责任公司"
WEIFANG = "潍坊潍柴动力配件有限公司"
ROWS = [
    *ROSTER_ROWS,
    ("淄博", ZIBO, "陶瓷窑炉智能质量管控", "赵工", "13863100005", "luzhong_cc@126.com"),
    ("潍坊", WEIFANG, "精益质量管理", "孙工", "13863100007", "pj@weichai-pj.com"),
]
CONTACT = {row[1]: row[5] for row in ROWS}
HEADER = [
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
]


def package(name: str, fixture: str, body: str = "附件为申报材料") -> bytes:
    return submission(name, [(f"{name}.rar", rar(fixture))], sender=CONTACT[name], body=body)


@dataclass(frozen=True)
class Built:
    book: Workbook
    database: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """济南 accepted (after a rejection), 青岛 waiting for a person, 临沂 rejected (a person confirmed it),
    淄博 silent, 潍坊 waiting for the rest of its volumes; plus a message naming nobody and an auto-reply."""
    folder = tmp_path_factory.mktemp("workbook")
    database = folder / "shenbao.db"
    engine = open_database(f"sqlite:///{database}")
    with Session(engine) as session:
        import_roster(session, [RosterEntry(row[1], row[0], *row[2:]) for row in ROWS], DEFAULT_CALL)
        session.commit()
    recorder = Recorder(engine, BlobStore(folder / "files"), RULES)
    recorder.record(package(JINAN, "missing_proof.rar", body="第一封"), "1.eml")
    recorder.record(package(JINAN, "valid.rar"), "2.eml")
    recorder.record(submission(QINGDAO, sender=CONTACT[QINGDAO], body=f"超大附件：{LINK}"), "3.eml")
    rejected = recorder.record(package(LINYI, "missing_proof.rar"), "4.eml")
    recorder.record(submission("济南明湖软件公司", sender="someone@example.cn"), "5.eml")
    recorder.record(submission(f"自动回复：{ZIBO}", sender=CONTACT[ZIBO], body="休假中"), "6.eml")
    part = [(f"{WEIFANG}.part1.rar", rar("volumes.part1.rar"))]
    recorder.record(submission(WEIFANG, part, sender=CONTACT[WEIFANG], body="分卷一"), "7.eml")
    planner = ReplyPlanner(Renderer("科技处 <kejichu2019@shandong.cn>"), RULES, "质量标杆", 10)
    with Session(engine) as session:
        decide(
            session,
            planner,
            recorder,
            reference(rejected.record_id),
            accept=False,
            note="请补充证明材料",
            actor="staff",
            moment=datetime(2022, 7, 1, 9, 0, tzinfo=SHANGHAI),
        )
        session.commit()
    with Session(engine) as session:
        data = workbook.build(ledger(session, RULES), RULES)
    return Built(load_workbook(io.BytesIO(data)), database)


@pytest.fixture
def first(built: Built) -> Worksheet:
    sheet = built.book.worksheets[0]
    assert isinstance(sheet, Worksheet)
    return sheet


@pytest.fixture
def second(built: Built) -> Worksheet:
    sheet = built.book["全部来信"]
    assert isinstance(sheet, Worksheet)
    return sheet


def records(sheet: Worksheet) -> list[dict[str, object]]:
    """The rows under the header, keyed by the header's words."""
    header = [cell.value for cell in sheet[1]]
    return [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2, values_only=True)]


def width(sheet: Worksheet, header: str) -> float:
    """The width of the header's column, which the file may give in a range of adjacent columns alike."""
    column = next(cell.column for cell in sheet[1] if cell.value == header)
    widths = [d.width for d in sheet.column_dimensions.values() if d.min is not None and d.min <= column <= d.max]
    assert len(widths) == 1, f"{header}: {len(widths)} widths"
    return float(widths[0])


def columns(text: str) -> int:
    """How wide `text` is on screen: a Chinese character takes two columns (computed here, not by shenbao)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def test_the_first_sheets_first_row_is_the_header(first: Worksheet) -> None:
    header = [cell.value for cell in first[1]]

    assert header == HEADER
    assert all(isinstance(value, str) and value for value in header)


def test_a_single_call_without_a_name_gets_one_sheet_named_after_the_table_and_no_bureau_sheet(built: Built) -> None:
    assert built.book.sheetnames == ["汇总表", "全部来信"]


def test_there_is_one_row_per_roster_enterprise_in_roster_order(first: Worksheet) -> None:
    found = records(first)

    assert [row["序号"] for row in found] == [1, 2, 3, 4, 5]
    assert [(row["市"], row["企业名称"], row["质量标杆名称"]) for row in found] == [row[:3] for row in ROWS]
    assert [(row["联系人"], row["联系电话"], row["电子邮箱"]) for row in found] == [row[3:] for row in ROWS]
    assert first.max_row == 1 + len(ROWS)


def test_the_status_cell_holds_exactly_one_of_the_five_words_and_counts_have_their_own_columns(
    first: Worksheet,
) -> None:
    found = {row["企业名称"]: row for row in records(first)}

    assert {name: row["状态"] for name, row in found.items()} == {
        JINAN: "已受理",
        QINGDAO: "待人工",
        LINYI: "已退回",
        ZIBO: "未提交",
        WEIFANG: "待补齐",
    }
    assert all(row["状态"] in STANDINGS for row in found.values())
    assert {name: row["提交次数"] for name, row in found.items()} == {
        JINAN: 2,
        QINGDAO: 1,
        LINYI: 1,
        ZIBO: 0,
        WEIFANG: 1,
    }
    assert {name: row["受理版本数"] for name, row in found.items()} == {
        JINAN: 1,
        QINGDAO: 0,
        LINYI: 0,
        ZIBO: 0,
        WEIFANG: 0,
    }
    assert found[JINAN]["问题"] in (None, "")  # accepted: nothing left to fix
    assert "缺少材料：证明材料" in str(found[LINYI]["问题"])
    assert "超大附件" in str(found[QINGDAO]["问题"])
    assert found[ZIBO]["最近提交时间"] is None


def test_the_latest_submission_time_is_written_as_beijing_time(first: Worksheet) -> None:
    found = {row["企业名称"]: row for row in records(first)}

    # conftest's messages are stamped 2022-06-28 09:30 +08:00; Excel has no time zones
    assert found[JINAN]["最近提交时间"] == datetime(2022, 6, 28, 9, 30)


def test_the_status_fills_differ_by_status(first: Worksheet) -> None:
    status_column = HEADER.index("状态") + 1
    fills = {
        first.cell(row=row, column=status_column).value: first.cell(row=row, column=status_column).fill.fgColor.rgb
        for row in range(2, first.max_row + 1)
    }

    assert set(fills) == STANDINGS
    assert len(set(fills.values())) == 5
    assert first.cell(row=1, column=status_column).fill.fgColor.rgb not in fills.values()


def test_the_header_row_is_frozen_on_both_sheets(first: Worksheet, second: Worksheet) -> None:
    assert first.freeze_panes == "A2"
    assert second.freeze_panes == "A2"


def test_column_widths_fit_chinese_text(first: Worksheet) -> None:
    names = [row[1] for row in ROWS]
    emails = [row[5] for row in ROWS]
    assert max(map(len, names)) < max(map(len, emails))  # fewer characters, but each twice as wide

    assert width(first, "企业名称") >= max(map(columns, names))
    assert width(first, "企业名称") > width(first, "电子邮箱") >= max(map(len, emails))
    assert width(first, "企业名称") > width(first, "序号")
    assert width(first, "质量标杆名称") >= max(columns(row[2]) for row in ROWS)


def test_the_last_sheet_lists_every_received_message(built: Built, second: Worksheet) -> None:
    connection = sqlite3.connect(built.database)
    try:
        stored = connection.execute("SELECT id, subject, sender FROM message ORDER BY id").fetchall()
    finally:
        connection.close()

    found = records(second)

    assert len(found) == len(stored) == 7
    assert [row["编号"] for row in found] == [f"SB-{number:06d}" for number, _, _ in stored]
    assert [(row["主题"], row["发件人"]) for row in found] == [(subject, sender) for _, subject, sender in stored]
    assert [row["结论"] for row in found] == ["已退回", "已受理", "待人工", "已退回", "待人工", "已忽略", "待补齐"]
    assert [row["人工决定"] for row in found][3] == "已退回：请补充证明材料"
    assert all(isinstance(row["收到时间"], datetime) for row in found)


def test_the_ledger_reads_no_bulk_that_no_view_shows(built: Built) -> None:
    """The replies' MIME is most of a campaign's database (86 MB at 10,000 messages, bench/staff.py): read
    for the workbook, it held that much more memory in the daemon while the digest was made. The write-ups'
    signatures are read once, by the copies view alone (7 MB there)."""
    engine = open_database(f"sqlite:///{built.database}")
    statements: list[str] = []

    def seen(_connection: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    with Session(engine) as session:
        book = ledger(session, RULES)

    assert any(view.replies for view in book.messages)
    from_outbox = [statement for statement in statements if "FROM outbox" in statement]
    assert from_outbox and not any("outbox.raw" in statement for statement in from_outbox)
    from_documents = [statement for statement in statements if "FROM document" in statement]
    assert len(from_documents) >= 2
    assert len([statement for statement in from_documents if "document.signature" in statement]) == 1


def test_the_file_is_named_after_the_day() -> None:
    assert workbook.filename(date(2022, 7, 6)) == "汇总表-20220706.xlsx"
    assert workbook.filename(date(2023, 1, 2)) == "汇总表-20230102.xlsx"


# -- several calls, and the city bureaus' bundles ------------------------------------------------------------

BUREAUS = FIXTURES / "bureaus"
BUREAU_DEADLINE = datetime(2022, 6, 26, 23, 59, 59, tzinfo=SHANGHAI)
PROVINCE, NATIONAL = "2022年全省质量标杆", "2022年全国质量标杆"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Workbook:
    """青岛's complete bundle for the provincial call over three emails, and 日照's national one without a
    letter."""
    folder = tmp_path_factory.mktemp("bundles")
    senders = tomllib.loads((BUREAUS / "config-bureaus.toml").read_text(encoding="utf-8"))["bureaus"]
    rules = CallRules(
        calls=(
            Call("province", PROVINCE, "附件3", BUREAU_DEADLINE, own_emails=False),
            Call("national", NATIONAL, "附件6", BUREAU_DEADLINE, own_emails=False, max_per_city=2),
        ),
        bureaus=tuple(Bureau(city, tuple(addresses)) for city, addresses in senders.items()),
    )
    engine = open_database(f"sqlite:///{folder / 'shenbao.db'}")
    recorder = Recorder(engine, BlobStore(folder / "files"), rules)
    for name in (
        "01-three-emails-1-letter-table.eml",
        "02-three-emails-2-archives.eml",
        "03-three-emails-3-archives.eml",
        "08-missing-letter.eml",
    ):
        recorder.record((BUREAUS / "messages" / name).read_bytes(), name)
    with Session(engine) as session:
        data = workbook.build(ledger(session, rules), rules)
    return load_workbook(io.BytesIO(data))


def test_each_call_gets_its_own_sheet_named_after_it_then_the_bundles_then_every_message(bundles: Workbook) -> None:
    assert bundles.sheetnames == [PROVINCE, NATIONAL, "各市报送", "全部来信"]
    province, national = (records(bundles[name]) for name in (PROVINCE, NATIONAL))
    assert [(row["市"], row["企业名称"], row["状态"]) for row in province] == [
        ("青岛", "青岛即墨纺机装备有限公司", "已受理"),
        ("青岛", "青岛黄岛港航物流科技有限公司", "已受理"),
        ("青岛", "青岛崂山矿泉饮品有限公司", "已受理"),
        ("青岛", "青岛胶东数控刀具有限公司", "已受理"),
    ]
    assert [(row["企业名称"], row["受理版本数"]) for row in national] == [
        ("日照岚山钢构件有限公司", 1),
        ("日照莒县食品科技有限公司", 1),
    ]
    assert [row["企业"] for row in records(bundles["全部来信"])] == ["青岛市工业和信息化局"] * 3 + [
        "日照市工业和信息化局"
    ]


def test_the_bundle_sheet_has_a_row_per_city_and_call_saying_what_arrived_and_what_is_open(bundles: Workbook) -> None:
    sheet = bundles["各市报送"]
    assert [cell.value for cell in sheet[1]] == list(workbook.BUNDLE_HEADERS)
    assert sheet.freeze_panes == "A2"

    qingdao, rizhao = records(sheet)

    assert (qingdao["市"], qingdao["评选"], qingdao["列出企业"], qingdao["已受理"]) == ("青岛", PROVINCE, 4, 4)
    assert qingdao["推荐文件"] == "青岛市工业和信息化局关于推荐2022年全省质量标杆的函.pdf（1 页）"
    assert qingdao["汇总表"] == "附件3-2022年全省质量标杆申报汇总表（青岛市）.xlsx"
    assert (qingdao["缺少"], qingdao["迟报"], qingdao["待解决"]) == (None, None, None)
    assert (rizhao["市"], rizhao["评选"], rizhao["推荐文件"], rizhao["列出企业"], rizhao["已受理"]) == (
        "日照",
        NATIONAL,
        "—",
        2,
        2,
    )
    assert rizhao["待解决"] == "缺少推荐文件"


def test_text_from_mail_is_kept_as_text_never_a_formula_an_error_value_or_a_control(tmp_path: Path) -> None:
    """Subjects are data (issue 8, finding 5): `=HYPERLINK(…)` must not become a link staff click, `#N/A` not
    an error, a vertical tab not a workbook openpyxl refuses, 40,000 characters not a cell Excel cuts."""
    subjects = ['=HYPERLINK("http://evil.example/","点击查看")', "#N/A", "名称\x0b来自Word\x1b[31m", "名" * 40_000]
    engine = open_database(f"sqlite:///{tmp_path / 'shenbao.db'}")
    recorder = Recorder(engine, BlobStore(tmp_path / "files"), RULES)
    for number, subject in enumerate(subjects):
        recorder.record(with_subject(subject, sender=f"s{number}@example.cn"), f"{number}.eml")
    with Session(engine) as session:
        data = workbook.build(ledger(session, RULES), RULES)

    sheet = load_workbook(io.BytesIO(data))["全部来信"]

    cells = [row[3] for row in sheet.iter_rows(min_row=2)]
    assert [cell.data_type for cell in cells] == ["s"] * 4
    assert [cell.value for cell in cells] == [
        subjects[0],
        "#N/A",
        "名称\\x0b来自Word\\x1b[31m",
        "名" * (CELL_MAX_CHARS - 1) + "…",
    ]
