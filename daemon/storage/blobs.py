"""Content-addressed files: each stored once under its SHA-256, durable before anyone is told it is.

Written to a temporary name in the same folder, fsync'ed, renamed into place, and the folder fsync'ed, so
a crash leaves either the whole file or nothing under the final name.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

_CHUNK = 1 << 20


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def holds_files(self) -> bool:
        """Whether anything was ever stored here: then a database recorded it, and must exist."""
        if not self.root.is_dir():
            return False
        return any(entry.is_dir() and len(entry.name) == 2 for entry in self.root.iterdir())

    def put_bytes(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        if not self.has(sha256):
            self._write(sha256, lambda target: target.write(data))
        return sha256

    def put_file(self, source: Path, sha256: str | None = None) -> str:
        """Store a copy of `source`; pass its SHA-256 when already known to skip hashing it."""
        if sha256 is None:
            digest = hashlib.sha256()
            with source.open("rb") as stream:
                while chunk := stream.read(_CHUNK):
                    digest.update(chunk)
            sha256 = digest.hexdigest()
        if not self.has(sha256) and not self._link(source, sha256):
            with source.open("rb") as stream:
                self._write(sha256, lambda target: shutil.copyfileobj(stream, target, _CHUNK))
        return sha256

    def _link(self, source: Path, sha256: str) -> bool:
        """Store `source` by hard link (no copy of a 200 MB archive); False when the file systems differ."""
        final = self.path(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary = final.parent / f".incoming-{uuid.uuid4().hex}"
        try:
            os.link(source, temporary)
        except OSError:
            return False
        try:
            with temporary.open("rb") as stream:
                os.fsync(stream.fileno())
            os.replace(temporary, final)
        finally:
            temporary.unlink(missing_ok=True)
        _fsync_dir(final.parent)
        return True

    def _write(self, sha256: str, fill: Callable[[BinaryIO], object]) -> None:
        final = self.path(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=".incoming-", dir=final.parent)
        try:
            with os.fdopen(descriptor, "wb") as target:
                fill(target)
                target.flush()
                os.fsync(target.fileno())
            os.replace(temporary, final)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        _fsync_dir(final.parent)


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
