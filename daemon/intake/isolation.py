"""A function run in a child process of its own, under limits, without starting an interpreter for each call.

Each call gets a fresh child: its own session (so its whole process group, tools it started included, can be
killed), an address-space cap (RLIMIT_AS, which the tools it starts inherit), a wall-clock limit enforced by
the caller, and a private working folder. The child is forked from a warm server process that imported the
work's modules once, which costs a few milliseconds where starting Python and importing them cost ~100 ms.

The server is started with subprocess (fork and exec: safe from a parent with threads, and the daemon has
them) and is itself single-threaded, so forking it is safe. multiprocessing's forkserver start method is
the same idea, but each child it forks runs the parent's main script again to rebuild `__main__` when the
parent was started as a script: under the `shenbao` console script that imports the whole daemon, 750 ms
per child as measured here, unless `__main__` is preloaded into the server, which puts SQLAlchemy, openpyxl
and numpy (which starts threads) into the process that forks.

Protocol: the parent sends the pickled call over a Unix socket with two pipe ends attached (SCM_RIGHTS):
the result pipe, which the child writes, and the status pipe, on which the server writes the child's pid at
once and its exit code once it has ended. When a child ends, the server kills what is left of its process
group before reaping it (so the group's number cannot have been reused); when the parent goes away, the
server kills every child's group and exits.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import pickle
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NoReturn, ParamSpec, TypeVar

from .faults import EnvironmentFault, fault

P = ParamSpec("P")
R = TypeVar("R")

_HEADER = struct.Struct("!Q")
_SIGNED = struct.Struct("!q")
_NO_ANSWER = 70  # the child's exit code when it could not even report what went wrong (EX_SOFTWARE)
_GRACE_SECONDS = 10.0
"""How long to wait for the server's word about a child: it answers in milliseconds when it is alive."""


@dataclass(frozen=True)
class Limits:
    memory_bytes: int
    """The child's address-space cap (RLIMIT_AS); the tools it starts inherit it."""
    timeout_seconds: float
    """Wall-clock limit of the whole call; then the child's process group is killed."""


class TimedOut(Exception):
    """The call ran out of time; its child and everything the child started were killed."""

    def __init__(self, seconds: float, cpu_seconds: float) -> None:
        super().__init__(seconds, cpu_seconds)
        self.seconds = seconds
        self.cpu_seconds = cpu_seconds
        """Processor time the child's process group had used by then: tells hard work from starvation."""

    def __str__(self) -> str:
        return f"no answer within {self.seconds:g} s ({self.cpu_seconds:.2f} s of processor time used)"


