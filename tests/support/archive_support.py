"""Helpers of the archive reader's tests: an archive as a message would carry it, and processes left behind."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

from conftest import RAR

from daemon.campaign import ArchiveLimits
from daemon.domain import ArchiveFile, Attachment
from daemon.intake.archive import Inspection, inspect_archive
from daemon.intake.attachments import find_archives


def attachment(path: Path, name: str) -> Attachment:
    data = path.read_bytes()
    return Attachment(name, "application/octet-stream", path, len(data), hashlib.sha256(data).hexdigest(), data[:16])


def archive_of(tmp_path: Path, *fixtures: str, names: tuple[str, ...] | None = None) -> ArchiveFile:
    """The archive a message would carry: each fixture copied to a mail folder as an attachment."""
    mail = tmp_path / "mail"
    mail.mkdir(parents=True, exist_ok=True)
    attachments = []
    for index, (fixture, name) in enumerate(zip(fixtures, names or fixtures, strict=True)):
        path = mail / f"attachment-{index:03d}"
        shutil.copyfile(RAR / fixture, path)
        attachments.append(attachment(path, name))
    (archive,) = find_archives(tuple(attachments))
    return archive


def archive_from(path: Path, workdir: Path) -> ArchiveFile:
    """Any archive file (a ZIP too, which find_archives leaves to the bureaus' caller) as one volume."""
    copy = workdir.parent / "mail" / path.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, copy)
    return ArchiveFile(path.stem, (attachment(copy, path.name),), ("archive" + path.suffix,))


def inspect(tmp_path: Path, *fixtures: str, limits: ArchiveLimits | None = None) -> Inspection:
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    return inspect_archive(archive_of(tmp_path, *fixtures), workdir, limits or ArchiveLimits())


def names(inspection: Inspection) -> list[str]:
    return [m.name for m in inspection.members]


def processes_working_in(folder: Path, *, settle: float = 3.0) -> list[str]:
    """Every live process whose working directory is inside `folder` (the reader runs in its private one),
    once those already killed had `settle` seconds to end: SIGKILL takes effect when the process is next
    scheduled, which on a loaded machine may be after its group's leader was reaped."""
    deadline = time.monotonic() + settle
    while (found := _working_in(folder)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def _working_in(folder: Path) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z" and (cwd == folder or folder in cwd.parents):
            found.append(f"{entry.name}: {command}")
    return found
