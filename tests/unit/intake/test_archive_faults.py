"""The sender's input or our trouble, never confused (issue 8, findings 1 and 8).

A verdict (corrupt, encrypted, incomplete, unsafe) is about the archive; a full disk, a missing or killed tool,
a killed reader raise EnvironmentFault, so that the message is judged again later instead of being answered.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from archive_support import archive_of, inspect, processes_working_in
from conftest import ENTERPRISE, rar, submission

from daemon.campaign import ArchiveLimits
from daemon.intake.archive import Status, inspect_archive
from daemon.intake.context import Context
from daemon.intake.faults import EnvironmentFault
from daemon.pipeline import judge

UNRAR = shutil.which("unrar") or "/usr/bin/unrar"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB file system (tmpfs), mounted for the test: as root only."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fake_unrar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    """Put a shell script named `unrar` first on PATH (the reader looks the tool up on the caller's PATH)."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    tool = folder / "unrar"
    tool.write_text("#!/bin/sh\n" + script + "\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


# -- our trouble -------------------------------------------------------------------------------------------


def test_a_valid_archive_whose_members_do_not_fit_on_our_disk_is_our_fault_not_corrupt(
    tmp_path: Path, small_disk: Path
) -> None:
    archive = archive_of(tmp_path, "large_member.rar")
    assert archive.size < 64 << 10  # the archive fits; its 4 MiB member does not
    with pytest.raises(EnvironmentFault, match="No space left"):
        inspect_archive(archive, small_disk, ArchiveLimits())


def test_the_same_archive_on_a_roomy_disk_is_ok(tmp_path: Path) -> None:
    assert inspect(tmp_path, "large_member.rar").status is Status.OK


def test_unrar_missing_from_path_is_our_fault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(EnvironmentFault, match="unrar"):
        inspect(tmp_path, "valid.rar")


def test_unrar_killed_by_someone_else_mid_read_is_our_fault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_unrar(tmp_path, monkeypatch, f'"{UNRAR}" "$@" | head -c 1000\nkill -KILL $$')
    with pytest.raises(EnvironmentFault, match="SIGKILL"):
        inspect(tmp_path, "valid.rar")
    assert processes_working_in(tmp_path) == []


def test_the_reader_killed_by_someone_else_mid_read_is_our_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_unrar(tmp_path, monkeypatch, f'"{UNRAR}" "$@" | head -c 1000\nkill -KILL $PPID\nexec sleep 60')
    with pytest.raises(EnvironmentFault, match="SIGKILL"):
        inspect(tmp_path, "valid.rar")
    assert processes_working_in(tmp_path) == []


def test_running_out_of_time_while_hardly_running_is_our_fault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_unrar(tmp_path, monkeypatch, "exec sleep 60")  # a stalled disk or a starved machine looks like this
    with pytest.raises(EnvironmentFault, match="out of time"):
        inspect(tmp_path, "valid.rar", limits=ArchiveLimits(timeout_seconds=1))
    assert processes_working_in(tmp_path) == []


# -- the input's doing ---------------------------------------------------------------------------------------


def test_an_archive_keeping_the_reader_busy_past_the_limit_is_unsafe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    busy = "for i in 1 2 3 4; do (while :; do :; done) & done; wait"  # busy even on a loaded machine
    fake_unrar(tmp_path, monkeypatch, busy)  # what an archive that is a bomb of work looks like
    inspection = inspect(tmp_path, "valid.rar", limits=ArchiveLimits(timeout_seconds=1.5))
    assert inspection.status is Status.UNSAFE
    assert "time limit" in (inspection.detail or "")
    assert inspection.members == ()
    assert processes_working_in(tmp_path) == []


def test_a_dictionary_larger_than_the_memory_cap_is_unsafe_not_corrupt(tmp_path: Path) -> None:
    inspection = inspect(tmp_path, "huge_dictionary.rar")  # a 1 GB dictionary under the default 1 GiB cap
    assert inspection.status is Status.UNSAFE
    assert "memory" in (inspection.detail or "")


def test_unrar_crashing_on_an_archive_is_unsafe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_unrar(tmp_path, monkeypatch, "kill -SEGV $$")
    inspection = inspect(tmp_path, "valid.rar")
    assert inspection.status is Status.UNSAFE
    assert "SIGSEGV" in (inspection.detail or "")


# -- the whole message on a full disk ------------------------------------------------------------------------


def test_a_valid_submission_whose_archive_does_not_fit_unpacked_is_left_to_be_judged_again(small_disk: Path) -> None:
    raw = submission(attachments=[(f"{ENTERPRISE}.rar", rar("large_member.rar"))])
    with pytest.raises(EnvironmentFault, match="No space left"):
        judge(raw, context=Context(), workdir=small_disk)


def test_a_message_whose_parts_do_not_fit_on_our_disk_is_not_called_unreadable(small_disk: Path) -> None:
    raw = submission(attachments=[(f"{ENTERPRISE}.rar", os.urandom(2 << 20))])
    with pytest.raises(EnvironmentFault, match="message's parts"):
        judge(raw, context=Context(), workdir=small_disk)
