"""Archive inspection (RAR or ZIP), run in a limited child process (see isolation.py and archive_worker.py).

`unrar` has no timeout of its own, and an archive is the most hostile thing a sender can send, so each archive
gets its own private folder (`unrar` opens sibling volumes by name), a child process with a memory cap, and a
wall-clock limit after which the child's whole process group is killed. The child is forked from a warm
server, so no interpreter is started per archive.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

from ..campaign import ArchiveLimits
from ..domain import ArchiveFile, Attachment
from .archive_worker import Request, read_archive
from .documents import Member
from .faults import EnvironmentFault, fault
from .isolation import Isolation, Limits, TimedOut
from .reading import Status
from .signatures import Kind

__all__ = [
    "UNRAR_HELP",
    "Inspection",
    "Kind",
    "Status",
    "inspect_archive",
    "member_attachment",
    "self_test",
    "start_archive_reader",
]

_READER = Isolation(preload=("daemon.intake.archive_worker", "rarfile", "olefile"))
"""The reader's server; rarfile and olefile are imported there only (the daemon itself never needs them)."""
_BUSY_SHARE = 0.25
"""A reading that ran out of time having had less processor time than this share of it was starved or
stalled by the machine (EnvironmentFault), not kept busy by the archive (unsafe)."""


@dataclass(frozen=True)
class Inspection:
    status: Status
    detail: str | None = None
    members: tuple[Member, ...] = ()
    folder: Path | None = None
    """Where the members were written; each member's `stored_as` is relative to it."""
    kind: Kind | None = None
    """RAR or ZIP, by content; None when it was neither, or could not be told."""
    duplicates: tuple[str, ...] = ()
    """Names that more than one member has (compared without case): a reviewer unpacking it would see one."""


def start_archive_reader() -> None:
    """Start the reader's server ahead of the first archive (Isolation.start)."""
    _READER.start()


def inspect_archive(archive: ArchiveFile, workdir: Path, limits: ArchiveLimits) -> Inspection:
    """Read an archive in an isolated child; raises EnvironmentFault when our side failed, not the archive.

    Time: an archive that keeps the reader busy past the wall-clock limit is the input's doing (a genuine
    200 MB archive reads in seconds; the limit is minutes): unsafe, a person looks. When the reader hardly
    ran in that time (less than a quarter of it on the processor), the machine starved or stalled it: that
    is ours, and the message is judged again later.
    """
    private, outdir = _prepare(archive, workdir)
    request = Request(
        private / archive.local_names[0], outdir, archive.size, limits, os.environ.get("PATH", os.defpath)
    )
    try:
        report = _READER.run(Limits(limits.memory_bytes, limits.timeout_seconds), private, read_archive, request)
    except TimedOut as timeout:
        if timeout.cpu_seconds < _BUSY_SHARE * timeout.seconds:
            raise EnvironmentFault(f"reading an archive ran out of time while hardly running: {timeout}") from None
        return Inspection(Status.UNSAFE, f"reading it took longer than the time limit of {timeout.seconds:g} s")
    detail = _in_sender_terms(report.detail, private, archive)
    if report.status is Status.INCOMPLETE:  # name the missing volume, as the sender would
        found = _VOLUME_NAME.search(detail or "")
        detail = found.group(0) if found else None
    return Inspection(report.status, detail, report.members, outdir, report.kind, report.duplicates)


def member_attachment(inspection: Inspection, member: Member) -> Attachment:
    """A member of an outer archive as if it had been attached (the bureaus' bundles): its file as written
    by the reader, named by the last part of its path, with its first bytes for recognising inner archives."""
    assert inspection.folder is not None
    path = inspection.folder / member.stored_as
    try:
        with open(path, "rb") as stream:
            head = stream.read(16)
    except OSError as error:
        raise fault("reading a member file back", error) from error
    name = PurePosixPath(member.name).name
    return Attachment(name, "application/octet-stream", path, member.size, member.sha256, head)


def _prepare(archive: ArchiveFile, workdir: Path) -> tuple[Path, Path]:
    """A private folder holding the volumes under our names, and an empty folder for the members."""
    try:
        private = Path(tempfile.mkdtemp(prefix="archive-", dir=workdir))
        for volume, local_name in zip(archive.volumes, archive.local_names, strict=True):
            _place(volume.path, private / local_name)
        outdir = private / "members"
        outdir.mkdir()
    except OSError as error:
        raise fault("preparing an archive's private folder", error) from error
    return private, outdir


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
        try:
            inspection = inspect_archive(
                ArchiveFile("selftest", (volume,), ("archive.rar",)), work, limits or ArchiveLimits()
            )
        except EnvironmentFault as error:
            return f"`unrar` could not run the RAR5 self-test ({error})"
        found = {m.name: m.sha256 for m in inspection.members}
        if inspection.status is not Status.OK or found != expected:
            return f"`unrar` failed the RAR5 self-test ({inspection.status}: {inspection.detail or 'wrong content'})"
    return None


UNRAR_HELP = (
    "shenbao 需要 RARLAB 的 unrar（Debian non-free / Ubuntu multiverse 中的 unrar 软件包）。"
    "请以 root 身份启用 non-free 软件源后运行 apt-get install unrar，或运行 README 中的安装命令（两步都会做）。"
    "Debian 的 unar 无法读取 RAR5 压缩包。"
)
