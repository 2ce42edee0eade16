"""Reading an untrusted RAR archive in a limited child process (issue 2, points 5 and 7).

Every test runs the real `unrar` on a committed fixture (see tests/fixtures/README.md).
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import time
from pathlib import Path

import pytest
from archive_support import archive_of, inspect, names, processes_working_in
from conftest import FIXTURES, RAR

from daemon.campaign import ArchiveLimits
from daemon.domain import Attachment
from daemon.intake.archive import UNRAR_HELP, Status, inspect_archive, self_test
from daemon.intake.attachments import find_archives
from daemon.intake.documents import Content

STANDARD = ["申报书.docx", "典型经验材料.docx", "证明材料.docx"]


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file() or p.is_symlink()}


def unrar_print(fixture: str, member: str) -> bytes:
    """A member's bytes as `unrar` itself prints them: an oracle independent of the worker."""
    return subprocess.run(["unrar", "p", "-inul", str(RAR / fixture), member], check=True, capture_output=True).stdout


# -- what is read ------------------------------------------------------------------------------------------


def test_a_valid_archive_is_ok_with_its_three_members(tmp_path: Path) -> None:
    inspection = inspect(tmp_path, "valid.rar")
    assert inspection.status is Status.OK
    assert inspection.detail is None
    assert names(inspection) == STANDARD
    assert all(m.content is Content.DOCX for m in inspection.members)


def test_each_member_is_written_whole_with_its_size_and_sha256(tmp_path: Path) -> None:
    inspection = inspect(tmp_path, "valid.rar")
    assert inspection.folder is not None
    for member in inspection.members:
        data = (inspection.folder / member.stored_as).read_bytes()
        assert member.size == len(data)
        assert member.sha256 == hashlib.sha256(data).hexdigest()
        assert data == unrar_print("valid.rar", member.name)


@pytest.mark.parametrize("fixture", ["nested.rar", "junk.rar", "solid.rar", "rar4_gbk_names.rar"])
def test_members_are_written_under_names_the_worker_chose_never_names_from_the_archive(
    tmp_path: Path, fixture: str
) -> None:
    inspection = inspect(tmp_path, fixture)
    assert inspection.folder is not None
    written = {p.relative_to(inspection.folder).as_posix() for p in files_under(inspection.folder)}
    assert written == {m.stored_as for m in inspection.members}
    assert all(m.stored_as and "/" not in m.stored_as and m.stored_as not in m.name for m in inspection.members)


def test_members_in_folders_keep_their_slash_separated_paths(tmp_path: Path) -> None:
    inspection = inspect(tmp_path, "nested.rar")
    assert inspection.status is Status.OK
    assert names(inspection) == [
        "济南明湖软件科技有限公司/1-申报书.docx",
        "济南明湖软件科技有限公司/申报书（盖章扫描件）.pdf",
        "济南明湖软件科技有限公司/典型经验/正文.docx",
        "济南明湖软件科技有限公司/证明材料/营业执照.pdf",
        "济南明湖软件科技有限公司/证明材料/证明材料汇编.docx",
    ]
    contents = {m.name.rsplit("/", 1)[-1]: m.content for m in inspection.members}
    assert contents["营业执照.pdf"] is Content.PDF
    assert contents["正文.docx"] is Content.DOCX


def test_directory_entries_are_not_members(tmp_path: Path) -> None:
    inspection = inspect(tmp_path, "empty_names_only_dirs.rar")
    assert inspection.status is Status.OK
    assert inspection.members == ()


def test_junk_left_by_archivers_and_editors_is_skipped(tmp_path: Path) -> None:
    inspection = inspect(tmp_path, "junk.rar")
    assert inspection.status is Status.OK
    assert names(inspection) == STANDARD


