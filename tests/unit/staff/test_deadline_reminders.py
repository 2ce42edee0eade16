"""Deadline reminders (issue 4, point 4), against a real SQLite file.

On each scheduled day (7, 3 and 1 days before the deadline, from 09:00 Beijing time) every roster enterprise
with a contact email and no accepted submission gets one reminder; never two for the same day, even across a
restart, because what was queued is recorded in the database.
"""

from __future__ import annotations

import email
import email.policy
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import ROSTER_ROWS, SHANGHAI, rar, submission, write_roster
from sqlmodel import Session, select

from daemon.config import CampaignSettings, ImapSettings, Settings, StorageSettings
from daemon.render import Renderer
from daemon.service.runtime import Runtime
from daemon.staff import reminders
from daemon.staff.jobs import reminders_if_due
from daemon.storage.models import Enterprise, OutboxItem, ReminderRecord

DEADLINE = datetime(2022, 7, 5, 23, 59, 59, tzinfo=SHANGHAI)
CAMPAIGN = "2022年质量标杆"
MAILBOX = "kejichu2019@shandong.cn"
LINK = "https://mail.qq.com/cgi-bin/ftnExs_download?k=1&t=exs_ftn_download&code=2"
THREE_DAYS = datetime(2022, 7, 2, 10, 0, tzinfo=SHANGHAI)
ONE_DAY = datetime(2022, 7, 4, 10, 0, tzinfo=SHANGHAI)

JINAN, QINGDAO, LINYI = (row[1] for row in ROSTER_ROWS)
ZIBO = "淄博鲁中陶瓷有限责任公司"
WEIHAI = "威海远航电子有限公司"
ROWS = [
    *ROSTER_ROWS,
    ("淄博", ZIBO, "陶瓷窑炉智能质量管控", "赵工", "13863100005", ""),
    ("威海", WEIHAI, "电子元器件可靠性工程", "周工", "13863100007", "yuanhang@whyh.com.cn"),
]
CONTACT = {row[1]: row[5] for row in ROWS}
REMINDED = {QINGDAO, LINYI, WEIHAI}
"""Not accepted and with an email: 青岛 waits for a person, 临沂 was rejected, 威海 sent nothing."""


def settings_in(folder: Path, rows: list[tuple[str, ...]] = ROWS) -> Settings:
    roster = folder / "roster.xlsx"
    if not roster.exists():
        write_roster(roster, rows)
    return Settings(
        imap=ImapSettings(host="imap.shandong.cn", username=MAILBOX),
        storage=StorageSettings(database=f"sqlite:///{folder / 'shenbao.db'}", files=folder / "files"),
        campaign=CampaignSettings(name=CAMPAIGN, deadline=DEADLINE, roster=roster),
        base_dir=folder,
    )


def package(name: str, fixture: str = "valid.rar") -> bytes:
    return submission(name, [(f"{name}.rar", rar(fixture))], sender=CONTACT[name])


def submit_all(runtime: Runtime) -> None:
    """济南 accepted, 青岛 a 超大附件 link (review), 临沂 rejected; 淄博 (no email) and 威海 sent nothing."""
    recorder = runtime.recorder()
    recorder.record(package(JINAN), "1.eml")
    recorder.record(submission(QINGDAO, sender=CONTACT[QINGDAO], body=f"超大附件 {LINK}"), "2.eml")
    recorder.record(package(LINYI, "missing_proof.rar"), "3.eml")


@dataclass(frozen=True)
class Template:
    folder: Path


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    folder = tmp_path_factory.mktemp("reminders")
    runtime = Runtime.open(settings_in(folder))
    submit_all(runtime)
    runtime.engine.dispose()  # closes the SQLite file before it is copied
    return Template(folder)


@pytest.fixture
def settings(template: Template, tmp_path: Path) -> Settings:
    site = tmp_path / "site"
    shutil.copytree(template.folder, site)
    return settings_in(site)


@pytest.fixture
def runtime(settings: Settings) -> Runtime:
    return Runtime.open(settings)


