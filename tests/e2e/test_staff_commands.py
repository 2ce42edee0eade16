"""The staff commands as staff run them: separate `shenbao` processes on a real SQLite file, sending through a
real SMTP server on loopback (issue 4, point 6 and "Done when").

Messages are processed once per module; each test works on its own copy of the folder (config, roster,
database and files) with its own SMTP server, so what one test sends or decides never leaks into another.
A command that sends does so before it exits, so after it returns the server's list is complete: "sent
nothing" is checked without waiting, "sent N" with `SmtpCapture.wait_for`.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import ENTERPRISE, RAR, ROSTER_ROWS, rar, submission, valid_submission, write_roster
from hostile_mail import with_subject
from openpyxl import load_workbook

from daemon.demo.servers import CapturedMessage, SmtpCapture

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus"
PASSWORD_ENV = "SHENBAO_STAFF_TEST_SMTP_PASSWORD"
DEADLINE = "2022-07-05T23:59:59+08:00"
THREE_DAYS_BEFORE = "2022-07-02T10:00:00+08:00"
MAILBOX = "kejichu2019@shandong.cn"
RECIPIENTS = ("chuzhang@shandong.cn", "keyuan@shandong.cn")
LINK = "https://mail.qq.com/cgi-bin/ftnExs_download?k=1&t=exs_ftn_download&code=2"

JINAN, QINGDAO, LINYI = (row[1] for row in ROSTER_ROWS)
QUANCHENG = "济南泉城智能装备有限公司"
ZIBO = "淄博鲁中陶瓷有限责任公司"
ROWS = [
    ROSTER_ROWS[0],
    ("济南", QUANCHENG, "智能装备全过程质量追溯", "孙工", "13863100008", ""),
    *ROSTER_ROWS[1:],
]
ZIBO_ROW = ("淄博", ZIBO, "陶瓷窑炉智能质量管控", "赵工", "13863100005", "luzhong_cc@126.com")
CONTACT = {row[1]: row[5] for row in [*ROWS, ZIBO_ROW]}
STANDINGS = {JINAN: "已受理", QUANCHENG: "未提交", QINGDAO: "待人工", LINYI: "已退回"}


def shenbao(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m daemon.cli ARGS` in `cwd`, with the (empty) SMTP password in the environment."""
    return python("-m", "daemon.cli", *args, cwd=cwd)


