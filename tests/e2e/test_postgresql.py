"""shenbao on a real PostgreSQL server (the session's `postgres_server`, a fresh database per test): the
commands work unchanged, and `shenbao run` takes a session advisory lock, so daemons on two hosts sharing the
database never both run; the daemon stops when that lock's connection dies or database errors persist.

The daemons run as `shenbao` subprocesses on a pymap mailbox; "two hosts" are two folders with a config each
(their own files) naming the same database.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import ENTERPRISE, RECEIVED, rar, submission
from daemon_support import (
    TIMEOUT,
    Background,
    append,
    daemon_env,
    missing_proof,
    query,
    replies_to,
    shenbao,
    valid,
    wait_until,
    with_message_id,
    write_config,
)
from postgres import PostgresServer
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select

from daemon.config import load
from daemon.demo.servers import PymapServer, SmtpCapture
from daemon.storage.db import open_database
from daemon.storage.models import MessageRecord, OutboxItem

EXIT_ENVIRONMENT = 3
postgresql_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def mid(tag: str) -> str:
    return f"<{tag}@minghu-soft.cn>"


def holder(daemon: Background) -> str:
    """The `application_name` the daemon's lock connection carries."""
    return f"shenbao run on {socket.gethostname()} pid {daemon.process.pid}"


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@postgresql_only
def test_two_daemons_on_two_hosts_sharing_one_database_one_runs_the_other_exits_3_naming_it(
    imap: PymapServer, smtp: SmtpCapture, tmp_path: Path, database_url: str
) -> None:
    first = write_config(tmp_path / "host-a", imap, smtp, idle_seconds=5, database=database_url)
    second = write_config(tmp_path / "host-b", imap, smtp, idle_seconds=5, database=database_url)
    env = daemon_env(imap)
    with Background("run", "--config", first, env=env, cwd=first.parent) as running:
        running.wait_for_output("shenbao running")

        refused = shenbao("run", "--config", second, env=env, cwd=second.parent, timeout=60)

        assert refused.returncode == EXIT_ENVIRONMENT, refused.stderr
        assert "shenbao 已在这个数据库上运行" in refused.stderr
        assert holder(running) in refused.stderr  # found through pg_locks and pg_stat_activity
        assert "来自 127.0.0.1" in refused.stderr and "Traceback" not in refused.stderr

        append(imap, valid("live"))  # the first goes on answering
        smtp.wait_for(1, TIMEOUT)
        assert running.process.poll() is None
        assert running.terminate() == 0

    # The lock went with the first daemon's session: the second host may run now.
    assert "处理 0 封邮件" in ok(shenbao("run", "--config", second, "--once", env=env, cwd=second.parent))
    assert len(replies_to(smtp, mid("live"))) == 1


@postgresql_only
def test_a_daemon_whose_lock_connection_dies_stops_with_status_3(
    imap: PymapServer, smtp: SmtpCapture, tmp_path: Path, database_url: str, postgres_server: PostgresServer
) -> None:
    config = write_config(tmp_path / "office", imap, smtp, idle_seconds=600, database=database_url)
    with Background("run", "--config", config, env=daemon_env(imap), cwd=config.parent) as daemon:
        daemon.wait_for_output("shenbao running")

        killed = postgres_server.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (holder(daemon),)
        )

        assert killed == [(True,)]
        assert daemon.process.wait(TIMEOUT) == EXIT_ENVIRONMENT  # even while waiting on IDLE
        output = daemon.output()
    assert "CRITICAL" in output and "the connection holding the run lock failed" in output
    assert "运行锁已失去" in output


def read_only(server: PostgresServer, database_url: str, on: bool) -> None:
    """The database turns read-only, as after a failover to a standby (existing sessions are cut, as they
    would be), or writable again (sessions are left alone: the daemon must drop its read-only ones)."""
    name = make_url(database_url).database
    setting = "SET default_transaction_read_only = on" if on else "RESET default_transaction_read_only"
    server.execute(f'ALTER DATABASE "{name}" {setting}')
    if on:
        server.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND application_name = ''",
            (name,),
        )


