"""`shenbao run` against real servers on loopback: pymap (in-process IMAP) and aiosmtpd (SmtpCapture).

The daemon runs in-process (`Daemon(settings).run_once()`) where the database and result are inspected,
and as the `shenbao run` command where exit codes, output, signals and the run lock matter. The first test
runs on SQLite and on PostgreSQL (`database_url`); PostgreSQL's own run lock is tested in
tests/e2e/test_postgresql.py.
"""

from __future__ import annotations

import hashlib
import re
import signal
import socket
from datetime import timedelta
from pathlib import Path

import pytest
from daemon_support import (
    ENTERPRISE,
    FOLDERS,
    MAILBOX,
    OFFICE_DOMAIN,
    RECEIVED,
    SUBJECT_PREFIX,
    SUBMITTER,
    TIMEOUT,
    Background,
    FaultyProxy,
    append,
    auto_reply,
    blob,
    bounce_for,
    bulk,
    connected,
    daemon_env,
    document_hashes,
    encoded_subject,
    folder_messages,
    folder_names,
    imap_env,
    message_ids_in,
    missing_proof,
    not_a_submission,
    parse,
    query,
    replies,
    replies_to,
    run_once,
    shenbao,
    submission,
    text_and_html,
    valid,
    wait_until,
    with_message_id,
    write_config,
)

from daemon.config import load
from daemon.demo.servers import PymapServer, SmtpCapture
from daemon.mail.imap import MailboxError
from daemon.runner import Daemon
from daemon.service.lock import AlreadyRunning, run_lock


