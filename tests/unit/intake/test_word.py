"""Text, tables and pictures out of Word documents, pages out of PDF scans (issue 11)."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pytest
from conftest import FIXTURES
from PIL import Image

from daemon.domain import SealStatus
from daemon.intake.seal import find_seal
from daemon.intake.word import (
    WORK_SIDE,
    Picture,
    UnreadableDocument,
    WordLimits,
    _embedded_images,
    read_word,
    render_pdf,
    word_count,
)

SEALS = FIXTURES / "seals"
COMPANY = "济南明湖软件科技有限公司"
needs_antiword = pytest.mark.skipif(shutil.which("antiword") is None, reason="antiword is not installed")
needs_pdftoppm = pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm is not installed")


def image_bytes(kind: str, size: tuple[int, int] = (40, 30), **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "red").save(buffer, kind, **options)
    return buffer.getvalue()


def test_a_docx_gives_paragraphs_and_table_cells_in_document_order() -> None:
    content = read_word(SEALS / "e-seal.docx")
    lines = content.text.split("\n")
    assert lines[:3] == ["附件2", "2022年全省质量标杆申报书", "申报单位\t济南明湖软件科技"]
    assert "质量标杆名称：\t数字化质量管控实践" in lines
    assert lines.index("申报单位（盖章）：") > lines.index("所属行业\t软件业")
    assert content.tables == (
        (("申报单位", "济南明湖软件科技\n有限公司"), ("质量标杆名称：", "数字化质量管控实践"), ("所属行业", "软件业")),
    )
    assert [p.text for p in content.paragraphs][:2] == ["附件2", "2022年全省质量标杆申报书"]


def test_a_docx_lists_its_pictures_by_member_name_and_counts_its_words() -> None:
    content = read_word(SEALS / "scan-page.docx")
    assert [(p.name, p.format) for p in content.pictures] == [("word/media/image1.jpg", "JPEG")]
    assert content.has_pictures and content.picture_count == 1 and not content.truncated
    assert content.word_count == word_count(content.text) > 100
    assert not read_word(SEALS / "none.docx").has_pictures


def test_a_heading_style_is_known_by_its_name_even_when_its_id_is_a_number() -> None:
    styles = {p.text: p.style for p in read_word(SEALS / "write-up.docx").paragraphs}
    assert styles["以数字化手段推动全员质量改进的实践"] == "heading 1"
    assert styles["附件3"] == ""


def test_word_counts_each_chinese_character_and_each_latin_or_number_word() -> None:
    assert word_count("质量标杆 QC小组 86项，合格率99.3%") == 13  # 质量标杆 QC 小组 86 项 合格率 99.3%


@needs_antiword
def test_a_doc_made_by_libreoffice_reads_like_its_docx() -> None:
    doc, docx = read_word(SEALS / "e-seal.doc"), read_word(SEALS / "e-seal.docx")
    assert doc.word_count == docx.word_count
    assert ("质量标杆名称：", "数字化质量管控实践") in doc.tables[0]
    assert "申报单位（盖章）：" in [p.text for p in doc.paragraphs]
    assert "[pic]" not in doc.text


@needs_antiword
def test_the_picture_inside_a_doc_is_found_in_its_ole_streams() -> None:
    doc, docx = read_word(SEALS / "e-seal.doc"), read_word(SEALS / "e-seal.docx")
    assert [(p.format, p.width, p.height) for p in doc.pictures] == [
        (p.format, p.width, p.height) for p in docx.pictures
    ]
    assert doc.pictures[0].data == docx.pictures[0].data
    assert doc.pictures[0].name.startswith(("Data@", "WordDocument@"))


def test_a_jpeg_in_a_stream_is_cut_at_its_own_end_even_with_an_exif_thumbnail() -> None:
    exif = Image.Exif()
    exif[0x010E] = "x" * 50  # ImageDescription
    photo = image_bytes("JPEG", exif=exif.tobytes())
    icon = image_bytes("PNG")
    found = list(_embedded_images(b"\x00" * 7 + photo + b"\xff\xd9junk" + icon + b"tail"))
    assert found == [(7, photo), (7 + len(photo) + 6, icon)]


def test_a_broken_picture_in_a_stream_is_skipped() -> None:
    assert list(_embedded_images(b"\x89PNG\r\n\x1a\n\x00\x00")) == []


def test_the_picture_cap_leaves_pictures_out_and_says_so(tmp_path: Path) -> None:
    content = read_word(SEALS / "scan-page.docx", WordLimits(max_pictures=0))
    assert content.pictures == () and content.picture_count == 1 and content.has_pictures and content.truncated


def test_a_picture_over_the_pixel_cap_is_left_out() -> None:
    content = read_word(SEALS / "scan-page.docx", WordLimits(max_picture_pixels=1000))
    assert content.pictures == () and content.truncated


def test_the_text_cap_cuts_the_text_and_says_so() -> None:
    content = read_word(SEALS / "e-seal.docx", WordLimits(max_text_chars=10))
    assert content.text == "附件2\n2022年全" and content.truncated


def test_an_oversized_document_part_is_refused() -> None:
    with pytest.raises(UnreadableDocument, match="over the limit"):
        read_word(SEALS / "e-seal.docx", WordLimits(max_part_bytes=100))


def test_a_file_that_is_no_word_document_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "申报书.docx"
    text.write_text("不是 Word 文档", encoding="utf-8")
    with pytest.raises(UnreadableDocument, match="not a Word document"):
        read_word(text)
    archive = tmp_path / "other.docx"
    with zipfile.ZipFile(archive, "w") as package:
        package.writestr("readme.txt", "hello")
    with pytest.raises(UnreadableDocument):
        read_word(archive)


@needs_pdftoppm
def test_a_pdf_scan_becomes_one_picture_per_page_up_to_the_cap_at_the_size_the_seal_search_works_at() -> None:
    pages = render_pdf(SEALS / "two-pages.pdf")
    assert [(p.name, p.format, max(p.width, p.height)) for p in pages] == [
        ("page-1", "TIFF", WORK_SIDE),
        ("page-2", "TIFF", WORK_SIDE),
    ]
    assert [p.name for p in render_pdf(SEALS / "two-pages.pdf", WordLimits(max_pdf_pages=1))] == ["page-1"]


@needs_pdftoppm
def test_the_seal_of_a_scanned_pdf_is_found_on_its_page_and_an_unstamped_pdf_has_none() -> None:
    """The pages are pictures the seal search reads as it reads a form's own pictures."""
    stamped, plain = find_seal(render_pdf(SEALS / "scan-page.pdf")), find_seal(render_pdf(SEALS / "two-pages.pdf"))
    assert (stamped.status, stamped.picture) == (SealStatus.FOUND, "page-2")
    assert plain.status is SealStatus.NOT_FOUND


@needs_pdftoppm
def test_a_damaged_pdf_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "scan.pdf"
    broken.write_bytes(b"%PDF-1.4\n" + b"\x00" * 100)
    with pytest.raises(UnreadableDocument, match="pdftoppm"):
        render_pdf(broken)


def test_a_picture_keeps_its_bytes() -> None:
    picture = read_word(SEALS / "red-logo.docx").pictures[0]
    assert isinstance(picture, Picture) and picture.data.startswith(b"\x89PNG") and picture.format == "PNG"