def test_a_solid_archive_is_read_whole(tmp_path: Path) -> None:
    inspection = inspect(tmp_path, "solid.rar")
    assert inspection.status is Status.OK
    assert sorted(names(inspection)) == sorted(STANDARD)
    assert inspection.folder is not None
    for member in inspection.members:
        assert member.sha256 == hashlib.sha256(unrar_print("solid.rar", member.name)).hexdigest()


def test_legacy_doc_members_are_recognised_as_word_97(tmp_path: Path) -> None:
    inspection = inspect(tmp_path, "doc_format.rar")
    assert inspection.status is Status.OK
    assert names(inspection) == ["申报书.doc", "典型经验材料.doc", "证明材料.doc"]
    assert {m.content for m in inspection.members} == {Content.DOC}


@pytest.mark.parametrize(
    ("fixture", "name", "content"),
    [
        ("fake_docx.rar", "典型经验材料.docx", Content.OTHER),
        ("docx_missing_part.rar", "证明材料.docx", Content.ZIP),
        ("fake_doc.rar", "申报书.doc", Content.OTHER),
        ("pdf_form.rar", "申报书.pdf", Content.PDF),
        ("wps_form.rar", "申报书.wps", Content.DOC),
    ],
)
def test_member_content_is_judged_by_its_bytes_not_its_name(
    tmp_path: Path, fixture: str, name: str, content: Content
) -> None:
    inspection = inspect(tmp_path, fixture)
    assert inspection.status is Status.OK
    assert {m.name: m.content for m in inspection.members}[name] is content


def test_gbk_member_names_of_an_old_rar4_archive_are_decoded(tmp_path: Path) -> None:
    inspection = inspect(tmp_path, "rar4_gbk_names.rar")
    assert inspection.status is Status.OK
    assert names(inspection) == [
        "潍坊金穗食品股份有限公司/申报书.docx",
        "潍坊金穗食品股份有限公司/典型经验材料.docx",
        "潍坊金穗食品股份有限公司/证明材料.docx",
    ]
    assert {m.content for m in inspection.members} == {Content.DOCX}


# -- archives that cannot be read ---------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["encrypted.rar", "encrypted_headers.rar"])
def test_a_password_protected_archive_is_encrypted(tmp_path: Path, fixture: str) -> None:
    inspection = inspect(tmp_path, fixture)
    assert inspection.status is Status.ENCRYPTED
    assert inspection.members == ()


def test_a_member_failing_its_crc_makes_the_archive_corrupt(tmp_path: Path) -> None:
    inspection = inspect(tmp_path, "corrupt.rar")
    assert inspection.status is Status.CORRUPT
    assert "典型经验材料.docx" in (inspection.detail or "")
    assert inspection.members == ()


def test_a_truncated_archive_is_corrupt(tmp_path: Path) -> None:
    inspection = inspect(tmp_path, "truncated.rar")
    assert inspection.status is Status.CORRUPT


def test_a_complete_volume_set_is_read_as_one_archive(tmp_path: Path) -> None:
    volumes = ("volumes.part1.rar", "volumes.part2.rar", "volumes.part3.rar")
    inspection = inspect(tmp_path, *volumes)
    assert inspection.status is Status.OK
    assert names(inspection) == STANDARD
    assert all(m.size > 20_000 and m.content is Content.DOCX for m in inspection.members)


def test_a_volume_set_in_attachment_order_out_of_sequence_is_still_read(tmp_path: Path) -> None:
    inspection = inspect(tmp_path, "volumes.part3.rar", "volumes.part1.rar", "volumes.part2.rar")
    assert inspection.status is Status.OK
    assert names(inspection) == STANDARD


@pytest.mark.parametrize(
    "volumes",
    [
        ("volumes.part1.rar",),
        ("volumes.part1.rar", "volumes.part3.rar"),
        ("volumes.part1.rar", "volumes.part2.rar"),
    ],
    ids=["part1-only", "part2-missing", "part3-missing"],
)
def test_a_set_missing_a_later_volume_is_incomplete(tmp_path: Path, volumes: tuple[str, ...]) -> None:
    inspection = inspect(tmp_path, *volumes)
    assert inspection.status is Status.INCOMPLETE
    assert inspection.members == ()