@postgresql_only
def test_database_errors_that_persist_stop_the_daemon_with_status_3(
    imap: PymapServer, smtp: SmtpCapture, tmp_path: Path, database_url: str, postgres_server: PostgresServer
) -> None:
    config = write_config(tmp_path / "office", imap, smtp, idle_seconds=1, database=database_url, give_up_seconds=3)
    with Background("run", "--config", config, env=daemon_env(imap), cwd=config.parent) as daemon:
        daemon.wait_for_output("shenbao running")

        read_only(postgres_server, database_url, on=True)

        assert daemon.process.wait(TIMEOUT) == EXIT_ENVIRONMENT
        output = daemon.output()
    assert "read-only transaction" in output
    assert "CRITICAL" in output and "database errors in every cycle" in output
    assert "数据库持续出错" in output


@postgresql_only
def test_a_database_writable_again_is_used_without_a_restart_and_the_outage_is_an_alert(
    imap: PymapServer, smtp: SmtpCapture, tmp_path: Path, database_url: str, postgres_server: PostgresServer
) -> None:
    config = write_config(tmp_path / "office", imap, smtp, idle_seconds=1, database=database_url)
    with Background("run", "--config", config, env=daemon_env(imap), cwd=config.parent) as daemon:
        daemon.wait_for_output("shenbao running")
        read_only(postgres_server, database_url, on=True)
        append(imap, valid("during"))
        daemon.wait_for_output("read-only transaction")

        read_only(postgres_server, database_url, on=False)

        smtp.wait_for(1, TIMEOUT)
        wait_until(lambda: query(config.parent, "SELECT count(*) FROM alert") == [(1,)], TIMEOUT, "the alert")
        assert daemon.process.poll() is None
        assert daemon.terminate() == 0
    ((source, text),) = query(config.parent, "SELECT source, text FROM alert")
    assert source == "database" and "恢复" in text and "read-only transaction" in text
    assert query(config.parent, "SELECT message_id, outcome FROM message") == [(mid("during"), "accepted")]


def test_process_status_digest_export_and_run_once_work_the_same_on_both_databases(
    imap: PymapServer, smtp: SmtpCapture, tmp_path: Path, database_url: str
) -> None:
    office = tmp_path / "office"
    config = write_config(office, imap, smtp, database=database_url)
    env = daemon_env(imap)
    mail = office / "mail"
    mail.mkdir()
    (mail / "1-valid.eml").write_bytes(valid("saved"))
    (mail / "2-rejected.eml").write_bytes(missing_proof("saved-rejected"))

    lines = ok(shenbao("process", "mail", "--config", config, "--json", env=env, cwd=office)).splitlines()
    again = ok(shenbao("process", "mail", "--config", config, "--json", env=env, cwd=office)).splitlines()
    second_version = submission(attachments=[(f"{ENTERPRISE}.rar", rar("solid.rar"))], body="第二版材料，请查收。")
    append(imap, with_message_id(second_version, mid("mailed")))
    once = ok(shenbao("run", "--config", config, "--once", env=env, cwd=office))
    status = [
        json.loads(line)
        for line in ok(shenbao("status", "--config", config, "--json", env=env, cwd=office)).splitlines()
    ]
    digest = json.loads(
        ok(shenbao("digest", "--config", config, "--output", office / "digest", "--json", env=env, cwd=office))
    )
    exported = json.loads(ok(shenbao("export", office / "exported", "--config", config, "--json", env=env, cwd=office)))

    assert [(json.loads(line)["verdict"], json.loads(line)["new"]) for line in lines] == [
        ("accepted", True),
        ("rejected", True),
    ]
    assert [json.loads(line)["new"] for line in again] == [False, False]
    assert "处理 1 封邮件；回复：发出 1 封" in once
    [jinan] = [row for row in status if row["enterprise"] == ENTERPRISE]
    assert (jinan["standing"], jinan["messages"], jinan["versions"]) == ("已受理", 3, 2)
    assert sorted(Path(name).suffix for name in digest["written"]) == [".eml", ".xlsx"]
    assert exported["enterprises"] == 1 and exported["files"] == 5  # three documents, 汇总表.xlsx, 文件名对照.txt
    check = subprocess.run(
        ["sha256sum", "-c", "manifest.sha256"], cwd=office / "exported", capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr

    # What differs underneath, read back through the models: aware times, booleans, bytes (bytea).
    engine = open_database(load(config).database_url)
    with Session(engine) as session:
        first = session.exec(select(MessageRecord).order_by(col(MessageRecord.id))).first()
        (reply,) = session.exec(select(OutboxItem)).all()
    engine.dispose()
    assert first is not None and first.received_at == RECEIVED and first.received_at.tzinfo is not None
    assert isinstance(reply.raw, bytes) and mid("mailed").encode() in reply.raw
    assert reply.copy_saved is True