def candidates(runtime: Runtime, moment: datetime) -> list[reminders.Candidate]:
    with Session(runtime.engine) as session:
        return reminders.candidates(session, runtime.rules, runtime.settings.reminders, moment)


def queue(runtime: Runtime, moment: datetime) -> int:
    with Session(runtime.engine) as session:
        due = reminders.candidates(session, runtime.rules, runtime.settings.reminders, moment)
        queued = reminders.queue(session, Renderer(runtime.sender()), runtime.rules, runtime.mailbox(), due, moment)
        session.commit()
    return queued


def to_remind(found: list[reminders.Candidate]) -> set[str]:
    return {c.name for c in found if c.remind}


def outbox(runtime: Runtime) -> list[OutboxItem]:
    with Session(runtime.engine) as session:
        return list(session.exec(select(OutboxItem).order_by(OutboxItem.id)))  # type: ignore[arg-type]


def recorded(runtime: Runtime) -> list[tuple[str, str]]:
    """(enterprise, day) of every reminder recorded in the database."""
    with Session(runtime.engine) as session:
        names = {e.id: e.name for e in session.exec(select(Enterprise))}
        return sorted((names[r.enterprise_id], r.day) for r in session.exec(select(ReminderRecord)))


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


# -- who, and when --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "left"),
    [
        (datetime(2022, 6, 28, 9, 0, tzinfo=SHANGHAI), 7),  # on the stroke of 09:00
        (datetime(2022, 7, 2, 15, 30, tzinfo=SHANGHAI), 3),
        (datetime(2022, 7, 2, 2, 0, tzinfo=UTC), 3),  # 10:00 in Beijing
        (datetime(2022, 7, 4, 23, 59, 59, tzinfo=SHANGHAI), 1),
    ],
)
def test_on_a_reminder_day_every_enterprise_with_an_email_and_no_accepted_submission_is_picked(
    runtime: Runtime, moment: datetime, left: int
) -> None:
    found = candidates(runtime, moment)

    assert to_remind(found) == REMINDED
    assert JINAN not in {c.name for c in found}  # accepted: never reminded
    [skipped] = [c for c in found if not c.remind]
    assert (skipped.name, skipped.reason) == (ZIBO, "名单中没有联系邮箱")
    assert {c.days_left for c in found} == {left}
    assert {(c.call.name, c.call.deadline, c.city) for c in found} == {(CAMPAIGN, DEADLINE, None)}
    why = {c.name: c.reason for c in found if c.remind}
    assert all(f"距截止还有 {left} 天" in reason for reason in why.values())
    assert "已退回" in why[LINYI] and "缺少材料：证明材料" in why[LINYI]
    assert "待人工" in why[QINGDAO]
    assert "未提交" in why[WEIHAI]


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2022, 7, 2, 8, 59, 59, tzinfo=SHANGHAI),  # the right day, before 09:00
        datetime(2022, 7, 2, 0, 30, tzinfo=UTC),  # 08:30 in Beijing
        datetime(2022, 7, 2, 16, 30, tzinfo=UTC),  # still 2 July in UTC, but 3 July (2 days left) in Beijing
        datetime(2022, 7, 1, 10, 0, tzinfo=SHANGHAI),  # 4 days left
        datetime(2022, 7, 3, 10, 0, tzinfo=SHANGHAI),  # 2 days left
        datetime(2022, 7, 5, 10, 0, tzinfo=SHANGHAI),  # the deadline's own day
        datetime(2022, 7, 6, 10, 0, tzinfo=SHANGHAI),  # past the deadline
        datetime(2022, 6, 21, 10, 0, tzinfo=SHANGHAI),  # 14 days left
    ],
)
def test_nobody_is_reminded_before_nine_or_on_other_days(runtime: Runtime, moment: datetime) -> None:
    assert candidates(runtime, moment) == []
    assert queue(runtime, moment) == 0
    assert outbox(runtime) == []


# -- once per day -------------------------------------------------------------------------------------------


