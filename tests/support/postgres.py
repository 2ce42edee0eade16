"""A throw-away PostgreSQL server for the tests: Debian's binaries, a cluster in a temporary folder, a free
port on loopback, one fresh database per test, everything removed at the end.

As root the cluster belongs to `nobody` (PostgreSQL refuses to run as root); otherwise to whoever runs the
tests. Durability is switched off (fsync, synchronous_commit): the tests check behaviour, not power cuts.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import IO, Any

import psycopg

from daemon.demo.servers import wait_until

ROLE = "shenbao"
HOST = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
INSTALL_HINT = "apt-get install -y postgresql (scripts/dev test does it as root)"


def bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb and postgres (Debian's layout)."""
    found = [
        folder
        for folder in Path("/usr/lib/postgresql").glob("*/bin")
        if (folder / "initdb").is_file() and (folder / "postgres").is_file()
    ]
    return max(found, key=lambda folder: _version(folder.parent.name), default=None)


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def unavailable_reason() -> str | None:
    """Why no PostgreSQL server can be started here, or None if one can."""
    if bin_dir() is None:
        return f"PostgreSQL's binaries are not installed (no /usr/lib/postgresql/*/bin/initdb): {INSTALL_HINT}"
    return None


class PostgresServer:
    """`with PostgresServer() as server:` a running cluster; `server.create_database()` gives a fresh URL."""

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._names = itertools.count(1)

    # -- the server -------------------------------------------------------------------------------------------

    def start(self) -> None:
        binaries = bin_dir()
        if binaries is None:
            raise RuntimeError(f"cannot start PostgreSQL: {unavailable_reason()}")
        owner = _owner()
        # Short: the unix socket goes in here too, and its path is limited to 107 bytes.
        self.folder = Path(tempfile.mkdtemp(prefix="shenbao-pg-"))
        os.chown(self.folder, *owner)
        data = self.folder / "data"
        _run_as(
            owner,
            [str(binaries / "initdb"), "-D", str(data), "-U", ROLE, "--auth=trust", "-E", "UTF8", "--locale=C"],
        )
        self.port = _free_port()
        self._log = (self.folder / "server.log").open("wb")
        self._process = subprocess.Popen(
            [
                str(binaries / "postgres"),
                *("-D", str(data), "-p", str(self.port), "-k", str(self.folder)),
                *("-c", f"listen_addresses={HOST}", "-c", "fsync=off", "-c", "synchronous_commit=off"),
                *("-c", "full_page_writes=off", "-c", "max_connections=200"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **_as(owner),
        )
        wait_until(self._ready, START_TIMEOUT, f"PostgreSQL to accept connections on {HOST}:{self.port}")

    def _ready(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            raise RuntimeError(f"PostgreSQL exited with status {self._process.returncode}:\n{self.log()}")
        try:
            with psycopg.connect(self.dsn("postgres"), connect_timeout=5):
                return True
        except psycopg.OperationalError:
            return False

    def stop(self) -> None:
        """A fast shutdown (SIGINT: sessions are cut, nothing waits), then the folder goes."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def log(self) -> str:
        """What the server wrote (for a failure's message)."""
        if self.folder is None:
            return ""
        with contextlib.suppress(OSError):
            return (self.folder / "server.log").read_text(encoding="utf-8", errors="replace")
        return ""

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- databases --------------------------------------------------------------------------------------------

    def dsn(self, database: str) -> str:
        """A libpq connection string (for psycopg itself)."""
        return f"host={HOST} port={self.port} user={ROLE} dbname={database}"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL shenbao's configuration takes."""
        return f"postgresql+psycopg://{ROLE}@{HOST}:{self.port}/{database}"

    def create_database(self) -> str:
        """A new, empty database (owned by the role shenbao uses); its name."""
        name = f"shenbao_test_{os.getpid()}_{next(self._names)}"
        self.execute(f'CREATE DATABASE "{name}" OWNER {ROLE}')
        return name

    def drop_database(self, name: str) -> None:
        """Drop `name`, cutting whatever sessions a test left open on it."""
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def execute(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on the maintenance database `postgres`, outside a transaction; its rows."""
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as connection:
            cursor = connection.execute(sql.encode("utf-8"), parameters)
            return list(cursor.fetchall()) if cursor.description else []


def _owner() -> tuple[int, int]:
    """Who runs the cluster: nobody when we are root (PostgreSQL refuses root), else ourselves."""
    if os.geteuid() != 0:
        return os.geteuid(), os.getegid()
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return 65534, 65534
    return entry.pw_uid, entry.pw_gid


def _as(owner: tuple[int, int]) -> dict[str, Any]:
    """subprocess arguments that run a child as `owner` (nothing to change unless we are root)."""
    if os.geteuid() != 0:
        return {}
    return {"user": owner[0], "group": owner[1], "extra_groups": []}


def _run_as(owner: tuple[int, int], argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, **_as(owner))
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])