@pytest.fixture
def office(tmp_path: Path, imap: PymapServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder holding the config, database and files; the secrets set in our environment."""
    for name, value in imap_env(imap).items():
        monkeypatch.setenv(name, value)
    return tmp_path / "office"


def mid(tag: str) -> str:
    return f"<{tag}@minghu-soft.cn>"


def outbox_states(office: Path) -> list[str]:
    return [state for (state,) in query(office, "SELECT state FROM outbox ORDER BY id")]


def message_count(office: Path) -> int:
    return int(query(office, "SELECT count(*) FROM message")[0][0])


def wait_for_sent_copies(imap: PymapServer, count: int) -> None:
    """Until 已发送 holds `count` copies: the watcher saves them just before it waits again, so a SIGTERM
    sent after this does not land in the middle of a sync (see the xfail test at the end of this file)."""
    wait_until(lambda: len(folder_messages(imap, "已发送")) >= count, TIMEOUT, f"{count} copies in 已发送")


# ------------------------------------------------------------------------------------------ each verdict


def test_each_verdict_is_answered_filed_and_copied_to_sent(
    imap: PymapServer, smtp: SmtpCapture, office: Path, database_url: str
) -> None:
    """End to end on SQLite and on PostgreSQL."""
    messages = {
        "valid": valid("valid"),
        "rejected": missing_proof("rejected"),
        "review": not_a_submission("review"),
        "auto": auto_reply("auto"),
        "bounce": bounce_for("<unknown-reply@shandong.cn>", tag="bounce"),
        "bulk": bulk("bulk"),
    }
    for raw in messages.values():
        append(imap, raw)
    config = write_config(office, imap, smtp, database=database_url)

    result = run_once(config)

    assert result.report.handled == 6
    assert result.sent.sent == 3
    captured = smtp.wait_for(3, TIMEOUT)
    assert len(smtp.messages) == 3
    assert set(smtp.logins) == {MAILBOX}  # one login per connection, always the mailbox's
    for message in captured:
        assert message.mail_from == MAILBOX  # the envelope sender is the login address
        assert message.rcpt_tos == [SUBMITTER]

    expected = {"valid": "receipt", "rejected": "rejection", "review": "review"}
    for tag, kind in expected.items():
        (reply,) = replies_to(smtp, mid(tag))
        assert str(reply["Subject"]).startswith(SUBJECT_PREFIX[kind])
        assert str(reply["References"]) == mid(tag)
        assert str(reply["Auto-Submitted"]) == "auto-replied"
        assert str(reply["X-Auto-Response-Suppress"]) == "All"
        assert re.fullmatch(rf"<[^<>@\s]+@{re.escape(OFFICE_DOMAIN)}>", str(reply["Message-ID"]))
        assert [address.addr_spec for address in reply["To"].addresses] == [SUBMITTER]
        assert reply.get_content_type() == "multipart/alternative"
        text, html = text_and_html(reply)
        assert text.strip() and "<html" in html.lower()

    receipt_text, receipt_html = text_and_html(replies_to(smtp, mid("valid"))[0])
    assert str(replies_to(smtp, mid("valid"))[0]["Subject"]) == f"【受理回执】{ENTERPRISE}"
    hashes = {name: sha for name, sha in document_hashes("valid.rar").items() if name.endswith(".docx")}
    assert len(hashes) == 3
    for name, sha256 in hashes.items():
        assert name in receipt_text and sha256 in receipt_text
        assert sha256 in receipt_html
    stored = {row[0] for row in query(office, "SELECT sha256 FROM document")}
    assert stored == set(hashes.values())

    rejection_text, rejection_html = text_and_html(replies_to(smtp, mid("rejected"))[0])
    assert "缺少材料：证明材料" in rejection_text and "缺少材料：证明材料" in rejection_html
    review_text, _ = text_and_html(replies_to(smtp, mid("review"))[0])
    assert "工作人员" in review_text

    for tag in ("auto", "bulk"):
        assert replies_to(smtp, mid(tag)) == []
    answered = {str(reply["In-Reply-To"]) for reply in replies(smtp)}
    assert answered == {mid("valid"), mid("rejected"), mid("review")}

    assert message_ids_in(imap, "INBOX") == []
    assert message_ids_in(imap, FOLDERS["accepted"]) == [mid("valid")]
    assert message_ids_in(imap, FOLDERS["rejected"]) == [mid("rejected")]
    assert message_ids_in(imap, FOLDERS["review"]) == [mid("review")]
    assert sorted(message_ids_in(imap, FOLDERS["ignored"])) == sorted(
        [mid("auto"), "<bounce@mx.minghu-soft.cn>", mid("bulk")]
    )
    # pymap has no \Sent folder: the daemon makes 已发送 and keeps there a copy of each reply it sent.
    assert "已发送" in folder_names(imap)
    assert sorted(message_ids_in(imap, "已发送")) == sorted(str(r["Message-ID"]) for r in replies(smtp))

    outcomes = dict(query(office, "SELECT message_id, outcome FROM message"))
    assert outcomes == {
        mid("valid"): "accepted",
        mid("rejected"): "rejected",
        mid("review"): "review",
        mid("auto"): "ignored",
        "<bounce@mx.minghu-soft.cn>": "ignored",
        mid("bulk"): "ignored",
    }
    assert query(office, "SELECT state, copy_saved FROM outbox") == [("sent", 1)] * 3


def test_run_once_twice_sends_nothing_new_and_moves_nothing(imap: PymapServer, smtp: SmtpCapture, office: Path) -> None:
    for raw in (valid("valid"), missing_proof("rejected"), auto_reply("auto")):
        append(imap, raw)
    config = write_config(office, imap, smtp)
    env = daemon_env(imap)

    first = shenbao("run", "--config", config, "--once", env=env, cwd=office)
    assert first.returncode == 0, first.stderr
    assert "处理 3 封邮件；回复：发出 2 封，稍后重试 0 封，失败 0 封" in first.stdout
    smtp.wait_for(2, TIMEOUT)
    folders = {name: message_ids_in(imap, name) for name in folder_names(imap)}
    sent_copies = len(folder_messages(imap, "已发送"))

    second = shenbao("run", "--config", config, "--once", env=env, cwd=office)
    assert second.returncode == 0, second.stderr
    assert "处理 0 封邮件；回复：发出 0 封，稍后重试 0 封，失败 0 封" in second.stdout
    assert len(smtp.messages) == 2
    assert {name: message_ids_in(imap, name) for name in folder_names(imap)} == folders
    assert sent_copies == 2 == len(folder_messages(imap, "已发送"))
    assert message_count(office) == 3


# -------------------------------------------------------------------------------------------- odd senders


def test_a_subject_with_cr_lf_cannot_inject_headers(imap: PymapServer, smtp: SmtpCapture, office: Path) -> None:
    evil = "咨询\r\nBcc: victim@attacker.example\r\nX-Injected: yes"
    raw = with_message_id(submission(encoded_subject(evil), body="请问怎么申报？"), mid("evil"))
    append(imap, raw)
    config = write_config(office, imap, smtp)

    run_once(config)

    ((subject,),) = query(office, "SELECT subject FROM message")
    assert "\n" in subject and "Bcc: victim@attacker.example" in subject  # the hostile subject reached the daemon
    (captured,) = smtp.wait_for(1, TIMEOUT)
    assert captured.rcpt_tos == [SUBMITTER]
    reply = parse(captured.data)
    assert str(reply["In-Reply-To"]) == mid("evil")
    assert "Bcc" not in reply and "X-Injected" not in reply
    header_block = captured.data.split(b"\r\n\r\n", 1)[0]
    assert b"attacker.example" not in header_block and b"X-Injected" not in header_block
    for name, value in reply.items():
        assert "\r" not in str(value) and "\n" not in str(value), name


def test_a_from_with_two_addresses_gets_no_reply(imap: PymapServer, smtp: SmtpCapture, office: Path) -> None:
    append(imap, valid("two", sender=f"{SUBMITTER}, boss@minghu-soft.cn"))
    append(imap, valid("one"))  # the control: the same message from one address is answered
    config = write_config(office, imap, smtp)

    result = run_once(config)

    assert result.report.handled == 2
    smtp.wait_for(1, TIMEOUT)
    assert replies_to(smtp, mid("two")) == []
    assert len(replies_to(smtp, mid("one"))) == 1
    assert len(smtp.messages) == 1
    rows = query(
        office,
        "SELECT m.message_id, count(o.id) FROM message m LEFT JOIN outbox o ON o.message_id = m.id GROUP BY m.id",
    )
    assert dict(rows) == {mid("two"): 0, mid("one"): 1}
    assert sorted(message_ids_in(imap, FOLDERS["accepted"])) == sorted([mid("two"), mid("one")])


def test_the_loop_guard_caps_replies_per_address(imap: PymapServer, smtp: SmtpCapture, office: Path) -> None:
    for number in range(4):
        append(imap, not_a_submission(f"q{number}", subject=f"第{number}个问题"))
    config = write_config(office, imap, smtp, max_per_address_per_hour=2)

    result = run_once(config)

    assert result.report.handled == 4
    assert result.sent.sent == 2
    smtp.wait_for(2, TIMEOUT)
    assert len(smtp.messages) == 2
    assert sorted(outbox_states(office)) == ["sent", "sent", "suppressed", "suppressed"]
    assert message_ids_in(imap, "INBOX") == []

    run_once(config)  # suppressed replies are not sent later
    assert len(smtp.messages) == 2
    assert sorted(outbox_states(office)) == ["sent", "sent", "suppressed", "suppressed"]


def test_the_same_message_delivered_twice_is_recorded_and_answered_once(
    imap: PymapServer, smtp: SmtpCapture, office: Path
) -> None:
    raw = valid("twice")
    append(imap, raw)
    append(imap, raw)

    result = run_once(write_config(office, imap, smtp))

    assert result.sent.sent == 1
    smtp.wait_for(1, TIMEOUT)
    assert len(smtp.messages) == 1
    assert message_count(office) == 1
    assert message_ids_in(imap, "INBOX") == []
    assert message_ids_in(imap, FOLDERS["accepted"]) == [mid("twice"), mid("twice")]


def test_a_reused_message_id_does_not_make_a_new_submission_look_processed(
    imap: PymapServer, smtp: SmtpCapture, office: Path
) -> None:
    """Message-ID is only a hint: a sender controls it."""
    append(imap, missing_proof("same"))
    append(imap, valid("same"))

    run_once(write_config(office, imap, smtp))

    smtp.wait_for(2, TIMEOUT)
    subjects = sorted(str(reply["Subject"])[:6] for reply in replies_to(smtp, mid("same")))
    assert subjects == sorted([SUBJECT_PREFIX["rejection"], SUBJECT_PREFIX["receipt"]])
    assert sorted(outcome for (outcome,) in query(office, "SELECT outcome FROM message")) == ["accepted", "rejected"]
    assert message_ids_in(imap, FOLDERS["accepted"]) == [mid("same")]
    assert message_ids_in(imap, FOLDERS["rejected"]) == [mid("same")]


# ------------------------------------------------------------------------------------ first deployment


def test_mail_received_before_the_campaign_opens_is_left_alone(
    imap: PymapServer, smtp: SmtpCapture, office: Path
) -> None:
    append(imap, valid("old"), when=RECEIVED - timedelta(days=60))
    append(imap, valid("new"), when=RECEIVED)
    config = write_config(office, imap, smtp, opens="2022-06-01T00:00:00+08:00")

    result = run_once(config)

    assert result.report.handled == 1
    smtp.wait_for(1, TIMEOUT)
    assert len(smtp.messages) == 1
    assert replies_to(smtp, mid("old")) == []
    assert message_ids_in(imap, "INBOX") == [mid("old")]
    assert message_ids_in(imap, FOLDERS["accepted"]) == [mid("new")]
    assert query(office, "SELECT message_id FROM message") == [(mid("new"),)]

    run_once(config)
    assert message_ids_in(imap, "INBOX") == [mid("old")]
    assert message_count(office) == 1
    assert len(smtp.messages) == 1


def test_dry_run_records_but_sends_and_moves_nothing_until_a_real_run(
    imap: PymapServer, smtp: SmtpCapture, office: Path
) -> None:
    append(imap, valid("valid"))
    append(imap, missing_proof("rejected"))
    config = write_config(office, imap, smtp)
    env = daemon_env(imap)

    dry = shenbao("run", "--config", config, "--once", "--dry-run", env=env, cwd=office)

    assert dry.returncode == 0, dry.stderr
    assert f"移至“{FOLDERS['accepted']}”；受理回执 → {SUBMITTER}（暂缓发送）（演练：不移动、不发送）" in dry.stdout
    assert f"移至“{FOLDERS['rejected']}”；退回通知 → {SUBMITTER}（暂缓发送）（演练：不移动、不发送）" in dry.stdout
    assert smtp.attempts == 0
    assert sorted(message_ids_in(imap, "INBOX")) == sorted([mid("valid"), mid("rejected")])
    assert folder_names(imap) == ["INBOX"]
    assert dict(query(office, "SELECT message_id, outcome FROM message")) == {
        mid("valid"): "accepted",
        mid("rejected"): "rejected",
    }
    assert outbox_states(office) == ["held", "held"]

    real = shenbao("run", "--config", config, "--once", env=env, cwd=office)

    assert real.returncode == 0, real.stderr
    smtp.wait_for(2, TIMEOUT)
    assert len(replies_to(smtp, mid("valid"))) == 1 and len(replies_to(smtp, mid("rejected"))) == 1
    assert len(smtp.messages) == 2
    assert message_ids_in(imap, "INBOX") == []
    assert message_ids_in(imap, FOLDERS["accepted"]) == [mid("valid")]
    assert message_ids_in(imap, FOLDERS["rejected"]) == [mid("rejected")]
    assert message_count(office) == 2
    assert outbox_states(office) == ["sent", "sent"]


def test_junk_folder_mail_is_answered_only_when_its_subject_names_a_roster_enterprise(
    imap: PymapServer, smtp: SmtpCapture, office: Path
) -> None:
    junk = "垃圾邮件"
    append(imap, valid("junk-valid"), folder=junk)
    append(imap, not_a_submission("junk-spam", sender="sales@spam.example.cn", subject="代开发票"), folder=junk)
    config = write_config(office, imap, smtp, folders=["INBOX", junk])

    result = run_once(config)

    assert result.report.handled == 2
    smtp.wait_for(1, TIMEOUT)
    assert len(smtp.messages) == 1
    (receipt,) = replies_to(smtp, mid("junk-valid"))
    assert str(receipt["Subject"]).startswith(SUBJECT_PREFIX["receipt"])
    assert message_ids_in(imap, FOLDERS["accepted"]) == [mid("junk-valid")]
    assert message_ids_in(imap, junk) == [mid("junk-spam")]
    rows = query(
        office,
        "SELECT m.outcome, count(o.id) FROM message m LEFT JOIN outbox o ON o.message_id = m.id "
        "WHERE m.message_id = ? GROUP BY m.id",
        [mid("junk-spam")],
    )
    assert rows == [("review", 0)]

    again = run_once(config)  # recorded and kept: not judged again, still no reply
    assert again.report.handled == 0
    assert message_ids_in(imap, junk) == [mid("junk-spam")]
    assert len(smtp.messages) == 1
    assert message_count(office) == 2


def test_review_senders_domain_sends_a_valid_submission_to_a_person(
    imap: PymapServer, smtp: SmtpCapture, office: Path
) -> None:
    append(imap, valid("bureau"))
    config = write_config(office, imap, smtp, review_senders=["minghu-soft.cn"])

    run_once(config)

    (captured,) = smtp.wait_for(1, TIMEOUT)
    reply = parse(captured.data)
    assert str(reply["Subject"]).startswith(SUBJECT_PREFIX["review"])
    assert str(reply["In-Reply-To"]) == mid("bureau")
    assert query(office, "SELECT outcome FROM message") == [("review",)]
    assert query(office, "SELECT code FROM problem") == [("review_sender",)]
    assert message_ids_in(imap, FOLDERS["review"]) == [mid("bureau")]


def test_a_message_over_max_message_mb_is_not_downloaded_but_rejected(
    imap: PymapServer, smtp: SmtpCapture, office: Path
) -> None:
    body = "申报材料说明：" + "很长的正文。" * 12000  # about 200 KB once encoded, over 0.05 MiB
    raw = valid("huge", body=body)
    assert len(raw) > 0.05 * (1 << 20)
    append(imap, raw)
    config = write_config(office, imap, smtp, max_message_mb=0.05)

    run_once(config)

    (captured,) = smtp.wait_for(1, TIMEOUT)
    reply = parse(captured.data)
    assert str(reply["Subject"]).startswith(SUBJECT_PREFIX["rejection"])
    assert str(reply["In-Reply-To"]) == mid("huge")
    text, _html = text_and_html(reply)
    assert "超过大小限制" in text
    ((outcome, raw_size, sha256),) = query(office, "SELECT outcome, raw_size, raw_sha256 FROM message")
    assert outcome == "rejected"
    assert raw_size > 0.05 * (1 << 20)
    assert query(office, "SELECT code FROM problem") == [("too_large",)]
    stored = blob(office, sha256).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == sha256
    assert len(stored) < 4096  # the headers only
    assert stored.endswith((b"\r\n\r\n", b"\n\n"))  # a header block and its blank line, nothing after
    headers = parse(stored)
    assert str(headers["Message-ID"]) == mid("huge")
    assert "很长的正文" not in stored.decode("utf-8", "replace")
    assert query(office, "SELECT count(*) FROM attachment") == [(0,)]
    assert message_ids_in(imap, FOLDERS["rejected"]) == [mid("huge")]
    assert message_ids_in(imap, "INBOX") == []


# ------------------------------------------------------------------------------------------------- SMTP


def test_smtp_451_then_250_sends_exactly_one_reply(imap: PymapServer, office: Path) -> None:
    append(imap, valid("deferred"))
    with SmtpCapture(auth=True, responses=["451 4.3.0 Try again later"]) as smtp:
        config = write_config(office, imap, smtp)
        result = run_once(config)
        smtp.wait_for(1, TIMEOUT)
        assert smtp.attempts == 2
        assert len(smtp.messages) == 1
    assert (result.sent.sent, result.sent.deferred, result.sent.failed) == (1, 0, 0)
    assert query(office, "SELECT state, attempts FROM outbox") == [("sent", 2)]
    assert len(replies_to(smtp, mid("deferred"))) == 1


def test_smtp_550_is_recorded_failed_with_an_alert_and_not_retried(imap: PymapServer, office: Path) -> None:
    append(imap, valid("refused"))
    with SmtpCapture(auth=True, responses=["550 5.1.1 Mailbox unavailable"]) as smtp:
        config = write_config(office, imap, smtp)
        result = run_once(config)
        assert smtp.attempts == 1
        assert smtp.messages == []
        assert (result.sent.sent, result.sent.failed) == (0, 1)
        ((state, attempts, error),) = query(office, "SELECT state, attempts, last_error FROM outbox")
        assert (state, attempts) == ("failed", 1) and "550" in error
        alerts = [text for (text,) in query(office, "SELECT text FROM alert WHERE source = 'outbox'")]
        assert len(alerts) == 1 and "550" in alerts[0]
        # The move never waits for SMTP.
        assert message_ids_in(imap, FOLDERS["accepted"]) == [mid("refused")]

        run_once(config)
        assert smtp.attempts == 1
        assert query(office, "SELECT state, attempts FROM outbox") == [("failed", 1)]


def test_smtp_deferring_every_attempt_leaves_the_reply_queued_for_a_later_run(imap: PymapServer, office: Path) -> None:
    append(imap, valid("deferred"))
    with SmtpCapture(auth=True, responses=["451 4.3.0 Try again later"] * 4) as smtp:
        config = write_config(office, imap, smtp)
        result = run_once(config)
        assert smtp.attempts == 4  # the first try and three retries within the run
        assert smtp.messages == []
    assert (result.sent.sent, result.sent.deferred, result.sent.failed) == (0, 1, 0)
    ((state, attempts, error, due, created),) = query(
        office, "SELECT state, attempts, last_error, next_attempt_at, created_at FROM outbox"
    )
    assert (state, attempts) == ("queued", 4) and "451" in error
    assert due > created  # backed off, not dropped
    assert message_ids_in(imap, FOLDERS["accepted"]) == [mid("deferred")]


def test_a_mail_outage_does_not_hold_back_the_moves_nor_refetch(imap: PymapServer, office: Path) -> None:
    append(imap, valid("outage"))
    smtp = SmtpCapture(auth=True)
    smtp.start()
    config = write_config(office, imap, smtp)
    smtp.stop()  # nothing listens on its port any more

    result = run_once(config)

    assert (result.report.handled, result.sent.sent, result.sent.deferred) == (1, 0, 1)
    assert message_ids_in(imap, "INBOX") == []
    assert message_ids_in(imap, FOLDERS["accepted"]) == [mid("outage")]
    assert outbox_states(office) == ["queued"]

    again = run_once(config)
    assert again.report.handled == 0  # not downloaded and judged again
    assert message_count(office) == 1
    assert outbox_states(office) == ["queued"]


def test_a_bounce_of_one_of_our_replies_marks_it_bounced(imap: PymapServer, smtp: SmtpCapture, office: Path) -> None:
    append(imap, valid("original"))
    config = write_config(office, imap, smtp)
    run_once(config)
    (captured,) = smtp.wait_for(1, TIMEOUT)
    ours = str(parse(captured.data)["Message-ID"])
    assert query(office, "SELECT state FROM outbox") == [("sent",)]

    append(imap, bounce_for(ours, tag="dsn"))
    result = run_once(config)

    assert result.report.handled == 1
    assert query(office, "SELECT header_message_id, state FROM outbox") == [(ours, "bounced")]
    assert len(query(office, "SELECT id FROM alert WHERE source = 'bounce'")) == 1
    assert query(office, "SELECT outcome FROM message WHERE message_id = '<dsn@mx.minghu-soft.cn>'") == [("ignored",)]
    assert len(smtp.messages) == 1  # the bounce itself is never answered
    assert message_ids_in(imap, FOLDERS["ignored"]) == ["<dsn@mx.minghu-soft.cn>"]


# ------------------------------------------------------------------------------------ one daemon per box


def test_run_once_refuses_while_another_holds_the_run_lock(imap: PymapServer, smtp: SmtpCapture, office: Path) -> None:
    append(imap, valid("waiting"))
    config = write_config(office, imap, smtp)
    settings = load(config)
    other = run_lock(settings)
    other.acquire()
    try:
        with pytest.raises(AlreadyRunning, match="已在这个数据库上运行"):
            Daemon(settings).run_once()
        assert smtp.messages == []
        assert message_ids_in(imap, "INBOX") == [mid("waiting")]
    finally:
        other.release()

    Daemon(settings).run_once()
    assert len(smtp.wait_for(1, TIMEOUT)) == 1
    assert message_ids_in(imap, "INBOX") == []


# -------------------------------------------------------------------------------------- server troubles


def test_a_changed_uidvalidity_resyncs_without_duplicates(imap: PymapServer, smtp: SmtpCapture, office: Path) -> None:
    """The folder is deleted and made again (new UIDVALIDITY) holding the same messages under new UIDs."""
    folder = "申报"
    raws = [valid("valid"), missing_proof("rejected")]
    for raw in raws:
        append(imap, raw, folder=folder)
    config = write_config(office, imap, smtp, folders=[folder])
    run_once(config, dry_run=True)  # recorded, replies held, nothing moved
    assert outbox_states(office) == ["held", "held"]
    ((before,),) = query(office, "SELECT uidvalidity FROM folder_state")

    with connected(imap) as client:
        client.delete_folder(folder)
        client.create_folder(folder)
    for raw in raws:
        append(imap, raw, folder=folder)

    result = run_once(config)

    ((after,),) = query(office, "SELECT uidvalidity FROM folder_state")
    assert after != before
    assert any("UIDVALIDITY" in text for (text,) in query(office, "SELECT text FROM alert WHERE source = 'imap'"))
    assert result.report.handled == 2
    smtp.wait_for(2, TIMEOUT)
    assert len(replies_to(smtp, mid("valid"))) == 1 and len(replies_to(smtp, mid("rejected"))) == 1
    assert message_count(office) == 2
    assert outbox_states(office) == ["sent", "sent"]
    assert message_ids_in(imap, folder) == []
    assert message_ids_in(imap, FOLDERS["accepted"]) == [mid("valid")]
    assert message_ids_in(imap, FOLDERS["rejected"]) == [mid("rejected")]

    run_once(config)
    assert len(smtp.messages) == 2
    assert message_count(office) == 2


def test_the_server_dropping_the_connection_mid_fetch(imap: PymapServer, smtp: SmtpCapture, office: Path) -> None:
    raw = valid("dropped", body="申报材料说明：" + "正文。" * 20000)
    assert len(raw) > 100_000
    append(imap, raw)
    with FaultyProxy(imap.host, imap.port, cut_after=30_000) as proxy:
        config = write_config(office, imap, smtp, imap_port=proxy.port, timeout_seconds=20)
        env = daemon_env(imap)

        failed = shenbao("run", "--config", config, "--once", env=env, cwd=office)

        assert proxy.cut.is_set()
        assert b"BODY.PEEK[]<0." in proxy.client_sent_before_cut  # the cut came while the message was fetched
        assert failed.returncode != 0
        assert "mailbox" in failed.stderr and "Traceback" not in failed.stderr
        assert smtp.messages == []
        assert message_count(office) == 0
        assert message_ids_in(imap, "INBOX") == [mid("dropped")]
        assert list((office / "files").rglob("fetch-*")) == []  # the partial download was thrown away

        again = shenbao("run", "--config", config, "--once", env=env, cwd=office)

        assert again.returncode == 0, again.stderr
        (captured,) = smtp.wait_for(1, TIMEOUT)
        assert str(parse(captured.data)["In-Reply-To"]) == mid("dropped")
        assert query(office, "SELECT message_id, outcome FROM message") == [(mid("dropped"), "accepted")]
        assert message_ids_in(imap, FOLDERS["accepted"]) == [mid("dropped")]

        third = shenbao("run", "--config", config, "--once", env=env, cwd=office)
        assert third.returncode == 0, third.stderr
        assert len(smtp.messages) == 1
        assert message_count(office) == 1


def test_the_in_process_watcher_raises_a_mailbox_error_when_the_connection_drops(
    imap: PymapServer, smtp: SmtpCapture, office: Path
) -> None:
    append(imap, valid("dropped", body="正文。" * 20000))
    with FaultyProxy(imap.host, imap.port, cut_after=30_000) as proxy:
        config = write_config(office, imap, smtp, imap_port=proxy.port, timeout_seconds=20)
        with pytest.raises(MailboxError):
            run_once(config)
        assert proxy.cut.is_set()
        assert message_count(office) == 0

        run_once(config)
    assert len(smtp.wait_for(1, TIMEOUT)) == 1
    assert message_count(office) == 1
    assert message_ids_in(imap, FOLDERS["accepted"]) == [mid("dropped")]


# ------------------------------------------------------------------------------------------- for ever


def test_long_running_answers_new_mail_refuses_a_second_instance_and_stops_on_sigterm(
    imap: PymapServer, smtp: SmtpCapture, office: Path
) -> None:
    config = write_config(office, imap, smtp, idle_seconds=5)
    env = daemon_env(imap)
    with Background("run", "--config", config, env=env, cwd=office) as daemon:
        daemon.wait_for_output("shenbao running")

        append(imap, valid("live"))
        (captured,) = smtp.wait_for(1, TIMEOUT)
        assert str(parse(captured.data)["In-Reply-To"]) == mid("live")
        wait_for_sent_copies(imap, 1)

        second = shenbao("run", "--config", config, env=env, cwd=office, timeout=60)
        assert second.returncode == 3
        assert f"shenbao run on {socket.gethostname()} pid {daemon.process.pid}" in second.stderr

        assert daemon.terminate(timeout=15) == 0
        assert "stopped" in daemon.output()
    assert message_ids_in(imap, FOLDERS["accepted"]) == [mid("live")]
    assert len(smtp.messages) == 1


def test_long_running_reconnects_after_the_server_drops_the_connection_mid_fetch(
    imap: PymapServer, smtp: SmtpCapture, office: Path
) -> None:
    with FaultyProxy(imap.host, imap.port, cut_after=30_000) as proxy:
        config = write_config(office, imap, smtp, imap_port=proxy.port, timeout_seconds=20, idle_seconds=5)
        with Background("run", "--config", config, env=daemon_env(imap), cwd=office) as daemon:
            daemon.wait_for_output("shenbao running")
            append(imap, valid("while-running", body="正文。" * 20000))

            (captured,) = smtp.wait_for(1, TIMEOUT)
            wait_for_sent_copies(imap, 1)

            assert proxy.cut.is_set() and b"BODY.PEEK[]<0." in proxy.client_sent_before_cut
            assert "reconnecting" in daemon.output()
            assert str(parse(captured.data)["In-Reply-To"]) == mid("while-running")
            assert daemon.terminate(timeout=15) == 0
    assert len(smtp.messages) == 1
    assert message_count(office) == 1
    assert message_ids_in(imap, FOLDERS["accepted"]) == [mid("while-running")]


def test_sigterm_while_a_message_is_in_hand_finishes_it_and_stops(
    imap: PymapServer, smtp: SmtpCapture, office: Path
) -> None:
    with FaultyProxy(imap.host, imap.port, hold_on=b"BODY.PEEK[]") as proxy:
        config = write_config(office, imap, smtp, imap_port=proxy.port, idle_seconds=600)
        with Background("run", "--config", config, env=daemon_env(imap), cwd=office) as daemon:
            daemon.wait_for_output("shenbao running")
            append(imap, valid("in-hand"))
            assert proxy.held.wait(TIMEOUT), "the daemon never fetched the message"

            daemon.process.send_signal(signal.SIGTERM)  # while the download is in hand
            daemon.wait_for_output("received SIGTERM")
            proxy.release.set()

            assert daemon.process.wait(10) == 0
    assert message_ids_in(imap, FOLDERS["accepted"]) == [mid("in-hand")]  # the message in hand was finished
    assert message_count(office) == 1


def test_without_move_messages_are_flagged_in_place_and_handled_once(
    imap: PymapServer, smtp: SmtpCapture, office: Path
) -> None:
    """Where the server has no MOVE, the message stays where it is, marked handled (seen and flagged)."""
    append(imap, valid("no-move"))
    with FaultyProxy(imap.host, imap.port, hide_capability=b"MOVE") as proxy:
        config = write_config(office, imap, smtp, imap_port=proxy.port)
        first = shenbao("run", "--config", config, "--once", env=daemon_env(imap), cwd=office)
        second = shenbao("run", "--config", config, "--once", env=daemon_env(imap), cwd=office)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert message_ids_in(imap, "INBOX") == [mid("no-move")]
    with connected(imap) as client:
        client.select_folder("INBOX", readonly=True)
        [flags] = client.get_flags(client.search(["ALL"])).values()
    assert {b"\\Seen", b"\\Flagged"} <= set(flags)
    assert len(replies_to(smtp, mid("no-move"))) == 1
    assert query(office, "SELECT state FROM mailbox_item") == [("done",)]