def python(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python ARGS` in `cwd`, with the project importable and the (empty) SMTP password in the environment."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env[PASSWORD_ENV] = ""
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def as_json(result: subprocess.CompletedProcess[str]) -> object:
    """The command's whole stdout as one JSON document."""
    return json.loads(ok(result))


def config_text(smtp_port: int) -> str:
    return f"""\
[storage]
database = "sqlite:///var/shenbao.db"
files = "var/files"

[campaign]
name = "2022年质量标杆"
deadline = "{DEADLINE}"
roster = "roster.xlsx"

[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
username = "{MAILBOX}"
password_env = "{PASSWORD_ENV}"
sender = "山东省科技厅 <{MAILBOX}>"

[digest]
recipients = {json.dumps(list(RECIPIENTS))}
"""


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with config, roster and the database after `shenbao process` of four messages:
    SB-000001 济南明湖 accepted, SB-000002 青岛 a 超大附件 link (review), SB-000003 临沂 rejected (no
    proof), SB-000004 淄博 a correct package of an enterprise in no roster (review: a person decides). 济南泉城
    (no email) sends nothing."""
    folder = tmp_path_factory.mktemp("staff") / "base"
    folder.mkdir()
    write_roster(folder / "roster.xlsx", ROWS)
    (folder / "shenbao.toml").write_text(config_text(smtp_port=1), encoding="utf-8")
    mail = folder / "mail"
    mail.mkdir()
    (mail / "1-jinan.eml").write_bytes(valid_submission())
    (mail / "2-qingdao-link.eml").write_bytes(
        submission(QINGDAO, sender=CONTACT[QINGDAO], body=f"材料较大，已用超大附件发送：{LINK}")
    )
    (mail / "3-linyi.eml").write_bytes(
        submission(LINYI, [(f"{LINYI}.rar", rar("missing_proof.rar"))], sender=CONTACT[LINYI])
    )
    (mail / "4-zibo.eml").write_bytes(submission(ZIBO, [(f"{ZIBO}.rar", rar("valid.rar"))], sender=CONTACT[ZIBO]))

    lines = ok(shenbao("process", "mail", "--config", "shenbao.toml", "--json", cwd=folder)).splitlines()

    verdicts = [(line["id"], line["verdict"], line["enterprise"]) for line in map(json.loads, lines)]
    assert verdicts == [
        (1, "accepted", JINAN),
        (2, "review", QINGDAO),
        (3, "rejected", LINYI),
        (4, "review", ZIBO),
    ]
    return folder


@dataclass(frozen=True)
class Site:
    folder: Path
    smtp: SmtpCapture

    def run(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return shenbao(*args, "--config", self.folder / "shenbao.toml", cwd=self.folder)

    def query(self, sql: str) -> list[tuple[object, ...]]:
        connection = sqlite3.connect(self.folder / "var" / "shenbao.db")
        try:
            return connection.execute(sql).fetchall()
        finally:
            connection.close()


@pytest.fixture
def site(processed: Path, tmp_path: Path) -> Iterator[Site]:
    folder = tmp_path / "site"
    shutil.copytree(processed, folder)
    with SmtpCapture() as smtp:
        (folder / "shenbao.toml").write_text(config_text(smtp.port), encoding="utf-8")
        yield Site(folder, smtp)


def parsed(captured: CapturedMessage) -> EmailMessage:
    message = email.message_from_bytes(captured.data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def plain(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def json_lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    """The command's stdout as JSON Lines: one object per line."""
    return [json.loads(line) for line in ok(result).splitlines()]


def statuses(site: Site) -> dict[str, str]:
    return {str(row["enterprise"]): str(row["standing"]) for row in json_lines(site.run("status", "--json"))}


def first_sheet_rows(path: Path) -> tuple[list[object], list[tuple[object, ...]]]:
    sheet = load_workbook(io.BytesIO(path.read_bytes())).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    return list(rows[0]), rows[1:]


# -- status and show ----------------------------------------------------------------------------------------


def test_status_prints_a_table_of_the_roster_and_the_same_as_json(site: Site) -> None:
    text = ok(site.run("status"))
    rows = json_lines(site.run("status", "--json"))

    lines = text.splitlines()
    for name, word in STANDINGS.items():
        [line] = [line for line in lines if name in line]
        assert re.search(rf"\s{word}\s", line), line
    assert lines[-1] == "已受理 1，待人工 1，待补齐 0，已退回 1，未提交 1；共 4 家"
    [linyi_line] = [line for line in lines if LINYI in line]
    assert "缺少材料：证明材料" in linyi_line
    assert ZIBO not in text  # in no roster: not listed until a person admits it
    assert [(r["city"], r["enterprise"], r["standing"]) for r in rows] == [
        (row[0], row[1], STANDINGS[row[1]]) for row in ROWS
    ]
    assert [r["status"] for r in rows] == ["accepted", "missing", "review", "rejected"]
    jinan = rows[0]
    assert (jinan["messages"], jinan["versions"], jinan["email"], jinan["latest"]) == (
        1,
        1,
        CONTACT[JINAN],
        "SB-000001",
    )
    assert rows[3]["problems"] == [{"code": "missing_document", "role": "proof"}]
    assert site.smtp.messages == []


def test_status_loads_neither_what_judges_nor_what_sends_mail(site: Site) -> None:
    """Staff run `status` most: it starts with the database layer only (issue 13, views within a second)."""
    probe = (
        "import sys; from daemon.cli import main; code = main(sys.argv[1:]); "
        "print(' '.join(sorted(sys.modules)), file=sys.stderr); sys.exit(code)"
    )
    result = python("-c", probe, "status", "--config", site.folder / "shenbao.toml", cwd=site.folder)
    assert result.returncode == 0, result.stderr
    loaded = set(result.stderr.split())
    assert "daemon.app.queries" in loaded
    heavy = {
        "daemon.pipeline",
        "daemon.service.recorder",
        "daemon.intake.readers",
        "alembic",
        "jinja2",
        "openpyxl",
        "xlsxwriter",
    }
    assert loaded.isdisjoint(heavy), sorted(loaded & heavy)


def test_a_changed_roster_is_read_outside_the_process_that_loads_it(site: Site) -> None:
    """The workbook parser (openpyxl, numpy, Pillow: 24 MB) runs in the readers' child, never in the daemon
    or a command, which would keep it for good (issue 13, memory)."""
    write_roster(site.folder / "roster.xlsx", [*ROWS, ZIBO_ROW])
    probe = (
        "import sys; from daemon.cli import main; code = main(sys.argv[1:]); "
        "print(' '.join(sorted(sys.modules)), file=sys.stderr); sys.exit(code)"
    )
    result = python("-c", probe, "status", "--json", "--config", site.folder / "shenbao.toml", cwd=site.folder)
    assert result.returncode == 0, result.stderr
    assert ZIBO in {row["enterprise"] for row in map(json.loads, result.stdout.splitlines())}
    loaded = set(result.stderr.split())
    assert "daemon.intake.spreadsheet" in loaded  # it was read, and
    assert loaded.isdisjoint({"openpyxl", "numpy", "PIL", "xlrd"}), sorted(loaded & {"openpyxl", "numpy", "PIL"})


def test_status_city_shows_only_that_citys_enterprises(site: Site) -> None:
    rows = json_lines(site.run("status", "--city", "济南", "--json"))
    text = ok(site.run("status", "--city", "济南"))

    assert [(r["city"], r["enterprise"]) for r in rows] == [("济南", JINAN), ("济南", QUANCHENG)]
    assert JINAN in text and QUANCHENG in text
    assert QINGDAO not in text and LINYI not in text
    assert text.splitlines()[-1].endswith("共 2 家")


def test_show_lists_every_message_of_an_enterprise_with_its_problems(site: Site) -> None:
    text = ok(site.run("show", "临沂"))
    header, message = json_lines(site.run("show", "临沂", "--json"))
    by_number = json_lines(site.run("show", "SB-000003", "--json"))
    ambiguous = site.run("show", "济南")

    assert f"{LINYI}（临沂，2022年质量标杆）：已退回，受理版本 0" in text
    assert "SB-000003" in text
    assert "✗ 缺少材料：证明材料" in text
    assert (header["enterprise"], header["standing"], header["email"]) == (LINYI, "已退回", CONTACT[LINYI])
    assert (message["reference"], message["sender"], message["outcome"], message["replies"]) == (
        "SB-000003",
        CONTACT[LINYI],
        "rejected",
        [],
    )
    assert message["problems"] == [{"code": "missing_document", "role": "proof"}]
    assert isinstance(message["lines"], list)
    documents = [line.strip()[2:].split("（")[0] for line in message["lines"] if line.strip().startswith("· ")]
    assert sorted(documents) == ["典型经验材料.docx", "申报书.docx"]
    assert by_number == [message]  # a message by its number: that message alone
    assert ambiguous.returncode == 2
    assert f"与“济南”相符的企业：{JINAN}、{QUANCHENG}" in ambiguous.stderr


# -- decide and resend ------------------------------------------------------------------------------------


def acted(result: subprocess.CompletedProcess[str]) -> None:
    """decide and resend commit and send, then report."""
    assert result.returncode == 0, result.stderr


def test_decide_accept_on_a_review_message_makes_the_enterprise_accepted_and_sends_a_receipt_quoting_the_note(
    site: Site,
) -> None:
    note = "省属企业，经核实同意直接申报"

    acted(site.run("decide", "SB-000004", "--accept", "--note", note, "--json"))

    [captured] = site.smtp.wait_for(1)
    assert captured.rcpt_tos == [CONTACT[ZIBO]]
    receipt = parsed(captured)
    assert str(receipt["Subject"]) == f"【受理回执】{ZIBO}"
    assert f"审核意见：{note}" in plain(receipt)
    assert statuses(site)[ZIBO] == "已受理"  # a direct sender accepted joins the call's roster
    nominated = "SELECT n.source, n.call FROM nomination n JOIN enterprise e ON e.id = n.enterprise_id"
    assert site.query(f"{nominated} WHERE e.name = '{ZIBO}'") == [("staff", "default")]
    assert site.query("SELECT outcome FROM message WHERE id = 4") == [("review",)]  # the history keeps both
    assert site.query("SELECT outcome, note FROM decision WHERE message_id = 4") == [("accepted", note)]
    assert site.query("SELECT kind, state FROM outbox") == [("receipt", "sent")]


def test_decide_accept_on_a_download_link_asks_for_the_archive_first_and_sends_nothing(site: Site) -> None:
    result = site.run("decide", "SB-000002", "--accept", "--note", "已下载超大附件核验")

    assert result.returncode == 2
    assert "attach" in result.stderr
    assert statuses(site)[QINGDAO] == "待人工"
    assert site.query("SELECT count(*) FROM decision") == [(0,)]
    assert site.smtp.messages == []


def test_decide_reject_sends_a_rejection_quoting_the_note(site: Site) -> None:
    note = "申报书未加盖公章，请盖章后重新发送"

    acted(site.run("decide", "SB-000001", "--reject", "--note", note))

    [captured] = site.smtp.wait_for(1)
    rejection = parsed(captured)
    assert captured.rcpt_tos == [CONTACT[JINAN]]
    assert str(rejection["Subject"]) == f"【退回通知】{JINAN}"
    assert f"审核意见：{note}" in plain(rejection)
    assert statuses(site)[JINAN] == "已退回"
    assert site.query("SELECT outcome FROM message WHERE id = 1") == [("accepted",)]


def test_resend_sends_the_same_kind_of_answer_again_and_show_lists_the_replies(site: Site) -> None:
    note = "省属企业，同意直接申报"
    acted(site.run("decide", "SB-000004", "--accept", "--note", note))
    site.smtp.wait_for(1)

    acted(site.run("resend", "SB-000004", "--json"))

    first, second = (parsed(m) for m in site.smtp.wait_for(2))
    assert str(first["Subject"]) == str(second["Subject"]) == f"【受理回执】{ZIBO}"
    assert first["Message-ID"] != second["Message-ID"]
    assert note in plain(second)
    header, message = json_lines(site.run("show", "淄博", "--json"))
    assert (header["enterprise"], header["standing"]) == (ZIBO, "已受理")
    assert message["replies"] == [{"kind": "receipt", "to": CONTACT[ZIBO], "state": "sent"}] * 2
    [decision] = message["decisions"]  # type: ignore[misc]
    assert (decision["outcome"], decision["note"]) == ("accepted", note)
    assert [p["code"] for p in message["problems"]] == ["direct_sender"]  # type: ignore[union-attr, index]
    text = ok(site.run("show", "SB-000004"))
    assert text.count(f"✉ 受理回执 → {CONTACT[ZIBO]}：已发送") == 2
    assert "⚑ 人工决定：" in text and note in text
    assert len(site.smtp.messages) == 2


def test_decide_and_resend_exit_zero_and_report_what_they_sent(site: Site) -> None:
    decided = json_lines(site.run("decide", "SB-000004", "--accept", "--note", "核验无误", "--json"))
    assert decided == [
        {
            "reference": "SB-000004",
            "done": "accepted",
            "enterprise": ZIBO,
            "reply": "receipt",
            "to": CONTACT[ZIBO],
            "state": "sent",
            "sent": 1,
        }
    ]

    [resent] = json_lines(site.run("resend", "SB-000004", "--json"))
    assert resent == {
        "reference": "SB-000004",
        "done": "resent",
        "enterprise": ZIBO,
        "reply": "receipt",
        "to": CONTACT[ZIBO],
        "state": "sent",
        "sent": 1,
    }

    rejected = ok(site.run("decide", "SB-000003", "--reject", "--note", "缺少证明材料"))
    assert rejected.strip() == f"SB-000003（{LINYI}）已退回；审核退回通知发往 {CONTACT[LINYI]}：已发送"


def test_an_unknown_message_number_is_a_usage_error(site: Site) -> None:
    result = site.run("decide", "SB-000099", "--accept", "--note", "x")

    assert result.returncode == 2
    assert "没有编号为 SB-000099 的邮件" in result.stderr
    assert site.smtp.messages == []


# -- digest ---------------------------------------------------------------------------------------------------


def test_digest_output_writes_the_eml_and_a_workbook_with_a_row_per_roster_enterprise_and_sends_nothing(
    site: Site,
) -> None:
    written = as_json(site.run("digest", "--output", "out", "--json"))

    assert isinstance(written, dict)
    out = site.folder / "out"
    [eml] = out.glob("digest-*.eml")
    [book] = out.glob("汇总表-*.xlsx")
    assert sorted(Path(p).name for p in written["written"]) == sorted([eml.name, book.name])
    header, rows = first_sheet_rows(book)
    status, name = header.index("状态"), header.index("企业名称")
    assert [row[name] for row in rows] == [row[1] for row in ROWS]  # one row per roster enterprise, in order
    assert [row[status] for row in rows] == [STANDINGS[row[1]] for row in ROWS]
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert str(message["To"]) == RECIPIENTS[0]
    assert [a.get_filename() for a in message.iter_attachments()] == [book.name]
    assert site.smtp.messages == []
    assert site.query("SELECT count(*) FROM digest") == [(0,)]  # not the day's digest


def test_digest_sends_one_email_per_recipient_and_a_second_run_the_same_day_sends_nothing(site: Site) -> None:
    first = as_json(site.run("digest", "--json"))
    delivered = site.smtp.wait_for(2)
    second = ok(site.run("digest"))

    assert isinstance(first, dict)
    assert (first["queued"], first["sent"]) == (True, 2)
    assert sorted(rcpt for m in delivered for rcpt in m.rcpt_tos) == sorted(RECIPIENTS)
    for captured in delivered:
        message = parsed(captured)
        assert str(message["Subject"]).startswith("【申报日报】")
        assert [a.get_filename() for a in message.iter_attachments()] == [
            f"汇总表-{first['day'].replace('-', '')}.xlsx"
        ]
    assert second.strip() == f"{first['day']} 的日报此前已发送"
    assert len(site.smtp.messages) == 2
    assert site.query("SELECT day FROM digest") == [(first["day"],)]


# -- remind --------------------------------------------------------------------------------------------------


def test_remind_dry_run_lists_who_would_be_reminded_and_why_and_sends_nothing(site: Site) -> None:
    text = ok(site.run("remind", "--dry-run", "--now", THREE_DAYS_BEFORE))
    rows = json_lines(site.run("remind", "--dry-run", "--now", THREE_DAYS_BEFORE, "--json"))

    lines = text.splitlines()
    [qingdao] = [line for line in lines if QINGDAO in line]
    [linyi] = [line for line in lines if LINYI in line]
    [quancheng] = [line for line in lines if QUANCHENG in line]
    assert qingdao.startswith("提醒") and CONTACT[QINGDAO] in qingdao and "距截止还有 3 天" in qingdao
    assert linyi.startswith("提醒") and "已退回" in linyi
    assert quancheng.startswith("不提醒") and "名单中没有联系邮箱" in quancheng
    assert not any(JINAN in line for line in lines)
    assert {(r["to"], r["remind"]) for r in rows} == {(QINGDAO, True), (LINYI, True), (QUANCHENG, False)}
    assert {(r["to"], tuple(r["addresses"])) for r in rows if r["remind"]} == {  # type: ignore[arg-type]
        (QINGDAO, (CONTACT[QINGDAO],)),
        (LINYI, (CONTACT[LINYI],)),
    }
    assert {r["call"] for r in rows} == {"default"}
    assert site.smtp.messages == []
    assert site.query("SELECT count(*) FROM reminder") == [(0,)]
    assert site.query("SELECT count(*) FROM outbox") == [(0,)]


def test_remind_sends_exactly_those_reminders_and_a_second_run_sends_none(site: Site) -> None:
    first = as_json(site.run("remind", "--now", THREE_DAYS_BEFORE, "--json"))
    delivered = site.smtp.wait_for(2)
    second = as_json(site.run("remind", "--now", "2022-07-02T18:00:00+08:00", "--json"))

    assert first == {"queued": 2, "sent": 2}
    assert sorted(rcpt for m in delivered for rcpt in m.rcpt_tos) == sorted([CONTACT[QINGDAO], CONTACT[LINYI]])
    for captured in delivered:
        reminder = parsed(captured)
        assert "3天后截止" in str(reminder["Subject"])
        assert MAILBOX in plain(reminder)
    assert second == {"queued": 0, "sent": 0}
    assert len(site.smtp.messages) == 2


# -- export ----------------------------------------------------------------------------------------------------


def test_export_writes_a_tree_that_matches_its_manifest_and_refuses_a_folder_that_is_not_empty(site: Site) -> None:
    result = as_json(site.run("export", "tree", "--json"))
    again = site.run("export", "tree")

    assert isinstance(result, dict)
    assert (result["enterprises"], result["files"]) == (1, 5)  # 3 documents, the workbook, the names file
    assert result["missing"] == [QUANCHENG, QINGDAO, LINYI]
    tree = site.folder / "tree"
    listed = {}
    for line in (tree / "manifest.sha256").read_text(encoding="utf-8").splitlines():
        digest, path = line.split("  ", 1)
        listed[path] = digest
    on_disk = {p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file()} - {"manifest.sha256"}
    assert set(listed) == on_disk
    assert all(hashlib.sha256((tree / path).read_bytes()).hexdigest() == d for path, d in listed.items())
    base = f"2022年质量标杆/济南/{ENTERPRISE}"  # the call, the city, the enterprise
    assert {p for p in listed if p.startswith(f"{base}/")} == {
        f"{base}/{name}" for name in ("申报书.docx", "典型经验材料.docx", "证明材料.docx")
    }
    assert again.returncode == 2
    assert "不是空文件夹" in again.stderr


# -- text from mail (issue 8, finding 5) -------------------------------------------------------------------------

CONTROL_SUBJECTS = ("临沂沂蒙\x0b新材料科技（集团）有限公司", "临沂沂蒙新材料\x00科技（集团）有限公司")
CONTROL_CHARACTERS = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]} - {"\n"} | {"\u202e"}


@pytest.fixture
def hostile_site(processed: Path, tmp_path: Path) -> Iterator[Site]:
    """The site, then 临沂 twice more with a vertical tab and a NUL in the subject (SB-000005, SB-000006), and
    济南's package again with control characters in its documents' names (SB-000007, hostile_names.rar)."""
    folder = tmp_path / "site"
    shutil.copytree(processed, folder)
    mail = folder / "hostile"
    mail.mkdir()
    for number, subject in enumerate(CONTROL_SUBJECTS, start=5):
        (mail / f"{number}.eml").write_bytes(with_subject(subject, sender=CONTACT[LINYI]))
    (mail / "7.eml").write_bytes(submission(JINAN, [(f"{JINAN}.rar", rar("hostile_names.rar"))], body="第二版"))
    ok(shenbao("process", "hostile", "--config", "shenbao.toml", cwd=folder))
    with SmtpCapture() as smtp:
        (folder / "shenbao.toml").write_text(config_text(smtp.port), encoding="utf-8")
        yield Site(folder, smtp)


def test_digest_output_export_and_remind_work_when_subjects_hold_control_characters(hostile_site: Site) -> None:
    """openpyxl refused such subjects (IllegalCharacterError): no digest, no export, and in the daemon's daily
    job no reminders either."""
    ok(hostile_site.run("digest", "--output", "out"))
    exported = as_json(hostile_site.run("export", "tree", "--json"))
    reminded = as_json(hostile_site.run("remind", "--now", THREE_DAYS_BEFORE, "--json"))

    [book] = (hostile_site.folder / "out").glob("汇总表-*.xlsx")
    log = load_workbook(io.BytesIO(book.read_bytes())).worksheets[1]
    subjects = [row[3] for row in log.iter_rows(min_row=2, values_only=True)]
    assert "临沂沂蒙\\x0b新材料科技（集团）有限公司" in subjects
    assert "临沂沂蒙新材料\\x00科技（集团）有限公司" in subjects
    assert isinstance(exported, dict) and exported["enterprises"] == 1
    tree = hostile_site.folder / "tree"
    [jinan] = tree.glob(f"*/济南/{JINAN}")  # under the call's folder
    assert {p.name for p in jinan.iterdir()} == {
        "申报书_[31m红字_[0m.docx",
        "典型经验材料_竖排.docx",
        "证明材料_xcod.docx",
    }
    tool = shutil.which("sha256sum")
    if tool is not None:
        subprocess.run([tool, "--check", "--strict", "manifest.sha256"], cwd=tree, check=True, capture_output=True)
    assert reminded == {"queued": 2, "sent": 2}
    assert sorted(rcpt for m in hostile_site.smtp.wait_for(2) for rcpt in m.rcpt_tos) == sorted(
        [CONTACT[QINGDAO], CONTACT[LINYI]]
    )


def test_status_and_show_print_control_characters_from_mail_as_escapes(hostile_site: Site) -> None:
    status = ok(hostile_site.run("status"))
    jinan = ok(hostile_site.run("show", "济南明湖"))
    linyi = ok(hostile_site.run("show", "临沂"))

    for text in (status, jinan, linyi):
        assert not CONTROL_CHARACTERS & set(text)
    assert "申报书\\x1b[31m红字\\x1b[0m.docx" in jinan
    assert "证明材料\\u202excod.docx" in jinan
    assert "主题：临沂沂蒙\\x0b新材料科技（集团）有限公司" in linyi
    assert "主题：临沂沂蒙新材料\\x00科技（集团）有限公司" in linyi


# -- recheck and attach -------------------------------------------------------------------------------------


def test_recheck_after_a_roster_fix_shows_the_change_and_tells_nobody_without_notify(site: Site) -> None:
    write_roster(site.folder / "roster.xlsx", [*ROWS, ZIBO_ROW])

    *changed, summary = json_lines(site.run("recheck", "--json"))

    assert summary == {"checked": 4, "changed": 1, "recorded": True}
    [change] = changed
    assert (change["reference"], change["enterprise"], change["before"], change["after"]) == (
        "SB-000004",
        ZIBO,
        "review",
        "accepted",
    )
    assert "direct_sender" in str(change["before_codes"])
    assert site.smtp.messages == []
    assert site.query(
        "SELECT m.outcome, p.enterprise_name, p.call FROM message m JOIN package p ON p.message_id = m.id "
        "WHERE m.id = 4"
    ) == [("accepted", ZIBO, "default")]
    assert site.query("SELECT count(*) FROM outbox") == [(0,)]
    # judged again, nothing changes: the accepted messages are not "the same as" themselves
    assert json_lines(site.run("recheck", "--json")) == [{"checked": 4, "changed": 0, "recorded": True}]


def test_recheck_dry_run_shows_the_change_and_records_nothing(site: Site) -> None:
    write_roster(site.folder / "roster.xlsx", [*ROWS, ZIBO_ROW])
    sql = "SELECT m.id, m.outcome, p.enterprise_name, p.call FROM message m JOIN package p ON p.message_id = m.id"
    before = site.query(sql)

    *changed, summary = json_lines(site.run("recheck", "--dry-run", "--json"))
    text = ok(site.run("recheck", "--dry-run"))

    assert summary["recorded"] is False
    assert [(c["reference"], c["after"]) for c in changed] == [("SB-000004", "accepted")]
    assert f"SB-000004 {ZIBO}：待人工 → 已受理" in text
    assert "未作记录" in text.splitlines()[-1]
    assert site.query(sql) == before
    assert site.query("SELECT count(*) FROM revision") == [(0,)]
    assert site.smtp.messages == []


def test_recheck_notify_sends_the_sender_the_new_verdict(site: Site) -> None:
    write_roster(site.folder / "roster.xlsx", [*ROWS, ZIBO_ROW])

    *changed, _ = json_lines(site.run("recheck", "--notify", "--json"))

    assert [c["reference"] for c in changed] == ["SB-000004"]
    [captured] = site.smtp.wait_for(1)
    assert captured.rcpt_tos == [CONTACT[ZIBO]]
    assert str(parsed(captured)["Subject"]) == f"【受理回执】{ZIBO}"
    assert len(site.smtp.messages) == 1  # nobody whose verdict stayed the same is told


def test_attach_judges_a_review_message_with_the_archive_fetched_by_hand_and_sends_a_receipt(
    site: Site, tmp_path: Path
) -> None:
    archive = tmp_path / f"{QINGDAO}.rar"
    shutil.copyfile(RAR / "valid.rar", archive)

    result = json_lines(site.run("attach", "SB-000002", archive, "--json"))

    attached = {"reference": "SB-000002", "done": "attached", "enterprise": QINGDAO}
    assert result == [{**attached, "before": "review", "after": "accepted"}, {"unmatched": []}]
    [captured] = site.smtp.wait_for(1)
    assert captured.rcpt_tos == [CONTACT[QINGDAO]]
    receipt = parsed(captured)
    assert str(receipt["Subject"]) == f"【受理回执】{QINGDAO}"
    assert "申报书.docx" in plain(receipt)
    assert site.query("SELECT outcome FROM message WHERE id = 2") == [("accepted",)]
    assert site.query("SELECT version FROM submission WHERE message_id = 2") == [(1,)]
    assert site.query("SELECT filename, by_staff FROM attachment WHERE message_id = 2") == [(archive.name, 1)]
    assert site.query("SELECT reason, old_outcome, old_codes, new_outcome, new_codes FROM revision") == [
        ("attach", "review", "attachment_link", "accepted", "")
    ]


def test_attach_dir_matches_the_downloads_to_the_link_messages_by_name(site: Site, tmp_path: Path) -> None:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    shutil.copyfile(RAR / "valid.rar", downloads / f"{QINGDAO}.rar")
    shutil.copyfile(RAR / "valid.rar", downloads / "某某公司.rar")

    lines = ok(site.run("attach", "--dir", downloads)).splitlines()

    assert lines == [
        f"SB-000002 {QINGDAO}：待人工 → 已受理",  # in the words staff read, not the codes
        f"未能对应到待下载的邮件：{downloads / '某某公司.rar'}",
    ]
    [captured] = site.smtp.wait_for(1)
    assert captured.rcpt_tos == [CONTACT[QINGDAO]]
    assert statuses(site)[QINGDAO] == "已受理"


# -- the "Done when", on the shared corpus ----------------------------------------------------------


def corpus_standings(expected: dict[str, object], roster: list[str]) -> dict[str, str]:
    """Each roster enterprise's standing by point 1 of the issue, from the corpus's expected verdicts."""
    cases = expected["cases"]
    assert isinstance(cases, dict)
    outcomes: dict[str, set[str]] = {name: set() for name in roster}
    for case in cases.values():
        if case["enterprise"] in outcomes and case["verdict"] != "ignored":
            outcomes[case["enterprise"]].add(case["verdict"])
    words = {}
    for name, found in outcomes.items():
        words[name] = (
            "已受理" if "accepted" in found else "待人工" if "review" in found else "已退回" if found else "未提交"
        )
    return words


@pytest.mark.skipif(not (CORPUS / "messages").is_dir(), reason="the shared corpus (../shared/corpus) is not here")
def test_digest_output_after_processing_the_corpus_has_a_row_per_roster_enterprise_with_its_status(
    tmp_path: Path,
) -> None:
    expected = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
    (tmp_path / "shenbao.toml").write_text(
        "[storage]\n"
        'database = "sqlite:///var/shenbao.db"\n'
        'files = "var/files"\n'
        "[campaign]\n"
        f'deadline = "{expected["deadline"]}"\n'
        f'roster = "{CORPUS / "roster.xlsx"}"\n',
        encoding="utf-8",
    )
    ok(shenbao("process", CORPUS / "messages", "--config", "shenbao.toml", cwd=tmp_path))

    ok(shenbao("digest", "--config", "shenbao.toml", "--output", "out", cwd=tmp_path))

    [book] = (tmp_path / "out").glob("汇总表-*.xlsx")
    header, rows = first_sheet_rows(book)
    _, roster_rows = first_sheet_rows(CORPUS / "roster.xlsx")
    roster = [str(row[2]) for row in roster_rows[1:] if row[2]]  # under the title row and the header row
    assert "状态" in header
    assert [row[header.index("企业名称")] for row in rows] == roster
    standings = corpus_standings(expected, roster)
    assert {row[header.index("企业名称")]: row[header.index("状态")] for row in rows} == standings
    assert set(standings.values()) <= {"已受理", "待人工", "已退回", "未提交"}
