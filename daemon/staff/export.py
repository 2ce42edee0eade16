"""The reviewers' folder tree: DIR/<市>/<企业全称>/ with each enterprise's latest accepted documents under
their original names, the summary workbook, and a manifest of every file's SHA-256 (`sha256sum -c`).

Names come from the roster and from senders' archives, so each path component is made one any file system
takes (text.file_name: no separators or control characters, at most 255 bytes). Where that changed a name,
the full one is in NAMES, which maps every exported document to its city, enterprise and name in the archive.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sqlmodel import Session, select

from ..campaign import CallRules
from ..storage.blobs import BlobStore
from ..storage.models import DocumentRecord
from ..text import file_name, for_terminal
from . import workbook
from .status import enterprise_statuses, message_views

MANIFEST = "manifest.sha256"
WORKBOOK = "汇总表.xlsx"
NAMES = "文件名对照.txt"
NAMES_HEADER = ("导出路径", "所属市", "企业名称", "压缩包中的文件名")

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Exported:
    enterprises: int
    files: int
    missing: list[str]
    """Roster enterprises with no accepted version (nothing to export for them)."""
    empty: list[str]
    """Accepted by a person without documents on record (a download link not yet `shenbao attach`ed)."""


def export(session: Session, blobs: BlobStore, rules: CallRules, folder: Path, progress: Progress) -> Exported:
    every = message_views(session)
    statuses = enterprise_statuses(session, views=every)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[tuple[str, Path]] = []
    originals: list[tuple[str, ...]] = [NAMES_HEADER]
    missing = []
    folders: set[str] = set()
    empty: list[str] = []
    for number, status in enumerate(statuses, start=1):
        enterprise = status.enterprise
        progress(number, len(statuses), enterprise.name)
        latest = status.latest_accepted
        if latest is None:
            missing.append(enterprise.name)
            continue
        city = file_name(enterprise.city or "未注明城市")
        target = folder / city / _unique(enterprise.name, folders, prefix=f"{city}/")
        target.mkdir(parents=True, exist_ok=True)
        documents = session.exec(select(DocumentRecord).where(DocumentRecord.message_id == latest.record.id)).all()
        if not documents:
            empty.append(enterprise.name)
        used: set[str] = set()
        for document in documents:
            destination = target / _unique(PurePosixPath(document.name).name, used)
            shutil.copyfile(blobs.path(document.sha256), destination)
            written.append((_sha256(destination), destination))
            path = destination.relative_to(folder).as_posix()
            originals.append((path, enterprise.city or "", enterprise.name, document.name))
    book = folder / WORKBOOK
    book.write_bytes(workbook.build(statuses, every, rules))
    written.append((_sha256(book), book))
    names = folder / NAMES
    names.write_text("".join("\t".join(map(for_terminal, row)) + "\n" for row in originals), encoding="utf-8")
    written.append((_sha256(names), names))
    lines = [f"{sha}  {path.relative_to(folder).as_posix()}\n" for sha, path in written]
    (folder / MANIFEST).write_text("".join(lines), encoding="utf-8")
    return Exported(len(statuses) - len(missing), len(written), missing, empty)


def _unique(name: str, used: set[str], prefix: str = "") -> str:
    """`name` made a file name, or `name（2）` and so on when two names became the same once made safe."""
    candidate, counter = file_name(name), 2
    while prefix + candidate in used:
        candidate, counter = file_name(name, f"（{counter}）"), counter + 1
    used.add(prefix + candidate)
    return candidate


def _sha256(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()
