"""The database engine: SQLite by default (WAL, synchronous=FULL), PostgreSQL by URL.

A connection that failed is never handed out again: connections are pinged when checked out of the pool,
and an operational or internal error throws the pool's connections away. SQLite opens a file it may not
write read-only, for good, and a PostgreSQL session begun on a read-only server stays read-only: a database
mended since is only written through new connections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, ExceptionContext, make_url
from sqlalchemy.exc import InternalError, OperationalError
from sqlmodel import Session, create_engine

from . import models, schema
from .schema import SchemaState, SchemaVersion


class SchemaMismatch(Exception):
    """The database's schema is not this version's: the message says what to do."""


class DatabaseMissing(Exception):
    """The database does not exist (or has no tables) where one was expected: the message says what to do."""


def sqlite_file(url: str | URL) -> Path | None:
    """The file of a SQLite database URL; None for a server database or SQLite in memory."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def open_database(url: str, *, upgrade: bool = False, create: bool = True) -> Engine:
    """Connect; a new database gets every table (for SQLite, its folder too), unless not `create`.

    An older schema is upgraded only with `upgrade` (`shenbao run` and `shenbao db upgrade`); otherwise, as
    for a schema newer than this version knows, SchemaMismatch says what to do.
    """
    path = sqlite_file(url)
    if path is not None:
        if not create and not path.exists():  # before connecting: SQLite would make an empty file
            raise DatabaseMissing(f"数据库文件 {path} 不存在")
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "handle_error", _discard_connections)
    try:
        _bring_to_head(engine, schema.version_of(engine), upgrade=upgrade, create=create)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _bring_to_head(engine: Engine, version: SchemaVersion, *, upgrade: bool, create: bool) -> None:
    state = version.state
    if state is SchemaState.EMPTY and not create:
        raise DatabaseMissing("数据库中没有 shenbao 的表")
    if state is SchemaState.EMPTY or (state is SchemaState.BEHIND and upgrade):
        schema.upgrade(engine)
    elif state is SchemaState.BEHIND:
        raise SchemaMismatch(
            f"数据库结构为旧版本（{version.current}，当前程序需要 {version.head}）：请先停止 shenbao run，"
            "备份数据库后运行 shenbao db upgrade"
        )
    elif state is SchemaState.AHEAD:
        raise SchemaMismatch(
            f"数据库结构（{version.current}）比当前程序（{version.head}）新：请安装与之相符的 shenbao 版本"
        )


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _discard_connections(context: ExceptionContext) -> None:
    """An operational or internal error (read-only or vanished file, I/O error, a read-only server, a lost
    connection) invalidates the pool's connections; a constraint or a programming error does not."""
    if isinstance(context.sqlalchemy_exception, OperationalError | InternalError):
        context.is_disconnect = True


def get_meta(session: Session, key: str) -> str | None:
    row = session.get(models.Meta, key)
    return row.value if row else None


def set_meta(session: Session, key: str, value: str) -> None:
    row = session.get(models.Meta, key)
    if row is None:
        session.add(models.Meta(key=key, value=value))
    else:
        row.value = value
        session.add(row)
