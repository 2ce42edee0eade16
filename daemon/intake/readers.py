"""A bureau's letter and table, and the documents of a package, read in isolated children like archives:
PDF, workbook, Word and image parsers meet files from strangers, so each read gets a memory cap and a time
limit, and a hostile file costs a bounded moment.

A reader that runs out of time or memory on a file is the file's doing: the letter or table is reported
unreadable (with a reason the bureau can act on). Our own trouble (the child could not start, the disk is
full) raises EnvironmentFault, as everywhere in intake.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..campaign import DocumentLimits, Reading
from .contents import NotRead, Read
from .document_reader import OUT_OF_MEMORY, Request, read_all
from .faults import EnvironmentFault
from .isolation import Isolation, Limits, TimedOut
from .pdf import PdfError, PdfInfo, read_pdf
from .similarity import similar_pairs
from .spreadsheet import Table, TableError, read_table
from .word import WordLimits

_READERS = Isolation(preload=("daemon.intake.pdf", "daemon.intake.spreadsheet", "pypdf", "openpyxl", "xlrd"))
_LIMITS = Limits(memory_bytes=768 << 20, timeout_seconds=60.0)
_DOCUMENTS = Isolation(
    preload=(
        "daemon.intake.document_reader",
        "daemon.intake.seal",
        "daemon.intake.similarity",
        "cv2",
        "numpy",
        "datasketch",
        "olefile",
        "pypdf",
        "PIL.Image",
        "PIL.ImageChops",
        # Pillow's formats, which it otherwise imports on the first picture it opens
        "PIL.BmpImagePlugin",
        "PIL.GifImagePlugin",
        "PIL.JpegImagePlugin",
        "PIL.PngImagePlugin",
        "PIL.PpmImagePlugin",
        "encodings.cp437",  # zipfile's names that are not UTF-8
        "fractions",
    )
)
"""The document reader's server: the image libraries are imported there only, never in the daemon. Everything
reading a document imports is imported here, once: imported in each forked child, it cost 35 ms a package."""
_BUSY_SHARE = 0.25
"""As for archives: a reader out of time with less processor time than this share of it was starved."""
_TOO_SLOW = "文件结构异常，无法在合理时间内读取，请重新导出后发送"


def start_document_reader() -> None:
    """Start the document reader's server ahead of the first package (Isolation.start)."""
    _DOCUMENTS.start()


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


def read_documents(
    documents: Sequence[tuple[Path, Reading, bool]], workdir: Path, limits: DocumentLimits
) -> list[Read | NotRead]:
    """The contents of a package's documents, (path, reading, is_pdf) each: read together in one child (one
    fork, not one per document); when that runs out of time, each is read alone to tell which one did.
    Raises EnvironmentFault when our side failed, not a document."""
    requests = [Request(path, reading, is_pdf, WordLimits(timeout_seconds=limits.timeout_seconds))
                for path, reading, is_pdf in documents]  # fmt: skip
    if len(requests) > 1:
        together = _read(requests, workdir, limits, limits.timeout_seconds * len(requests))
        if together is not None:
            return together
    return [
        (_read([request], workdir, limits, limits.timeout_seconds) or [_too_slow(limits)])[0] for request in requests
    ]


def read_document(path: Path, reading: Reading, is_pdf: bool, workdir: Path, limits: DocumentLimits) -> Read | NotRead:
    """One document's contents (see read_documents)."""
    [found] = read_documents([(path, reading, is_pdf)], workdir, limits)
    return found


def _read(
    requests: list[Request], workdir: Path, limits: DocumentLimits, seconds: float
) -> list[Read | NotRead] | None:
    """None when the child ran out of time on the documents' account."""
    folder = Path(tempfile.mkdtemp(prefix="document-", dir=workdir))
    try:
        return _DOCUMENTS.run(Limits(limits.memory_bytes, seconds), folder, read_all, requests)
    except TimedOut as timeout:
        if timeout.cpu_seconds < _BUSY_SHARE * timeout.seconds:
            raise EnvironmentFault(f"reading documents ran out of time while hardly running: {timeout}") from None
        return None
    except MemoryError:  # read_all answers a MemoryError itself; this one came while answering
        return [NotRead(OUT_OF_MEMORY, too_hard=True) for _ in requests]


def _too_slow(limits: DocumentLimits) -> NotRead:
    return NotRead(f"读取用时超过 {limits.timeout_seconds:g} 秒的上限", too_hard=True)


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
