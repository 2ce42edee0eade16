"""Which attached file is the archive? RAR is recognised by content, volumes of a set by name."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from ..domain import ArchiveFile, Attachment
from .match import normalise
from .signatures import RAR_SIGNATURES

_NEW_STYLE = re.compile(r"^(?P<stem>.*)\.part(?P<number>\d+)\.rar$", re.IGNORECASE)
_OLD_STYLE = re.compile(r"^(?P<stem>.*)\.r(?P<number>\d\d)$", re.IGNORECASE)
_SINGLE = re.compile(r"^(?P<stem>.*)\.rar$", re.IGNORECASE)


def is_rar(attachment: Attachment) -> bool:
    return attachment.head.startswith(RAR_SIGNATURES)


@dataclass(frozen=True)
class _Volume:
    stem: str
    style: str  # "part" (X.part1.rar), "old" (X.rar, X.r00, ...) or "single"
    number: int  # position in the set, 1-based
    width: int
    attachment: Attachment


def _volume(attachment: Attachment) -> _Volume:
    name = attachment.filename
    if found := _NEW_STYLE.match(name):
        digits = found["number"]
        return _Volume(found["stem"], "part", int(digits), len(digits), attachment)
    if found := _OLD_STYLE.match(name):
        return _Volume(found["stem"], "old", int(found["number"]) + 2, 2, attachment)
    if found := _SINGLE.match(name):
        return _Volume(found["stem"], "single", 1, 0, attachment)
    return _Volume(name, "single", 1, 0, attachment)


def find_archives(attachments: tuple[Attachment, ...]) -> list[ArchiveFile]:
    """Every RAR archive attached, volumes of one set joined, in the order they were attached."""
    volumes = [_volume(a) for a in attachments if is_rar(a)]
    stems_with_old_volumes = {normalise(v.stem) for v in volumes if v.style == "old"}
    groups: dict[tuple[str, str], list[_Volume]] = defaultdict(list)
    for volume in volumes:
        style = volume.style
        if style == "single" and normalise(volume.stem) in stems_with_old_volumes:
            style = "old"  # X.rar is the first volume of X.r00, X.r01, ...
        key = (normalise(volume.stem), style) if style != "single" else (str(id(volume)), style)
        groups[key].append(volume)
    return [_archive(key[1], members) for key, members in groups.items()]


def _archive(style: str, members: list[_Volume]) -> ArchiveFile:
    members = list({v.number: v for v in members}.values())  # a volume sent twice counts once (the last)
    members.sort(key=lambda v: v.number)
    if style == "single":
        (only,) = members
        return ArchiveFile(only.stem, (only.attachment,), ("archive.rar",))
    width = max(v.width for v in members)
    numbers = {v.number for v in members}
    stem = members[0].stem
    absent = [n for n in range(1, max(numbers)) if n not in numbers]
    if style == "part":
        missing = tuple(f"{stem}.part{n:0{width}d}.rar" for n in absent)
    else:
        missing = tuple(f"{stem}.rar" if n == 1 else f"{stem}.r{n - 2:02d}" for n in absent)
    if style == "part" or members[0].attachment.head.startswith(RAR_SIGNATURES[1]):
        # RAR5 finds its next volume only as .partN.rar, whatever the sender called the files
        local = tuple(f"archive.part{v.number:0{width}d}.rar" for v in members)
    else:
        local = tuple("archive.rar" if v.number == 1 else f"archive.r{v.number - 2:02d}" for v in members)
    return ArchiveFile(stem, tuple(v.attachment for v in members), local, missing, tuple(v.number for v in members))


def join_volumes(archive: ArchiveFile, earlier: tuple[Attachment, ...]) -> ArchiveFile:
    """The set `archive` belongs to, completed with the volumes of it that earlier emails carried."""
    for joined in find_archives(earlier + archive.volumes):
        if normalise(joined.name) == normalise(archive.name) and joined.numbers:
            return joined
    return archive


def choose_archive(archives: list[ArchiveFile], enterprise: str | None) -> ArchiveFile | None:
    """The archive named after the enterprise (or starting with its name) if there is one, else the largest."""
    if not archives:
        return None
    if enterprise:
        for archive in sorted(archives, key=lambda a: normalise(a.name) != normalise(enterprise)):
            if normalise(archive.name).startswith(normalise(enterprise)):
                return archive
    return max(archives, key=lambda a: a.size)
