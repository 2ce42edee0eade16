"""The daily digest (issue 4, point 2): read from a real SQLite file, one per day, sent over real SMTP.

What it says (counts by status and city, arrivals since the last digest, who needs a person, who is missing
and how many days are left, failed replies, mailbox health) must match the database; it is queued once per
day even across a restart, `write` never counts as the day's digest, and the scheduled job waits for its time.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import FIXTURES, ROSTER_ROWS, SHANGHAI, rar, submission, write_roster
from hostile_mail import with_subject
from openpyxl import load_workbook
from sqlmodel import Session, select

from daemon.app.actions import decide
from daemon.campaign import Bureau, Call, CallRules
from daemon.config import CampaignSettings, DigestSettings, Security, Settings, SmtpSettings, StorageSettings
from daemon.demo.servers import SmtpCapture
from daemon.domain import Code, Problem
from daemon.explain import titles
from daemon.render import Renderer
from daemon.service.outbox import Sender, recover_interrupted, send_due
from daemon.service.recorder import Recorder
from daemon.service.runtime import Runtime
from daemon.staff import digest, jobs
from daemon.storage.blobs import BlobStore
from daemon.storage.db import open_database, set_meta
from daemon.storage.models import Alert, DigestRecord, MessageRecord, OutboxItem, now

DEADLINE = datetime(2022, 7, 5, 23, 59, 59, tzinfo=SHANGHAI)
MORNING = datetime(2022, 7, 2, 10, 0, tzinfo=SHANGHAI)  # 3 days before the deadline
CAMPAIGN = "2022年质量标杆"
RECIPIENTS = ("chuzhang@shandong.cn", "keyuan@shandong.cn")
LINK = "https://mail.qq.com/cgi-bin/ftnExs_download?k=1&t=exs_ftn_download&code=2"
STRANGER = "daiban@agency.example.cn"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

JINAN, QINGDAO, LINYI = (row[1] for row in ROSTER_ROWS)
QUANCHENG = "济南泉城智能装备有限公司"
ZIBO = "淄博鲁中陶瓷有限责任公司"
ROWS = [
    ROSTER_ROWS[0],
    ("济南", QUANCHENG, "智能装备全过程质量追溯", "孙工", "13863100008", "qc@quancheng-zn.cn"),
    *ROSTER_ROWS[1:],
    ("淄博", ZIBO, "陶瓷窑炉智能质量管控", "赵工", "13863100005", ""),
]
CONTACT = {row[1]: row[5] for row in ROWS}


def settings_in(folder: Path, *, recipients: tuple[str, ...] = RECIPIENTS) -> Settings:
    roster = folder / "roster.xlsx"
    if not roster.exists():
        write_roster(roster, ROWS)
    return Settings(
        storage=StorageSettings(database=f"sqlite:///{folder / 'shenbao.db'}", files=folder / "files"),
        campaign=CampaignSettings(name=CAMPAIGN, deadline=DEADLINE, roster=roster),
        digest=DigestSettings(recipients=recipients, time=dt.time(8, 30)),
        base_dir=folder,
    )


def package(name: str, *, sender: str | None = None, fixture: str = "valid.rar", body: str = "附件为申报材料") -> bytes:
    return submission(name, [(f"{name}.rar", rar(fixture))], sender=sender or CONTACT[name], body=body)


@dataclass(frozen=True)
class Template:
    folder: Path
    ids: dict[str, int]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """济南 accepted from its contact, 泉城 accepted from a stranger, 青岛 waiting for a person (a 超大附件
    link), 临沂 rejected, 淄博 nothing. Recorded once; each test works on its own copy of the files."""
    folder = tmp_path_factory.mktemp("digest")
    runtime = Runtime.open(settings_in(folder))
    recorder = runtime.recorder()
    ids = {
        JINAN: recorder.record(package(JINAN), "1.eml").record_id,
        QUANCHENG: recorder.record(package(QUANCHENG, sender=STRANGER), "2.eml").record_id,
        QINGDAO: recorder.record(submission(QINGDAO, sender=CONTACT[QINGDAO], body=LINK), "3.eml").record_id,
        LINYI: recorder.record(package(LINYI, fixture="missing_proof.rar"), "4.eml").record_id,
    }
    runtime.engine.dispose()  # closes the SQLite file (its WAL checkpointed) before it is copied
    return Template(folder, ids)


@pytest.fixture
def settings(template: Template, tmp_path: Path) -> Settings:
    site = tmp_path / "site"
    shutil.copytree(template.folder, site)
    return settings_in(site)


@pytest.fixture
def runtime(settings: Settings) -> Runtime:
    return Runtime.open(settings)


@pytest.fixture
def submitted(template: Template) -> dict[str, int]:
    """The record ids by enterprise."""
    return template.ids


def gather(runtime: Runtime, moment: datetime = MORNING) -> digest.Digest:
    with Session(runtime.engine) as session:
        return digest.gather(session, runtime.rules, CAMPAIGN, moment)


def queue(runtime: Runtime, moment: datetime = MORNING) -> bool:
    built = gather(runtime, moment)
    with Session(runtime.engine) as session:
        queued = digest.queue(session, Renderer(runtime.sender()), RECIPIENTS, built, moment)
        session.commit()
    return queued


def reference(record_id: int) -> str:
    return f"SB-{record_id:06d}"


def table(settings: Settings, sql: str) -> list[tuple[object, ...]]:
    """Read the SQLite file directly, independently of shenbao's models."""
    connection = sqlite3.connect(settings.database_url.removeprefix("sqlite:///"))
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def part_text(message: EmailMessage, kind: str) -> str:
    body = message.get_body((kind,))
    assert body is not None, f"no text/{kind} part"
    return str(body.get_content())


