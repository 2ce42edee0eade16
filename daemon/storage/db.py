"""The database engine: SQLite by default (WAL, synchronous=FULL), PostgreSQL by URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

from . import models, schema
from .schema import SchemaState


class SchemaMismatch(Exception):
    """The database's schema is not this version's: the message says what to do."""


def open_database(url: str, *, upgrade: bool = False) -> Engine:
    """Connect; a new database gets every table (for SQLite, its folder too).

    An older schema is upgraded only with `upgrade` (`shenbao run` and `shenbao db upgrade`); otherwise, as
    for a schema newer than this version knows, SchemaMismatch says what to do.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    version = schema.version_of(engine)
    state = version.state
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
    return engine


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


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
