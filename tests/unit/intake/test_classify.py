"""Bounces, auto-replies and bulk mail are recognised before anything else (daemon/intake/classify.py)."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
from conftest import ENTERPRISE, rar, submission, valid_submission

from daemon.domain import Code, ParsedMessage
from daemon.intake.classify import classify
from daemon.intake.parse import parse_message


def parse(raw: bytes, workdir: Path) -> ParsedMessage:
    parsed = parse_message(raw, workdir)
    assert isinstance(parsed, ParsedMessage), parsed
    return parsed


def code_of(raw: bytes, workdir: Path) -> Code | None:
    problem = classify(parse(raw, workdir))
    return None if problem is None else problem.code


def with_from(from_value: bytes, **kwargs: object) -> bytes:
    """A submission whose From line is exactly `from_value`, as servers write it."""
    raw = submission(**kwargs)  # type: ignore[arg-type]
    assert b"From: ops@minghu-soft.cn" in raw
    return raw.replace(b"From: ops@minghu-soft.cn", b"From: " + from_value)


def encoded_subject(text: str) -> bytes:
    return b"=?utf-8?B?" + base64.b64encode(text.encode()) + b"?="


# -- ordinary mail -----------------------------------------------------------------------------------------


def test_ordinary_submission_is_not_classified(workdir: Path) -> None:
    assert code_of(valid_submission(), workdir) is None


def test_ordinary_question_without_attachment_is_not_classified(workdir: Path) -> None:
    assert code_of(submission(subject="请问申报截止时间是哪天？"), workdir) is None


def test_exchange_auto_response_suppress_on_ordinary_submission_is_not_an_auto_reply(workdir: Path) -> None:
    """Exchange adds it to ordinary mail: it only asks others not to auto-reply."""
    raw = valid_submission(headers=[("X-Auto-Response-Suppress", "All")])
    assert code_of(raw, workdir) is None


@pytest.mark.parametrize("value", ["no", "No", "NO"])
def test_auto_submitted_no_is_not_an_auto_reply(value: str, workdir: Path) -> None:
    assert code_of(valid_submission(headers=[("Auto-Submitted", value)]), workdir) is None


def test_auto_submitted_no_with_a_comment_is_not_an_auto_reply(workdir: Path) -> None:
    """RFC 3834 allows comments (CFWS) around the keyword."""
    assert code_of(valid_submission(headers=[("Auto-Submitted", "no (sent by a person)")]), workdir) is None


def test_auto_submitted_with_nested_and_unclosed_comments_is_read_in_linear_time(workdir: Path) -> None:
    """A pattern tried from each `(` of an unclosed `((((…` scans to the end each time (quadratic)."""
    started = time.monotonic()

    assert code_of(valid_submission(headers=[("Auto-Submitted", "no (a (nested) comment)")]), workdir) is None
    assert code_of(valid_submission(headers=[("Auto-Submitted", "(" * 500_000)]), workdir) is Code.AUTO_REPLY

    assert time.monotonic() - started < 5


# -- bounces -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "from_value",
    [
        b"<>",
        b"MAILER-DAEMON@mx.example.net",
        b"Mail Delivery System <MAILER-DAEMON@mx.example.net>",
        b"mailer-daemon@qq.com",
        b"postmaster@163.com",
        b'"System Administrator" <postmaster@shandong.cn>',
    ],
)
def test_bounce_is_recognised_by_its_sender(from_value: bytes, workdir: Path) -> None:
    assert code_of(with_from(from_value), workdir) is Code.BOUNCE


def test_null_return_path_is_a_bounce(workdir: Path) -> None:
    assert code_of(submission(headers=[("Return-Path", "<>")]), workdir) is Code.BOUNCE


def test_ordinary_return_path_is_not_a_bounce(workdir: Path) -> None:
    assert code_of(submission(headers=[("Return-Path", "<ops@minghu-soft.cn>")]), workdir) is None


@pytest.mark.parametrize(
    "subject",
    [
        "系统退信",
        f"系统退信：{ENTERPRISE}",
        "退信",
        "退信通知",
        "Undelivered Mail Returned to Sender",
        "Delivery Status Notification (Failure)",
    ],
)
def test_bounce_is_recognised_by_its_subject(subject: str, workdir: Path) -> None:
    assert code_of(submission(subject=subject, sender="notice@qq.com"), workdir) is Code.BOUNCE


def test_bounce_subject_in_gb2312_encoded_word_is_recognised(workdir: Path) -> None:
    raw = submission(subject="placeholder", sender="notice@qq.com").replace(
        b"Subject: placeholder", b"Subject: =?gb2312?B?" + base64.b64encode("系统退信".encode("gbk")) + b"?="
    )
    assert code_of(raw, workdir) is Code.BOUNCE


def _report_carrying(original: bytes, *, sender: bytes, subject: bytes, content_type: bytes) -> bytes:
    return (
        b"From: " + sender + b"\r\n"
        b"To: kejichu2019@shandong.cn\r\n"
        b"Subject: " + subject + b"\r\n"
        b"Date: Tue, 28 Jun 2022 10:00:00 +0800\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: " + content_type + b'; boundary="REPORT"\r\n'
        b"\r\n"
        b"--REPORT\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"\r\n"
        b"The message could not be delivered.\r\n"
        b"--REPORT\r\n"
        b"Content-Type: message/delivery-status\r\n"
        b"\r\n"
        b"Reporting-MTA: dns; mx.example.net\r\n"
        b"\r\n"
        b"Final-Recipient: rfc822; nobody@example.net\r\n"
        b"Action: failed\r\n"
        b"Status: 5.1.1\r\n"
        b"\r\n"
        b"--REPORT\r\n"
        b"Content-Type: message/rfc822\r\n"
        b"\r\n" + original + b"\r\n--REPORT--\r\n"
    )


@pytest.mark.parametrize(
    ("sender", "subject", "content_type"),
    [
        (b"MAILER-DAEMON@mx.example.net", b"Undelivered Mail Returned to Sender", b"multipart/report"),
        (b"notice@example.net", b"Notice", b"multipart/report"),
        (b"<>", b"Notice", b"multipart/mixed"),
        (b"notice@example.net", encoded_subject("系统退信"), b"multipart/mixed"),
    ],
    ids=["daemon", "report-only", "null-sender-only", "subject-only"],
)
def test_bounce_carrying_the_original_submission_with_its_archive_is_still_a_bounce(
    sender: bytes, subject: bytes, content_type: bytes, workdir: Path
) -> None:
    raw = _report_carrying(valid_submission(), sender=sender, subject=subject, content_type=content_type)
    parsed = parse(raw, workdir)
    assert any(a.head.startswith(b"Rar!") for a in parsed.attachments), "the archive travels with the bounce"
    problem = classify(parsed)
    assert problem is not None
    assert problem.code is Code.BOUNCE


def test_bounce_wins_over_auto_reply_and_bulk_signs(workdir: Path) -> None:
    raw = with_from(
        b"MAILER-DAEMON@mx.example.net", headers=[("Auto-Submitted", "auto-replied"), ("Precedence", "bulk")]
    )
    assert code_of(raw, workdir) is Code.BOUNCE


# -- auto-replies ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Auto-Submitted", "auto-replied"),
        ("Auto-Submitted", "auto-generated"),
        ("Auto-Submitted", "auto-replied; owner-email=ops@minghu-soft.cn"),
        ("X-Autoreply", "yes"),
        ("X-Autorespond", "Auto-Reply"),
    ],
)
def test_auto_reply_is_recognised_by_its_header(name: str, value: str, workdir: Path) -> None:
    raw = submission(subject=f"Re: {ENTERPRISE}", headers=[(name, value)])
    assert code_of(raw, workdir) is Code.AUTO_REPLY


@pytest.mark.parametrize(
    "subject",
    [
        "自动回复：您的邮件已收到",
        "自动回复: 济南明湖软件科技有限公司",
        "自动答复：休假中",
        "自動回覆：謝謝來信",
        "Auto Reply: 济南明湖软件科技有限公司",
        "Auto reply: thanks",
        "Out of Office: back on Monday",
        "Out of Office Reply",
    ],
)
def test_auto_reply_is_recognised_by_its_subject_without_any_header(subject: str, workdir: Path) -> None:
    assert code_of(submission(subject=subject), workdir) is Code.AUTO_REPLY


def test_auto_reply_subject_with_full_width_colon_in_encoded_word_is_recognised(workdir: Path) -> None:
    raw = submission(subject="placeholder").replace(
        b"Subject: placeholder", b"Subject: " + encoded_subject("自动回复：收到")
    )
    assert code_of(raw, workdir) is Code.AUTO_REPLY


def test_auto_reply_words_later_in_the_subject_do_not_make_an_auto_reply(workdir: Path) -> None:
    assert code_of(submission(subject=f"{ENTERPRISE}（请勿自动回复）"), workdir) is None


# -- bulk and list mail ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["bulk", "list", "junk", "Bulk", " LIST "])
def test_precedence_bulk_list_or_junk_is_bulk(value: str, workdir: Path) -> None:
    assert code_of(submission(subject="质量月活动通知", headers=[("Precedence", value)]), workdir) is Code.BULK


def test_list_id_header_is_bulk(workdir: Path) -> None:
    raw = submission(subject="质量月活动通知", headers=[("List-Id", "<quality.lists.example.net>")])
    assert code_of(raw, workdir) is Code.BULK


def test_precedence_first_class_is_not_bulk(workdir: Path) -> None:
    assert code_of(valid_submission(headers=[("Precedence", "first-class")]), workdir) is None


def test_bulk_mail_carrying_an_archive_is_still_bulk(workdir: Path) -> None:
    raw = submission(
        attachments=[(f"{ENTERPRISE}.rar", rar("valid.rar"))],
        headers=[("List-Id", "<members.example.net>")],
    )
    assert code_of(raw, workdir) is Code.BULK
