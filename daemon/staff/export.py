"""The reviewers' folder tree: DIR/<市>/<企业全称>/ with each enterprise's latest accepted documents under
their original names, the summary workbook, and a manifest of every file's SHA-256 (`sha256sum -c`)."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sqlmodel import Session, select

from ..campaign import CallRules
from ..storage.blobs import BlobStore
from ..storage.models import DocumentRecord
from . import workbook
from .status import enterprise_statuses, message_views

MANIFEST = "manifest.sha256"
WORKBOOK = "汇总表.xlsx"
_UNSAFE = re.compile(r'[\x00-\x1f/\\:*?"<>|]')

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Exported:
    enterprises: int
    files: int
    missing: list[str]
    """Roster enterprises with no accepted version (nothing to export for them)."""
    empty: list[str]
    """Accepted by a person without documents on record (a download link not yet `shenbao attach`ed)."""


_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in range(1, 10)), *(f"LPT{n}" for n in range(1, 10))}
)


def safe_name(name: str) -> str:
    """A path component from a name: separators, characters and names Windows refuses replaced."""
    cleaned = _UNSAFE.sub("_", name).strip(" .") or "_"
    return f"_{cleaned}" if cleaned.split(".")[0].upper() in _RESERVED else cleaned


def export(session: Session, blobs: BlobStore, rules: CallRules, folder: Path, progress: Progress) -> Exported:
    every = message_views(session)
    statuses = enterprise_statuses(session, views=every)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[tuple[str, Path]] = []
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
        city = safe_name(enterprise.city or "未注明城市")
        target = folder / city / _unique(safe_name(enterprise.name), folders, prefix=f"{city}/")
        target.mkdir(parents=True, exist_ok=True)
        documents = session.exec(select(DocumentRecord).where(DocumentRecord.message_id == latest.record.id)).all()
        if not documents:
            empty.append(enterprise.name)
        used: set[str] = set()
        for document in documents:
            name = _unique(safe_name(PurePosixPath(document.name).name), used)
            destination = target / name
            shutil.copyfile(blobs.path(document.sha256), destination)
            written.append((_sha256(destination), destination))
    book = folder / WORKBOOK
    book.write_bytes(workbook.build(statuses, every, rules))
    written.append((_sha256(book), book))
    lines = [f"{sha}  {path.relative_to(folder).as_posix()}\n" for sha, path in written]
    (folder / MANIFEST).write_text("".join(lines), encoding="utf-8")
    return Exported(len(statuses) - len(missing), len(written), missing, empty)


def _unique(name: str, used: set[str], prefix: str = "") -> str:
    """`name`, or `name（2）` and so on when two names became the same once made safe."""
    stem, suffix = PurePosixPath(name).stem, PurePosixPath(name).suffix
    candidate, counter = name, 2
    while prefix + candidate in used:
        candidate, counter = f"{stem}（{counter}）{suffix}", counter + 1
    used.add(prefix + candidate)
    return candidate


def _sha256(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()
