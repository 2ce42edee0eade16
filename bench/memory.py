"""Peak memory of `shenbao run --once` on one submission carrying a large RAR, against a naive fetch and parse.

    python bench/memory.py                 # a 200 MB archive (about 274 MB on the wire); a few minutes
    python bench/memory.py --size-mb 20    # a quick run

What it does, in a temporary folder (removed afterwards unless --keep):
1. builds one submission email on disk, streamed: subject 济南明湖软件科技有限公司, a text part, and the
   attachment 济南明湖软件科技有限公司.rar of the requested size, base64 in 76-character CRLF lines. With
   RARLAB's `rar` on PATH the attachment is a genuine stored (-m0) RAR5 archive: the three documents of
   tests/fixtures/rar/valid.rar plus incompressible padding `证明材料/附件-扫描件.bin`, so the daemon
   judges it all the way (verdict `accepted`). Without `rar` (or with --no-rar) it is random bytes behind a
   RAR5 signature: the verdict is then `corrupt_archive`, but the download and parse are the same;
2. starts pymap's IMAP server in another process (tests/support/child_servers.PymapProcess) and an SMTP capture on
   loopback, and APPENDs the message to INBOX;
3. A: runs `shenbao run --config F --once` in a child process and reports the daemon's own peak RSS
   (VmHWM, read inside the child by bench/child.py as it ends), the largest peak among the processes it
   started (the archive worker and unrar; VmHWM sampled from /proc every 10 ms), the wall time, the verdict
   recorded and the reply captured. Not getrusage: on Linux ru_maxrss (and so RUSAGE_CHILDREN and wait4())
   inherits the parent's peak at exec, here the benchmark's own after the APPEND (see bench/child.py);
4. B: in another child, imapclient `fetch([uid], ['BODY[]'])` of the same message (in the folder the daemon
   moved it to), `email.message_from_bytes(raw, policy=email.policy.default)` and `get_content()` of the
   attachment: its peak RSS and time;
5. prints a table. Exit status 0 when both measurements ran (whatever the figures), 1 otherwise.

Sizes: MB = 10**6 bytes (so the default 200 MB archive stays under the default 200 MiB archive limit);
memory figures are MB too, as in the goal (150 MB = 143 MiB).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.header import Header, decode_header, make_header
from email.parser import BytesHeaderParser
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import imapclient
from sqlmodel import Session, col, select

from daemon.config import load
from daemon.demo import loopback_config
from daemon.demo.servers import SmtpCapture

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
from child_servers import PymapProcess

from daemon.storage.db import open_database
from daemon.storage.models import MailboxItem, MessageRecord, OutboxItem, PackageRecord, ProblemRecord

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
FIXTURE = REPO / "tests" / "fixtures" / "rar" / "valid.rar"
ROSTER = REPO / "daemon" / "resources" / "demo" / "roster.xlsx"

ENTERPRISE = "济南明湖软件科技有限公司"
SENDER = ("张明", "ops@minghu-soft.cn")  # the roster's contact for this enterprise
MAILBOX = "kejichu2019@shandong.cn"
PASSWORD = "bench"
PASSWORD_ENV = "SHENBAO_BENCH_PASSWORD"
PADDING_NAME = "证明材料/附件-扫描件.bin"
RAR5_SIGNATURE = b"Rar!\x1a\x07\x01\x00"
SENT_AT = datetime(2022, 6, 28, 9, 37, tzinfo=timezone(timedelta(hours=8)))  # before the demo deadline
MB = 1_000_000
MIB = 1 << 20
GOAL_MB = 150
STRETCH_MB = 80
_WRITE_CHUNK = 1 << 20
_B64_LINE = 57  # raw bytes per 76-character base64 line
_B64_CHUNK = _B64_LINE * 16384  # about 0.9 MB, a whole number of lines
_RAR_OVERHEAD = 400  # bytes of RAR5 headers around four stored members, roughly


# ------------------------------------------------------------------------------------------ the message


@dataclass(frozen=True)
class Attachment:
    path: Path
    size: int
    sha256: str
    route: str


def build_archive(folder: Path, size: int, use_rar: bool) -> Attachment:
    """The attachment file, about `size` bytes: a stored RAR5 archive if `rar` can make one, else a stand-in."""
    rar = shutil.which("rar") if use_rar else None
    if rar is not None:
        path = _rar_archive(rar, folder, size)
        route = (
            f"rar ({rar}): stored (-m0) RAR5 with the 3 documents of {FIXTURE.relative_to(REPO)} "
            f"+ {PADDING_NAME} (random bytes)"
        )
    else:
        why = "--no-rar given" if not use_rar else "`rar` is not on PATH"
        path = folder / f"{ENTERPRISE}.rar"
        with path.open("wb") as sink:
            sink.write(RAR5_SIGNATURE)
            _write_random(sink, size - len(RAR5_SIGNATURE))
        route = f"stand-in ({why}): RAR5 signature + random bytes; expect verdict corrupt_archive"
    return Attachment(path, path.stat().st_size, _sha256(path), route)


def _rar_env() -> dict[str, str]:
    """rar with a UTF-8 locale (member names) and no switches from the environment."""
    env = {k: v for k, v in os.environ.items() if k not in {"RAR", "RARINISWITCHES"}}
    env["LC_ALL"] = "C.UTF-8"
    return env


def _run(argv: list[str], cwd: Path) -> None:
    done = subprocess.run(argv, cwd=cwd, env=_rar_env(), stdin=subprocess.DEVNULL, capture_output=True, check=False)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).decode("utf-8", "replace")
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{output}")


def _rar_archive(rar: str, folder: Path, size: int) -> Path:
    staging = folder / "archive-src"
    staging.mkdir()
    _run([rar, "x", "-idq", "-y", str(FIXTURE), str(staging) + os.sep], cwd=folder)
    documents = sorted(p.name for p in staging.iterdir() if p.is_file())
    if len(documents) != 3:
        raise RuntimeError(f"expected 3 documents in {FIXTURE}, found {documents}")
    padding = staging / PADDING_NAME
    padding.parent.mkdir()
    used = sum((staging / name).stat().st_size for name in documents) + _RAR_OVERHEAD
    with padding.open("wb") as sink:
        _write_random(sink, max(size - used, 0))
    archive = folder / f"{ENTERPRISE}.rar"
    _run([rar, "a", "-m0", "-idq", "-y", "--", str(archive), *documents, PADDING_NAME], cwd=staging)
    shutil.rmtree(staging)
    with archive.open("rb") as stream:
        if stream.read(len(RAR5_SIGNATURE)) != RAR5_SIGNATURE:
            raise RuntimeError(f"{rar} did not write a RAR5 archive")
    return archive


def _write_random(sink: BinaryIO, count: int) -> None:
    while count > 0:
        step = min(count, _WRITE_CHUNK)
        sink.write(os.urandom(step))
        count -= step


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_WRITE_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def build_message(folder: Path, attachment: Attachment) -> Path:
    """The submission email, CRLF throughout, the attachment base64-encoded as it streams to disk."""
    boundary = f"=_shenbao-bench-{uuid.uuid4().hex}"
    sender = f"{Header(SENDER[0], 'utf-8').encode()} <{SENDER[1]}>"
    subject = Header(ENTERPRISE, "utf-8").encode(linesep="\r\n")
    filename = quote(attachment.path.name, safe="")
    head = "\r\n".join(
        [
            f"From: {sender}",
            f"To: {MAILBOX}",
            f"Subject: {subject}",
            "Date: Tue, 28 Jun 2022 09:37:00 +0800",
            f"Message-ID: <bench-{uuid.uuid4().hex}@minghu-soft.cn>",
            "MIME-Version: 1.0",
            f'Content-Type: multipart/mixed; boundary="{boundary}"',
            "",
            f"--{boundary}",
            'Content-Type: text/plain; charset="utf-8"',
            "Content-Transfer-Encoding: 8bit",
            "",
            "您好，附件为我单位申报材料，请查收。",
            "",
            "张明",
            ENTERPRISE,
            "",
            f"--{boundary}",
            "Content-Type: application/octet-stream",
            "Content-Transfer-Encoding: base64",
            f"Content-Disposition: attachment; filename*=utf-8''{filename}",
            "",
            "",
        ]
    )
    path = folder / "submission.eml"
    with path.open("wb") as sink, attachment.path.open("rb") as source:
        sink.write(head.encode("utf-8"))
        while chunk := source.read(_B64_CHUNK):
            encoded = base64.b64encode(chunk)
            sink.write(b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76)))
            sink.write(b"\r\n")
        sink.write(f"--{boundary}--\r\n".encode("ascii"))
    return path


def append(imap: PymapProcess, message: Path) -> float:
    """APPEND the message to INBOX (the literal is read into this process: only the children are measured)."""
    started = time.monotonic()
    client = imapclient.IMAPClient(imap.host, port=imap.port, ssl=False)
    client.login(imap.user, imap.password)
    client.append("INBOX", message.read_bytes(), msg_time=SENT_AT)
    client.logout()
    return time.monotonic() - started


# ------------------------------------------------------------------------------------------ measuring


def _status_kib(pid: int, field_name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _describe(cmdline: bytes) -> str:
    words = [a.decode("utf-8", "replace") for a in cmdline.rstrip(b"\0").split(b"\0")]
    if "-m" in words[:-1]:
        return "python -m " + words[words.index("-m") + 1]
    return Path(words[0]).name if words[0] else "?"


def _children(pid: int) -> set[int]:
    """The children of `pid`, from /proc/PID/task/TID/children (empty when it is gone)."""
    found: set[int] = set()
    with contextlib.suppress(OSError):
        for task in os.scandir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError):
                found.update(int(c) for c in Path(task.path, "children").read_text().split())
    return found


@dataclass
class Sampler:
    """Polls the VmHWM of `root` and of every process below it, keeping each one's last (highest) value.

    VmHWM only grows, so the last value read before a process exits is its peak, short of what it added in
    its final `interval`; a process that lives less than `interval` may be missed altogether.
    """

    root: int
    interval: float = 0.01
    peaks: dict[int, tuple[str, int]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def descendants(self) -> list[tuple[str, int]]:
        """(command, peak KiB) of every process seen below `root`, largest first."""
        return sorted((v for pid, v in self.peaks.items() if pid != self.root), key=lambda v: -v[1])

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def _sample(self) -> None:
        parents: dict[int, int] = {}
        frontier = {self.root}
        while frontier:
            found = {child: parent for parent in frontier for child in _children(parent)}
            frontier = set(found) - set(parents) - {self.root}
            parents.update(found)
        self._record(self.root, None)
        for pid, parent in parents.items():
            self._record(pid, parent)

    def _record(self, pid: int, parent: int | None) -> None:
        # The command line first: a child between fork and exec shares its parent's memory (and VmHWM) and
        # shows its parent's command line; such a sample is skipped. After exec both are the child's own.
        cmdline = _cmdline(pid)
        if not cmdline or (parent is not None and cmdline == _cmdline(parent)):
            return
        hwm = _status_kib(pid, "VmHWM")
        name, seen = self.peaks.get(pid) or (_describe(cmdline), 0)
        if hwm > seen:
            self.peaks[pid] = (name, hwm)


@dataclass
class DaemonRun:
    exit_code: int
    seconds: float
    self_kib: int
    """VmHWM of the daemon process, read by itself as it ends."""
    sampled_kib: int
    """The daemon's VmHWM as last sampled from outside (a cross-check)."""
    descendants: list[tuple[str, int]]
    """(command, sampled VmHWM) of every process it started, largest first."""
    self_maxrss_kib: int
    children_maxrss_kib: int
    wait4_kib: int
    stdout: str
    stderr: str


