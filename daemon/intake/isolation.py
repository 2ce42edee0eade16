"""A function run in a child process of its own, under limits, without starting an interpreter for each call.

Each call runs in a child: its own session (so its whole process group, tools it started included, can be
killed), an address-space cap (RLIMIT_AS, which the tools it starts inherit), a wall-clock limit enforced by
the caller, and a private working folder. The children are forked from a warm server process that imported
the work's modules once, which costs a few milliseconds where starting Python and importing them cost ~100 ms.

A child serves one call at a time and then waits for the next (a fork and the first touch of the server's
memory cost more than the work itself for an ordinary submission, bench/README.md). It is replaced by a
fresh one after a fixed number of calls, after a call that ran out of memory or left a process running, and
when its address space has grown past its fresh size by more than a small margin: a call never meets the
memory cap much sooner than it would in a fresh child. A child that ran out of time or crashed is killed
with its whole group, as before.

The server is started with subprocess (fork and exec: safe from a parent with threads, and the daemon has
them) and is itself single-threaded, so forking it is safe. multiprocessing's forkserver start method is
the same idea, but each child it forks runs the parent's main script again to rebuild `__main__` when the
parent was started as a script: under the `shenbao` console script that imports the whole daemon, 750 ms
per child as measured here, unless `__main__` is preloaded into the server, which puts SQLAlchemy, openpyxl
and numpy (which starts threads) into the process that forks.

Protocol: the parent sends the pickled call over a Unix socket with two pipe ends attached (SCM_RIGHTS):
the result pipe, which the child writes, and the status pipe, on which the server writes the child's pid at
once and, when the call is over, 0 (the child answered and waits for the next call) or its exit code. The
server hands the call and the result pipe to an idle child with the same memory cap over that child's own
socket, or forks one. When a child ends, the server kills what is left of its process group before reaping
it (so the group's number cannot have been reused); when the parent goes away, the server kills every
child's group and exits.
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

_HEADER = struct.Struct("!QQ")
"""A call's size and memory cap (the server gives a call to a child with the same cap)."""
_SIZE = struct.Struct("!Q")
_SIGNED = struct.Struct("!q")
_NO_ANSWER = 70  # the child's exit code when it could not even report what went wrong (EX_SOFTWARE)
_GRACE_SECONDS = 10.0
"""How long to wait for the server's word about a child: it answers in milliseconds when it is alive."""
_CALLS_PER_CHILD = 200
"""Then a fresh child takes over: whatever the calls leave behind in a child stays bounded."""
_GROWTH_ALLOWED = 64 << 20
"""A child whose address space grew this much past its size after its first call is replaced. Not before it:
the first call of every child sets up what libraries keep for good (the image libraries: 130 MB of
address space for an ordinary submission), fresh or not."""
_IDLE_PER_CAP = 2
"""Idle children kept for each memory cap; more calls at once fork more, which end once idle."""
_IDLE_SECONDS = 30.0
"""When no call came for this long, the idle children end: a quiet daemon holds only the server."""
_DONE = b"\x00"
_ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OPENCV_FOR_THREADS_NUM": "1", "OMP_NUM_THREADS": "1"}
"""The server's environment adds these: a child makes one call on one core. numpy's and OpenCV's own thread
pools only spun beside it (about 4 % of both cores in a batch), and their threads' stacks and malloc arenas
counted against the child's memory cap: a document reader's child took 844 MB of address space after reading
a package with them, and takes 567 MB without."""


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
    """A warm server whose limited children serve the calls. Thread-safe; the server starts on first use, or
    earlier with `start`."""

    def __init__(
        self, preload: tuple[str, ...], *, calls_per_child: int = _CALLS_PER_CHILD, idle_seconds: float = _IDLE_SECONDS
    ) -> None:
        self.preload = preload
        self.calls_per_child = calls_per_child
        self.idle_seconds = idle_seconds
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
        call = pickle.dumps((function, args, kwargs, os.fspath(folder)))
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
                self._submit(call, limits.memory_bytes, result_w, status_w)
            finally:
                os.close(result_w)
                os.close(status_w)
            pid = _read_signed(status, time.monotonic() + _GRACE_SECONDS)
            if pid is None:  # it died or hangs: the next call starts another
                self.close()
                raise EnvironmentFault("the isolation server did not start the call")
            if pid < 0:
                raise EnvironmentFault(f"the isolation server could not fork: {os.strerror(-pid)}")
            earlier = _own_cpu_seconds(pid)  # what the child used for earlier calls, before this one counts
            answer = _read_all(result, deadline)
            if answer is None:
                cpu_seconds = max(0.0, group_cpu_seconds(pid) - earlier)
                kill_group(pid)
                _read_signed(status, time.monotonic() + _GRACE_SECONDS)
                raise TimedOut(limits.timeout_seconds, cpu_seconds)
            if not answer:  # the exit code says why; after an answer it says nothing more, and is not awaited
                code = _read_signed(status, time.monotonic() + _GRACE_SECONDS)
                raise EnvironmentFault(f"the isolated child ended without answering ({_describe(code)})")
        kind, value = pickle.loads(answer)
        if kind == "raised":
            raise value
        returned: R = value
        return returned

    def start(self) -> None:
        """Start the server now unless it runs: its imports then overlap the caller's own start instead of
        delaying the first call."""
        with self._lock:
            self._running()

    def close(self) -> None:
        """Stop the server (its children's groups are killed); the next call starts a new one."""
        with self._lock:
            if self._server is not None:
                self._server.stop()
                self._server = None

    def _running(self) -> _Server:
        """The server, started (again) when it is not running. Under the lock."""
        if self._server is None or not self._server.alive():
            if self._server is not None:
                self._server.stop()
            self._server = _Server(self.preload, self.calls_per_child, self.idle_seconds)
        return self._server

    def _submit(self, call: bytes, memory_bytes: int, result_w: int, status_w: int) -> None:
        """Hand the call to the server, starting it (again) when it is not running."""
        with self._lock:
            for attempt in (1, 2):
                server = self._running()
                try:
                    server.send(call, memory_bytes, (result_w, status_w))
                    return
                except OSError as error:  # it died since the last call
                    server.stop()
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
        fields = _stat_fields(entry / "stat")
        if fields and int(fields[2]) == group:  # pgrp; then utime, stime, cutime, cstime are fields 12-15
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds(pid: int) -> float:
    """Processor time of one process and the children it waited for (0 when it is gone)."""
    fields = _stat_fields(Path(f"/proc/{pid}/stat"))
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK") if fields else 0.0


