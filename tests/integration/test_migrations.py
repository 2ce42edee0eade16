"""Upgrading across versions: a database made by release 0.1.0 keeps every row, and every schema that
migrations make equals the one the models describe.

The fixture `release-0.1.0.sqlite.gz` was made by release 0.1.0 itself (`shenbao demo` over its 13
samples, then a decision, a recheck, a digest and reminders), so every table holds rows.
"""

from __future__ import annotations

import gzip
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import FIXTURES
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

from daemon.app.queries import enterprise_rows, message_views
from daemon.app.views import Standing
from daemon.campaign import CallRules
from daemon.cli import main
from daemon.domain import Outcome
from daemon.storage import schema
from daemon.storage.db import SchemaMismatch, open_database
from daemon.storage.models import MessageRecord, OutboxItem
from daemon.storage.states import OutboxState

RELEASE_0_1_0 = FIXTURES / "db" / "release-0.1.0.sqlite.gz"


@pytest.fixture
def old_database(tmp_path: Path) -> Path:
    path = tmp_path / "shenbao.db"
    path.write_bytes(gzip.decompress(RELEASE_0_1_0.read_bytes()))
    return path


def rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table of 0.1.0, read with plain sqlite3."""
    with sqlite3.connect(path) as connection:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            table: connection.execute(f'SELECT * FROM "{table}" ORDER BY 1').fetchall()
            for table in tables
            if table != "alembic_version"
        }


def config(tmp_path: Path, database: Path) -> Path:
    path = tmp_path / "shenbao.toml"
    path.write_text(f'[storage]\ndatabase = "sqlite:///{database}"\nfiles = "files"\n', encoding="utf-8")
    return path


def differences(url: str) -> list[object]:
    engine = create_engine(url)
    with engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), SQLModel.metadata))


def test_a_release_0_1_0_database_is_refused_until_upgraded(old_database: Path) -> None:
    with pytest.raises(SchemaMismatch, match="shenbao db upgrade"):
        open_database(f"sqlite:///{old_database}")


KEPT_AS_THEY_WERE = ("outbox", "mailbox_item", "attachment", "alert", "meta", "digest", "reminder", "revision")


def test_db_upgrade_keeps_every_row_of_release_0_1_0(tmp_path: Path, old_database: Path) -> None:
    before = rows(old_database)

    code = main(["db", "upgrade", "--config", str(config(tmp_path, old_database))])

    after = rows(old_database)
    assert code == 0
    assert {table: after[table] for table in KEPT_AS_THEY_WERE} == {table: before[table] for table in KEPT_AS_THEY_WERE}
    for table in ("message", "problem", "document", "submission", "decision", "enterprise"):
        assert len(after[table]) == len(before[table]), table
    assert sum(len(table) for table in before.values()) > 80
    assert schema.version_of(create_engine(f"sqlite:///{old_database}")).state is schema.SchemaState.CURRENT


def test_the_upgraded_database_reads_as_before(tmp_path: Path, old_database: Path) -> None:
    main(["db", "upgrade", "--config", str(config(tmp_path, old_database))])
    engine = open_database(f"sqlite:///{old_database}")

    with Session(engine) as session:
        outcomes = [m.outcome for m in session.exec(select(MessageRecord).order_by(MessageRecord.id))]
        states = {item.state for item in session.exec(select(OutboxItem))}
        standings = {r.name: r.standing for r in enterprise_rows(session, CallRules())}
        views = {v.reference: v for v in message_views(session)}

    assert outcomes[:4] == [Outcome.ACCEPTED, Outcome.ACCEPTED, Outcome.ACCEPTED, Outcome.REJECTED]
    assert states == {OutboxState.SENT, OutboxState.QUEUED}
    assert standings["济南明湖软件科技有限公司"] is Standing.ACCEPTED
    assert standings["烟台蓝海船舶装备有限公司"] is Standing.REJECTED  # rejected by a person after review
    assert len(standings) == 8  # the demo roster's eight enterprises
    assert views["SB-000013"].packages[0].version == 2  # the second accepted version of 济南明湖
    assert views["SB-000010"].decisions[0].note == "链接已过期，请重新发送"
    assert [p.code.value for p in views["SB-000005"].all_problems] == ["missing_document"]
    assert views["SB-000011"].kind.value == "question" and views["SB-000009"].kind.value == "ignored"


def test_upgrading_twice_changes_nothing(tmp_path: Path, old_database: Path) -> None:
    path = config(tmp_path, old_database)
    main(["db", "upgrade", "--config", str(path)])
    before = rows(old_database)

    assert main(["db", "upgrade", "--config", str(path)]) == 0
    assert rows(old_database) == before


@pytest.mark.parametrize("start", ["new", "release-0.1.0"])
def test_migrations_make_exactly_the_schema_the_models_describe(tmp_path: Path, start: str) -> None:
    path = tmp_path / "shenbao.db"
    if start == "release-0.1.0":
        path.write_bytes(gzip.decompress(RELEASE_0_1_0.read_bytes()))

    open_database(f"sqlite:///{path}", upgrade=True)

    assert differences(f"sqlite:///{path}") == []


def test_a_state_outside_its_machine_is_refused_by_the_database(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'shenbao.db'}")

    with pytest.raises(IntegrityError, match="ck_mailbox_item_state"), engine.begin() as connection:
        connection.execute(
            text("INSERT INTO mailbox_item (folder, uidvalidity, uid, size, state) VALUES ('INBOX', 1, 1, 10, 'lost')")
        )


def test_a_database_of_a_newer_version_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "shenbao.db"
    open_database(f"sqlite:///{path}")
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")

    with pytest.raises(SchemaMismatch, match="新"):
        open_database(f"sqlite:///{path}", upgrade=True)
    assert main(["db", "upgrade", "--config", str(config(tmp_path, path))]) == 3


def test_run_upgrades_an_old_schema_at_start_and_says_so(
    tmp_path: Path, old_database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="daemon.storage.schema")

    open_database(f"sqlite:///{old_database}", upgrade=True)

    assert f"upgraded from {schema.BASELINE} to {schema.head()}" in caplog.text
