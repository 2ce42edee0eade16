"""Real mail servers on 127.0.0.1, started with no configuration.

`shenbao demo` and the integration tests need an IMAP mailbox and an SMTP relay that behave like the real
thing (literal strings, UIDs, IDLE, modified UTF-7 folder names, 4xx/5xx replies) rather than mocks, so
this module starts genuine servers on loopback:

* `PymapServer` runs pymap's in-memory IMAP server in a thread of this process; `PymapProcess` runs the
  same server in a child process, so a benchmark can measure the client's memory on its own.
* `DovecotServer` runs the system's Dovecot from a config of its own in a temporary folder (root only).
* `SmtpCapture` is an aiosmtpd server that records what it is sent and can answer with scripted replies.

pymap and aiosmtpd are imported lazily, so importing this module costs nothing when they are not used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, NamedTuple, Self

if TYPE_CHECKING:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

__all__ = [
    "DEFAULT_PASSWORD",
    "DEFAULT_USER",
    "HOST",
    "CapturedMessage",
    "DovecotServer",
    "LoopbackServer",
    "PymapProcess",
    "PymapServer",
    "SmtpCapture",
    "free_port",
    "port_accepts",
    "wait_until",
]

HOST = "127.0.0.1"
DEFAULT_USER = "demo@example.cn"
DEFAULT_PASSWORD = "demo"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


def free_port(host: str = HOST) -> int:
    """A TCP port that was free a moment ago, for servers that cannot bind port 0 and report it back.

    Another process may take it before the caller binds it; the servers below retry on EADDRINUSE.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port (it is connected to and closed at once)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` with a growing interval until it holds; TimeoutError naming `what` at the deadline.

    Used only where no notification exists (another process binding a port); never a blind fixed sleep.
    """
    deadline = time.monotonic() + timeout
    interval = 0.005
    while not predicate():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(min(interval, remaining))
        interval = min(interval * 2, 0.1)


class _Started:
    """start() on entering a with-block, stop() on leaving it."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class LoopbackServer(_Started):
    """What every IMAP server here offers: where it listens, the one account, and start/stop/with."""

    host: str
    port: int
    user: str
    password: str

    def __init__(self, user: str, password: str, *, host: str, port: int | None) -> None:
        self.user = user
        self.password = password
        self.host = host
        self.port = port or 0
        self._fixed_port = bool(port)

    def start(self) -> None:
        """Start the server; returns once its port accepts connections."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the server and release its port; safe to call twice."""
        raise NotImplementedError

    def _next_port(self) -> int:
        """The port to try: the one asked for, or a fresh free one (so a retry after EADDRINUSE can work)."""
        if not self._fixed_port:
            self.port = free_port(self.host)
        return self.port

    def __repr__(self) -> str:
        return f"{type(self).__name__}(imap://{self.user}@{self.host}:{self.port})"


# --------------------------------------------------------------------------------------------------- pymap


def pymap_argv(host: str, port: int, user: str, password: str) -> list[str]:
    """Command-line arguments for pymap's dict (in-memory) backend with one account and no TLS."""
    return [
        "--host",
        host,
        "--port",
        str(port),
        "--no-tls",
        "dict",
        "--demo-user",
        user,
        "--demo-password",
        password,
    ]


def _pymap_arguments(argv: list[str]) -> Any:
    """Parse `argv` the way `pymap.main.main()` does, but with the dict backend and the IMAP service only.

    pymap builds its parser inside main() (which also installs signal handlers and so must run in the main
    thread), so the same arguments are declared here: the options main() adds itself, the dict backend's
    subparser and IMAPService's own arguments. Admin/gRPC and other services are left out on purpose.
    """
    import argparse

    from pymap.backend.dict import DictBackend
    from pymap.imap import IMAPService

    parser = argparse.ArgumentParser(prog="pymap")
    parser.add_argument("--debug", action="store_true")
    parser.set_defaults(skip_services=[], passlib_cfg=None)
    subparsers = parser.add_subparsers(dest="backend", required=True)
    DictBackend.add_subparser("dict", subparsers).set_defaults(backend_type=DictBackend)
    IMAPService.add_arguments(parser)
    return parser.parse_args(argv)


class PymapServer(LoopbackServer):
    """pymap's in-memory IMAP server (one account, empty INBOX) on an asyncio loop in a daemon thread.

    In-process so that tests and the demo need no binaries and start in milliseconds; all mail is lost on
    stop(). See `PymapProcess` for the same server in a child process.
    """

    def __init__(
        self,
        user: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
        *,
        host: str = HOST,
        port: int | None = None,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        super().__init__(user, password, host=host, port=port)
        self.start_timeout = start_timeout
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> None:
        """Start the loop thread; returns once pymap listens, or raises what stopped it from listening."""
        if self._thread is not None:
            raise RuntimeError(f"{self!r} is already started")
        for attempt in range(3):
            self._ready.clear()
            self._error = None
            port = self._next_port()
            self._thread = threading.Thread(target=self._run, name=f"pymap-{port}", daemon=True)
            self._thread.start()
            if not self._ready.wait(self.start_timeout):
                self.stop()
                raise TimeoutError(f"pymap did not listen on {self.host}:{port} within {self.start_timeout:g} s")
            if self._error is None:
                return
            self._thread.join()
            self._thread = None
            error = self._error
            if not (isinstance(error, OSError) and _address_in_use(error)) or self._fixed_port or attempt == 2:
                raise RuntimeError(f"pymap could not start on {self.host}:{port}: {error}") from error

    def stop(self) -> None:
        """Ask the loop to close the listener and every connection, then join the thread."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already finished
                loop.call_soon_threadsafe(stopping.set)
        thread.join(STOP_TIMEOUT)
        if thread.is_alive():
            raise TimeoutError(f"pymap on {self.host}:{self.port} did not stop within {STOP_TIMEOUT:g} s")
        self._thread = self._loop = self._stopping = None

    def _run(self) -> None:
        """Thread body: errors are kept for start() rather than printed by threading's excepthook."""
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # noqa: BLE001 - handed to start(), which raises it
            if self._error is None:
                self._error = error
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        """pymap.main.run() without the signal handlers and privilege dropping, until stop() is called."""
        from concurrent.futures import ThreadPoolExecutor

        from pymap.backend.dict import DictBackend
        from pymap.concurrent import Subsystem
        from pymap.imap import IMAPService

        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        args = _pymap_arguments(pymap_argv(self.host, self.port, self.user, self.password))
        # pymap hashes passwords in a thread pool that it never shuts down; own it so stop() can.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pymap-cpu") as executor:
            backend, config = await DictBackend.init(args, cpu_subsystem=Subsystem.for_threading(executor))
            config.apply_context()
            async with contextlib.AsyncExitStack() as stack:
                await backend.start(stack)
                await IMAPService(backend, config).start(stack)
                self._ready.set()
                await self._stopping.wait()
                # Close client connections first: from Python 3.12 on, closing an asyncio server waits for
                # its connections, and an IDLE-ing client would keep it open for ever.
                current = asyncio.current_task()
                others = [task for task in asyncio.all_tasks() if task is not current]
                for task in others:
                    task.cancel()
                await asyncio.gather(*others, return_exceptions=True)


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


def _address_in_use(error: OSError) -> bool:
    import errno

    return error.errno == errno.EADDRINUSE


# ------------------------------------------------------------------------------------------------- Dovecot

_DOVECOT_CONF = """\
# Written by daemon/loopback.py: a throw-away Dovecot on loopback with one plaintext account.
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


# ---------------------------------------------------------------------------------------------------- SMTP


class CapturedMessage(NamedTuple):
    """One message an `SmtpCapture` accepted: the envelope and the bytes as sent (dot-unstuffed)."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes


class _CaptureHandler:
    """aiosmtpd handler: answers DATA from the script (then 250) and records what it accepted.

    A separate object, because aiosmtpd inspects every attribute of its handler for hooks.
    """

    def __init__(self, capture: SmtpCapture) -> None:
        self.capture = capture

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self.capture._deliver(envelope)


class _LoginDataNoise(logging.Filter):
    """Drops the warning aiosmtpd 1.4 logs at every successful AUTH (its own code sets a deprecated field)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Session.login_data is deprecated" not in record.getMessage()


def _quieten_aiosmtpd() -> None:
    """Install `_LoginDataNoise` on aiosmtpd's logger once."""
    logger = logging.getLogger("mail.log")
    if not any(isinstance(existing, _LoginDataNoise) for existing in logger.filters):
        logger.addFilter(_LoginDataNoise())


class SmtpCapture(_Started):
    """An aiosmtpd server on loopback that keeps every message it accepts, for the demo and the tests.

    `responses` scripts the reply to successive DATA attempts (e.g. a 451 then a 250, or a 550), so retry
    and failure paths can be exercised against a real SMTP conversation; after the script it answers 250.
    With `folder`, accepted messages are also written as 001.eml, 002.eml, ... for a person to open.
    """

    ACCEPTED = "250 2.0.0 OK: queued"

    def __init__(
        self,
        *,
        folder: Path | None = None,
        responses: Iterable[str] = (),
        auth: bool = False,
        host: str = HOST,
        port: int | None = None,
        data_size_limit: int | None = None,
    ) -> None:
        self.host = host
        self.port = port or 0
        self._fixed_port = bool(port)
        self.folder = folder
        self.auth = auth
        self.data_size_limit = data_size_limit
        self.responses = list(responses)
        for response in self.responses:
            if not (response[:3].isdigit() and response[:1] in "2345" and response[3:4] in ("", " ", "-")):
                raise ValueError(f"a scripted SMTP response starts with a 3-digit code: {response!r}")
        self.messages: list[CapturedMessage] = []
        self.attempts = 0
        self.logins: list[str] = []
        self._condition = threading.Condition()
        self._controller: Controller | None = None

    def start(self) -> None:
        """Start aiosmtpd's thread; returns once the server answers (aiosmtpd's Controller checks that)."""
        from aiosmtpd.controller import Controller

        if self._controller is not None:
            raise RuntimeError("SmtpCapture is already started")
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        auth_options: dict[str, Any] = {}
        if self.auth:
            # Plaintext AUTH on loopback: aiosmtpd only offers AUTH over TLS unless told otherwise.
            auth_options = {"authenticator": self._authenticate, "auth_require_tls": False}
            _quieten_aiosmtpd()
        for attempt in range(3):
            # The Controller cannot bind port 0: its readiness check connects to the port it was given.
            port = self.port if self._fixed_port else free_port(self.host)
            controller = Controller(
                _CaptureHandler(self),
                hostname=self.host,
                port=port,
                server_hostname="shenbao-loopback",  # skips a slow socket.getfqdn()
                data_size_limit=self.data_size_limit,
                ready_timeout=START_TIMEOUT,
                **auth_options,
            )
            try:
                controller.start()
            except OSError as error:
                if not _address_in_use(error) or self._fixed_port or attempt == 2:
                    raise
                continue
            self.port = port
            self._controller = controller
            return

    def stop(self) -> None:
        """Stop the server thread; the captured messages stay available."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def wait_for(self, count: int, timeout: float = 10.0) -> list[CapturedMessage]:
        """The first `count` accepted messages, waiting up to `timeout` s for them; TimeoutError otherwise."""
        with self._condition:
            if not self._condition.wait_for(lambda: len(self.messages) >= count, timeout):
                raise TimeoutError(f"{len(self.messages)} of {count} messages arrived within {timeout:g} s")
            return list(self.messages[:count])

    def _deliver(self, envelope: Envelope) -> str:
        """Consume the next scripted reply; on a 2xx keep the message (and write NNN.eml)."""
        data = envelope.original_content or b""
        with self._condition:
            self.attempts += 1
            response = self.responses.pop(0) if self.responses else self.ACCEPTED
            if response.startswith("2"):
                message = CapturedMessage(envelope.mail_from or "", list(envelope.rcpt_tos), data)
                self.messages.append(message)
                if self.folder is not None:
                    (self.folder / f"{len(self.messages):03d}.eml").write_bytes(data)
            self._condition.notify_all()
        return response

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """Accept any credentials (this is a test double), remembering the login name."""
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if isinstance(auth_data, LoginPassword):
            with self._condition:
                self.logins.append(auth_data.login.decode("utf-8", "replace"))
        return AuthResult(success=True)

    def __repr__(self) -> str:
        return f"SmtpCapture(smtp://{self.host}:{self.port}, {len(self.messages)} messages)"