@pytest.fixture
def smtp() -> Iterator[SmtpCapture]:
    with SmtpCapture() as capture:
        yield capture


def smtp_settings(capture: SmtpCapture) -> SmtpSettings:
    return SmtpSettings(
        host=capture.host,
        port=capture.port,
        security=Security.NONE,
        username="kejichu2019@shandong.cn",
        sender="山东省科技厅 <kejichu2019@shandong.cn>",
    )


# -- what the digest says -------------------------------------------------------------------------------------


def test_the_counts_by_status_and_by_city_match_the_database(
    runtime: Runtime, settings: Settings, submitted: dict[str, int]
) -> None:
    context = gather(runtime).context

    assert context["counts"] == {"已受理": 2, "待人工": 1, "待补齐": 0, "已退回": 1, "未提交": 1}
    assert context["total"] == 5
    # the same facts read straight from the SQLite file
    [(listed,)] = table(settings, "SELECT count(DISTINCT enterprise_id) FROM nomination")
    [(accepted,)] = table(settings, "SELECT count(DISTINCT enterprise_id) FROM submission")
    [(waiting,)] = table(settings, "SELECT count(DISTINCT enterprise_id) FROM package WHERE outcome = 'review'")
    counts = context["counts"]
    assert (context["total"], counts["已受理"], counts["待人工"]) == (listed, accepted, waiting)
    assert sum(context["counts"].values()) == context["total"]
    [call] = context["calls"]
    assert (call["name"], call["total"], call["counts"]) == (CAMPAIGN, 5, context["counts"])
    assert call["cities"] == [
        {"city": "济南", "counts": {"已受理": 2, "待人工": 0, "待补齐": 0, "已退回": 0, "未提交": 0}, "total": 2},
        {"city": "青岛", "counts": {"已受理": 0, "待人工": 1, "待补齐": 0, "已退回": 0, "未提交": 0}, "total": 1},
        {"city": "临沂", "counts": {"已受理": 0, "待人工": 0, "待补齐": 0, "已退回": 1, "未提交": 0}, "total": 1},
        {"city": "淄博", "counts": {"已受理": 0, "待人工": 0, "待补齐": 0, "已退回": 0, "未提交": 1}, "total": 1},
    ]
    assert call["bundles"] == []  # no city bureau sent anything


