"""The database is watched (issue 8, finding 9): `shenbao run` as a subprocess on a pymap mailbox, its SQLite
file deleted, read-only, or missing while the files remain.

Deleting the files under a running daemon used to lose a submission and its receipt (the pool mixed the
unlinked file with a new empty one); a database read-only at start was never used again once mended.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from daemon_support import (
    FOLDERS,
    TIMEOUT,
    Background,
    append,
    daemon_env,
    folder_messages,
    message_ids_in,
    query,
    replies_to,
    shenbao,
    valid,
    wait_until,
    write_config,
)

from daemon.demo.servers import PymapServer, SmtpCapture

EXIT_ENVIRONMENT = 3


def mid(tag: str) -> str:
    return f"<{tag}@minghu-soft.cn>"


def backup(database: Path, copy: Path) -> None:
    """An online copy, as `sqlite3 shenbao.db .backup` makes one."""
    source, target = sqlite3.connect(database), sqlite3.connect(copy)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()


def database_files(database: Path) -> list[Path]:
    return [database.with_name(database.name + suffix) for suffix in ("", "-wal", "-shm")]


def test_deleting_the_database_under_the_daemon_stops_it_and_loses_nothing(
    imap: PymapServer, smtp: SmtpCapture, tmp_path: Path
) -> None:
    office = tmp_path / "office"
    config = write_config(office, imap, smtp, idle_seconds=5)
    database = office / "shenbao.db"
    append(imap, valid("first"))
    with Background("run", "--config", config, env=daemon_env(imap), cwd=office) as daemon:
        daemon.wait_for_output("shenbao running")
        smtp.wait_for(1, TIMEOUT)
        wait_until(lambda: len(folder_messages(imap, "已发送")) == 1, TIMEOUT, "the receipt's copy in 已发送")
        backup(database, tmp_path / "backup.db")

        for path in database_files(database):
            path.unlink(missing_ok=True)
        append(imap, valid("second"))

        assert daemon.process.wait(TIMEOUT) == EXIT_ENVIRONMENT
        output = daemon.output()
    assert "CRITICAL" in output and f"the database file {database} was deleted" in output
    assert "数据库文件被删除或替换" in output
    assert [path for path in database_files(database) if path.exists()] == []  # no fresh empty database
    assert message_ids_in(imap, "INBOX") == [mid("second")]  # never recorded, so never moved nor answered
    assert replies_to(smtp, mid("second")) == []

    shutil.copyfile(tmp_path / "backup.db", database)  # the files restored from the backup
    again = shenbao("run", "--config", config, "--once", env=daemon_env(imap), cwd=office)

    assert again.returncode == 0, again.stderr
    assert query(office, "SELECT message_id, outcome FROM message ORDER BY id") == [
        (mid("first"), "accepted"),
        (mid("second"), "accepted"),
    ]
    assert query(office, "SELECT version FROM submission ORDER BY id") == [(1,)]  # the same archive: no new version
    smtp.wait_for(2, TIMEOUT)
    assert len(replies_to(smtp, mid("first"))) == 1 and len(replies_to(smtp, mid("second"))) == 1
    assert message_ids_in(imap, FOLDERS["accepted"]) == [mid("first"), mid("second")]


def test_run_refuses_to_make_a_new_database_where_the_files_show_there_was_one(
    imap: PymapServer, smtp: SmtpCapture, tmp_path: Path
) -> None:
    office = tmp_path / "office"
    config = write_config(office, imap, smtp)
    append(imap, valid("first"))
    assert shenbao("run", "--config", config, "--once", env=daemon_env(imap), cwd=office).returncode == 0
    for path in database_files(office / "shenbao.db"):
        path.unlink(missing_ok=True)
    append(imap, valid("second"))

    refused = shenbao("run", "--config", config, "--once", env=daemon_env(imap), cwd=office)

    assert refused.returncode == EXIT_ENVIRONMENT
    assert "请从备份恢复数据库" in refused.stderr and "Traceback" not in refused.stderr
    assert not (office / "shenbao.db").exists()
    assert message_ids_in(imap, "INBOX") == [mid("second")]


# -- read-only at start -------------------------------------------------------------------------------------


def immutable(paths: list[Path], on: bool) -> str | None:
    """`chattr +i` (or -i) on each path: even root cannot write them (the tests run as root). Why it cannot
    be done here, or None."""
    for path in paths:
        try:
            done = subprocess.run(
                ["chattr", "+i" if on else "-i", str(path)], capture_output=True, text=True, check=False
            )
        except FileNotFoundError:
            return "chattr is not installed (e2fsprogs)"
        if done.returncode != 0:
            return f"chattr cannot make {path} immutable here: {done.stderr.strip()}"
    return None


def test_a_database_read_only_at_start_is_waited_for_and_used_once_writable(
    imap: PymapServer, smtp: SmtpCapture, tmp_path: Path
) -> None:
    office = tmp_path / "office"
    config = write_config(office, imap, smtp, idle_seconds=5, database="sqlite:///db/shenbao.db")
    env = daemon_env(imap)
    assert shenbao("db", "upgrade", "--config", config, env=env, cwd=office).returncode == 0
    folder = office / "db"
    (folder / "shenbao.db.lock").touch()  # left by an earlier run: the run lock needs no new file
    append(imap, valid("waiting"))
    reason = immutable([folder / "shenbao.db", folder], on=True)
    if reason is not None:
        immutable([folder / "shenbao.db", folder], on=False)
        pytest.skip(reason)
    try:
        with Background("run", "--config", config, env=env, cwd=office) as daemon:
            daemon.wait_for_output("the database cannot be used")
            assert message_ids_in(imap, "INBOX") == [mid("waiting")]

            assert immutable([folder / "shenbao.db", folder], on=False) is None  # permissions mended

            smtp.wait_for(1, TIMEOUT)
            assert daemon.process.poll() is None  # the same process: no restart was needed
            wait_until(lambda: message_ids_in(imap, FOLDERS["accepted"]) == [mid("waiting")], TIMEOUT, "the move")
            assert daemon.terminate() == 0
            output = daemon.output()
    finally:
        immutable([folder / "shenbao.db", folder], on=False)
    assert "CRITICAL" in output
    assert query(office, "SELECT message_id, outcome FROM message") == [(mid("waiting"), "accepted")]
    ((alert,),) = query(office, "SELECT text FROM alert WHERE source = 'database'")
    assert "无法使用" in alert and "恢复" in alert
