"""Every member inspected, by its position (issue 8, finding 6), and ZIP archives read by the same rules
(issue 9: the city bureaus send an outer RAR or ZIP holding a letter, tables and one inner RAR each)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from archive_support import archive_from, inspect, names
from conftest import ENTERPRISE, FIXTURES, rar, submission

from daemon.campaign import ArchiveLimits
from daemon.domain import Code, Outcome
from daemon.intake.archive import Inspection, Kind, Status, inspect_archive, member_attachment
from daemon.intake.attachments import find_archives
from daemon.intake.context import Context
from daemon.intake.documents import Content
from daemon.pipeline import judge

ZIP = FIXTURES / "zip"
STANDARD = ["申报书.docx", "典型经验材料.docx", "证明材料.docx"]
FAKE_FORM = "{\\rtf1\\ansi 这不是 Word 文档，是改了扩展名的 RTF。}\n".encode()


def read_zip(tmp_path: Path, fixture: str, limits: ArchiveLimits | None = None) -> Inspection:
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    return inspect_archive(archive_from(ZIP / fixture, workdir), workdir, limits or ArchiveLimits())


def written(inspection: Inspection, name: str) -> list[bytes]:
    assert inspection.folder is not None
    return [(inspection.folder / m.stored_as).read_bytes() for m in inspection.members if m.name == name]


# -- two members of the same name --------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["duplicate_names.rar", "duplicate_names_fake_first.rar"])
def test_both_members_of_the_same_name_are_read_each_with_its_own_bytes(tmp_path: Path, fixture: str) -> None:
    inspection = inspect(tmp_path, fixture)
    assert inspection.status is Status.OK
    assert sorted(names(inspection)) == sorted([*STANDARD, "申报书.docx"])
    forms = [m for m in inspection.members if m.name == "申报书.docx"]
    assert len({m.sha256 for m in forms}) == 2
    assert {m.content for m in forms} == {Content.DOCX, Content.OTHER}
    assert FAKE_FORM in written(inspection, "申报书.docx")
    for member in forms:
        data = written(inspection, "申报书.docx")[forms.index(member)]
        assert hashlib.sha256(data).hexdigest() == member.sha256
    assert inspection.duplicates == ("申报书.docx",)


def test_an_archive_without_duplicates_reports_none(tmp_path: Path) -> None:
    assert inspect(tmp_path, "valid.rar").duplicates == ()


@pytest.mark.parametrize("fixture", ["duplicate_names.rar", "duplicate_names_fake_first.rar"])
def test_a_duplicate_is_a_problem_named_in_the_reply_and_the_receipt_never_lists_one_hash_twice(
    tmp_path: Path, fixture: str
) -> None:
    raw = submission(attachments=[(f"{ENTERPRISE}.rar", rar(fixture))])
    verdict = judge(raw, context=Context(), workdir=tmp_path).verdict
    assert verdict.outcome is Outcome.REJECTED
    (duplicate,) = [p for p in verdict.problems if p.code is Code.DUPLICATE_MEMBER]
    assert duplicate.detail == "申报书.docx"
    forms = [d for d in verdict.documents if d.name == "申报书.docx"]
    assert len(forms) == 2
    assert len({d.sha256 for d in forms}) == 2


# -- ZIP ---------------------------------------------------------------------------------------------------


def test_a_zip_is_read_like_a_rar_and_says_so(tmp_path: Path) -> None:
    inspection = read_zip(tmp_path, "valid.zip")
    assert inspection.status is Status.OK
    assert inspection.kind is Kind.ZIP
    assert names(inspection) == STANDARD
    assert {m.content for m in inspection.members} == {Content.DOCX}
    assert inspect(tmp_path, "valid.rar").kind is Kind.RAR


def test_zip_members_are_written_whole_under_names_the_reader_chose(tmp_path: Path) -> None:
    import zipfile

    inspection = read_zip(tmp_path, "valid.zip")
    assert inspection.folder is not None
    with zipfile.ZipFile(ZIP / "valid.zip") as original:
        for member in inspection.members:
            assert member.stored_as.startswith("member-")
            data = (inspection.folder / member.stored_as).read_bytes()
            assert data == original.read(member.name)
            assert member.sha256 == hashlib.sha256(data).hexdigest()
    assert {p.name for p in inspection.folder.iterdir()} == {m.stored_as for m in inspection.members}


def test_gbk_names_of_a_zip_without_the_utf8_flag_are_decoded(tmp_path: Path) -> None:
    inspection = read_zip(tmp_path, "gbk_names.zip")
    assert inspection.status is Status.OK
    assert names(inspection) == [f"潍坊金穗食品股份有限公司/{name}" for name in STANDARD]


@pytest.mark.parametrize(
    ("fixture", "status", "detail"),
    [
        ("encrypted.zip", Status.ENCRYPTED, "申报书.docx"),
        ("symlink.zip", Status.UNSAFE, "link.docx"),
        ("dotdot.zip", Status.UNSAFE, "../evil.docx"),
        ("corrupt.zip", Status.CORRUPT, "典型经验材料.docx"),
    ],
)
def test_zip_archives_that_cannot_or_must_not_be_read(
    tmp_path: Path, fixture: str, status: Status, detail: str
) -> None:
    inspection = read_zip(tmp_path, fixture)
    assert inspection.status is status
    assert detail in (inspection.detail or "")
    assert inspection.members == ()
    assert list(tmp_path.rglob("evil.docx")) == []


def test_zip_caps_are_the_rar_caps(tmp_path: Path) -> None:
    assert read_zip(tmp_path, "valid.zip", ArchiveLimits(max_members=2)).status is Status.UNSAFE
    ratio = ArchiveLimits(max_ratio=0.5, ratio_floor_bytes=0)
    inspection = read_zip(tmp_path, "valid.zip", ratio)
    assert inspection.status is Status.UNSAFE
    assert "ratio" in (inspection.detail or "")


def test_a_bureau_bundle_yields_its_letter_and_inner_archives_ready_to_be_read_in_turn(tmp_path: Path) -> None:
    inspection = read_zip(tmp_path, "bureau_bundle.zip")
    assert inspection.status is Status.OK
    contents = {m.name: m.content for m in inspection.members}
    assert contents == {
        "济南市工业和信息化局关于推荐质量标杆的函.pdf": Content.PDF,
        f"{ENTERPRISE}.rar": Content.RAR,
        "潍坊金穗食品股份有限公司.zip": Content.ZIP,
    }
    inner = [member_attachment(inspection, m) for m in inspection.members if m.content is not Content.PDF]
    (archive,) = find_archives(tuple(inner))  # the inner RAR, found as an attachment would be
    assert archive.name == ENTERPRISE
    workdir = tmp_path / "inner"
    workdir.mkdir()
    nested = inspect_archive(archive, workdir, ArchiveLimits())
    assert nested.status is Status.OK
    assert nested.kind is Kind.RAR
    assert names(nested) == STANDARD
