"""The city bureaus' recommendation letters (推荐文件): `read_pdf` (issue 9)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from conftest import FIXTURES
from pypdf import PdfWriter

from daemon.intake.pdf import PdfError, PdfInfo, read_pdf


def pdf(pages: int = 2, *, user_password: str | None = None, algorithm: str = "AES-128") -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(595, 842)
    writer.add_metadata({"/Title": "泰安市工业和信息化局关于推荐2022年全省质量标杆的函"})
    if user_password is not None:
        writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm=algorithm)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def read(tmp_path: Path, data: bytes, **kwargs: int) -> PdfInfo | PdfError:
    path = tmp_path / "推荐文件.pdf"
    path.write_bytes(data)
    return read_pdf(path, **kwargs)


BUREAUS = FIXTURES / "bureaus"


@pytest.mark.parametrize("path", sorted((BUREAUS / "letters").iterdir()), ids=lambda p: p.name)
def test_each_bureau_letter_opens_with_its_page_count(path: Path) -> None:
    cases = json.loads((BUREAUS / "expected.json").read_text())["cases"].values()
    (pages,) = {case["letter_pages"] for case in cases if path.name in case["attachments"] and case["letter"]} or {1}

    assert read_pdf(path) == PdfInfo(pages)


@pytest.mark.parametrize("pages", [1, 3])
def test_the_pages_of_a_letter_are_counted(tmp_path: Path, pages: int) -> None:
    assert read(tmp_path, pdf(pages)) == PdfInfo(pages)


def test_a_header_after_a_little_leading_junk_is_still_a_pdf(tmp_path: Path) -> None:
    assert read(tmp_path, b"\r\n" * 100 + pdf(2)) == PdfInfo(2)


def test_a_letter_locked_only_against_editing_opens_and_is_counted(tmp_path: Path) -> None:
    assert read(tmp_path, pdf(2, user_password="")) == PdfInfo(2)


@pytest.mark.parametrize("algorithm", ["AES-256", "AES-128", "RC4-128"])
def test_a_pdf_that_asks_for_a_password_to_open_is_refused_as_encrypted(tmp_path: Path, algorithm: str) -> None:
    outcome = read(tmp_path, pdf(2, user_password="secret", algorithm=algorithm))

    assert outcome == PdfError("PDF 设有打开密码，请取消密码后重新发送")


@pytest.mark.parametrize("keep", [0.2, 0.5, 0.9])
def test_a_truncated_pdf_is_refused_as_damaged(tmp_path: Path, keep: float) -> None:
    data = pdf(2)

    outcome = read(tmp_path, data[: int(len(data) * keep)])

    assert isinstance(outcome, PdfError)
    assert "已损坏" in outcome.reason


def test_a_pdf_header_followed_by_garbage_is_refused_as_damaged(tmp_path: Path) -> None:
    outcome = read(tmp_path, b"%PDF-1.4\n" + bytes(range(256)) * 8)

    assert isinstance(outcome, PdfError)
    assert "已损坏" in outcome.reason


def test_a_pdf_without_pages_is_refused(tmp_path: Path) -> None:
    outcome = read(tmp_path, pdf(0))

    assert isinstance(outcome, PdfError)
    assert "没有任何页面" in outcome.reason


@pytest.mark.parametrize(
    "data",
    [b"", "推荐文件\n".encode(), b"PK\x03\x04" + bytes(100), b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512)],
    ids=["empty", "text", "zip", "word-97"],
)
def test_a_file_that_is_not_a_pdf_is_refused_as_such(tmp_path: Path, data: bytes) -> None:
    outcome = read(tmp_path, data)

    assert isinstance(outcome, PdfError)
    assert outcome.reason.startswith("不是 PDF 文件")


def test_a_pdf_over_the_size_cap_is_not_read(tmp_path: Path) -> None:
    outcome = read(tmp_path, pdf(2), max_bytes=100)

    assert isinstance(outcome, PdfError)
    assert "超过" in outcome.reason


def test_a_missing_file_gives_a_reason_instead_of_raising(tmp_path: Path) -> None:
    assert read_pdf(tmp_path / "gone.pdf") == PdfError("文件无法读取")
