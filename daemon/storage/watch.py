"""The SQLite file a process opened stays the file it writes to, or the process learns it at once.

Deleting or replacing the file under a running process does not stop SQLite: connections already open go
on writing to the unlinked file, and a new connection silently creates a fresh, empty database at the path;
the pool then mixes the two, and whatever is written is lost. So, once watched, the path must keep naming
the file (device and inode) found at start: checked before every new connection and every transaction, and
by the daemon each cycle. New connections open the file `mode=rw`, which never creates it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from .db import sqlite_file


class DatabaseGone(Exception):
    """The database file vanished or was replaced: anything written now would be lost."""


@dataclass(frozen=True)
class FileIdentity:
    device: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> FileIdentity | None:
        try:
            found = os.stat(path)
        except FileNotFoundError:
            return None
        return cls(found.st_dev, found.st_ino)


@dataclass(frozen=True)
class DatabaseWatch:
    """What the database was at start; `check` raises DatabaseGone when that is no longer so."""

    path: Path | None
    """The SQLite file; None for a server database (PostgreSQL), which no one can delete under us."""
    identity: FileIdentity | None

    def check(self) -> None:
        if self.path is None:
            return
        found = FileIdentity.of(self.path)
        if found is None:
            raise DatabaseGone(f"the database file {self.path} was deleted")
        if found != self.identity:
            raise DatabaseGone(f"the database file {self.path} was replaced by another file")


def watch_database(engine: Engine) -> DatabaseWatch:
    """Watch the engine's SQLite file from now on (call once the database exists); nothing to do otherwise."""
    found = sqlite_file(engine.url)
    if found is None:
        return DatabaseWatch(None, None)
    path = found.absolute()
    identity = FileIdentity.of(path)
    if identity is None:
        raise DatabaseGone(f"the database file {path} does not exist")
    watched = DatabaseWatch(path, identity)
    uri = f"{path.as_uri()}?mode=rw"

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
        watched.check()
        cargs[:] = [uri]
        cparams["uri"] = True

    @event.listens_for(engine, "begin")
    def _begin(_connection: Connection) -> None:
        watched.check()

    return watched
