"""Conversations as clerks write them (issue 10), replayed through the daemon on pymap: how many emails and
which replies it takes until an enterprise is accepted.

Each email is delivered, then `shenbao run --once` judges it and sends its reply, before the next email
arrives (a clerk answers a reply). The end of a volume window is simulated with `run --once --now`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import ENTERPRISE, RECEIVED, rar, submission
from daemon_support import (
    FOLDERS,
    append,
    daemon_env,
    message_ids_in,
    replies,
    shenbao,
    text_and_html,
    with_message_id,
    write_config,
)

from daemon.demo.servers import PymapServer, SmtpCapture

SENDER = "ops@minghu-soft.cn"
TYPO = "济南明湖软件科枝有限公司"  # 技 typed as 枝


class Clerk:
    """One enterprise's clerk and our mailbox: send an email, let the daemon run once, read our replies."""

    def __init__(self, imap: PymapServer, smtp: SmtpCapture, folder: Path) -> None:
        self.imap, self.smtp, self.folder = imap, smtp, folder
        self.config = write_config(folder, imap, smtp)
        self.sent = 0

    def send(self, raw: bytes, *, at: datetime = RECEIVED) -> list[EmailMessage]:
        """Deliver `raw` as received `at`; the daemon runs a minute later (the fixtures' time, not today's)."""
        self.sent += 1
        append(self.imap, with_message_id(raw, f"<clerk-{self.sent}@minghu-soft.cn>"), when=at)
        return self.run(at + timedelta(minutes=1))

    def run(self, now: datetime) -> list[EmailMessage]:
        """The daemon's pass as of `now`; the replies it sent in it."""
        before = len(self.smtp.messages)
        done = shenbao(
            "run",
            "--config",
            self.config,
            "--once",
            "--now",
            now.isoformat(),
            env=daemon_env(self.imap),
            cwd=self.folder,
        )
        assert done.returncode == 0, done.stderr
        return replies(self.smtp)[before:]


@pytest.fixture
def clerk(tmp_path: Path) -> Iterator[Clerk]:
    with PymapServer("kejichu2019@shandong.cn", "secret") as imap, SmtpCapture(auth=True) as smtp:
        yield Clerk(imap, smtp, tmp_path / "conf")


def package(
    subject: str = ENTERPRISE, archive: str = f"{ENTERPRISE}.rar", fixture: str = "valid.rar", **kwargs: object
) -> bytes:
    return submission(subject, [(archive, rar(fixture))], sender=SENDER, **kwargs)  # type: ignore[arg-type]


def kind(reply: EmailMessage) -> str:
    subject = str(reply["Subject"])
    for tag, name in (("【受理回执】", "receipt"), ("【退回通知】", "rejection"), ("【已收到分卷】", "volumes")):
        if subject.startswith(tag):
            return name
    return subject


def text(reply: EmailMessage) -> str:
    return text_and_html(reply)[0]


def test_a_reply_to_a_rejection_with_the_fixed_archive_is_accepted_in_two_emails(clerk: Clerk) -> None:
    [rejection] = clerk.send(package(fixture="missing_proof.rar"))
    answer = submission(
        f"回复：{rejection['Subject']}",
        [(f"{ENTERPRISE}.rar", rar("valid.rar"))],
        sender=SENDER,
        headers=[("In-Reply-To", str(rejection["Message-ID"])), ("References", str(rejection["Message-ID"]))],
    )
    [receipt] = clerk.send(answer, at=RECEIVED + timedelta(hours=2))

    assert (kind(rejection), kind(receipt)) == ("rejection", "receipt")
    assert "直接回复本邮件" in text(rejection)
    assert ENTERPRISE in str(receipt["Subject"])


def test_a_subject_with_words_after_the_full_name_is_accepted_in_one_email_with_a_note(clerk: Clerk) -> None:
    [receipt] = clerk.send(package(subject=f"{ENTERPRISE}（申报）"))

    assert kind(receipt) == "receipt"
    assert "今后报送时，请以企业全称作为邮件主题" in text(receipt)


def test_an_archive_named_with_a_date_after_the_full_name_is_accepted_in_one_email(clerk: Clerk) -> None:
    [receipt] = clerk.send(package(archive=f"{ENTERPRISE}20220620.rar"))

    assert kind(receipt) == "receipt"
    assert f"请将压缩包命名为“{ENTERPRISE}.rar”" in text(receipt)


