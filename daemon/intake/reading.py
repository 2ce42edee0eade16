"""What the archive readers share, in the isolated child: their verdicts, the names they refuse or skip, the
caps, and how a member is streamed into a file the reader names itself.

Every write goes to a file of ours, so any OS error while writing is the machine's (EnvironmentFault), never
the archive's; errors while reading the archive are the reader's to judge.
"""

from __future__ import annotations

import hashlib
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ..campaign import ArchiveLimits
from .documents import Member
from .faults import fault

_CHUNK = 1 << 20
_JUNK_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})


class Status(StrEnum):
    OK = "ok"
    ENCRYPTED = "encrypted"
    INCOMPLETE = "incomplete"
    CORRUPT = "corrupt"
    UNSAFE = "unsafe"


class Stop(Exception):
    """Ends the reading with a verdict on the input other than ok."""

    def __init__(self, status: Status, detail: str) -> None:
        super().__init__(status, detail)
        self.status = status
        self.detail = detail


def is_junk(name: str) -> bool:
    """Files archivers and editors leave behind, which are nobody's document."""
    path = PurePosixPath(name)
    if "__MACOSX" in path.parts:
        return True
    base = path.name
    return base.lower() in _JUNK_NAMES or base.startswith("~$") or base.startswith("._")


def unsafe_name(name: str) -> bool:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return True
    return ".." in PurePosixPath(name.replace("\\", "/")).parts


def stored_name(position: int) -> str:
    """The file a member is written to: named by its position in the archive, never by its own name."""
    return f"member-{position:05d}"


def duplicate_names(members: Iterable[Member]) -> tuple[str, ...]:
    """Names more than one member has, compared without case as Windows (where reviewers unpack) does."""
    counts = Counter(member.name.casefold() for member in members)
    seen: dict[str, str] = {}
    for member in members:
        if counts[member.name.casefold()] > 1:
            seen.setdefault(member.name.casefold(), member.name)
    return tuple(seen.values())


class Caps:
    """The archive's caps: checked on its listing first, then on the bytes actually unpacked."""

    def __init__(self, limits: ArchiveLimits, packed_size: int) -> None:
        self.limits = limits
        self.packed_size = max(packed_size, 1)
        self.unpacked = 0

    def check_listing(self, count: int, declared: int) -> None:
        if count > self.limits.max_members:
            raise Stop(Status.UNSAFE, f"{count} files, more than the limit of {self.limits.max_members}")
        if declared > self.limits.max_unpacked_bytes:
            raise Stop(Status.UNSAFE, f"unpacks to {declared} bytes, more than the limit")

    def grow(self, size: int) -> None:
        self.unpacked += size
        if self.unpacked > self.limits.max_unpacked_bytes:
            raise Stop(Status.UNSAFE, "unpacked size over the limit")
        floor, ratio = self.limits.ratio_floor_bytes, self.limits.max_ratio
        if self.unpacked > floor and self.unpacked > ratio * self.packed_size:
            raise Stop(Status.UNSAFE, f"compression ratio over {ratio:g}")


@dataclass(frozen=True)
class Written:
    size: int
    sha256: str
    crc32: int


def stream(read: Callable[[int], bytes], target: Path | None, caps: Caps, limit: int | None = None) -> Written:
    """Copy what `read` gives into `target` (None: count and discard) until it ends or `limit` bytes came."""
    digest = hashlib.sha256()
    crc = size = 0
    out = _create(target) if target is not None else None
    try:
        while limit is None or size < limit:
            chunk = read(_CHUNK if limit is None else min(_CHUNK, limit - size))
            if not chunk:
                break
            size += len(chunk)
            caps.grow(len(chunk))
            digest.update(chunk)
            crc = zlib.crc32(chunk, crc)
            if out is not None:
                _write(out, chunk)
    finally:
        if out is not None:
            _close(out)
    return Written(size, digest.hexdigest(), crc)


def _create(target: Path) -> BinaryIO:
    try:
        return open(target, "xb")
    except OSError as error:
        raise fault("creating a member file", error) from error


def _write(out: BinaryIO, chunk: bytes) -> None:
    try:
        out.write(chunk)
    except OSError as error:
        raise fault("writing a member file", error) from error


def _close(out: BinaryIO) -> None:
    try:
        out.close()
    except OSError as error:
        raise fault("writing a member file", error) from error