def test_the_email_states_the_counts_in_text_and_html(runtime: Runtime, submitted: dict[str, int]) -> None:
    message = digest.email(gather(runtime), Renderer(runtime.sender()), RECIPIENTS[0], MORNING)

    text, html = part_text(message, "plain"), part_text(message, "html")
    for line in (
        f"【{CAMPAIGN}】共 5 家",
        "已受理 2，待人工 1，待补齐 0，已退回 1，未提交 1",
        "企业报送截止：2022年07月05日 23:59（还有 3 天）",
    ):
        assert line in text
    assert "济南：已受理 2，待人工 0，待补齐 0，已退回 0，未提交 0（共 2 家）" in text
    assert all(name in html for name in (QINGDAO, LINYI, ZIBO, QUANCHENG))
    assert "已受理 2/5" in str(message["Subject"])


def test_arrivals_are_only_the_messages_recorded_since_the_last_digest(
    runtime: Runtime, submitted: dict[str, int]
) -> None:
    first = gather(runtime, now()).context["arrived"]
    assert [item["reference"] for item in first] == [reference(i) for i in submitted.values()]
    assert queue(runtime, now())

    later = runtime.recorder().record(package(ZIBO, sender="luzhong_cc@126.com"), "5.eml")

    context = gather(runtime, now() + timedelta(days=1)).context
    [arrived] = context["arrived"]
    assert (arrived["reference"], arrived["enterprise"], arrived["outcome_code"]) == (
        reference(later.record_id),
        ZIBO,
        "accepted",
    )
    assert context["counts"]["已受理"] == 3


def test_arrivals_carry_their_verdict_and_problems(runtime: Runtime, submitted: dict[str, int]) -> None:
    arrived = {item["reference"]: item for item in gather(runtime).context["arrived"]}

    linyi = arrived[reference(submitted[LINYI])]
    assert (linyi["enterprise"], linyi["outcome_code"], linyi["sender"]) == (LINYI, "rejected", CONTACT[LINYI])
    assert "缺少材料：证明材料" in linyi["problems"]
    assert arrived[reference(submitted[JINAN])]["problems"] == ""


def test_needs_a_person_lists_undecided_reviews_and_packages_accepted_from_a_stranger(
    runtime: Runtime, submitted: dict[str, int]
) -> None:
    needs = gather(runtime).context["needs_person"]

    assert [item["reference"] for item in needs] == [reference(submitted[QINGDAO]), reference(submitted[QUANCHENG])]
    review, stranger = needs
    assert review["why"] == "待人工审核"
    assert (stranger["enterprise"], stranger["sender"]) == (QUANCHENG, STRANGER)
    assert CONTACT[QUANCHENG] in stranger["why"]

    with Session(runtime.engine) as session:  # a person decides the review message: it no longer waits
        decide(
            session,
            runtime.planner(),
            runtime.recorder(),
            reference(submitted[QINGDAO]),
            accept=False,
            note="链接已失效",
            actor="staff",
            moment=MORNING,
        )
        session.commit()

    assert [item["reference"] for item in gather(runtime).context["needs_person"]] == [reference(submitted[QUANCHENG])]


def test_the_missing_list_names_every_enterprise_not_accepted_with_the_days_left(
    runtime: Runtime, submitted: dict[str, int]
) -> None:
    context = gather(runtime).context

    assert [(m["name"], m["standing"], m["call"]) for m in context["missing"]] == [
        (QINGDAO, "待人工", CAMPAIGN),
        (LINYI, "已退回", CAMPAIGN),
        (ZIBO, "未提交", CAMPAIGN),
    ]
    [linyi] = [m for m in context["missing"] if m["name"] == LINYI]
    assert (linyi["contact"], linyi["email"]) == ("王工", CONTACT[LINYI])
    assert "缺少材料：证明材料" in linyi["problems"]
    [call] = context["calls"]
    assert (call["days_left"], call["deadline"]) == (3, "2022年07月05日 23:59")
    assert (call["bureau_days_left"], call["bureau_deadline"]) == (None, "")