def test_the_missing_volume_is_named_as_the_sender_named_it(tmp_path: Path) -> None:
    inspection = inspect(tmp_path, "volumes.part1.rar", "volumes.part3.rar")
    assert inspection.status is Status.INCOMPLETE
    assert "volumes.part2.rar" in (inspection.detail or "")
    assert str(tmp_path) not in (inspection.detail or "")


def test_a_missing_volume_after_a_long_word_is_named_in_linear_time(tmp_path: Path) -> None:
    """The volume's name is looked for only where a word starts (issue 8, finding 4): tried from each
    character of a 100,000-character word before it, the search took about two minutes."""
    stem = "x" * 100_000 + " 申报"
    archive = archive_of(
        tmp_path, "volumes.part1.rar", "volumes.part3.rar", names=(f"{stem}.part1.rar", f"{stem}.part3.rar")
    )
    workdir = tmp_path / "work"
    workdir.mkdir()
    started = time.monotonic()

    inspection = inspect_archive(archive, workdir, ArchiveLimits())

    assert time.monotonic() - started < 10
    assert inspection.status is Status.INCOMPLETE
    assert (inspection.detail or "").endswith("申报.part2.rar")


def test_a_first_volume_sent_under_a_plain_rar_name_is_incomplete(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    archive = archive_of(tmp_path, "volumes.part1.rar", names=("volumes.rar",))
    assert inspect_archive(archive, workdir, ArchiveLimits()).status is Status.INCOMPLETE


def test_a_set_without_its_first_volume_is_incomplete(tmp_path: Path) -> None:
    inspection = inspect(tmp_path, "volumes.part2.rar", "volumes.part3.rar")
    assert inspection.status is Status.INCOMPLETE


# -- hostile archives ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "member"),
    [
        ("symlink.rar", "link.docx"),
        ("hardlink.rar", "申报书-硬链接.docx"),
        ("filecopy.rar", "副本-申报书.docx"),
        ("dotdot.rar", "../evil.docx"),
    ],
)
def test_a_member_that_is_not_a_plain_safely_named_file_makes_the_archive_unsafe(
    tmp_path: Path, fixture: str, member: str
) -> None:
    inspection = inspect(tmp_path, fixture)
    assert inspection.status is Status.UNSAFE
    assert member in (inspection.detail or "")
    assert inspection.members == ()


def renamed_member(fixture: str, old: str, new: str) -> bytes:
    """The fixture with one member renamed in place (header CRC fixed), by the fixture script's own helper."""
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    data: bytes = script.rename_member((RAR / fixture).read_bytes(), old, new)
    return data


@pytest.mark.parametrize(
    "name",
    ["/etc/ev.docx", "C:/evil.docx", "C:\\evil.docx", "..\\evil.docx", "a/../../e.do", "\\\\srv\\e.docx"],
    ids=["absolute", "drive", "drive-backslash", "dotdot-backslash", "inner-dotdot", "unc"],
)
def test_absolute_and_escaping_member_names_make_the_archive_unsafe(tmp_path: Path, name: str) -> None:
    crafted = tmp_path / "crafted.rar"
    crafted.write_bytes(renamed_member("dotdot.rar", "../evil.docx", name))
    data = crafted.read_bytes()
    attachment = Attachment("crafted.rar", "application/octet-stream", crafted, len(data), "", data[:16])
    (archive,) = find_archives((attachment,))
    workdir = tmp_path / "work"
    workdir.mkdir()
    inspection = inspect_archive(archive, workdir, ArchiveLimits())
    assert inspection.status is Status.UNSAFE
    assert name in (inspection.detail or "")


def test_a_path_traversal_member_is_never_written_anywhere(tmp_path: Path) -> None:
    inspection = inspect(tmp_path, "dotdot.rar")
    assert inspection.status is Status.UNSAFE
    assert list(tmp_path.rglob("evil.docx")) == []
    assert not (tmp_path.parent / "evil.docx").exists()