def run_daemon(folder: Path, config: Path) -> DaemonRun:
    report = folder / "daemon-rusage.json"
    out, err = folder / "daemon.stdout", folder / "daemon.stderr"
    argv = [sys.executable, str(BENCH / "child.py"), "daemon", str(report), "--"]
    argv += ["run", "--config", str(config), "--once"]
    env = dict(os.environ)
    env[PASSWORD_ENV] = PASSWORD
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    started = time.monotonic()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
    sampler = Sampler(process.pid)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    sampler.stop()
    figures = json.loads(report.read_text(encoding="utf-8")) if report.exists() else {}
    return DaemonRun(
        exit_code=process.returncode,
        seconds=seconds,
        self_kib=int(figures.get("self_hwm_kib", 0)),
        sampled_kib=sampler.peaks.get(process.pid, ("", 0))[1],
        descendants=sampler.descendants(),
        self_maxrss_kib=int(figures.get("self_maxrss_kib", 0)),
        children_maxrss_kib=int(figures.get("children_maxrss_kib", 0)),
        wait4_kib=usage.ru_maxrss,
        stdout=out.read_text(encoding="utf-8", errors="replace"),
        stderr=err.read_text(encoding="utf-8", errors="replace"),
    )


@dataclass(frozen=True)
class Outcome:
    verdict: str
    problems: str
    enterprise: str
    folder: str | None
    replies: str