@pytest.mark.parametrize(
    ("moment", "left"),
    [
        (datetime(2022, 7, 2, 10, 0, tzinfo=SHANGHAI), 3),
        (datetime(2022, 7, 1, 17, 0, tzinfo=UTC), 3),  # already 2 July in Beijing
        (datetime(2022, 7, 5, 15, 59, tzinfo=UTC), 0),  # 23:59 on the last day
        (datetime(2022, 7, 5, 16, 0, tzinfo=UTC), -1),  # just past midnight after it
    ],
)
def test_days_left_count_beijing_calendar_days(moment: datetime, left: int) -> None:
    assert digest.days_left(DEADLINE, digest.today(moment)) == left
    assert digest.days_left(None, digest.today(moment)) is None


def test_replies_that_failed_are_uncertain_or_bounced_are_listed(runtime: Runtime, submitted: dict[str, int]) -> None:
    planner = runtime.planner()

    def reply(name: str) -> int:
        with Session(runtime.engine) as session:
            row = session.get(MessageRecord, submitted[name])
            assert row is not None
            item = planner.queue(session, row, now(), guard=False)
            assert item is not None
            session.commit()
            assert item.id is not None
            return item.id

    def set_state(item_id: int, state: str) -> None:
        with Session(runtime.engine) as session:
            item = session.get(OutboxItem, item_id)
            assert item is not None
            item.state = state
            session.add(item)
            session.commit()

    with SmtpCapture(responses=["550 5.1.1 mailbox unavailable"]) as refusing:
        reply(LINYI)
        assert send_due(runtime.engine, Sender(smtp_settings(refusing), None)).failed == 1
        uncertain, bounced, fine = reply(JINAN), reply(QINGDAO), reply(QUANCHENG)
        set_state(uncertain, "sending")  # as a crash mid-conversation leaves it
        assert recover_interrupted(runtime.engine) == 1
        set_state(bounced, "bounced")
        assert send_due(runtime.engine, Sender(smtp_settings(refusing), None)).sent == 1  # `fine`: not listed
        assert refusing.wait_for(1)[0].rcpt_tos == [STRANGER]  # replies go to whoever sent the message

    built = gather(runtime, now())
    context = built.context

    assert [(f["kind"], f["recipient"], f["state"]) for f in context["failed"]] == [
        ("退回通知", CONTACT[LINYI], "发送失败"),
        ("受理回执", CONTACT[JINAN], "不确定是否送达"),
        ("收件通知", CONTACT[QINGDAO], "被退信"),
    ]
    assert "550" in context["failed"][0]["error"]
    texts = [alert["text"] for alert in context["alerts"]]
    assert any("未能发出" in text and CONTACT[LINYI] in text for text in texts)
    assert any("可能已送达，也可能没有" in text and CONTACT[JINAN] in text for text in texts)
    text = part_text(digest.email(built, Renderer(runtime.sender()), RECIPIENTS[0], now()), "plain")
    assert "未能送达的回复（3）" in text
    assert all(CONTACT[name] in text for name in (LINYI, JINAN, QINGDAO))
    assert fine not in (uncertain, bounced)