class Isolation:
    """A warm server that forks one limited child per call. Thread-safe; the server starts on first use."""

    def __init__(self, preload: tuple[str, ...]) -> None:
        self.preload = preload
        self._lock = threading.Lock()
        self._server: _Server | None = None
        atexit.register(self.close)

    def run(self, limits: Limits, folder: Path, function: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """`function(*args, **kwargs)` in a child process working in `folder`, under `limits`.

        Returns what the function returned or raises what it raised (both pickled across). Raises TimedOut
        when the time ran out, and EnvironmentFault when the child could not be started or ended without
        answering (killed by someone else, the OOM killer): neither says anything about the work's input.
        """
        if getattr(function, "__module__", None) == "__main__":  # the server has another __main__
            raise ValueError("an isolated function must be importable by its module's name")
        call = pickle.dumps((function, args, kwargs, limits.memory_bytes, os.fspath(folder)))
        deadline = time.monotonic() + limits.timeout_seconds
        result_r, result_w = _pipe()
        try:
            status_r, status_w = _pipe()
        except EnvironmentFault:
            os.close(result_r)
            os.close(result_w)
            raise
        with open(result_r, "rb", buffering=0) as result, open(status_r, "rb", buffering=0) as status:
            try:
                self._submit(call, result_w, status_w)
            finally:
                os.close(result_w)
                os.close(status_w)
            pid = _read_signed(status, time.monotonic() + _GRACE_SECONDS)
            if pid is None:  # it died or hangs: the next call starts another
                self.close()
                raise EnvironmentFault("the isolation server did not start the call")
            if pid < 0:
                raise EnvironmentFault(f"the isolation server could not fork: {os.strerror(-pid)}")
            answer = _read_all(result, deadline)
            if answer is None:
                cpu_seconds = group_cpu_seconds(pid)
                kill_group(pid)
                _read_signed(status, time.monotonic() + _GRACE_SECONDS)
                raise TimedOut(limits.timeout_seconds, cpu_seconds)
            code = _read_signed(status, time.monotonic() + _GRACE_SECONDS)
        if not answer:
            raise EnvironmentFault(f"the isolated child ended without answering ({_describe(code)})")
        kind, value = pickle.loads(answer)
        if kind == "raised":
            raise value
        returned: R = value
        return returned

    def close(self) -> None:
        """Stop the server (its children's groups are killed); the next call starts a new one."""
        with self._lock:
            if self._server is not None:
                self._server.stop()
                self._server = None

    def _submit(self, call: bytes, result_w: int, status_w: int) -> None:
        """Hand the call to the server, starting it (again) when it is not running."""
        with self._lock:
            for attempt in (1, 2):
                if self._server is None or not self._server.alive():
                    if self._server is not None:
                        self._server.stop()
                    self._server = _Server(self.preload)
                try:
                    self._server.send(call, (result_w, status_w))
                    return
                except OSError as error:  # it died since the last call
                    self._server.stop()
                    self._server = None
                    if attempt == 2:
                        raise fault("sending a call to the isolation server", error) from error


def kill_group(pid: int) -> None:
    """Kill a child and everything in its process group (it leads one once it has started)."""
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, signal.SIGKILL)


