"""`shenbao run` against Dovecot, the server most offices run: the core flow and IDLE.

Dovecot differs from pymap where it matters here: a special-use \\Sent folder ("Sent") that the daemon must
find rather than create, its own MOVE, modified UTF-7 folder names on disk, and IDLE driven by inotify.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from child_servers import DovecotServer
from daemon_support import (
    FOLDERS,
    MAILBOX,
    SUBJECT_PREFIX,
    TIMEOUT,
    Background,
    append,
    auto_reply,
    connected,
    daemon_env,
    folder_names,
    message_ids_in,
    missing_proof,
    parse,
    query,
    replies,
    replies_to,
    shenbao,
    valid,
    wait_until,
    write_config,
)
from imapclient.imapclient import SENT

from daemon.demo.servers import SmtpCapture

pytestmark = pytest.mark.skipif(
    not DovecotServer.available(), reason=f"Dovecot tests skipped: {DovecotServer.unavailable_reason()}"
)


@pytest.fixture
def dovecot() -> Iterator[DovecotServer]:
    with DovecotServer(MAILBOX, "imap-secret") as server:
        yield server


def mid(tag: str) -> str:
    return f"<{tag}@minghu-soft.cn>"


def special_sent_folder(server: DovecotServer) -> str:
    with connected(server) as client:
        found = client.find_special_folder(SENT)
    assert found, "Dovecot's config declares a \\Sent folder"
    return str(found)


def test_core_flow_against_dovecot(dovecot: DovecotServer, smtp: SmtpCapture, tmp_path: Path) -> None:
    append(dovecot, valid("valid"))
    append(dovecot, missing_proof("rejected"))
    append(dovecot, auto_reply("auto"))
    office = tmp_path / "office"
    config = write_config(office, dovecot, smtp)
    env = daemon_env(dovecot)

    first = shenbao("run", "--config", config, "--once", env=env, cwd=office)

    assert first.returncode == 0, first.stderr
    assert "处理 3 封邮件；回复：发出 2 封，稍后重试 0 封，失败 0 封" in first.stdout
    smtp.wait_for(2, TIMEOUT)
    (receipt,) = replies_to(smtp, mid("valid"))
    (rejection,) = replies_to(smtp, mid("rejected"))
    assert str(receipt["Subject"]).startswith(SUBJECT_PREFIX["receipt"])
    assert str(rejection["Subject"]).startswith(SUBJECT_PREFIX["rejection"])
    assert replies_to(smtp, mid("auto")) == []
    assert len(smtp.messages) == 2

    assert message_ids_in(dovecot, "INBOX") == []
    assert message_ids_in(dovecot, FOLDERS["accepted"]) == [mid("valid")]
    assert message_ids_in(dovecot, FOLDERS["rejected"]) == [mid("rejected")]
    assert message_ids_in(dovecot, FOLDERS["ignored"]) == [mid("auto")]
    sent = special_sent_folder(dovecot)
    assert sorted(message_ids_in(dovecot, sent)) == sorted(str(r["Message-ID"]) for r in replies(smtp))
    assert "已发送" not in folder_names(dovecot)  # the special-use folder was found, none made
    assert query(office, "SELECT state, copy_saved FROM outbox") == [("sent", 1), ("sent", 1)]

    folders = {name: message_ids_in(dovecot, name) for name in folder_names(dovecot)}
    second = shenbao("run", "--config", config, "--once", env=env, cwd=office)

    assert second.returncode == 0, second.stderr
    assert "处理 0 封邮件；回复：发出 0 封，稍后重试 0 封，失败 0 封" in second.stdout
    assert len(smtp.messages) == 2
    assert {name: message_ids_in(dovecot, name) for name in folder_names(dovecot)} == folders
    assert query(office, "SELECT count(*) FROM message") == [(3,)]


def test_idle_wakes_the_long_running_daemon(dovecot: DovecotServer, smtp: SmtpCapture, tmp_path: Path) -> None:
    """With polling and IDLE re-issue both 10 minutes apart, only IDLE can answer a new message in seconds."""
    office = tmp_path / "office"
    config = write_config(office, dovecot, smtp, poll_seconds=600, idle_seconds=600)
    sent = special_sent_folder(dovecot)
    append(dovecot, valid("first"))
    with Background("run", "--config", config, env=daemon_env(dovecot), cwd=office) as daemon:
        daemon.wait_for_output("shenbao running")
        smtp.wait_for(1, TIMEOUT)
        # The Sent copy is saved right before the watcher waits again: from then on it waits on IDLE.
        wait_until(lambda: len(message_ids_in(dovecot, sent)) == 1, TIMEOUT, "the first reply's Sent copy")

        appended = time.monotonic()
        append(dovecot, missing_proof("second"))
        smtp.wait_for(2, timeout=10)
        latency = time.monotonic() - appended
        # The outbox sends apart from the watcher's move (the server action never waits for SMTP, nor SMTP for
        # it): the reply may come first, so the move is awaited before the process is killed.
        moved = [mid("second")]
        wait_until(lambda: message_ids_in(dovecot, FOLDERS["rejected"]) == moved, TIMEOUT, "the move to 已退回")
        # Stopping is covered against pymap; here the process is simply killed on leaving the block.
    assert latency < 10, f"the reply came {latency:.1f} s after the append"
    (reply,) = replies_to(smtp, mid("second"))
    assert str(reply["Subject"]).startswith(SUBJECT_PREFIX["rejection"])
    assert str(parse(smtp.messages[1].data)["In-Reply-To"]) == mid("second")
    assert message_ids_in(dovecot, FOLDERS["rejected"]) == [mid("second")]
    assert message_ids_in(dovecot, "INBOX") == []
