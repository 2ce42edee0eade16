"""The engine never keeps a connection that failed: SQLite opens a file it may not write read-only, for good,
so a database whose permissions are mended must be written through new connections (a real file made
immutable with chattr, which even root cannot write)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from daemon.storage.db import DatabaseMissing, open_database
from daemon.storage.models import Meta


def chattr(flag: str, path: Path) -> str | None:
    """Why `chattr FLAG path` cannot be done here, or None when done."""
    try:
        done = subprocess.run(["chattr", flag, str(path)], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return "chattr is not installed (e2fsprogs)"
    return None if done.returncode == 0 else f"chattr {flag} is refused here: {done.stderr.strip()}"


def test_a_read_only_file_is_written_through_the_same_engine_once_writable(tmp_path: Path) -> None:
    database = tmp_path / "shenbao.db"
    open_database(f"sqlite:///{database}").dispose()
    reason = chattr("+i", database)
    if reason is not None:
        pytest.skip(reason)
    try:
        engine = open_database(f"sqlite:///{database}", upgrade=True)
        with pytest.raises(OperationalError, match="readonly"), Session(engine) as session:
            session.add(Meta(key="first", value="1"))
            session.commit()
    finally:
        assert chattr("-i", database) is None

    with Session(engine) as session:
        session.add(Meta(key="first", value="1"))
        session.commit()
        assert session.exec(select(Meta.key)).all() == ["first"]
    engine.dispose()


def test_without_create_a_missing_file_is_not_made(tmp_path: Path) -> None:
    database = tmp_path / "shenbao.db"

    with pytest.raises(DatabaseMissing, match="不存在"):
        open_database(f"sqlite:///{database}", create=False)
    assert not database.exists()