def group_cpu_seconds(group: int) -> float:
    """Processor time used by the live processes of a process group and the children they waited for."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:  # it ended meanwhile
            continue
        if int(fields[2]) == group:  # pgrp; then utime, stime, cutime, cstime are fields 12-15
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


class _Server:
    def __init__(self, preload: tuple[str, ...]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        code = (
            f"import sys; sys.path[:] = {sys.path!r}; "
            f"from daemon.intake.isolation import serve; serve({theirs.fileno()}, {list(preload)!r})"
        )
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", code],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                cwd="/",
                start_new_session=True,  # a Ctrl-C meant for the daemon's terminal must not kill it mid-call
            )
        except OSError as error:
            ours.close()
            raise fault("starting the isolation server", error) from error
        finally:
            theirs.close()
        self.control = ours
        self.owner = os.getpid()

    def alive(self) -> bool:
        """Running, and ours (a forked copy of the parent must start its own)."""
        return self.owner == os.getpid() and self.process.poll() is None

    def send(self, call: bytes, fds: tuple[int, int]) -> None:
        socket.send_fds(self.control, [_HEADER.pack(len(call))], list(fds))
        self.control.sendall(call)

    def stop(self) -> None:
        self.control.close()
        if self.owner != os.getpid():
            return
        try:
            self.process.wait(timeout=_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _pipe() -> tuple[int, int]:
    try:
        return os.pipe()
    except OSError as error:
        raise fault("creating a pipe for an isolated call", error) from error


def _wait_readable(stream: BinaryIO, deadline: float) -> bool:
    poller = select.poll()
    poller.register(stream.fileno(), select.POLLIN)
    remaining = deadline - time.monotonic()
    return remaining > 0 and bool(poller.poll(remaining * 1000))


def _read_all(stream: BinaryIO, deadline: float) -> bytes | None:
    """Everything until end of file; None when the deadline passes first."""
    chunks: list[bytes] = []
    while _wait_readable(stream, deadline):
        chunk = stream.read(1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
    return None


def _read_signed(stream: BinaryIO, deadline: float) -> int | None:
    """One number from the server; None when it went away or said nothing in time."""
    data = b""
    while len(data) < _SIGNED.size and _wait_readable(stream, deadline):
        chunk = stream.read(_SIGNED.size - len(data))
        if not chunk:
            return None
        data += chunk
    return _SIGNED.unpack(data)[0] if len(data) == _SIGNED.size else None


def _describe(code: int | None) -> str:
    if code is None:
        return "exit status unknown"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


# -- the server's side ---------------------------------------------------------------------------------------


def serve(control_fd: int, preload: list[str]) -> None:
    """The server's loop: import the modules once, then fork a child per call until the parent goes away."""
    for name in preload:
        importlib.import_module(name)
    control = socket.socket(fileno=control_fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda _signal, _frame: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    children: dict[int, int] = {}
    poller = select.poll()
    poller.register(control.fileno(), select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    try:
        while True:
            ready = {fd for fd, _event in poller.poll()}
            if wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    while os.read(wake_r, 512):
                        pass
                _reap(children, block=False)
            if control.fileno() in ready and not _start_child(control, children):
                return
    finally:
        for pid in children:
            kill_group(pid)
        _reap(children, block=True)


def _start_child(control: socket.socket, children: dict[int, int]) -> bool:
    """Fork a child for the next call; False when the parent has gone away."""
    header, fds, _flags, _address = socket.recv_fds(control, _HEADER.size, 2)
    if len(header) < _HEADER.size or len(fds) != 2:
        for fd in fds:
            os.close(fd)
        return False
    call = _receive(control, _HEADER.unpack(header)[0])
    result_w, status_w = fds
    try:
        pid = os.fork()
    except OSError as error:
        _tell(status_w, -(error.errno or 1))
        os.close(status_w)
        os.close(result_w)
        return True
    if pid == 0:
        _child(call, result_w)
    os.close(result_w)
    _tell(status_w, pid)
    children[pid] = status_w
    return True


def _receive(control: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = control.recv(size - len(data))
        if not chunk:
            raise EOFError("the parent went away mid-call")
        data += chunk
    return bytes(data)


def _tell(fd: int, number: int) -> None:
    with contextlib.suppress(OSError):  # the parent stopped listening
        os.write(fd, _SIGNED.pack(number))


def _reap(children: dict[int, int], *, block: bool) -> None:
    """Report each ended child's exit code, killing what is left of its group while its pid is still held."""
    while children:
        flags = os.WEXITED | os.WNOWAIT | (0 if block else os.WNOHANG)
        try:
            ended = os.waitid(os.P_ALL, 0, flags)
        except ChildProcessError:
            return
        if ended is None:
            return
        kill_group(ended.si_pid)
        _pid, status = os.waitpid(ended.si_pid, 0)
        fd = children.pop(ended.si_pid, None)
        if fd is not None:
            _tell(fd, os.waitstatus_to_exitcode(status))
            os.close(fd)


def _child(call: bytes, result_w: int) -> NoReturn:
    """In the forked child: become a process group, drop the server's files, cap memory, work, answer."""
    code = _NO_ANSWER
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.closerange(3, result_w)
        os.closerange(result_w + 1, os.sysconf("SC_OPEN_MAX"))
        os.set_inheritable(result_w, False)
        function, args, kwargs, memory_bytes, folder = pickle.loads(call)
        _cap_memory(memory_bytes)
        os.chdir(folder)
        try:
            outcome: tuple[str, Any] = ("returned", function(*args, **kwargs))
        except BaseException as error:  # noqa: BLE001 - whatever it raised is the caller's to see
            # without its traceback, the frames (and whatever a MemoryError left in them) are freed
            outcome = ("raised", error.with_traceback(None))
        answer = _dumps(outcome)
        with open(result_w, "wb") as out:
            out.write(answer)
        code = 0
    except BaseException:  # noqa: BLE001 - the parent learns of it as a child that ended without answering
        traceback.print_exc()
    finally:
        os._exit(code)


def _cap_memory(limit: int) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _dumps(outcome: tuple[str, Any]) -> bytes:
    """The outcome pickled; an exception that cannot be rebuilt on the other side is sent as its text."""
    try:
        data = pickle.dumps(outcome)
        if outcome[0] == "raised":
            pickle.loads(data)
        return data
    except Exception:  # noqa: BLE001 - any failure to pickle means: send the text instead
        value = outcome[1]
        return pickle.dumps(("raised", RuntimeError(f"{type(value).__name__}: {value} (sent back as text)")))