@pytest.mark.parametrize("fixture", ["dotdot.rar", "symlink.rar", "valid.rar", "nested.rar", "volumes.part1.rar"])
def test_nothing_is_written_outside_the_private_folder_of_the_inspection(tmp_path: Path, fixture: str) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    archive = archive_of(tmp_path, fixture)
    mail_before = {p: p.read_bytes() for p in files_under(tmp_path / "mail")}
    inspection = inspect_archive(archive, workdir, ArchiveLimits())
    assert inspection.folder is not None
    private = inspection.folder.parent
    assert private.parent == workdir
    assert all(private in p.parents for p in files_under(workdir))
    assert {p: p.read_bytes() for p in files_under(tmp_path / "mail")} == mail_before
    assert {p.name for p in tmp_path.iterdir()} == {"mail", "work"}
    assert not any(p.is_symlink() for p in workdir.rglob("*"))


def test_each_inspection_gets_its_own_private_folder(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    first = inspect_archive(archive_of(tmp_path / "one", "valid.rar"), workdir, ArchiveLimits())
    second = inspect_archive(archive_of(tmp_path / "two", "solid.rar"), workdir, ArchiveLimits())
    assert first.folder is not None and second.folder is not None
    assert first.folder.parent != second.folder.parent
    assert first.folder.parent.parent == second.folder.parent.parent == workdir
    assert sorted(names(first)) == sorted(names(second)) == sorted(STANDARD)


def test_more_members_than_the_cap_is_unsafe(tmp_path: Path) -> None:
    inspection = inspect(tmp_path, "valid.rar", limits=ArchiveLimits(max_members=2))
    assert inspection.status is Status.UNSAFE
    assert "3" in (inspection.detail or "")


def test_exactly_the_member_cap_is_allowed(tmp_path: Path) -> None:
    inspection = inspect(tmp_path, "valid.rar", limits=ArchiveLimits(max_members=3))
    assert inspection.status is Status.OK


def test_more_unpacked_bytes_than_the_cap_is_unsafe(tmp_path: Path) -> None:
    inspection = inspect(tmp_path, "valid.rar", limits=ArchiveLimits(max_unpacked_bytes=1500))
    assert inspection.status is Status.UNSAFE
    assert inspection.members == ()


def test_a_compression_ratio_over_the_cap_is_unsafe(tmp_path: Path) -> None:
    limits = ArchiveLimits(max_ratio=0.5, ratio_floor_bytes=0)
    inspection = inspect(tmp_path, "valid.rar", limits=limits)
    assert inspection.status is Status.UNSAFE
    assert "ratio" in (inspection.detail or "")


def test_the_ratio_cap_waits_for_the_floor(tmp_path: Path) -> None:
    limits = ArchiveLimits(max_ratio=0.5, ratio_floor_bytes=1 << 20)
    assert inspect(tmp_path, "valid.rar", limits=limits).status is Status.OK


def test_no_worker_outlives_an_ordinary_inspection(tmp_path: Path) -> None:
    inspection = inspect(tmp_path, "valid.rar")
    assert inspection.status is Status.OK
    assert processes_working_in(tmp_path) == []


# -- the start-up self-test ---------------------------------------------------------------------------------


def test_the_self_test_passes_with_the_installed_unrar() -> None:
    assert self_test() is None


def test_the_self_test_fails_naming_unrar_when_it_cannot_be_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    message = self_test()
    assert message is not None
    assert "unrar" in message


def test_the_self_test_fails_when_the_tool_cannot_finish_in_time() -> None:
    message = self_test(ArchiveLimits(timeout_seconds=0.001))
    assert message is not None
    assert "unrar" in message


def test_the_install_help_names_the_package_to_install() -> None:
    assert "apt-get install unrar" in UNRAR_HELP
