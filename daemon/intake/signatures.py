"""Which kind of archive a file is, by its first bytes: a name or a MIME type says what the sender claims."""

from __future__ import annotations

from enum import StrEnum

RAR_SIGNATURES = (b"Rar!\x1a\x07\x00", b"Rar!\x1a\x07\x01\x00")
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
"""A local file header, the end record of an empty ZIP, the marker of a split set's first volume."""


class Kind(StrEnum):
    RAR = "rar"
    ZIP = "zip"


def archive_kind(head: bytes) -> Kind | None:
    if head.startswith(RAR_SIGNATURES):
        return Kind.RAR
    if head.startswith(ZIP_SIGNATURES):
        return Kind.ZIP
    return None
