"""Reads one document's contents inside a child of the isolated runner (see readers.read_contents).

The image and hashing libraries (OpenCV, Pillow, datasketch with scipy) are imported inside the functions,
so that importing this module, as the daemon does to name the function it sends, costs nothing.
A Word document or a PDF is untrusted input like an archive: its XML, its pictures and the tools that read
a .doc or render a PDF meet whatever a stranger made. The runner caps the child's memory and time; what the
document makes go wrong here is a `NotRead`, what the machine makes go wrong an EnvironmentFault.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..campaign import Reading
from ..domain import Contents, SealStatus
from .contents import NotRead, Read
from .faults import EnvironmentFault
from .form_facts import benchmark_title, first_heading
from .pdf import PdfInfo, read_pdf
from .word import Picture, UnreadableDocument, WordLimits, read_word, render_pdf

OUT_OF_MEMORY = "读取所需内存超过上限"


@dataclass(frozen=True)
class Request:
    path: Path
    reading: Reading
    is_pdf: bool
    limits: WordLimits


def read_all(requests: list[Request]) -> list[Read | NotRead]:
    """Several documents in one child: a package's three cost one fork."""
    return [read_contents(request) for request in requests]


def read_contents(request: Request) -> Read | NotRead:
    try:
        return _read_pdf(request) if request.is_pdf else _read_word(request)
    except EnvironmentFault:
        raise
    except MemoryError:
        pass  # answered below: inside this handler, the frames that filled the memory are still alive
    except UnreadableDocument as error:
        return NotRead(str(error)[:300])
    except Exception as error:  # noqa: BLE001 - image and XML libraries fail any way a hostile file makes them
        return NotRead(f"读取时出错（{type(error).__name__}: {error}）"[:300], too_hard=True)
    return NotRead(OUT_OF_MEMORY, too_hard=True)


def _read_word(request: Request) -> Read:
    from .seal import find_seal  # image and hashing libraries: in the reader's server only, never the daemon
    from .similarity import signature

    form = request.reading is Reading.FORM
    limits = request.limits if form else replace(request.limits, max_pictures=0)  # counted, not decoded
    content = read_word(request.path, limits)
    title = None
    if form:
        title = benchmark_title(content)
    elif request.reading is Reading.WRITE_UP:
        title = benchmark_title(content) or first_heading(content)
    seal = find_seal(_stamp_pages_first(content.pictures)) if form else None
    contents = Contents(
        words=content.word_count,
        pictures=content.picture_count,
        title=title,
        signature=signature(content.text) or None if request.reading is Reading.WRITE_UP else None,
        seal=seal.status if seal else None,
        seal_picture=seal.picture if seal and seal.status is SealStatus.FOUND else None,
    )
    return Read(contents, content.text if form else "")


def _read_pdf(request: Request) -> Read | NotRead:
    from .seal import find_seal

    info = read_pdf(request.path)
    if not isinstance(info, PdfInfo):
        return NotRead(info.reason)
    if request.reading is not Reading.FORM:
        return Read(Contents(pages=info.pages))
    pages = render_pdf(request.path, request.limits)
    seal = find_seal(_stamp_pages_first(pages))
    picture = seal.picture if seal.status is SealStatus.FOUND else None
    return Read(Contents(pages=info.pages, pictures=len(pages), seal=seal.status, seal_picture=picture))


def _stamp_pages_first(pictures: Sequence[Picture]) -> list[Picture]:
    """The last picture (the 申报单位意见 page, where the form is stamped), then the first (a stamped cover),
    then the rest: the search stops at the first seal."""
    if len(pictures) < 2:
        return list(pictures)
    return [pictures[-1], pictures[0], *pictures[1:-1]]
