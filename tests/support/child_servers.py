"""Servers started as child processes, for the tests and the benchmarks only.

* `PymapProcess` runs pymap's server in a child process, so a benchmark can measure the client's memory on
  its own.
* `DovecotServer` runs the system's Dovecot from a config of its own in a temporary folder (root only).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

from daemon.demo.servers import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    HOST,
    START_TIMEOUT,
    STOP_TIMEOUT,
    LoopbackServer,
    port_accepts,
    pymap_argv,
    wait_until,
)


class _ChildServer(LoopbackServer):
    """A server run as a child process: spawn, wait for its port, stop with SIGTERM (SIGKILL if it hangs).

    There is no readiness notification from another process, so start() polls the port with a deadline
    and gives up early if the child exits (its output then goes into the error).
    """

    name = "server"
    stop_grace = STOP_TIMEOUT

    def __init__(self, user: str, password: str, *, host: str, port: int | None, start_timeout: float) -> None:
        super().__init__(user, password, host=host, port=port)
        self.start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (e.g. to measure its memory apart from ours)."""
        return self._process.pid if self._process is not None else None

    def _command(self, port: int) -> tuple[list[str], Path | None]:
        """The argv and working folder that start the server on `port`."""
        raise NotImplementedError

    def start(self) -> None:
        """Spawn the server; returns once its port accepts connections."""
        if self._process is not None:
            raise RuntimeError(f"{self!r} is already started")
        for attempt in range(3):
            port = self._next_port()
            argv, cwd = self._command(port)
            self._output = tempfile.TemporaryFile()  # noqa: SIM115 - outlives this call; closed in stop()
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self._output,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                start_new_session=True,  # its own process group, so stop() can reach the server's children
            )
            self._process = process
            what = f"{self.name} (pid {process.pid}) to listen on {self.host}:{port}"
            try:
                if _child_listens(process, self.host, port, self.start_timeout, what):
                    return
            except TimeoutError:
                self.stop()
                raise
            output = self._failure_output()
            self.stop()
            if "Address already in use" not in output or self._fixed_port or attempt == 2:
                raise RuntimeError(f"{self.name} exited with status {process.returncode}:\n{output}")

    def stop(self) -> None:
        """SIGTERM the server, give it `stop_grace` s to exit, SIGKILL what is left of its process group."""
        process = self._process
        if process is not None:
            running = process.poll() is None
            if running:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._signal_pid(process), signal.SIGTERM)
                self._after_sigterm(process)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(self.stop_grace)
            # A server that hangs, or children that outlive it: the child leads its own process group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            if self._output is not None:
                self._output.close()
            self._process = self._output = None
            if running:  # (a child that died on EADDRINUSE never had the port: someone else has it)
                _wait_port_closed(self.host, self.port)
        self._cleanup()

    def _signal_pid(self, process: subprocess.Popen[bytes]) -> int:
        """The pid to send SIGTERM to."""
        return process.pid

    def _after_sigterm(self, process: subprocess.Popen[bytes]) -> None:
        """Hook between SIGTERM and waiting for the exit."""

    def _cleanup(self) -> None:
        """Remove what _command() created, once the child is gone."""

    def _failure_output(self) -> str:
        """What the child printed (logging goes to stderr), for the error when it exits during start()."""
        if self._output is None:
            return ""
        self._output.seek(0)
        return self._output.read().decode("utf-8", "replace")


