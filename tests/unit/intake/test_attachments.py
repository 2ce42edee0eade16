"""Which attached file is the archive: RAR by content, volumes of a set by name (daemon/intake/attachments.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ENTERPRISE, rar

from daemon.domain import ArchiveFile, Attachment
from daemon.intake.attachments import choose_archive, find_archives, is_rar

RAR4_HEAD = b"Rar!\x1a\x07\x00\xcf\x90\x73\x00\x00\x0d\x00\x00\x00"
RAR5_HEAD = b"Rar!\x1a\x07\x01\x00\xc1\xdf\x5f\x56\x03\x01\x04\x00"
ZIP_HEAD = b"PK\x03\x04\x14\x00\x00\x08\x08\x00\x00\x00\x21\x58\x2a\xbc"
SEVEN_ZIP_HEAD = b"7z\xbc\xaf\x27\x1c\x00\x04"


def attachment(filename: str, head: bytes = RAR5_HEAD, size: int = 1000) -> Attachment:
    return Attachment(
        filename=filename,
        content_type="application/octet-stream",
        path=Path("/nonexistent") / filename,
        size=size,
        sha256="0" * 64,
        head=head,
    )


def fixture(name: str, filename: str | None = None) -> Attachment:
    data = rar(name)
    return attachment(filename or name, head=data[:16], size=len(data))


# -- recognising RAR ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("head", [RAR4_HEAD, RAR5_HEAD], ids=["rar4", "rar5"])
def test_rar_is_recognised_by_its_signature(head: bytes) -> None:
    assert is_rar(attachment("x.rar", head))


@pytest.mark.parametrize("name", ["valid.rar", "volumes.part1.rar", "rar4_gbk_names.rar", "encrypted_headers.rar"])
def test_committed_rar_fixtures_are_recognised(name: str) -> None:
    assert is_rar(fixture(name))


@pytest.mark.parametrize(
    "head",
    [ZIP_HEAD, SEVEN_ZIP_HEAD, b"", b"Rar!", b"Rar!\x1a\x07\x02\x00", b"not a rar at all"],
    ids=["zip", "7z", "empty", "short", "unknown-version", "text"],
)
def test_other_content_named_rar_is_not_rar(head: bytes) -> None:
    assert not is_rar(attachment(f"{ENTERPRISE}.rar", head))


def test_zip_named_rar_is_not_an_archive() -> None:
    assert not is_rar(fixture("not_rar.rar"))
    assert find_archives((fixture("not_rar.rar", f"{ENTERPRISE}.rar"),)) == []


@pytest.mark.parametrize("filename", [f"{ENTERPRISE}.zip", f"{ENTERPRISE}.7z", ENTERPRISE, "attachment.dat"])
def test_rar_with_another_name_is_still_an_archive(filename: str) -> None:
    rar_file = fixture("valid.rar", filename)
    assert is_rar(rar_file)
    (archive,) = find_archives((rar_file,))
    assert archive.volumes == (rar_file,)
    assert archive.missing == ()


def test_no_attachments_give_no_archives() -> None:
    assert find_archives(()) == []


def test_only_rar_attachments_become_archives() -> None:
    archive_file = attachment(f"{ENTERPRISE}.rar")
    others = (attachment("说明.docx", ZIP_HEAD), attachment("logo.png", b"\x89PNG\r\n\x1a\n"))
    (archive,) = find_archives((others[0], archive_file, others[1]))
    assert archive.volumes == (archive_file,)


# -- single archives ---------------------------------------------------------------------------------------


def test_single_archive_is_named_without_rar() -> None:
    (archive,) = find_archives((attachment(f"{ENTERPRISE}.rar"),))
    assert archive.name == ENTERPRISE
    assert archive.local_names == ("archive.rar",)
    assert archive.missing == ()


def test_upper_case_extension_is_removed_from_the_name() -> None:
    (archive,) = find_archives((attachment(f"{ENTERPRISE}.RAR"),))
    assert archive.name == ENTERPRISE


def test_two_unrelated_rar_files_are_two_archives() -> None:
    first, second = attachment(f"{ENTERPRISE}.rar"), attachment("其他材料.rar")
    archives = find_archives((first, second))
    assert [a.name for a in archives] == [ENTERPRISE, "其他材料"]
    assert [a.volumes for a in archives] == [(first,), (second,)]


def test_two_single_rar_files_of_the_same_name_stay_two_archives() -> None:
    assert len(find_archives((attachment("x.rar"), attachment("x.rar")))) == 2


# -- multi-volume sets -------------------------------------------------------------------------------------


def test_complete_volume_set_is_one_archive_named_without_part() -> None:
    parts = [attachment(f"{ENTERPRISE}.part{n}.rar", size=100 * n) for n in (1, 2, 3)]
    (archive,) = find_archives(tuple(parts))
    assert archive.name == ENTERPRISE
    assert archive.volumes == tuple(parts)
    assert archive.local_names == ("archive.part1.rar", "archive.part2.rar", "archive.part3.rar")
    assert archive.missing == ()
    assert archive.size == 600


def test_volumes_attached_out_of_order_are_put_in_order() -> None:
    parts = {n: attachment(f"X.part{n}.rar") for n in (1, 2, 3)}
    (archive,) = find_archives((parts[3], parts[1], parts[2]))
    assert archive.volumes == (parts[1], parts[2], parts[3])
    assert archive.missing == ()


def test_committed_volume_fixtures_join_into_one_archive() -> None:
    volumes = tuple(fixture(f"volumes.part{n}.rar") for n in (1, 2, 3))
    (archive,) = find_archives(volumes)
    assert archive.name == "volumes"
    assert archive.missing == ()
    assert archive.size == sum(len(rar(f"volumes.part{n}.rar")) for n in (1, 2, 3))


def test_set_with_a_middle_volume_absent_lists_it_as_missing() -> None:
    (archive,) = find_archives((attachment("X.part1.rar"), attachment("X.part3.rar")))
    assert archive.name == "X"
    assert archive.missing == ("X.part2.rar",)
    assert archive.local_names == ("archive.part1.rar", "archive.part3.rar")


def test_set_without_its_first_volume_lists_part1_as_missing() -> None:
    (archive,) = find_archives((attachment("X.part2.rar"), attachment("X.part3.rar")))
    assert archive.name == "X"
    assert archive.missing == ("X.part1.rar",)


def test_missing_volume_is_named_as_the_sender_named_the_set() -> None:
    (archive,) = find_archives((attachment(f"{ENTERPRISE}.part1.rar"), attachment(f"{ENTERPRISE}.part3.rar")))
    assert archive.missing == (f"{ENTERPRISE}.part2.rar",)


def test_zero_padded_volume_numbers_keep_their_width() -> None:
    parts = tuple(attachment(f"X.part{n:02d}.rar") for n in (1, 2, 3))
    (archive,) = find_archives(parts)
    assert archive.name == "X"
    assert archive.local_names == ("archive.part01.rar", "archive.part02.rar", "archive.part03.rar")
    assert archive.missing == ()


def test_zero_padded_missing_volume_keeps_its_width() -> None:
    (archive,) = find_archives((attachment("X.part01.rar"), attachment("X.part03.rar")))
    assert archive.missing == ("X.part02.rar",)


def test_volumes_of_two_different_sets_are_two_archives() -> None:
    archives = find_archives(
        (attachment("A.part1.rar"), attachment("B.part1.rar"), attachment("A.part2.rar"), attachment("B.part2.rar"))
    )
    assert sorted((a.name, len(a.volumes), a.missing) for a in archives) == [("A", 2, ()), ("B", 2, ())]


def test_volume_named_part_that_is_not_rar_is_ignored() -> None:
    (archive,) = find_archives((attachment("X.part1.rar"), attachment("X.part2.rar", ZIP_HEAD)))
    assert archive.missing == ()
    assert len(archive.volumes) == 1


def test_old_style_volumes_join_with_the_rar_as_first_volume() -> None:
    first, second, third = (attachment(name, RAR4_HEAD) for name in ("X.rar", "X.r00", "X.r01"))
    (archive,) = find_archives((third, first, second))
    assert archive.name == "X"
    assert archive.volumes == (first, second, third)
    assert archive.local_names == ("archive.rar", "archive.r00", "archive.r01")
    assert archive.missing == ()


def test_rar5_volumes_under_old_style_names_are_read_under_part_names() -> None:
    """RAR5 looks for its next volume only as X.partN.rar, so a renamed set is given such names privately."""
    (archive,) = find_archives((attachment("X.rar"), attachment("X.r00"), attachment("X.r01")))
    assert archive.name == "X"
    assert archive.local_names == ("archive.part01.rar", "archive.part02.rar", "archive.part03.rar")


def test_old_style_set_without_its_rar_lists_it_as_missing() -> None:
    (archive,) = find_archives((attachment("X.r00"), attachment("X.r01")))
    assert archive.missing == ("X.rar",)


def test_old_style_set_with_a_middle_volume_absent_lists_it_as_missing() -> None:
    (archive,) = find_archives((attachment("X.rar"), attachment("X.r01")))
    assert archive.missing == ("X.r00",)


# -- choosing the archive ----------------------------------------------------------------------------------


def _archive(name: str, size: int) -> ArchiveFile:
    volume = attachment(f"{name}.rar", size=size)
    return ArchiveFile(name, (volume,), ("archive.rar",))


def test_choose_archive_of_none_is_none() -> None:
    assert choose_archive([], ENTERPRISE) is None


def test_archive_named_after_the_enterprise_is_preferred_over_a_larger_one() -> None:
    named = _archive(ENTERPRISE, 10)
    larger = _archive("补充材料", 10_000)
    assert choose_archive([larger, named], ENTERPRISE) is named


def test_archive_name_is_compared_after_normalisation() -> None:
    named = _archive("临沂沂蒙新材料科技(集团) 有限公司", 10)
    larger = _archive("补充材料", 10_000)
    assert choose_archive([larger, named], "临沂沂蒙新材料科技（集团）有限公司") is named


def test_largest_archive_is_chosen_when_none_is_named_after_the_enterprise() -> None:
    small, large, medium = _archive("a", 10), _archive("b", 10_000), _archive("c", 500)
    assert choose_archive([small, large, medium], ENTERPRISE) is large


def test_largest_archive_is_chosen_when_the_enterprise_is_unknown() -> None:
    small, large = _archive(ENTERPRISE, 10), _archive("b", 10_000)
    assert choose_archive([small, large], None) is large


def test_size_of_a_volume_set_counts_all_its_volumes() -> None:
    volume_set = find_archives(tuple(attachment(f"S.part{n}.rar", size=400) for n in (1, 2, 3)))[0]
    single = _archive("single", 1000)
    assert choose_archive([single, volume_set], None) is volume_set
