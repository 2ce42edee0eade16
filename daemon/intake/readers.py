"""A bureau's letter and table, and the documents of a package, read in isolated children like archives:
PDF, workbook, Word and image parsers meet files from strangers, so each read gets a memory cap and a time
limit, and a hostile file costs a bounded moment.

A reader that runs out of time or memory on a file is the file's doing: the letter or table is reported
unreadable (with a reason the bureau can act on). Our own trouble (the child could not start, the disk is
full) raises EnvironmentFault, as everywhere in intake.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..campaign import DocumentLimits, Reading
from .contents import NotRead, Read
from .document_reader import OUT_OF_MEMORY, Request, read_contents
from .faults import EnvironmentFault
from .isolation import Isolation, Limits, TimedOut
from .pdf import PdfError, PdfInfo, read_pdf
from .similarity import similar_pairs
from .spreadsheet import Table, TableError, read_table
from .word import WordLimits

_READERS = Isolation(preload=("daemon.intake.pdf", "daemon.intake.spreadsheet", "pypdf", "openpyxl", "xlrd"))
_LIMITS = Limits(memory_bytes=768 << 20, timeout_seconds=60.0)
_DOCUMENTS = Isolation(
    preload=("daemon.intake.document_reader", "cv2", "numpy", "PIL.Image", "datasketch", "olefile", "pypdf")
)
"""The document reader's server: the image libraries are imported there only, never in the daemon."""
_BUSY_SHARE = 0.25
"""As for archives: a reader out of time with less processor time than this share of it was starved."""
_TOO_SLOW = "文件结构异常，无法在合理时间内读取，请重新导出后发送"


def read_letter(path: Path, workdir: Path) -> PdfInfo | PdfError:
    try:
        return _READERS.run(_LIMITS, Path(tempfile.mkdtemp(prefix="letter-", dir=workdir)), read_pdf, path)
    except (TimedOut, MemoryError):
        return PdfError(_TOO_SLOW)


def read_summary(path: Path, workdir: Path) -> Table | TableError:
    try:
        return _READERS.run(_LIMITS, Path(tempfile.mkdtemp(prefix="table-", dir=workdir)), read_table, path)
    except (TimedOut, MemoryError):
        return TableError(_TOO_SLOW)


def read_document(path: Path, reading: Reading, is_pdf: bool, workdir: Path, limits: DocumentLimits) -> Read | NotRead:
    """One document's contents; raises EnvironmentFault when our side failed, not the document."""
    word_limits = WordLimits(timeout_seconds=limits.timeout_seconds)
    request = Request(path, reading, is_pdf, word_limits)
    folder = Path(tempfile.mkdtemp(prefix="document-", dir=workdir))
    try:
        return _DOCUMENTS.run(Limits(limits.memory_bytes, limits.timeout_seconds), folder, read_contents, request)
    except TimedOut as timeout:
        if timeout.cpu_seconds < _BUSY_SHARE * timeout.seconds:
            raise EnvironmentFault(f"reading a document ran out of time while hardly running: {timeout}") from None
        return NotRead(f"读取用时超过 {timeout.seconds:g} 秒的上限", too_hard=True)
    except MemoryError:
        return NotRead(OUT_OF_MEMORY, too_hard=True)


def similar_texts(
    signatures: list[tuple[int, str]], threshold: float, limits: DocumentLimits
) -> list[tuple[int, int, float]]:
    """The pairs of keys whose write-ups are near-identical (similarity.similar_pairs), computed in the
    reader's server: datasketch imports scipy (60 MB), which the daemon and the console need not hold."""
    if len(signatures) < 2:
        return []
    with tempfile.TemporaryDirectory(prefix="similar-") as folder:
        return _DOCUMENTS.run(
            Limits(limits.memory_bytes, limits.timeout_seconds), Path(folder), similar_pairs, signatures, threshold
        )