class PymapProcess(_ChildServer):
    """The same pymap server as `PymapServer`, in a child process (`sys.executable -c 'pymap main()'`).

    For the memory benchmark: the server's copy of a large message must not count in the client's RSS.
    """

    name = "pymap"
    _MAIN = "import sys; from pymap.main import main; sys.argv[0] = 'pymap'; main()"

    def __init__(
        self,
        user: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
        *,
        host: str = HOST,
        port: int | None = None,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        super().__init__(user, password, host=host, port=port, start_timeout=start_timeout)

    def _command(self, port: int) -> tuple[list[str], Path | None]:
        """pymap's own CLI (it has no __main__ module), with every non-IMAP service switched off."""
        argv = [
            sys.executable,
            "-c",
            self._MAIN,
            # main() starts every installed service: admin (gRPC), managesieve, swim need none here.
            *("--no-service", "admin", "--no-service", "managesieve", "--no-service", "swim"),
            # Used only if the optional `pid` package is installed: one pid file per server, not a clash.
            *("--pid-file", f"shenbao-pymap-{port}"),
            *pymap_argv(self.host, port, self.user, self.password),
        ]
        return argv, None


def _child_listens(process: subprocess.Popen[bytes], host: str, port: int, timeout: float, what: str) -> bool:
    """Wait until host:port accepts connections (True) or the child has exited (False)."""
    wait_until(lambda: process.poll() is not None or port_accepts(host, port), timeout, what)
    return process.poll() is None


def _wait_port_closed(host: str, port: int) -> None:
    """Wait for a stopped server's port to refuse connections, so the next test can rely on it."""
    wait_until(lambda: not port_accepts(host, port), STOP_TIMEOUT, f"{host}:{port} to close")


# ------------------------------------------------------------------------------------------------- Dovecot

_DOVECOT_CONF = """\
# Written by tests/support/child_servers.py: a throw-away Dovecot on loopback with one plaintext account.
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
instance_name = shenbao-{port}
protocols = imap
listen = {host}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = 1
default_internal_user = root
mail_location = maildir:~/Maildir
mail_fsync = never
# Nothing reads statistics here; without a stats socket a login process cut short needs no handshake.
stats_writer_socket_path =

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {folder}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {folder}/passwd
}}

namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = create
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = create
  }}
}}

service imap-login {{
  chroot =
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


class DovecotServer(_ChildServer):
    """The system's Dovecot (`apt-get install dovecot-imapd`) with a config, passwd-file and maildir of its own.

    pymap is not Dovecot: this checks the daemon against the server most offices actually run (SPECIAL-USE
    Sent folder, CONDSTORE, its own IDLE and literal handling). Runs as root only: Dovecot's master must be
    able to switch to the mail user (nobody), which owns the maildir.
    """

    name = "Dovecot"
    # After SIGTERM the master only tidies files in our folder; a longer grace buys nothing but its fixed waits.
    stop_grace = 0.5

    def __init__(
        self,
        user: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
        *,
        host: str = HOST,
        port: int | None = None,
        folder: Path | None = None,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        super().__init__(user, password, host=host, port=port, start_timeout=start_timeout)
        for value in (user, password):
            if any(char in value for char in ":\n\r"):
                raise ValueError(f"a passwd-file field cannot contain ':' or a line break: {value!r}")
        self._given_folder = folder
        self.folder: Path | None = None

    @staticmethod
    def binary() -> str | None:
        """Where `dovecot` is (it lives in /usr/sbin, which a user's PATH may lack)."""
        return shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why a Dovecot cannot be started here, or None if it can (for a test's skip message)."""
        if cls.binary() is None:
            return "the dovecot binary is not installed (apt-get install -y dovecot-imapd)"
        if os.geteuid() != 0:
            return "Dovecot can only be started from a config of its own as root"
        return None

    @classmethod
    def available(cls) -> bool:
        """Whether the `dovecot` binary exists and we are root."""
        return cls.unavailable_reason() is None

    @property
    def log_path(self) -> Path | None:
        """Dovecot's log (auth failures, mailbox errors), to read when something goes wrong."""
        return self.folder / "dovecot.log" if self.folder is not None else None

    @property
    def maildir(self) -> Path | None:
        """The account's Maildir on disk."""
        return self.folder / "home" / "Maildir" if self.folder is not None else None

    def start(self) -> None:
        """Write the config, start Dovecot as a child, return once IMAP accepts connections."""
        reason = self.unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"cannot start Dovecot: {reason}")
        super().start()

    def _command(self, port: int) -> tuple[list[str], Path | None]:
        """A fresh folder with dovecot.conf, the passwd-file and the mail user's home (owned by nobody).

        `-F` keeps the master in the foreground, so it is our child and an early exit is seen at once;
        stop() still signals the pid in BASE_DIR/master.pid, as one would a daemonised Dovecot.
        """
        self._cleanup()
        if self._given_folder is not None:
            folder = self._given_folder.absolute()
            folder.mkdir(parents=True, exist_ok=True)
            _check_dovecot_folder(folder)
        else:  # short, so the unix sockets in base_dir stay under the 108-byte limit
            folder = Path(tempfile.mkdtemp(prefix="shenbao-dovecot-"))
        self.folder = folder
        folder.chmod(0o755)  # the mail user must be able to reach its home inside
        uid, gid = _nobody()
        home = folder / "home"
        home.mkdir(exist_ok=True)
        os.chown(home, uid, gid)
        passwd = f"{self.user}:{{PLAIN}}{self.password}:{uid}:{gid}::{home}::\n"
        (folder / "passwd").write_text(passwd, encoding="utf-8")
        config = folder / "dovecot.conf"
        config.write_text(_DOVECOT_CONF.format(folder=folder, host=self.host, port=port), encoding="utf-8")
        binary = self.binary() or "dovecot"
        return [binary, "-F", "-c", str(config)], folder

    def _signal_pid(self, process: subprocess.Popen[bytes]) -> int:
        """The pid Dovecot's master wrote into BASE_DIR/master.pid (the child itself if there is none)."""
        if self.folder is not None:
            with contextlib.suppress(OSError, ValueError):
                return int((self.folder / "run" / "master.pid").read_text().strip())
        return process.pid

    def _after_sigterm(self, process: subprocess.Popen[bytes]) -> None:
        """SIGTERM the master's children too, at once.

        On SIGTERM Dovecot's master waits for its children: up to 5 s if one is still starting (as the login
        process of start()'s readiness probe may be), plus a fixed 1 s after SIGQUIT to any left; an IMAP
        process with a client connected outlives it. Signalling the whole process group (and SIGKILL after
        `stop_grace`) keeps stop() short and leaves nothing behind.
        """
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)

    def _failure_output(self) -> str:
        """Dovecot reports most start-up errors in its log file rather than on stderr."""
        log = ""
        if self.log_path is not None:
            with contextlib.suppress(OSError):
                log = self.log_path.read_text(encoding="utf-8", errors="replace")
        return super()._failure_output() + log

    def _cleanup(self) -> None:
        """Delete the folder we made ourselves (a folder given by the caller is left for inspection)."""
        if self.folder is not None and self._given_folder is None:
            shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None


def _check_dovecot_folder(folder: Path) -> None:
    """Refuse a folder Dovecot cannot use, with the reason, rather than fail later with SERVERBUG on SELECT.

    The mail processes run as nobody, so every folder above must be searchable by others (pytest's
    tmp_path, under a 0700 /tmp/pytest-of-root, is not); unix socket paths in base_dir are limited to 108
    bytes, and the longest one Dovecot makes is run/token-login/imap-urlauth.
    """
    for parent in folder.parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            raise ValueError(f"Dovecot's mail user cannot reach {folder}: {parent} is not searchable by others")
    longest = folder / "run" / "token-login" / "imap-urlauth"
    if len(os.fsencode(longest)) > 100:
        raise ValueError(f"{folder} is too long a path for Dovecot's unix sockets (at most ~60 characters)")


def _nobody() -> tuple[int, int]:
    """uid and gid for the mail user: Dovecot refuses to run mail processes as root (uid 0)."""
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return 65534, 65534
    return entry.pw_uid, entry.pw_gid
