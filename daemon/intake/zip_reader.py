"""Reading a ZIP archive, in the isolated child, by the same rules as a RAR one (the city bureaus send both).

The standard zipfile module reads the listing and each member by its own entry, so members are addressed
by position here by nature. Names: a member without the UTF-8 flag was written in the sender's code page,
which on Chinese Windows is GBK: such names are read as UTF-8 when they are valid UTF-8 (tools that forget
the flag), else as GB18030 (a superset of GBK).
"""

from __future__ import annotations

import lzma
import stat
import zipfile
import zlib
from pathlib import Path

from .documents import Member, sniff
from .reading import Caps, Status, Stop, is_junk, stored_name, stream, unsafe_name

_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_UNIX = 3
_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA})
_DAMAGE = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, ValueError, NotImplementedError)
"""What zipfile and its decompressors raise on damaged data (bz2 raises OSError without an errno)."""


def zip_name(info: zipfile.ZipInfo) -> str:
    """The member's path, '/'-separated, decoded as its writer meant it."""
    name = info.orig_filename
    if not info.flag_bits & _UTF8_FLAG:
        raw = name.encode("cp437")  # zipfile decoded the bytes as CP437, which maps every byte: undo it
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            name = raw.decode("gb18030", errors="replace")
    return name.replace("\\", "/")


def read_zip(archive: Path, outdir: Path, caps: Caps) -> list[Member]:
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as error:
        if "multiple disks" in str(error):
            raise Stop(Status.INCOMPLETE, "a volume of a split ZIP set") from error
        raise Stop(Status.CORRUPT, f"{type(error).__name__}: {error}") from error
    except _DAMAGE as error:
        raise Stop(Status.CORRUPT, f"{type(error).__name__}: {error}") from error
    with zf:
        entries = [(info, zip_name(info)) for info in zf.infolist()]
        files = [(index, info, name) for index, (info, name) in enumerate(entries) if not name.endswith("/")]
        for _index, info, name in files:
            _check(info, name)
        caps.check_listing(len(files), sum(info.file_size for _index, info, _name in files))
        members = []
        for index, info, name in files:
            if is_junk(name):
                continue
            target = outdir / stored_name(index)
            try:
                with zf.open(info) as source:
                    piece = stream(source.read, target, caps)
            except _DAMAGE as error:
                raise Stop(Status.CORRUPT, f"{name}: {type(error).__name__}: {error}") from error
            except OSError as error:
                if error.errno is not None:  # ours: reading our own copy failed
                    raise
                raise Stop(Status.CORRUPT, f"{name}: {error}") from error
            members.append(Member(name, piece.size, piece.sha256, sniff(str(target)), stored_name(index)))
    return members


def _check(info: zipfile.ZipInfo, name: str) -> None:
    if info.create_system == _UNIX and stat.S_ISLNK(info.external_attr >> 16):
        raise Stop(Status.UNSAFE, f"link entry: {name}")
    if unsafe_name(name):
        raise Stop(Status.UNSAFE, f"unsafe path: {name}")
    if info.flag_bits & _ENCRYPTED_FLAG:
        raise Stop(Status.ENCRYPTED, f"member needs a password: {name}")
    if info.compress_type not in _METHODS:
        raise Stop(Status.UNSAFE, f"compression method {info.compress_type}, which cannot be read here: {name}")