def recorded(config: Path) -> Outcome | None:
    settings = load(config)
    engine = open_database(settings.database_url)
    with Session(engine) as session:
        row = session.exec(select(MessageRecord)).first()
        item = session.exec(select(MailboxItem)).first()
        if row is None:
            return None
        problems = session.exec(
            select(ProblemRecord.code).where(ProblemRecord.message_id == row.id).order_by(col(ProblemRecord.position))
        ).all()
        replies = session.exec(select(OutboxItem).where(OutboxItem.message_id == row.id)).all()
        names = session.exec(select(PackageRecord.enterprise_name).where(PackageRecord.message_id == row.id)).all()
        return Outcome(
            verdict=row.outcome,
            problems=", ".join(problems) or "none",
            enterprise=", ".join(name for name in names if name) or "—",
            folder=item.target if item else None,
            replies="; ".join(f"{r.kind} to {r.recipient} ({r.state})" for r in replies) or "none",
        )


def run_naive(folder: Path, imap: PymapProcess, mailbox_folder: str, sha256: str) -> tuple[dict[str, Any], int]:
    request, report = folder / "naive-request.json", folder / "naive-report.json"
    request.write_text(
        json.dumps(
            {
                "host": imap.host,
                "port": imap.port,
                "user": imap.user,
                "password": imap.password,
                "folder": mailbox_folder,
                "sha256": sha256,
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    argv = [sys.executable, str(BENCH / "child.py"), "naive", str(request), str(report)]
    process = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0 or not report.exists():
        raise RuntimeError(f"the naive fetch-and-parse child exited with {process.returncode}")
    return json.loads(report.read_text(encoding="utf-8")), usage.ru_maxrss


def reply_subject(data: bytes) -> str:
    value = BytesHeaderParser().parsebytes(data).get("Subject", "")
    return str(make_header(decode_header(str(value))))


# ------------------------------------------------------------------------------------------ reporting


def mb(kib: int | float) -> str:
    """A KiB figure (as /proc gives them) in MB of 10**6 bytes."""
    return f"{kib * 1024 / MB:,.0f} MB"


def machine() -> str:
    memory = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / MIB:.1f} GiB RAM"
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("imapclient", "pymap", "rarfile") if _installed(name)
    )
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu}), {memory}; "
        f"Python {platform.python_version()}; {versions}"
    )


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def verdict_line(peak_kib: int) -> str:
    peak = peak_kib * 1024
    if peak < STRETCH_MB * MB:
        return f"meets the goal (< {GOAL_MB} MB) and the stretch goal (< {STRETCH_MB} MB)"
    if peak < GOAL_MB * MB:
        return f"meets the goal (< {GOAL_MB} MB), not the stretch goal (< {STRETCH_MB} MB)"
    return f"MISSES the goal (< {GOAL_MB} MB)"