def test_mailbox_health_shows_the_last_fetch_and_the_alerts_since_the_last_digest(runtime: Runtime) -> None:
    with Session(runtime.engine) as session:
        assert gather(runtime).context["last_fetch"] == ""
        set_meta(session, "imap_last_ok", datetime(2022, 7, 2, 0, 15, tzinfo=UTC).isoformat())
        session.add(Alert(at=MORNING - timedelta(days=3), source="imap", text="登录失败（三天前）"))
        session.add(Alert(at=MORNING - timedelta(hours=2), source="imap", text="连接超时（今天）"))
        session.commit()

    context = gather(runtime).context
    assert context["last_fetch"] == "2022年07月02日 08:15"
    assert [a["text"] for a in context["alerts"]] == ["连接超时（今天）"]  # no digest yet: the last day

    assert queue(runtime, MORNING)
    with Session(runtime.engine) as session:
        session.add(Alert(at=MORNING + timedelta(hours=5), source="outbox", text="发送失败（日报之后）"))
        session.commit()

    later = gather(runtime, MORNING + timedelta(days=1)).context
    assert [a["text"] for a in later["alerts"]] == ["发送失败（日报之后）"]


def test_each_call_has_its_section_with_the_city_bureaus_bundles(tmp_path: Path) -> None:
    bureaus = FIXTURES / "bureaus"
    deadline = datetime(2022, 6, 26, 23, 59, 59, tzinfo=SHANGHAI)
    rules = CallRules(
        calls=(
            Call("province", "2022年全省质量标杆", "附件3", deadline, own_emails=False),
            Call("national", "2022年全国质量标杆", "附件6", deadline, own_emails=False, max_per_city=2),
        ),
        bureaus=(Bureau("青岛", ("qdeit.qingdao.gov.cn",)), Bureau("日照", ("rzgxj_kjk@rizhao.gov.cn",))),
    )
    engine = open_database(f"sqlite:///{tmp_path / 'shenbao.db'}")
    recorder = Recorder(engine, BlobStore(tmp_path / "files"), rules)
    for name in ("01-three-emails-1-letter-table.eml", "02-three-emails-2-archives.eml", "08-missing-letter.eml"):
        recorder.record((bureaus / "messages" / name).read_bytes(), name)
    moment = datetime(2022, 6, 24, 9, 0, tzinfo=SHANGHAI)

    with Session(engine) as session:
        built = digest.gather(session, rules, "", moment)

    province, national = built.context["calls"]
    assert (province["name"], province["total"], province["bureau_days_left"]) == ("2022年全省质量标杆", 4, 2)
    assert (province["counts"]["已受理"], province["counts"]["未提交"]) == (2, 2)
    [qingdao] = province["bundles"]
    assert (qingdao["city"], qingdao["letter"], qingdao["table"], qingdao["archives"]) == (
        "青岛",
        "✔ 1 页",
        "4 家",
        "2/4",
    )
    assert qingdao["missing"] == "青岛崂山矿泉饮品有限公司、青岛胶东数控刀具有限公司"
    assert qingdao["complete"] is False
    [rizhao] = national["bundles"]
    assert (rizhao["city"], rizhao["letter"], rizhao["archives"], rizhao["open"]) == (
        "日照",
        "—",
        "2/2",
        "缺少推荐文件",
    )
    text = part_text(digest.email(built, Renderer("科技处 <kejichu2019@shandong.cn>"), RECIPIENTS[0], moment), "plain")
    assert "【2022年全省质量标杆】共 4 家" in text
    assert "各市报送截止：2022年06月26日 23:59（还有 2 天）" in text
    assert (
        "· 青岛：推荐文件 ✔ 1 页，汇总表 4 家，压缩包 2/4；缺：青岛崂山矿泉饮品有限公司、青岛胶东数控刀具有限公司"
        in text
    )
    assert "· 日照：推荐文件 —，汇总表 2 家，压缩包 2/2；待解决：缺少推荐文件" in text


# -- one a day ------------------------------------------------------------------------------------------------


