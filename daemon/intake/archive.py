"""RAR inspection, run in a limited child process (see archive_worker.py).

rarfile puts no timeout on the tool it runs, and an archive is the most hostile thing a sender can send, so
each archive gets its own private folder (rarfile opens sibling volumes by name), a child process with a
memory cap, and a wall-clock limit after which the child's whole process group is killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from ..campaign import ArchiveLimits
from ..domain import ArchiveFile, Attachment
from .documents import Content, Member


class Status(StrEnum):
    OK = "ok"
    ENCRYPTED = "encrypted"
    INCOMPLETE = "incomplete"
    CORRUPT = "corrupt"
    UNSAFE = "unsafe"


@dataclass(frozen=True)
class Inspection:
    status: Status
    detail: str | None = None
    members: tuple[Member, ...] = ()
    folder: Path | None = None
    """Where the members were written; each member's `stored_as` is relative to it."""


def inspect_archive(archive: ArchiveFile, workdir: Path, limits: ArchiveLimits) -> Inspection:
    private = Path(tempfile.mkdtemp(prefix="archive-", dir=workdir))
    for volume, local_name in zip(archive.volumes, archive.local_names, strict=True):
        _place(volume.path, private / local_name)
    outdir = private / "members"
    outdir.mkdir()
    request = {
        "archive": str(private / archive.local_names[0]),
        "outdir": str(outdir),
        "packed_size": archive.size,
        "limits": asdict(limits),
    }
    report = _run_worker(request, private, limits)
    if report is None:
        return Inspection(Status.UNSAFE, f"inspection exceeded its time limit of {limits.timeout_seconds:g} s")
    members = tuple(
        Member(m["name"], m["size"], m["sha256"], Content(m["content"]), m["stored_as"]) for m in report["members"]
    )
    status = Status(report["status"])
    detail = _in_sender_terms(report["detail"], private, archive)
    if status is Status.INCOMPLETE:  # name the missing volume, as the sender would
        found = _VOLUME_NAME.search(detail or "")
        detail = found.group(0) if found else None
    return Inspection(status, detail, members, outdir)


_VOLUME_NAME = re.compile(r"(?<![^\s/:])[^\s/:]+\.(?:part\d+\.rar|r\d\d|rar)$")
"""The last file name in a message; tried only where a name starts, so a long name is scanned once."""


def _in_sender_terms(detail: str | None, private: Path, archive: ArchiveFile) -> str | None:
    """The worker speaks of its private copies (/tmp/.../archive.part2.rar); the sender knows X.part2.rar."""
    if detail is None:
        return None
    detail = detail.replace(f"{private}{os.sep}", "")
    return re.sub(r"\barchive(?=\.(?:part\d+\.rar|r\d\d|rar)\b)", lambda _: archive.name, detail)


def _place(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _run_worker(request: dict[str, Any], cwd: Path, limits: ArchiveLimits) -> dict[str, Any] | None:
    """The worker's report; None when it ran out of time. Its whole process group dies either way."""
    process = subprocess.Popen(
        [sys.executable, "-m", "daemon.intake.archive_worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(json.dumps(request).encode(), timeout=limits.timeout_seconds)
    except subprocess.TimeoutExpired:
        _kill_group(process.pid)
        process.communicate()
        return None
    finally:
        _kill_group(process.pid)
    try:
        report = json.loads(out)
    except ValueError:
        report = None
    if process.returncode != 0 or not isinstance(report, dict) or report.get("status") not in set(Status):
        tail = err.decode("utf-8", errors="replace").strip().splitlines()[-1:] or [f"exit {process.returncode}"]
        return {"status": "unsafe", "detail": f"inspection failed: {tail[0][:200]}"}
    return report


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def self_test(limits: ArchiveLimits | None = None) -> str | None:
    """None when the RAR tool decompresses the bundled RAR5 fixture exactly; else what is wrong.

    Debian's `unar` fails on ordinary compressed RAR5 archives, which would reject valid submissions as
    corrupt, so shenbao refuses to start without a tool that passes this.
    """
    if shutil.which("unrar") is None:
        return "the `unrar` tool is not installed"
    fixture = resources.files("daemon") / "resources"
    expected: dict[str, str] = json.loads((fixture / "selftest.json").read_text())
    with tempfile.TemporaryDirectory(prefix="shenbao-selftest-") as folder:
        work = Path(folder)
        copy = work / "selftest.rar"
        copy.write_bytes((fixture / "selftest.rar").read_bytes())
        volume = Attachment("selftest.rar", "application/x-rar", copy, copy.stat().st_size, "", b"")
        inspection = inspect_archive(
            ArchiveFile("selftest", (volume,), ("archive.rar",)), work, limits or ArchiveLimits()
        )
        found = {m.name: m.sha256 for m in inspection.members}
        if inspection.status is not Status.OK or found != expected:
            return f"`unrar` failed the RAR5 self-test ({inspection.status}: {inspection.detail or 'wrong content'})"
    return None


UNRAR_HELP = (
    "shenbao needs RARLAB's `unrar` (Debian non-free / Ubuntu multiverse package `unrar`). "
    "As root: add the non-free component to /etc/apt/sources.list.d/ and run `apt-get install unrar`, "
    "or run the README's install command, which does both. Debian's `unar` cannot read RAR5 archives."
)