def test_after_the_days_reminders_are_queued_nobody_is_reminded_again_that_day(runtime: Runtime) -> None:
    assert queue(runtime, THREE_DAYS) == 3

    again = candidates(runtime, THREE_DAYS + timedelta(hours=5))

    assert to_remind(again) == set()
    assert {c.name: c.reason for c in again} == {
        QINGDAO: "今天已提醒",
        LINYI: "今天已提醒",
        WEIHAI: "今天已提醒",
        ZIBO: "名单中没有联系邮箱",
    }
    assert queue(runtime, THREE_DAYS + timedelta(hours=5)) == 0
    assert sorted(item.recipient for item in outbox(runtime)) == sorted(CONTACT[name] for name in REMINDED)
    assert {item.kind for item in outbox(runtime)} == {"reminder"}


def test_once_per_day_across_a_restart(runtime: Runtime, settings: Settings) -> None:
    assert reminders_if_due(runtime, THREE_DAYS) == 3

    restarted = Runtime.open(settings)  # a new engine on the same SQLite file
    assert to_remind(candidates(restarted, THREE_DAYS + timedelta(hours=1))) == set()
    assert reminders_if_due(restarted, THREE_DAYS + timedelta(hours=8)) == 0

    assert len(outbox(restarted)) == 3
    assert recorded(restarted) == sorted((name, "2022-07-02") for name in REMINDED)


def test_the_next_scheduled_day_reminds_again_those_still_not_accepted(runtime: Runtime) -> None:
    assert reminders_if_due(runtime, THREE_DAYS) == 3
    runtime.recorder().record(package(QINGDAO), "4.eml")  # 青岛 sends its package: accepted

    assert to_remind(candidates(runtime, ONE_DAY)) == {LINYI, WEIHAI}
    assert reminders_if_due(runtime, ONE_DAY) == 2

    assert recorded(runtime) == sorted(
        [*((name, "2022-07-02") for name in REMINDED), (LINYI, "2022-07-04"), (WEIHAI, "2022-07-04")]
    )
    assert [item.recipient for item in outbox(runtime)][-2:] == [CONTACT[LINYI], CONTACT[WEIHAI]]


# -- the email ------------------------------------------------------------------------------------------------


def test_the_reminder_names_the_mailbox_the_subject_rule_and_the_deadline(runtime: Runtime) -> None:
    queue(runtime, THREE_DAYS)
    [item] = [item for item in outbox(runtime) if item.recipient == CONTACT[LINYI]]

    message = parsed(item.raw)

    assert str(message["To"]) == CONTACT[LINYI]
    assert str(message["Subject"]) == f"【申报提醒】{CAMPAIGN}申报将于3天后截止"
    assert str(message["Auto-Submitted"]) == "auto-generated"
    for kind in ("plain", "html"):
        body = message.get_body((kind,))
        assert body is not None
        text = str(body.get_content())
        assert MAILBOX in text  # where to send it
        assert LINYI in text and "申报企业全称" in text  # the subject rule
        assert f"{LINYI}.rar" in text
        assert "2022年07月05日 23:59" in text  # the deadline
        assert "缺少材料：证明材料" in text  # why the earlier message was returned
    plain = message.get_body(("plain",))
    assert plain is not None
    assert f"邮件主题：{LINYI}" in str(plain.get_content())


# -- what the dry run promises is what is sent -------------------------------------------------------------


@pytest.mark.parametrize(
    "cell",
    [
        "ym-xcl@qq.com；backup@qq.com",
        "ym-xcl@qq.com;backup@qq.com",
    ],
)
def test_every_enterprise_the_candidates_mark_to_remind_gets_its_reminder(tmp_path: Path, cell: str) -> None:
    rows = [(*row[:5], cell) if row[1] == LINYI else row for row in ROWS]
    runtime = Runtime.open(settings_in(tmp_path, rows))
    submit_all(runtime)
    promised = to_remind(candidates(runtime, THREE_DAYS))

    queue(runtime, THREE_DAYS)

    assert {name for name, _ in recorded(runtime)} == promised
    assert {QINGDAO, WEIHAI} <= promised
