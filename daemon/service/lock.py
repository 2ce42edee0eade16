"""One daemon per mailbox: a second `shenbao run` on the same database refuses to start.

`run_lock(settings)` picks the lock by the database URL. SQLite: an flock on a file beside the database
file, which only processes on the same host can share. PostgreSQL: a session advisory lock on a connection
held for the daemon's life, which daemons on any host sharing the database see; its `application_name`
says who holds it, so the second daemon can name the first.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
from pathlib import Path
from typing import IO, Any, Protocol

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Row, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from ..config import Settings
from ..storage.db import sqlite_file

ADVISORY_KEY = 0x7368656E62616F01
"""The advisory lock's key ("shenbao" and 1 in ASCII): the same for every shenbao, one lock per database."""
_KEY_HIGH, _KEY_LOW = ADVISORY_KEY >> 32, ADVISORY_KEY & 0xFFFFFFFF
_CONNECT_ARGS = {
    "connect_timeout": 10,
    # A vanished server or network is noticed within about half a minute, not the kernel's two hours.
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}
_HOLDER = text(
    """
    SELECT a.application_name, a.client_addr, a.backend_start
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.classid = :high AND l.objid = :low
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    """
)
_STILL_HELD = text(
    """
    SELECT count(*) FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND classid = :high AND objid = :low
      AND pid = pg_backend_pid()
    """
)


class AlreadyRunning(Exception):
    """Another daemon holds the lock; the message (Chinese, for the command's output) names it."""


class LockLost(Exception):
    """The lock is no longer held (its connection died): another daemon may start, so this one must stop."""


class RunLock(Protocol):
    def acquire(self) -> None:
        """Take the lock, or raise AlreadyRunning."""

    def verify(self) -> None:
        """Raise LockLost when the lock is no longer ours."""

    def release(self) -> None: ...


def holder_name() -> str:
    """Who this process is, as the other daemon will be told."""
    return f"shenbao run on {socket.gethostname()} pid {os.getpid()}"


def run_lock(settings: Settings) -> RunLock:
    """The lock for the configured database: advisory on PostgreSQL, a file beside it on SQLite."""
    if make_url(settings.database_url).get_backend_name() == "postgresql":
        return AdvisoryLock(settings.database_url)
    database = sqlite_file(settings.database_url)
    if database is not None:
        return FileLock(database.with_name(database.name + ".lock"))
    return FileLock(settings.files_dir / ".shenbao-run.lock")


class FileLock:
    """An exclusive flock held for the life of the process; the kernel releases it however the process ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            handle.seek(0)
            holder = handle.read().strip() or "另一个进程"
            handle.close()
            raise AlreadyRunning(f"shenbao 已在这个数据库上运行（{holder}；锁文件 {self.path}）") from error
        handle.seek(0)
        handle.truncate()
        handle.write(holder_name())
        handle.flush()
        self._file = handle

    def verify(self) -> None:
        """An flock cannot be lost while the file stays open."""

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class AdvisoryLock:
    """`pg_try_advisory_lock` on a connection of its own, kept open (and checked) for the daemon's life.

    The server releases a session lock when the session ends, however the process ends; if the connection
    dies under a running daemon, `verify` says so and the daemon stops.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._connection: Connection | None = None
        self._guard = threading.Lock()  # verify() runs on the scheduler's threads

    def acquire(self) -> None:
        """Raises AlreadyRunning when another session holds the lock, SQLAlchemyError when unreachable."""
        name = holder_name()
        engine = create_engine(self.url, poolclass=NullPool, connect_args={**_CONNECT_ARGS, "application_name": name})
        connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_KEY}).scalar_one()
        if not taken:
            holder = connection.execute(_HOLDER, {"high": _KEY_HIGH, "low": _KEY_LOW}).first()
            connection.close()
            raise AlreadyRunning(f"shenbao 已在这个数据库上运行：{_describe(holder)}")
        self._connection = connection

    def verify(self) -> None:
        with self._guard:
            if self._connection is None:
                raise LockLost("the run lock was never taken")
            try:
                held = self._connection.execute(_STILL_HELD, {"high": _KEY_HIGH, "low": _KEY_LOW}).scalar_one()
            except SQLAlchemyError as error:
                raise LockLost(f"the connection holding the run lock failed: {error}") from error
            if not held:
                raise LockLost("the run lock is no longer held by this daemon's session")

    def release(self) -> None:
        with self._guard:
            connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(SQLAlchemyError):  # a dead session holds nothing any more
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
            connection.close()


def _describe(holder: Row[Any, Any, Any] | None) -> str:
    """`application_name` (who and where), the client address and since when, as far as they are visible."""
    if holder is None:
        return "另一个会话（它刚刚退出？请重试）"
    name, address, since = holder
    where = f"，来自 {address}" if address else ""
    return f"{name or '未署名的会话'}{where}，自 {since:%Y-%m-%d %H:%M:%S %z} 起"
