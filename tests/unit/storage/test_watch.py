"""The watched SQLite file: once deleted or replaced under an open engine, nothing more is read or written
through it, and no fresh empty file appears at its path (real files; on PostgreSQL there is nothing to watch).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from daemon.storage.db import open_database
from daemon.storage.models import Meta
from daemon.storage.watch import DatabaseGone, watch_database


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "db" / "shenbao.db"


@pytest.fixture
def engine(database: Path) -> Iterator[Engine]:
    engine = open_database(f"sqlite:///{database}")
    yield engine
    engine.dispose()


def write(engine: Engine, key: str) -> None:
    with Session(engine) as session:
        session.add(Meta(key=key, value="1"))
        session.commit()


def keys(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.exec(select(Meta.key).order_by(Meta.key)))


def remove(database: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)


def test_a_deleted_file_stops_every_transaction_and_is_not_made_again(engine: Engine, database: Path) -> None:
    watched = watch_database(engine)
    write(engine, "before")

    remove(database)

    with pytest.raises(DatabaseGone, match="was deleted"):
        watched.check()
    with pytest.raises(DatabaseGone, match="was deleted"):
        write(engine, "after")  # on a connection the pool already holds
    engine.dispose()
    with pytest.raises(DatabaseGone, match="was deleted"):
        keys(engine)  # on a new connection
    assert list(database.parent.iterdir()) == []


def test_a_replaced_file_stops_every_transaction(engine: Engine, database: Path, tmp_path: Path) -> None:
    watch_database(engine)
    write(engine, "before")
    engine.dispose()  # a consistent copy: the WAL checkpointed into the file
    shutil.copyfile(database, tmp_path / "copy.db")

    (tmp_path / "copy.db").replace(database)  # the same content, another file

    with pytest.raises(DatabaseGone, match="replaced by another file"):
        keys(engine)


def test_the_same_file_is_used_as_before(engine: Engine) -> None:
    watched = watch_database(engine)
    write(engine, "one")
    engine.dispose()

    write(engine, "two")  # new connections open the same file (mode=rw)

    watched.check()
    assert keys(engine) == ["one", "two"]


def test_a_database_on_a_server_has_no_file_to_watch(database_url: str) -> None:
    engine = open_database(database_url)
    watched = watch_database(engine)
    write(engine, "one")
    engine.dispose()

    watched.check()
    assert (watched.path is None) == database_url.startswith("postgresql")
