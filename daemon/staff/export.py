"""The reviewers' folder tree: DIR/<评选>/<市>/<企业全称>/ with each enterprise's latest accepted documents
under their original names, each bureau's letter and table as received in its city's folder, the summary
workbook, and a manifest of every file's SHA-256 (`sha256sum -c`).

Names come from rosters, tables and senders' archives, so each path component is made one any file system
takes (text.file_name: no separators or control characters, at most 255 bytes). Where that changed a name,
the full one is in NAMES, which maps every exported file to its call, city, enterprise and original name,
with what reviewers want to know before opening it: the 质量标杆名称, its length, pictures and seal.

A stored file's SHA-256 in the manifest is its name in the store, taken when it arrived: a copy that differs
(a disk that damaged the store since) fails `sha256sum -c` rather than being vouched for.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sqlmodel import Session, col, select

from ..app.queries import ledger
from ..app.views import DocumentView, EnterpriseRow
from ..campaign import CallRules
from ..explain import SEAL_WORDS
from ..storage.blobs import BlobStore
from ..storage.models import BureauFile
from ..text import file_name, for_terminal
from . import workbook

MANIFEST = "manifest.sha256"
WORKBOOK = "汇总表.xlsx"
NAMES = "文件名对照.txt"
NAMES_HEADER = ("导出路径", "评选", "所属市", "企业名称", "原文件名", "质量标杆名称", "字数", "页数", "图片数", "公章")

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Exported:
    enterprises: int
    files: int
    missing: list[str]
    """Listed enterprises with no accepted version (nothing to export for them)."""
    empty: list[str]
    """Accepted by a person without documents on record (a download link not yet attached)."""


def export(session: Session, blobs: BlobStore, rules: CallRules, folder: Path, progress: Progress) -> Exported:
    book = ledger(session, rules)
    rows, bundles = book.rows, book.bundles
    folder.mkdir(parents=True, exist_ok=True)
    written: list[tuple[str, Path]] = []
    originals: list[tuple[str, ...]] = [NAMES_HEADER]
    missing: list[str] = []
    empty: list[str] = []
    used: set[str] = set()
    call_names = {call.code: call.name or call.code for call in rules.calls}
    calls = {code: file_name(name) for code, name in call_names.items()}
    for number, row in enumerate(rows, start=1):
        progress(number, len(rows), row.name)
        if row.latest_accepted is None:
            missing.append(row.name)
            continue
        city = file_name(row.city or "未注明城市")
        base = f"{calls.get(row.call, row.call)}/{city}"
        target = folder / base / _unique(row.name, used, prefix=f"{base}/")
        target.mkdir(parents=True, exist_ok=True)
        mine = row.documents  # those of the package that counts: the latest accepted, as it has one
        if not mine:
            empty.append(row.name)
        names: set[str] = set()
        for document in mine:
            destination = target / _unique(PurePosixPath(document.name).name, names)
            shutil.copyfile(blobs.path(document.sha256), destination)
            written.append((document.sha256, destination))
            path = destination.relative_to(folder).as_posix()
            originals.append(
                (path, call_names.get(row.call, row.call), row.city, row.name, document.name, *_facts(row, document))
            )
    ids = [m for bundle in bundles for m in bundle.messages]
    for file in session.exec(
        select(BureauFile).where(col(BureauFile.message_id).in_(ids)).order_by(col(BureauFile.id))
    ):
        base = f"{calls.get(file.call, file.call)}/{file_name(file.city)}"
        (folder / base).mkdir(parents=True, exist_ok=True)
        destination = folder / base / _unique(file.name, used, prefix=f"{base}/")
        shutil.copyfile(blobs.path(file.sha256), destination)
        written.append((file.sha256, destination))
        originals.append(
            (
                destination.relative_to(folder).as_posix(),
                call_names.get(file.call, file.call),
                file.city,
                "",
                file.name,
                *_NO_FACTS,
            )
        )
    summary = folder / WORKBOOK
    written.append(_write(summary, workbook.build(book, rules)))
    mapping = folder / NAMES
    written.append(_write(mapping, "".join("\t".join(map(for_terminal, row)) + "\n" for row in originals).encode()))
    lines = [f"{sha}  {path.relative_to(folder).as_posix()}\n" for sha, path in written]
    (folder / MANIFEST).write_text("".join(lines), encoding="utf-8")
    return Exported(len(rows) - len(missing), len(written), missing, empty)


_NO_FACTS = ("",) * 5


def _facts(row: EnterpriseRow, document: DocumentView) -> tuple[str, ...]:
    """What reading the document found, for the names file: the enterprise's 质量标杆名称, then its length,
    pictures and (on the form) seal."""
    contents = document.contents
    if contents is None:
        return (row.benchmark_title, *_NO_FACTS[1:])
    return (
        row.benchmark_title,
        "" if contents.words is None else str(contents.words),
        "" if contents.pages is None else str(contents.pages),
        str(contents.pictures),
        SEAL_WORDS[contents.seal] if contents.seal else "",
    )


def _unique(name: str, used: set[str], prefix: str = "") -> str:
    """`name` made a file name, or `name（2）` and so on when two names became the same once made safe."""
    candidate, counter = file_name(name), 2
    while prefix + candidate in used:
        candidate, counter = file_name(name, f"（{counter}）"), counter + 1
    used.add(prefix + candidate)
    return candidate


def _write(path: Path, data: bytes) -> tuple[str, Path]:
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest(), path
