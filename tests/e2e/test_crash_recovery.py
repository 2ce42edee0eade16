"""Power cuts: `shenbao run --once` killed with SIGKILL at each named point of the order of work, then run
again. Every message must end with exactly one verdict, at most one reply, and its raw bytes on disk.

The process kills itself (`SHENBAO_CRASH_AT=<point>`, see daemon/service/crashpoints.py), so the cut falls
exactly where asked; the IMAP (pymap) and SMTP (aiosmtpd) servers run in this process and live on.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_support import (
    MAILBOX,
    TIMEOUT,
    append,
    auto_reply,
    blob,
    daemon_env,
    folder_messages,
    message_ids_in,
    missing_proof,
    not_a_submission,
    parse,
    query,
    replies,
    shenbao,
    valid,
    write_config,
)

from daemon.demo.servers import PymapServer, SmtpCapture
from daemon.service.crashpoints import POINTS

VALID, REJECTED, IGNORED = "<valid@minghu-soft.cn>", "<rejected@minghu-soft.cn>", "<auto@minghu-soft.cn>"
ANSWERED = (VALID, REJECTED)
IN_FLIGHT = {"sending", "smtp_accepted"}
"""Points where the first reply (the receipt, queued first) is marked `sending` when the power goes."""


@pytest.fixture
def servers() -> Iterator[tuple[PymapServer, SmtpCapture]]:
    with PymapServer(MAILBOX, "imap-secret") as imap, SmtpCapture(auth=True) as smtp:
        yield imap, smtp


@pytest.mark.parametrize("point", POINTS)
def test_a_power_cut_loses_nothing_and_answers_nothing_twice(
    point: str, servers: tuple[PymapServer, SmtpCapture], tmp_path: Path
) -> None:
    imap, smtp = servers
    append(imap, valid("valid"))
    append(imap, missing_proof("rejected"))
    append(imap, auto_reply("auto"))
    office = tmp_path / "office"
    # One SMTP connection, so replies go one after the other and the cut falls with the receipt alone in flight.
    config = write_config(office, imap, smtp, smtp_connections=1)

    crashed = shenbao(
        "run", "--config", config, "--once", env=daemon_env(imap, {"SHENBAO_CRASH_AT": point}), cwd=office
    )
    assert crashed.returncode == -signal.SIGKILL, f"not killed at {point}:\n{crashed.stdout}\n{crashed.stderr}"
    before_restart = len(smtp.messages)

    restarted = shenbao("run", "--config", config, "--once", env=daemon_env(imap), cwd=office)
    assert restarted.returncode == 0, restarted.stderr
    after_restart = len(smtp.messages)
    again = shenbao("run", "--config", config, "--once", env=daemon_env(imap), cwd=office)
    assert again.returncode == 0, again.stderr
    assert "处理 0 封邮件；回复：发出 0 封" in again.stdout
    assert len(smtp.messages) == after_restart  # nothing more on a third run

    # Exactly one verdict per message, its raw message in the blob store.
    rows = query(office, "SELECT message_id, outcome, raw_sha256 FROM message")
    assert sorted(message_id for message_id, _, _ in rows) == sorted([VALID, REJECTED, IGNORED])
    assert {message_id: outcome for message_id, outcome, _ in rows} == {
        VALID: "accepted",
        REJECTED: "rejected",
        IGNORED: "ignored",
    }
    for _message_id, _outcome, sha256 in rows:
        assert blob(office, sha256).is_file()
    assert message_ids_in(imap, "INBOX") == []

    # At most one reply per message, none captured twice, none to ignored mail.
    captured = replies(smtp)
    assert len({str(reply["Message-ID"]) for reply in captured}) == len(captured)
    per_message = Counter(str(reply["In-Reply-To"]) for reply in captured)
    assert set(per_message) <= set(ANSWERED)
    assert all(count == 1 for count in per_message.values()), per_message
    # A reply is in the Sent folder once at most, and only if it was sent.
    copies = [str(parse(raw)["Message-ID"]) for raw in folder_messages(imap, "已发送")]
    assert len(set(copies)) == len(copies)
    assert set(copies) <= {str(reply["Message-ID"]) for reply in captured}

    states = dict(query(office, "SELECT m.message_id, o.state FROM outbox o JOIN message m ON m.id = o.message_id"))
    alerts = [text for (text,) in query(office, "SELECT text FROM alert WHERE source = 'outbox'")]
    if point in IN_FLIGHT:
        # The receipt was marked `sending` when the power went: the server may have it, so it is never sent
        # again; it ends `uncertain` and staff are told. The rejection, still queued, goes out once.
        assert states == {VALID: "uncertain", REJECTED: "sent"}
        assert len(alerts) == 1 and "程序中断" in alerts[0] and "shenbao resend SB-" in alerts[0]
        assert per_message[REJECTED] == 1
        in_flight_sent = 1 if point == "smtp_accepted" else 0
        assert per_message[VALID] == in_flight_sent
        assert before_restart == in_flight_sent  # the one accepted before the cut, if any
    else:
        assert states == {VALID: "sent", REJECTED: "sent"}
        assert per_message == {VALID: 1, REJECTED: 1}
        assert alerts == []
        assert sorted(copies) == sorted(str(reply["Message-ID"]) for reply in captured)
    smtp.wait_for(len(captured), TIMEOUT)


def test_a_power_cut_with_two_replies_in_flight_leaves_both_uncertain_and_neither_sent_twice(
    servers: tuple[PymapServer, SmtpCapture], tmp_path: Path
) -> None:
    imap, smtp = servers
    append(imap, valid("valid"))
    append(imap, missing_proof("rejected"))
    office = tmp_path / "office"
    config = write_config(office, imap, smtp, smtp_connections=2)
    # Both judged first (a rehearsal holds their replies), so that both replies are queued when the run starts
    # and go out at once, each on its own connection: otherwise each would go out as soon as it was queued.
    rehearsal = shenbao("run", "--config", config, "--once", "--dry-run", env=daemon_env(imap), cwd=office)
    assert rehearsal.returncode == 0, rehearsal.stderr
    assert query(office, "SELECT state FROM outbox") == [("held",), ("held",)]

    crashed = shenbao(
        "run", "--config", config, "--once", env=daemon_env(imap, {"SHENBAO_CRASH_AT": "smtp_accepted"}), cwd=office
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    before_restart = len(smtp.messages)
    assert before_restart >= 1  # the reply whose acceptance the cut followed

    restarted = shenbao("run", "--config", config, "--once", env=daemon_env(imap), cwd=office)
    assert restarted.returncode == 0, restarted.stderr
    assert "回复：发出 0 封" in restarted.stdout

    # Both were `sending` on their own connections when the power went: the server may have either.
    assert query(office, "SELECT state FROM outbox") == [("uncertain",), ("uncertain",)]
    assert len(query(office, "SELECT text FROM alert WHERE source = 'outbox'")) == 2
    assert len(smtp.messages) == before_restart
    assert Counter(str(reply["In-Reply-To"]) for reply in replies(smtp)).most_common(1)[0][1] == 1


def test_a_power_cut_after_recording_junk_mail_still_leaves_it_in_the_junk_folder(
    servers: tuple[PymapServer, SmtpCapture], tmp_path: Path
) -> None:
    imap, smtp = servers
    junk = "垃圾邮件"
    spam = not_a_submission("spam", sender="sales@spam.example.cn", subject="代开发票")
    append(imap, spam, folder=junk)
    office = tmp_path / "office"
    config = write_config(office, imap, smtp, folders=["INBOX", junk])

    crashed = shenbao(
        "run", "--config", config, "--once", env=daemon_env(imap, {"SHENBAO_CRASH_AT": "recorded"}), cwd=office
    )
    assert crashed.returncode == -signal.SIGKILL
    restarted = shenbao("run", "--config", config, "--once", env=daemon_env(imap), cwd=office)
    assert restarted.returncode == 0, restarted.stderr

    assert query(office, "SELECT message_id, outcome FROM message") == [("<spam@minghu-soft.cn>", "review")]
    assert smtp.messages == []
    assert message_ids_in(imap, junk) == ["<spam@minghu-soft.cn>"]  # recorded and left where it is