def _stat_fields(path: Path) -> list[str]:
    """The fields of /proc/PID/stat after the command name; empty when the process ended meanwhile."""
    try:
        return path.read_text().rpartition(")")[2].split()
    except OSError:
        return []


class _Server:
    def __init__(self, preload: tuple[str, ...], calls_per_child: int, idle_seconds: float) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        code = (
            f"import sys; sys.path[:] = {sys.path!r}; from daemon.intake.isolation import serve; "
            f"serve({theirs.fileno()}, {list(preload)!r}, {calls_per_child}, {idle_seconds!r})"
        )
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", code],
                env=os.environ | _ONE_THREAD,
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

    def send(self, call: bytes, memory_bytes: int, fds: tuple[int, int]) -> None:
        _send(self.control, _HEADER.pack(len(call), memory_bytes), list(fds), call)

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


def serve(control_fd: int, preload: list[str], calls_per_child: int, idle_seconds: float) -> NoReturn:
    """The server's loop: import the modules once, then hand each call to a child until the parent goes away."""
    for name in preload:
        importlib.import_module(name)
    control = socket.socket(fileno=control_fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda _signal, _frame: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pool = _Pool(calls_per_child)
    pool.poller.register(control.fileno(), select.POLLIN)
    pool.poller.register(wake_r, select.POLLIN)
    try:
        while True:
            ready = {fd for fd, _event in pool.poller.poll(round(idle_seconds * 1000))}
            if not ready:
                pool.end_idle()
            if wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    while os.read(wake_r, 512):
                        pass
                pool.reap(block=False)
            for fd in ready & pool.channels.keys():
                pool.answered(pool.channels[fd])
            if control.fileno() in ready and not pool.take(control):
                break
    finally:
        for pid in pool.children:
            kill_group(pid)
        pool.reap(block=True)
    # The parent waits for this exit. The server holds nothing to flush, and finalising the image libraries'
    # modules would take it 0.16 s at every stop of the daemon.
    os._exit(0)


@dataclass(eq=False)
class _Child:
    pid: int
    channel: socket.socket
    """The server's end of the socket the child receives its calls on and says "done" on."""
    memory_bytes: int
    status_w: int | None = None
    """The status pipe of the call in progress."""


class _Pool:
    """The server's children: idle ones by memory cap, busy ones with their call's status pipe."""

    def __init__(self, calls_per_child: int) -> None:
        self.calls_per_child = calls_per_child
        self.poller = select.poll()
        self.children: dict[int, _Child] = {}
        self.channels: dict[int, _Child] = {}
        self.idle: dict[int, list[_Child]] = {}

    def take(self, control: socket.socket) -> bool:
        """Give the next call to a child; False when the parent has gone away."""
        header, fds, _flags, _address = socket.recv_fds(control, _HEADER.size, 2)
        if len(header) < _HEADER.size or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            return False
        size, memory_bytes = _HEADER.unpack(header)
        call = _receive(control, size)
        result_w, status_w = fds
        try:
            child = self._hand(call, memory_bytes, result_w)
        except OSError as error:
            _tell(status_w, -(error.errno or 1))
            os.close(status_w)
            return True
        finally:
            os.close(result_w)
        _tell(status_w, child.pid)
        child.status_w = status_w
        return True

    def _hand(self, call: bytes, memory_bytes: int, result_w: int) -> _Child:
        """An idle child with this cap that took the call, else a new one; OSError when none could be forked."""
        idle = self.idle.get(memory_bytes, [])
        while True:
            fresh = not idle
            child = self._fork(memory_bytes) if fresh else idle.pop()
            try:
                _send(child.channel, _SIZE.pack(len(call)), [result_w], call)
                return child
            except OSError:  # an idle child that ended meanwhile (no call was its), or a new one that failed
                self._drop_channel(child)
                if fresh:
                    raise

    def _fork(self, memory_bytes: int) -> _Child:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            pid = os.fork()
        except OSError:
            ours.close()
            theirs.close()
            raise
        if pid == 0:
            _child(theirs.detach(), memory_bytes, self.calls_per_child)
        theirs.close()
        child = _Child(pid, ours, memory_bytes)
        self.children[pid] = child
        self.channels[ours.fileno()] = child
        self.poller.register(ours.fileno(), select.POLLIN)
        return child

    def answered(self, child: _Child) -> None:
        """The child said its call is over ("done": it waits for the next) or closed its end (it is ending)."""
        try:
            said = child.channel.recv(1)
        except OSError:
            said = b""
        if not said:
            self._drop_channel(child)  # its exit code goes to the call's status pipe once it is reaped
            return
        if child.status_w is not None:
            _tell(child.status_w, 0)
            os.close(child.status_w)
            child.status_w = None
        idle = self.idle.setdefault(child.memory_bytes, [])
        if len(idle) < _IDLE_PER_CAP:
            idle.append(child)
        else:
            self._drop_channel(child)  # with its socket closed, the child ends

    def end_idle(self) -> None:
        """Close the idle children's sockets: each ends when it reads the end of its socket."""
        for idle in self.idle.values():
            for child in list(idle):
                self._drop_channel(child)

    def _drop_channel(self, child: _Child) -> None:
        if child.channel.fileno() >= 0:
            self.channels.pop(child.channel.fileno(), None)
            self.poller.unregister(child.channel.fileno())
            child.channel.close()
        idle = self.idle.get(child.memory_bytes, [])
        if child in idle:
            idle.remove(child)

    def reap(self, *, block: bool) -> None:
        """Report each ended child's exit code, killing what is left of its group while its pid is still held."""
        while self.children:
            flags = os.WEXITED | os.WNOWAIT | (0 if block else os.WNOHANG)
            try:
                ended = os.waitid(os.P_ALL, 0, flags)
            except ChildProcessError:
                return
            if ended is None:
                return
            kill_group(ended.si_pid)
            _pid, status = os.waitpid(ended.si_pid, 0)
            child = self.children.pop(ended.si_pid, None)
            if child is None:
                continue
            self._drop_channel(child)
            if child.status_w is not None:
                _tell(child.status_w, os.waitstatus_to_exitcode(status))
                os.close(child.status_w)


def _send(sock: socket.socket, header: bytes, fds: list[int], call: bytes) -> None:
    """A call down a Unix socket: its header with the pipe ends attached (SCM_RIGHTS), then the call."""
    socket.send_fds(sock, [header], fds)
    sock.sendall(call)


def _receive(control: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = control.recv(size - len(data))
        if not chunk:
            raise EOFError("the other end went away mid-call")
        data += chunk
    return bytes(data)


def _tell(fd: int, number: int) -> None:
    with contextlib.suppress(OSError):  # the parent stopped listening
        os.write(fd, _SIGNED.pack(number))


def _child(channel_fd: int, memory_bytes: int, calls: int) -> NoReturn:
    """In the forked child: become a process group, drop the server's files, cap memory, then serve calls
    until one of them calls for a fresh child or the server closes the socket."""
    code = _NO_ANSWER
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.closerange(3, channel_fd)
        os.closerange(channel_fd + 1, os.sysconf("SC_OPEN_MAX"))
        channel = socket.socket(fileno=channel_fd)
        _cap_memory(memory_bytes)
        settled = 0
        for served in range(1, calls + 1):
            header, fds, _flags, _address = socket.recv_fds(channel, _SIZE.size, 1)
            if len(header) < _SIZE.size or len(fds) != 1:
                break  # the server has no more calls for this child
            call = _receive(channel, _SIZE.unpack(header)[0])
            with open(fds[0], "wb") as result:
                answer, out_of_memory = _outcome(call)
                size = _address_space()
                settled = settled or size
                last = out_of_memory or served == calls or size > settled + _GROWTH_ALLOWED or _has_children()
                if not last:
                    channel.sendall(_DONE)  # before the answer: the caller's next call finds this child free
                result.write(answer)
            if last:
                break
        code = 0
    except BaseException:  # noqa: BLE001 - the parent learns of it as a child that ended without answering
        traceback.print_exc()
    finally:
        os._exit(code)


def _outcome(call: bytes) -> tuple[bytes, bool]:
    """Run the call in its folder: the pickled outcome, and whether memory ran out."""
    function, args, kwargs, folder = pickle.loads(call)
    os.chdir(folder)
    try:
        outcome: tuple[str, Any] = ("returned", function(*args, **kwargs))
    except BaseException as error:  # noqa: BLE001 - whatever it raised is the caller's to see
        # without its traceback, the frames (and whatever a MemoryError left in them) are freed
        outcome = ("raised", error.with_traceback(None))
    finally:
        os.chdir("/")  # the caller removes the folder
    return _dumps(outcome), outcome[0] == "raised" and isinstance(outcome[1], MemoryError)


def _address_space() -> int:
    """This process's virtual size, what RLIMIT_AS limits."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


def _has_children() -> bool:
    """Whether a process this child started is still running (it is reaped when it has ended)."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


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
