"""Real mail servers on 127.0.0.1 for `shenbao demo` (and the tests), started with no configuration.

The demo needs an IMAP mailbox and an SMTP relay that behave like the real thing (literal strings, UIDs,
IDLE, modified UTF-7 folder names, 4xx/5xx replies) rather than mocks:

* `PymapServer` runs pymap's in-memory IMAP server in a thread of this process;
* `SmtpCapture` is an aiosmtpd server that records what it is sent and can answer with scripted replies.

pymap and aiosmtpd come with the `shenbao[demo]` extra and are imported lazily, so importing this module
costs nothing when they are not used.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, Self

if TYPE_CHECKING:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

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


class Started:
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


class LoopbackServer(Started):
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
            if not (isinstance(error, OSError) and address_in_use(error)) or self._fixed_port or attempt == 2:
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


def address_in_use(error: OSError) -> bool:
    return error.errno == errno.EADDRINUSE


# ---------------------------------------------------------------------------------------------------- SMTP


class CapturedMessage(NamedTuple):
    """One message an `SmtpCapture` accepted: the envelope and the bytes as sent (dot-unstuffed)."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes


class _CaptureHandler:
    """aiosmtpd handler: answers RCPT and DATA from the scripts (then 250), records what it accepted and
    counts the connections (by their EHLO: the Controller's own readiness check says none).

    A separate object, because aiosmtpd inspects every attribute of its handler for hooks.
    """

    def __init__(self, capture: SmtpCapture) -> None:
        self.capture = capture

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # what aiosmtpd does itself when there is no hook
        self.capture._greeted()
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        response = self.capture._rcpt_response()
        if response.startswith("2"):
            envelope.rcpt_tos.append(address)
        return response

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        response = self.capture._data_response(envelope)
        if response == SmtpCapture.DROP:
            assert server.transport is not None
            server.transport.close()
            await asyncio.get_running_loop().create_future()  # cancelled by aiosmtpd as the connection goes
        if response == SmtpCapture.HOLD:
            await self.capture._held(envelope)
            response = SmtpCapture.ACCEPTED
        return self.capture._deliver(envelope, response)


class _LoginDataNoise(logging.Filter):
    """Drops the warning aiosmtpd 1.4 logs at every successful AUTH (its own code sets a deprecated field)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Session.login_data is deprecated" not in record.getMessage()


def _quieten_aiosmtpd() -> None:
    """Install `_LoginDataNoise` on aiosmtpd's logger once."""
    logger = logging.getLogger("mail.log")
    if not any(isinstance(existing, _LoginDataNoise) for existing in logger.filters):
        logger.addFilter(_LoginDataNoise())


class SmtpCapture(Started):
    """An aiosmtpd server on loopback that keeps every message it accepts, for the demo and the tests.

    `responses` scripts the reply to successive DATA attempts (e.g. a 451 then a 250, or a 550), so retry
    and failure paths can be exercised against a real SMTP conversation; after the script it answers 250.
    Two entries are no reply: `DROP` takes the whole message and closes the connection without a word;
    `HOLD` takes it and answers 250 only once `release()` is called (unless the client has gone by then).
    `rcpt_responses` scripts the replies to successive RCPT commands the same way. With `folder`, accepted
    messages are also written as 001.eml, 002.eml, ... for a person to open.
    """

    ACCEPTED = "250 2.0.0 OK: queued"
    DROP = "drop"
    HOLD = "hold"

    def __init__(
        self,
        *,
        folder: Path | None = None,
        responses: Iterable[str] = (),
        rcpt_responses: Iterable[str] = (),
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
        self.responses = _checked_script(responses, (self.DROP, self.HOLD))
        self.rcpt_responses = _checked_script(rcpt_responses, ())
        self.messages: list[CapturedMessage] = []
        self.attempts = 0
        """DATA commands whose data arrived, whatever the answer."""
        self.connections = 0
        """Client connections that said EHLO."""
        self.holding: list[CapturedMessage] = []
        """Messages held by `HOLD` and not yet answered."""
        self.logins: list[str] = []
        self._condition = threading.Condition()
        self._controller: Controller | None = None
        self._release: asyncio.Event | None = None

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
                if not address_in_use(error) or self._fixed_port or attempt == 2:
                    raise
                continue
            self.port = port
            self._controller = controller
            self._release = asyncio.Event()
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

    def wait_for_held(self, count: int = 1, timeout: float = 10.0) -> list[CapturedMessage]:
        """The messages `HOLD` keeps unanswered, once there are `count`; TimeoutError otherwise."""
        with self._condition:
            if not self._condition.wait_for(lambda: len(self.holding) >= count, timeout):
                raise TimeoutError(f"{len(self.holding)} of {count} messages were held within {timeout:g} s")
            return list(self.holding)

    def release(self) -> None:
        """Answer every message `HOLD` keeps (and any held later) with 250."""
        if self._controller is None or self._release is None:
            raise RuntimeError("SmtpCapture is not started")
        self._controller.loop.call_soon_threadsafe(self._release.set)

    def _greeted(self) -> None:
        with self._condition:
            self.connections += 1

    def _rcpt_response(self) -> str:
        with self._condition:
            return self.rcpt_responses.pop(0) if self.rcpt_responses else "250 OK"

    def _data_response(self, envelope: Envelope) -> str:
        """Count the attempt and consume the next scripted reply to it."""
        with self._condition:
            self.attempts += 1
            self._condition.notify_all()
            return self.responses.pop(0) if self.responses else self.ACCEPTED

    async def _held(self, envelope: Envelope) -> None:
        """Keep the message unanswered until `release()` (on the server's loop)."""
        assert self._release is not None
        message = _captured(envelope)
        with self._condition:
            self.holding.append(message)
            self._condition.notify_all()
        try:
            await self._release.wait()
        finally:
            with self._condition:
                self.holding.remove(message)

    def _deliver(self, envelope: Envelope, response: str) -> str:
        """On a 2xx keep the message (and write NNN.eml); the response to give."""
        if response.startswith("2"):
            message = _captured(envelope)
            with self._condition:
                self.messages.append(message)
                if self.folder is not None:
                    (self.folder / f"{len(self.messages):03d}.eml").write_bytes(message.data)
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


def _checked_script(responses: Iterable[str], specials: tuple[str, ...]) -> list[str]:
    """The scripted replies, each a 3-digit code and text, or one of `specials`; ValueError otherwise."""
    script = list(responses)
    for response in script:
        is_reply = response[:3].isdigit() and response[:1] in "2345" and response[3:4] in ("", " ", "-")
        if not (is_reply or response in specials):
            raise ValueError(f"a scripted SMTP response starts with a 3-digit code: {response!r}")
    return script


def _captured(envelope: Envelope) -> CapturedMessage:
    return CapturedMessage(envelope.mail_from or "", list(envelope.rcpt_tos), envelope.original_content or b"")