def benchmark(args: argparse.Namespace, folder: Path) -> int:
    size = round(args.size_mb * MB)
    print(f"shenbao memory benchmark: one submission with a {args.size_mb:g} MB archive; working in {folder}")
    print(f"machine: {machine()}", flush=True)
    started = time.monotonic()
    attachment = build_archive(folder, size, use_rar=not args.no_rar)
    message = build_message(folder, attachment)
    wire = message.stat().st_size
    print(f"archive route: {attachment.route}")
    print(
        f"built {attachment.path.name}: {attachment.size:,} bytes; message {wire:,} bytes "
        f"({time.monotonic() - started:.1f} s)",
        flush=True,
    )
    shutil.copyfile(ROSTER, folder / "roster.xlsx")
    with PymapProcess(MAILBOX, PASSWORD) as imap, SmtpCapture(auth=True) as smtp:
        print(f"APPEND to pymap (pid {imap.pid}, {imap.host}:{imap.port}) ...", flush=True)
        appended = append(imap, message)
        print(f"appended in {appended:.1f} s", flush=True)
        config = folder / "shenbao.toml"
        config.write_text(
            loopback_config(
                imap,
                smtp,
                by="bench/memory.py",
                password_env=PASSWORD_ENV,
                timeout_seconds=600,
                max_archive_mb=max(200, math.ceil(attachment.size / MIB) + 1),
                max_message_mb=max(300, math.ceil(wire / MIB) + 1),
            ),
            encoding="utf-8",
        )
        print("A: shenbao run --config F --once ...", flush=True)
        daemon = run_daemon(folder, config)
        if daemon.exit_code != 0:
            print(f"shenbao exited with {daemon.exit_code}:\n{daemon.stdout}\n{daemon.stderr[-4000:]}", file=sys.stderr)
            return 1
        outcome = recorded(config)
        if outcome is None:
            print(f"shenbao recorded nothing:\n{daemon.stdout}\n{daemon.stderr[-4000:]}", file=sys.stderr)
            return 1
        replies = list(smtp.messages)
        print("B: fetch(BODY[]) + email.message_from_bytes + get_content() ...", flush=True)
        naive, naive_wait4_kib = run_naive(folder, imap, outcome.folder or "INBOX", attachment.sha256)
        server_kib = _status_kib(imap.pid, "VmHWM") if imap.pid else 0
    bench_kib = _status_kib(os.getpid(), "VmHWM")

    largest = daemon.descendants[0] if daemon.descendants else ("none seen", 0)
    rows = [
        ("A  shenbao run --once: the daemon process", mb(daemon.self_kib), f"{daemon.seconds:.1f} s"),
        (f"A  its largest descendant: {largest[0]}", mb(largest[1]), ""),
        ("B  fetch(BODY[]) + message_from_bytes + get_content()", mb(naive["self_hwm_kib"]), f"{naive['seconds']} s"),
    ]
    width = max(len(r[0]) for r in rows)
    print()
    print(f"{'':{width}}  {'peak RSS':>10}  {'wall time':>9}")
    for label, rss, seconds in rows:
        print(f"{label:{width}}  {rss:>10}  {seconds:>9}")
    print()
    print(f"daemon: {verdict_line(daemon.self_kib)}; B needs {naive['self_hwm_kib'] / daemon.self_kib:.1f}x as much")
    print(
        "peak RSS is VmHWM: the daemon's and B's read by themselves at the end, the descendants' sampled every "
        f"10 ms; the daemon's sampled from outside: {mb(daemon.sampled_kib)}"
    )
    print("descendants of A: " + (", ".join(f"{n} {mb(k)}" for n, k in daemon.descendants) or "none seen"))
    phases = ", ".join(f"{p['phase']} at {p['seconds']} s: {mb(p['hwm_kib'])}" for p in naive["phases"])
    print(f"B, peak so far after each step: {phases}")
    print(
        f"B decoded {naive['attachment_name']}: {naive['attachment_bytes']:,} bytes, "
        f"SHA-256 {'matches' if naive['attachment_sha256_ok'] else 'DIFFERS'}"
    )
    print(
        "not used, inflated by the parent's peak at exec (see bench/child.py): "
        f"ru_maxrss of A {mb(daemon.self_maxrss_kib)}, its RUSAGE_CHILDREN {mb(daemon.children_maxrss_kib)}, "
        f"wait4() of A {mb(daemon.wait4_kib)}, "
        f"of B {mb(naive_wait4_kib)}; this process's peak {mb(bench_kib)}"
    )
    print(f"pymap server (another process) peak RSS: {mb(server_kib)}")
    print(f"verdict recorded: {outcome.verdict} (problems: {outcome.problems}); enterprise {outcome.enterprise}")
    print(f"moved to: {outcome.folder or 'left in place'}; replies queued: {outcome.replies}")
    print(
        f"replies captured by SMTP: {len(replies)}"
        + "".join(f"; {m.rcpt_tos[0]}: {reply_subject(m.data)}" for m in replies[:3])
    )
    for line in daemon.stdout.splitlines():
        print(f"shenbao: {line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--size-mb", type=float, default=200.0, help="archive size in MB (10**6 bytes); default 200")
    parser.add_argument("--no-rar", action="store_true", help="use the stand-in attachment even if `rar` is there")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (message, database, logs)")
    parser.add_argument("--tmp", type=Path, default=None, help="where to make the temporary folder")
    args = parser.parse_args(argv)
    if args.size_mb <= 0:
        parser.error("--size-mb must be more than 0")
    folder = Path(tempfile.mkdtemp(prefix="shenbao-bench-", dir=args.tmp))
    try:
        return benchmark(args, folder)
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
