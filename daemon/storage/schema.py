"""Which version of the schema a database has, and bringing it to the newest (Alembic migrations).

A new, empty database is created by running every migration. A database made by release 0.1.0 (tables
but no version table) is recognised as the baseline revision. An older schema is upgraded only when asked
(`shenbao db upgrade`, or `shenbao run` at start): other commands refuse it rather than change the
schema under a daemon that may still run the previous version.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

_VERSIONS = Path(__file__).resolve().parents[1] / "migrations" / "versions"
"""Each migration's file begins with its revision (0008_document_contents.py is revision 0008), so the newest
revision is known without loading Alembic, which would double the start-up of every staff command."""

BASELINE = "0001"
"""The revision whose schema release 0.1.0 made with `create_all`, before migrations existed."""
_BASELINE_TABLE = "message"
_VERSION_TABLE = "alembic_version"


class SchemaState(StrEnum):
    EMPTY = "empty"
    BEHIND = "behind"
    CURRENT = "current"
    AHEAD = "ahead"
    """Made by a newer shenbao: this one must not touch it."""


@dataclass(frozen=True)
class SchemaVersion:
    current: str | None
    head: str

    @property
    def state(self) -> SchemaState:
        if self.current is None:
            return SchemaState.EMPTY
        if self.current == self.head:
            return SchemaState.CURRENT
        if self.current in _known_revisions():
            return SchemaState.BEHIND
        return SchemaState.AHEAD


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config  # loaded only to migrate, or for a database that is not current

    config = Config()
    config.set_main_option("script_location", "daemon:migrations")
    config.attributes["connection"] = connection
    return config


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions()}


def head() -> str:
    """The newest revision: the highest-numbered migration file (a test holds it equal to Alembic's head)."""
    return max(path.name.split("_", 1)[0] for path in _VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))


def version_of(engine: Engine) -> SchemaVersion:
    with engine.connect() as connection:
        return SchemaVersion(_current(connection), head())


def _current(connection: Connection) -> str | None:
    current = _stamped(connection)
    if current is None and inspect(connection).has_table(_BASELINE_TABLE):
        return BASELINE
    return current


def _stamped(connection: Connection) -> str | None:
    """The revision the version table records (what Alembic's MigrationContext reads), None without one."""
    if not inspect(connection).has_table(_VERSION_TABLE):
        return None
    found: str | None = connection.execute(text(f"SELECT version_num FROM {_VERSION_TABLE}")).scalar()
    return found


def upgrade(engine: Engine) -> list[str]:
    """Apply every migration the database lacks, all in one transaction; the revisions applied, oldest first."""
    from alembic import command
    from alembic.script import ScriptDirectory

    with _migrating(engine) as migrations, migrations.begin() as connection:
        before = _current(connection)
        if before == BASELINE and _stamped(connection) is None:
            command.stamp(_config(connection), BASELINE)
        scripts = ScriptDirectory.from_config(_config())
        applied = [s.revision for s in scripts.iterate_revisions(head(), before)] if before != head() else []
        command.upgrade(_config(connection), "head")
    if applied and before is not None:
        log.info("database schema upgraded from %s to %s", before, head())
    return list(reversed(applied))


@contextmanager
def _migrating(engine: Engine) -> Iterator[Engine]:
    """An engine for migrations. On SQLite: DDL inside the transaction (pysqlite would commit it statement by
    statement), a write lock from the start, and foreign keys off while tables are copied and replaced."""
    if engine.dialect.name != "sqlite":
        yield engine
        return
    migrations = create_engine(engine.url, poolclass=NullPool)

    @event.listens_for(migrations, "connect")
    def _autocommit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA foreign_keys=OFF")
        dbapi_connection.execute("PRAGMA busy_timeout=10000")

    @event.listens_for(migrations, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        yield migrations
    finally:
        migrations.dispose()
