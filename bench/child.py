"""The measured side of bench/memory.py: each mode runs in a child process of its own and reports on itself.

    python bench/child.py daemon REPORT.json -- run --config F --once
        `shenbao run ...` exactly as `python -m daemon.cli` runs it, then writes its own peak RSS into
        REPORT.json.

    python bench/child.py naive REQUEST.json REPORT.json
        The comparison: imapclient `fetch([uid], ['BODY[]'])`, `email.message_from_bytes(raw,
        policy=email.policy.default)` and `part.get_content()` of the attachment, timed and measured.

The peak is VmHWM from /proc/self/status: the high-water mark of this process's own memory since it was
started (exec). getrusage's ru_maxrss is written too, for reference only: on Linux it is not the process's
own figure, because at exec() the kernel folds the parent's high-water mark into it (a `python -c pass`
started by a parent that once held 500 MiB reports ru_maxrss 513 MiB, VmHWM 13 MiB), and RUSAGE_CHILDREN and
wait4() inherit the same inflation. All figures are KiB.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import resource
import sys
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any


def _status_kib(field: str) -> int:
    """A `VmRSS:`/`VmHWM:` figure of this process from /proc (0 where there is no /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _checkpoint(phases: list[dict[str, Any]], name: str, started: float) -> None:
    phases.append(
        {
            "phase": name,
            "seconds": round(time.monotonic() - started, 3),
            "rss_kib": _status_kib("VmRSS"),
            "hwm_kib": _status_kib("VmHWM"),
        }
    )


def _own_cpu_seconds() -> float:
    """User and system time of this process alone (all its threads, none of its children): the part of the
    work that shares one interpreter, and so one GIL."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round(usage.ru_utime + usage.ru_stime, 3)


def run_daemon(report: Path, argv: list[str]) -> int:
    from daemon.cli import main

    code = 1
    try:
        code = main(argv)
    finally:
        report.write_text(
            json.dumps(
                {
                    "exit_code": code,
                    "self_hwm_kib": _status_kib("VmHWM"),
                    "self_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                    "children_maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                    "self_cpu_seconds": _own_cpu_seconds(),
                }
            ),
            encoding="utf-8",
        )
    return code


def run_naive(request_path: Path, report: Path) -> int:
    import imapclient

    request: dict[str, Any] = json.loads(request_path.read_text(encoding="utf-8"))
    phases: list[dict[str, Any]] = []
    started = time.monotonic()
    _checkpoint(phases, "start", started)
    client = imapclient.IMAPClient(request["host"], port=request["port"], ssl=False)
    client.login(request["user"], request["password"])
    client.select_folder(request["folder"], readonly=True)
    uid = max(client.search(["ALL"]))
    raw: bytes = client.fetch([uid], ["BODY[]"])[uid][b"BODY[]"]
    client.logout()
    _checkpoint(phases, "fetch(BODY[])", started)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    _checkpoint(phases, "message_from_bytes", started)
    content = b""
    name = None
    assert isinstance(message, EmailMessage)
    for part in message.iter_attachments():
        name = part.get_filename()
        content = part.get_content()
        break
    _checkpoint(phases, "get_content()", started)
    seconds = time.monotonic() - started
    outcome = {
        "uid": uid,
        "message_bytes": len(raw),
        "attachment_name": name,
        "attachment_bytes": len(content),
        "attachment_sha256_ok": hashlib.sha256(content).hexdigest() == request["sha256"],
        "seconds": round(seconds, 3),
        "phases": phases,
        "self_hwm_kib": _status_kib("VmHWM"),
        "self_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    report.write_text(json.dumps(outcome, ensure_ascii=False), encoding="utf-8")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "daemon" and argv[2] == "--":
        return run_daemon(Path(argv[1]), argv[3:])
    if len(argv) == 3 and argv[0] == "naive":
        return run_naive(Path(argv[1]), Path(argv[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
