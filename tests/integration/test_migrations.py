"""Upgrading across versions: a database made by release 0.1.0 keeps every row, and every schema that
migrations make equals the one the models describe, on SQLite and on PostgreSQL (`database_url`).

The fixture `release-0.1.0.sqlite.gz` was made by release 0.1.0 itself (`shenbao demo` over its 13
samples, then a decision, a recheck, a digest and reminders), so every table holds rows.
"""

from __future__ import annotations

import gzip
import shutil
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
from daemon.cli import main
from daemon.domain import Outcome
from daemon.storage import schema
from daemon.storage.db import SchemaMismatch, open_database
from daemon.storage.models import FolderState, MailboxItem, MessageRecord, OutboxItem
from daemon.storage.states import ItemState, OutboxState

RELEASE_0_1_0 = FIXTURES / "db" / "release-0.1.0.sqlite.gz"


@pytest.fixture
def old_database(tmp_path: Path) -> Path:
    path = tmp_path / "shenbao.db"
    path.write_bytes(gzip.decompress(RELEASE_0_1_0.read_bytes()))
    return path


def rows(path: Path, like: Path | None = None) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, read with plain sqlite3; with `like`, only the tables and columns that
    both databases have (columns a migration added or moved since are left out)."""
    with sqlite3.connect(like or path) as connection:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        columns = {table: [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')] for table in tables}
    found = {}
    with sqlite3.connect(path) as connection:
        for table in tables:
            present = {row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')}
            columns[table] = [column for column in columns[table] if column in present]
            if table != "alembic_version":
                names = ", ".join(f'"{column}"' for column in columns[table])
                found[table] = connection.execute(f'SELECT {names} FROM "{table}" ORDER BY 1').fetchall()
    return found


def config(tmp_path: Path, database: Path | str) -> Path:
    """A configuration for `database`: a SQLite file, or any database URL."""
    url = database if isinstance(database, str) else f"sqlite:///{database}"
    path = tmp_path / "shenbao.toml"
    path.write_text(f'[storage]\ndatabase = "{url}"\nfiles = "files"\n', encoding="utf-8")
    return path


def differences(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(compare_metadata(MigrationContext.configure(connection), SQLModel.metadata))
    finally:
        engine.dispose()


def test_a_release_0_1_0_database_is_refused_until_upgraded(old_database: Path) -> None:
    with pytest.raises(SchemaMismatch, match="shenbao db upgrade"):
        open_database(f"sqlite:///{old_database}")


KEPT_AS_THEY_WERE = ("outbox", "mailbox_item", "attachment", "alert", "meta", "digest", "reminder", "revision")


def test_db_upgrade_keeps_every_row_of_release_0_1_0(tmp_path: Path, old_database: Path) -> None:
    original = tmp_path / "original.db"
    shutil.copyfile(old_database, original)
    before = rows(original)

    code = main(["db", "upgrade", "--config", str(config(tmp_path, old_database))])

    after = rows(old_database, like=original)
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
        standings = {r.name: r.standing for r in enterprise_rows(session)}
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


def test_migrations_make_exactly_the_schema_the_models_describe(database_url: str) -> None:
    open_database(database_url).dispose()

    assert differences(database_url) == []


def test_migrations_from_release_0_1_0_make_exactly_the_schema_the_models_describe(old_database: Path) -> None:
    open_database(f"sqlite:///{old_database}", upgrade=True)

    assert differences(f"sqlite:///{old_database}") == []


def test_a_state_outside_its_machine_is_refused_by_the_database(database_url: str) -> None:
    engine = open_database(database_url)

    with pytest.raises(IntegrityError, match="ck_mailbox_item_state"), engine.begin() as connection:
        connection.execute(
            text("INSERT INTO mailbox_item (folder, uidvalidity, uid, size, state) VALUES ('INBOX', 1, 1, 10, 'lost')")
        )
    engine.dispose()


@pytest.mark.parametrize("start", ["new", "release-0.1.0"])
def test_an_upgraded_database_takes_the_states_of_waiting_and_quarantined_messages(tmp_path: Path, start: str) -> None:
    path = tmp_path / "shenbao.db"
    if start == "release-0.1.0":
        path.write_bytes(gzip.decompress(RELEASE_0_1_0.read_bytes()))
    engine = open_database(f"sqlite:///{path}", upgrade=True)
    insert = "INSERT INTO mailbox_item (folder, uidvalidity, uid, size, state) VALUES ('申报', 1, :uid, 10, :state)"

    with engine.begin() as connection:
        for uid, state in enumerate(("pending", "no_room", "quarantined")):
            connection.execute(text(insert), {"uid": uid, "state": state})
    with pytest.raises(IntegrityError, match="ck_mailbox_item_state"), engine.begin() as connection:
        connection.execute(text(insert), {"uid": 9, "state": "lost"})

    with engine.connect() as connection:
        rows = connection.execute(text("SELECT state, attempts, subject FROM mailbox_item WHERE folder = '申报'"))
        assert sorted(rows) == [("no_room", 0, ""), ("pending", 0, ""), ("quarantined", 0, "")]


def test_imap_numbers_up_to_the_largest_unsigned_32_bit_value_are_kept(database_url: str) -> None:
    """UIDVALIDITY and UID are unsigned 32-bit in IMAP: past PostgreSQL's `integer`."""
    largest = 2**32 - 1
    engine = open_database(database_url)
    with Session(engine) as session:
        session.add(FolderState(folder="INBOX", uidvalidity=largest))
        session.add(
            MailboxItem(folder="INBOX", uidvalidity=largest, uid=largest, size=5 << 30, state=ItemState.SKIPPED)
        )
        session.commit()

    with Session(engine) as session:
        item = session.exec(select(MailboxItem)).one()
        assert (item.uidvalidity, item.uid, item.size) == (largest, largest, 5 << 30)
        assert session.exec(select(FolderState.uidvalidity)).one() == largest
    engine.dispose()


def test_a_database_of_a_newer_version_is_left_alone(tmp_path: Path, database_url: str) -> None:
    engine = open_database(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()

    with pytest.raises(SchemaMismatch, match="新"):
        open_database(database_url, upgrade=True)
    assert main(["db", "upgrade", "--config", str(config(tmp_path, database_url))]) == 3


def test_run_upgrades_an_old_schema_at_start_and_says_so(
    tmp_path: Path, old_database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="daemon.storage.schema")

    open_database(f"sqlite:///{old_database}", upgrade=True)

    assert f"upgraded from {schema.BASELINE} to {schema.head()}" in caplog.text


def test_the_newest_migration_file_names_alembics_head_so_staff_commands_need_not_load_alembic() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", "daemon:migrations")
    assert schema.head() == ScriptDirectory.from_config(config).get_current_head()
    assert all(
        path.name.startswith(f"{script.revision}_")
        for script in ScriptDirectory.from_config(config).walk_revisions()
        for path in [Path(script.path)]
    )