def test_queue_puts_one_email_per_recipient_in_the_outbox_with_the_workbook_attached(
    runtime: Runtime, settings: Settings, submitted: dict[str, int]
) -> None:
    assert queue(runtime) is True

    with Session(runtime.engine) as session:
        items = list(session.exec(select(OutboxItem).order_by(OutboxItem.id)))  # type: ignore[arg-type]
        [record] = session.exec(select(DigestRecord)).all()
    assert [(i.kind, i.recipient, i.message_id, i.state) for i in items] == [
        ("digest", RECIPIENTS[0], None, "queued"),
        ("digest", RECIPIENTS[1], None, "queued"),
    ]
    assert (record.day, record.outbox_id) == ("2022-07-02", items[0].id)
    for item in items:
        message = parsed(item.raw)
        assert message.get_content_type() == "multipart/mixed"
        assert str(message["To"]) == item.recipient
        assert "申报日报" in part_text(message, "plain")
        assert "<html" in part_text(message, "html").lower()
        [attachment] = list(message.iter_attachments())
        assert (attachment.get_filename(), attachment.get_content_type()) == ("汇总表-20220702.xlsx", XLSX)
        book = load_workbook(io.BytesIO(attachment.get_content()))
        assert book.sheetnames == [CAMPAIGN, "全部来信"]
        sheet = book[CAMPAIGN]
        header = [cell.value for cell in sheet[1]]
        found = [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2, values_only=True)]
        assert [row["企业名称"] for row in found] == [row[1] for row in ROWS]
        assert [row["状态"] for row in found] == ["已受理", "已受理", "待人工", "已退回", "未提交"]


def test_a_second_queue_the_same_day_adds_nothing_even_after_a_restart(
    runtime: Runtime, settings: Settings, submitted: dict[str, int]
) -> None:
    assert queue(runtime, MORNING) is True
    outbox = table(settings, "SELECT id, raw FROM outbox ORDER BY id")

    restarted = Runtime.open(settings)  # a fresh engine on the same SQLite file
    assert queue(restarted, MORNING + timedelta(hours=12)) is False

    assert table(settings, "SELECT id, raw FROM outbox ORDER BY id") == outbox
    assert table(settings, "SELECT day FROM digest") == [("2022-07-02",)]
    assert queue(restarted, MORNING + timedelta(days=1)) is True  # the next day has its own
    assert len(table(settings, "SELECT id FROM outbox")) == 2 * len(RECIPIENTS)


def test_write_saves_the_eml_and_the_workbook_without_counting_as_the_days_digest(
    runtime: Runtime, settings: Settings, submitted: dict[str, int], tmp_path: Path
) -> None:
    folder = tmp_path / "out"

    written = digest.write(gather(runtime), Renderer(runtime.sender()), folder, RECIPIENTS[0], MORNING)

    assert sorted(p.name for p in written) == sorted(p.name for p in folder.iterdir())
    assert sorted(p.name for p in written) == ["digest-20220702.eml", "汇总表-20220702.xlsx"]
    message = parsed((folder / "digest-20220702.eml").read_bytes())
    assert str(message["To"]) == RECIPIENTS[0]
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content() == (folder / "汇总表-20220702.xlsx").read_bytes()
    assert table(settings, "SELECT * FROM digest") == []
    assert table(settings, "SELECT * FROM outbox") == []
    assert queue(runtime, MORNING) is True  # the day's digest is still to be sent


def test_the_scheduled_job_waits_for_its_time_then_queues_once_a_day(
    runtime: Runtime, settings: Settings, submitted: dict[str, int]
) -> None:
    day = datetime(2022, 7, 2, tzinfo=SHANGHAI)

    assert jobs.digest_if_due(runtime, day.replace(hour=8, minute=29, second=59)) is False
    assert table(settings, "SELECT count(*) FROM outbox") == [(0,)]
    assert jobs.digest_if_due(runtime, day.replace(hour=8, minute=30)) is True
    assert jobs.digest_if_due(runtime, day.replace(hour=12)) is False
    assert jobs.digest_if_due(Runtime.open(settings), day.replace(hour=23, minute=59)) is False  # after a restart
    assert table(settings, "SELECT recipient FROM outbox ORDER BY id") == [(r,) for r in RECIPIENTS]

    assert jobs.digest_if_due(runtime, day + timedelta(days=1, hours=7)) is False
    assert jobs.digest_if_due(runtime, day + timedelta(days=1, hours=9)) is True
    assert table(settings, "SELECT day FROM digest ORDER BY day") == [("2022-07-02",), ("2022-07-03",)]