def test_subject_and_archive_both_off_get_one_rejection_naming_both_then_acceptance(clerk: Clerk) -> None:
    [rejection] = clerk.send(package(subject=TYPO, archive=f"{TYPO}.rar"))
    [receipt] = clerk.send(package(), at=RECEIVED + timedelta(hours=1))

    said = text(rejection)
    assert kind(rejection) == "rejection"
    assert "「枝」应为「技」" in said
    assert f"压缩包名称“{TYPO}.rar”也请一并改为“{ENTERPRISE}.rar”" in said
    assert kind(receipt) == "receipt"


@pytest.mark.parametrize("order", [(1, 2, 3), (3, 1, 2)], ids=["in-order", "out-of-order"])
def test_three_volumes_in_three_emails_are_accepted_after_the_third_with_two_notes(
    clerk: Clerk, order: tuple[int, int, int]
) -> None:
    answers = []
    for step, number in enumerate(order):
        raw = package(archive=f"{ENTERPRISE}.part{number}.rar", fixture=f"volumes.part{number}.rar")
        answers += clerk.send(raw, at=RECEIVED + timedelta(minutes=15 * step))

    assert [kind(reply) for reply in answers] == ["volumes", "volumes", "receipt"]
    assert "待其余分卷" in text(answers[0]) and "第" in text(answers[1])
    assert "3 卷" in text(answers[2])
    clerks = [f"<clerk-{n}@minghu-soft.cn>" for n in (1, 2, 3)]
    assert message_ids_in(clerk.imap, "INBOX") == []  # each filed, none failing in the inbox
    assert sorted(message_ids_in(clerk.imap, FOLDERS["pending"])) == clerks[:2]
    assert message_ids_in(clerk.imap, FOLDERS["accepted"]) == clerks[2:]


def test_three_volumes_waiting_together_are_each_judged_with_the_ones_recorded_before_them(clerk: Clerk) -> None:
    """One pass over three volumes in the inbox: each is judged ahead while the one before it is recorded
    (service/foresight.py), when the earlier volumes are not yet on record; those judgements do not hold and
    the volumes are judged again in their turn, so the third still completes the set."""
    for number in (1, 2, 3):
        raw = package(archive=f"{ENTERPRISE}.part{number}.rar", fixture=f"volumes.part{number}.rar")
        append(clerk.imap, with_message_id(raw, f"<clerk-{number}@minghu-soft.cn>"), when=RECEIVED)

    answers = clerk.run(RECEIVED + timedelta(minutes=1))

    assert [kind(reply) for reply in answers] == ["volumes", "volumes", "receipt"]
    assert "3 卷" in text(answers[2])
    assert message_ids_in(clerk.imap, FOLDERS["accepted"]) == ["<clerk-3@minghu-soft.cn>"]


def test_two_of_three_volumes_get_one_rejection_naming_the_missing_one_when_the_window_passes(clerk: Clerk) -> None:
    notes = clerk.send(package(archive=f"{ENTERPRISE}.part1.rar", fixture="volumes.part1.rar"))
    notes += clerk.send(
        package(archive=f"{ENTERPRISE}.part2.rar", fixture="volumes.part2.rar"), at=RECEIVED + timedelta(minutes=20)
    )
    assert clerk.run(now=RECEIVED + timedelta(hours=71)) == []  # the window is still open
    [rejection] = clerk.run(now=RECEIVED + timedelta(hours=73))

    assert [kind(reply) for reply in notes] == ["volumes", "volumes"]
    assert kind(rejection) == "rejection"
    assert f"{ENTERPRISE}.part3.rar" in text(rejection)
    assert clerk.run(now=RECEIVED + timedelta(hours=80)) == []  # one rejection, never two


def test_exact_matching_keeps_the_strict_verdicts(tmp_path: Path) -> None:
    with PymapServer("kejichu2019@shandong.cn", "secret") as imap, SmtpCapture(auth=True) as smtp:
        strict = Clerk(imap, smtp, tmp_path / "conf")
        text_of = strict.config.read_text(encoding="utf-8")
        strict.config.write_text(
            text_of.replace("[campaign]\n", '[campaign]\nsubject_match = "exact"\narchive_name_match = "exact"\n'),
            encoding="utf-8",
        )
        [first] = strict.send(package(subject=f"{ENTERPRISE}（申报）"))
        [second] = strict.send(package(archive=f"{ENTERPRISE}20220620.rar"), at=RECEIVED + timedelta(hours=1))

    assert (kind(first), kind(second)) == ("rejection", "rejection")
    assert "邮件主题不是名单中的企业全称" in text(first)
    assert "压缩包名称不是企业全称" in text(second)
