"""The recommendation letter (推荐文件): does the PDF open, and how many pages has it?

A letter locked only against editing (an owner password, common on official PDFs) opens in any reader, so
it counts as readable; one that asks for a password to open does not. pypdf runs lenient (strict=False)
as readers do, on at most `max_bytes` read into memory, and any error it raises means a damaged file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

MAX_PDF_BYTES = 50 * 1024 * 1024
_HEADER_WINDOW = 1024
"""Readers accept the %PDF- header anywhere in the first kilobyte."""


@dataclass(frozen=True)
class PdfInfo:
    pages: int


@dataclass(frozen=True)
class PdfError:
    """Why the letter cannot be read, in words for the sender."""

    reason: str


_RESEND = "请重新导出或扫描后再发送"


def read_pdf(path: Path, max_bytes: int = MAX_PDF_BYTES) -> PdfInfo | PdfError:
    from pypdf import PasswordType, PdfReader

    try:
        with path.open("rb") as stream:
            data = stream.read(max_bytes + 1)
    except OSError:
        return PdfError("文件无法读取")
    if len(data) > max_bytes:
        return PdfError(f"文件超过 {max_bytes / 1024 / 1024:g} MB，请压缩后重新发送")
    if b"%PDF-" not in data[:_HEADER_WINDOW]:
        return PdfError(f"不是 PDF 文件，{_RESEND}")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            return PdfError("PDF 设有打开密码，请取消密码后重新发送")
        pages = len(reader.pages)
    except Exception:  # noqa: BLE001 - pypdf raises many types (and RecursionError) on damaged files
        return PdfError(f"PDF 文件已损坏，无法打开，{_RESEND}")
    if pages == 0:
        return PdfError(f"PDF 文件没有任何页面，{_RESEND}")
    return PdfInfo(pages)