def test_the_job_queues_nothing_when_there_are_no_recipients(tmp_path: Path) -> None:
    runtime = Runtime.open(settings_in(tmp_path, recipients=()))

    assert jobs.digest_if_due(runtime, MORNING) is False

    with Session(open_database(runtime.settings.database_url)) as session:
        assert session.exec(select(DigestRecord)).all() == []
        assert session.exec(select(OutboxItem)).all() == []


def test_sending_delivers_exactly_one_digest_to_each_recipient(
    runtime: Runtime, submitted: dict[str, int], smtp: SmtpCapture
) -> None:
    sender = Sender(smtp_settings(smtp), None)
    assert jobs.digest_if_due(runtime, MORNING) is True

    tally = send_due(runtime.engine, sender)

    assert (tally.sent, tally.failed, tally.deferred) == (2, 0, 0)
    delivered = smtp.wait_for(2)
    assert sorted(rcpt for m in delivered for rcpt in m.rcpt_tos) == sorted(RECIPIENTS)
    for captured in delivered:
        message = parsed(captured.data)
        assert str(message["To"]) == captured.rcpt_tos[0]
        assert str(message["Subject"]).startswith("【申报日报】")
        assert [a.get_filename() for a in message.iter_attachments()] == ["汇总表-20220702.xlsx"]

    assert jobs.digest_if_due(runtime, MORNING + timedelta(hours=3)) is False
    assert send_due(runtime.engine, sender).sent == 0
    assert len(smtp.messages) == 2


@pytest.mark.parametrize("control", ["\x0b", "\x00"], ids=["vertical tab", "NUL"])
def test_the_daily_job_queues_the_digest_and_the_reminders_when_a_subject_holds_a_control_character(
    runtime: Runtime, settings: Settings, submitted: dict[str, int], control: str
) -> None:
    """The workbook refused such a subject (openpyxl's IllegalCharacterError) every day, and took the day's
    reminders with it: the daemon runs both in one job (issue 8, finding 5)."""
    subject = f"临沂沂蒙{control}新材料科技（集团）有限公司"
    runtime.recorder().record(with_subject(subject, sender=CONTACT[LINYI]), "control.eml")

    queued = jobs.digest_if_due(runtime, MORNING) + jobs.reminders_if_due(runtime, MORNING)  # as the daemon does

    assert queued == 1 + 2
    kinds = [kind for (kind,) in table(settings, "SELECT kind FROM outbox ORDER BY id")]
    assert kinds == ["digest", "digest", "reminder", "reminder"]
    [(raw,)] = table(settings, "SELECT raw FROM outbox WHERE kind = 'digest' ORDER BY id LIMIT 1")
    assert isinstance(raw, bytes)
    [attachment] = list(parsed(raw).iter_attachments())
    log = load_workbook(io.BytesIO(attachment.get_content())).worksheets[1]
    assert [row[3] for row in log.iter_rows(min_row=2, values_only=True)][-1] == subject.replace(
        control, f"\\x{ord(control):02x}"
    )
    assert table(settings, "SELECT subject FROM message ORDER BY id DESC LIMIT 1") == [(subject,)]


def test_a_problem_said_of_several_enterprises_is_titled_once_with_its_count() -> None:
    rules = CallRules(calls=(Call(deadline=datetime(2022, 7, 5, 23, 59, 59, tzinfo=SHANGHAI)),))
    missing = [Problem(Code.MISSING_ARCHIVE, enterprise=name) for name in ("甲公司", "乙公司", "丙公司")]

    line = titles([*missing, Problem(Code.MISSING_LETTER)], rules)

    assert line == "汇总表中的企业尚无申报材料（3 项）；缺少推荐文件"
