"""Reading a RAR archive, in the isolated child: rarfile reads the listing, one `unrar p` pass the content.

Members are addressed by their position, never by their name. `unrar` can only select members by name (and
rarfile asks it for a member by name), so of two members with the same name both would be read as one of
them, and the other never inspected. Instead one `unrar p` prints every file of the archive, in archive
order, to a pipe, and the reader cuts that stream at the sizes the listing declares: the Nth file of the
listing is the Nth piece. Each piece is checked against the CRC32 its header declares, and `unrar` itself
checks every file and reports by its exit code, so a listing that lies about a size cannot shift the cut
unnoticed. Other ways were rejected: `unrar x -or` (auto-rename) writes to paths taken from the archive;
RAR's file versions (`-ver`, `name;N`) only concern versions `rar` made, which rarfile and `unrar` both
skip alike; a temporary one-member archive per member (rarfile's "hack") does not work for solid archives
or volumes. One pass is also the fastest: one `unrar` per archive instead of one per member.

Our verdict on what `unrar` says: a CRC error or an unexpected end is the archive's (corrupt), a missing
volume too (incomplete), a wrong password (encrypted), running out of memory under the cap (unsafe: it asks
for a dictionary larger than the cap allows), a crash (unsafe); the tool missing, killed by a signal that
is not a crash's, or failing to open, write or understand its command line is ours (EnvironmentFault).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

from .documents import Member, sniff
from .faults import EnvironmentFault, fault
from .reading import Caps, Status, Stop, Written, is_junk, stored_name, stream, unsafe_name

_PRINT_ALL = ("p", "-idq", "-p-", "-cfg-", "-y")
"""Print every file to stdout; only errors on stderr; never ask for a password; ignore RAR's config and the
RAR environment variable; answer yes to any question (there is no one to ask)."""
_CRASHES = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT})
_ERRORS_KEPT = 4000


def member_name(info: Any, rarfile: Any) -> str:
    """The member's path; old RAR archives from Chinese Windows store it as GBK bytes with no Unicode flag."""
    raw = info.orig_filename
    if isinstance(info, rarfile.Rar3Info) and isinstance(raw, bytes) and not info.flags & rarfile.RAR_FILE_UNICODE:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("gb18030", errors="replace")
        return text.replace("\\", "/")
    return str(info.filename)


def read_rar(archive: Path, outdir: Path, caps: Caps, search_path: str) -> list[Member]:
    import rarfile

    rf = _open(rarfile, archive)
    infos = [info for info in rf.infolist() if not info.is_dir()]
    names = [member_name(info, rarfile) for info in infos]
    for info, name in zip(infos, names, strict=True):
        if info.is_symlink() or info.file_redir is not None:
            raise Stop(Status.UNSAFE, f"link or file-copy entry: {name}")
        if not info.is_file():
            raise Stop(Status.UNSAFE, f"not a regular file: {name}")
        if unsafe_name(name):
            raise Stop(Status.UNSAFE, f"unsafe path: {name}")
        if info.needs_password():
            raise Stop(Status.ENCRYPTED, f"member needs a password: {name}")
        if info.file_size is None or info.file_size < 0:
            raise Stop(Status.UNSAFE, f"size not declared: {name}")
    caps.check_listing(len(infos), sum(info.file_size for info in infos))
    if not infos:
        return []
    return _unpack(archive, infos, names, outdir, caps, search_path)


def _open(rarfile: Any, archive: Path) -> Any:
    try:
        rf = rarfile.RarFile(str(archive))
    except rarfile.NeedFirstVolume as error:
        raise Stop(Status.INCOMPLETE, f"not the first volume: {error}") from error
    except rarfile.BadRarName as error:  # a volume of a set, named so that the next cannot be found
        raise Stop(Status.INCOMPLETE, f"a volume of a multi-volume set: {error}") from error
    except rarfile.PasswordRequired as error:
        raise Stop(Status.ENCRYPTED, "the file list is encrypted") from error
    except (rarfile.Error, EOFError, ValueError) as error:
        raise Stop(Status.CORRUPT, f"{type(error).__name__}: {error}") from error
    if rf.needs_password():
        raise Stop(Status.ENCRYPTED, "the archive needs a password")
    problem = rf.strerror()
    if problem:
        raise Stop(Status.INCOMPLETE if "volume" in problem.lower() else Status.CORRUPT, problem)
    return rf


def _unpack(
    archive: Path, infos: list[Any], names: list[str], outdir: Path, caps: Caps, search_path: str
) -> list[Member]:
    tool = shutil.which("unrar", path=search_path)
    if tool is None:
        raise EnvironmentFault("the unrar tool is not installed (not found on PATH)")
    try:
        errors = open(outdir.parent / "unrar-errors.txt", "w+b")  # noqa: SIM115 - closed below
    except OSError as error:
        raise fault("creating the tool's error log", error) from error
    with errors:
        try:
            process = subprocess.Popen(
                [tool, *_PRINT_ALL, "--", str(archive)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors
            )
        except OSError as error:
            raise fault("starting unrar", error) from error
        with process:
            assert process.stdout is not None
            try:
                pieces = _cut(process.stdout.read, infos, names, outdir, caps)
                if process.stdout.read(1):
                    raise Stop(Status.UNSAFE, "the archive's listing disagrees with its content (more data)")
            except BaseException:
                process.kill()
                raise
        errors.seek(0)
        said = errors.read()[-_ERRORS_KEPT:].decode("utf-8", errors="replace").strip()
    _judge_exit(process.returncode, said, infos, names, pieces)
    if len(pieces) < len(infos):
        raise Stop(Status.UNSAFE, "the archive's listing disagrees with its content")
    return [
        Member(name, piece.size, piece.sha256, sniff(str(outdir / stored_name(index))), stored_name(index))
        for index, (name, piece) in enumerate(zip(names, pieces, strict=True))
        if not is_junk(name)
    ]


def _cut(read: Any, infos: list[Any], names: list[str], outdir: Path, caps: Caps) -> list[Written]:
    """The stream cut into the listed files, in order; stops at the first piece that comes short."""
    pieces = []
    for index, (info, name) in enumerate(zip(infos, names, strict=True)):
        target = None if is_junk(name) else outdir / stored_name(index)
        piece = stream(read, target, caps, limit=info.file_size)
        pieces.append(piece)
        if piece.size < info.file_size:
            break
    return pieces


def _judge_exit(code: int, said: str, infos: list[Any], names: list[str], pieces: list[Written]) -> None:
    """Raise what `unrar`'s exit says about the archive, or about us; return when it read everything."""
    last = said.splitlines()[-1] if said else f"exit code {code}"
    if code < 0:
        name = signal.Signals(-code).name
        if -code in _CRASHES:
            raise Stop(Status.UNSAFE, f"unrar crashed ({name}) reading the archive")
        raise EnvironmentFault(f"unrar was killed by {name}")
    if code in (0, 1):  # done (1: a warning only): every piece must then match its header
        for info, name, piece in zip(infos, names, pieces, strict=False):
            if info.CRC is not None and piece.size == info.file_size and piece.crc32 != info.CRC:
                raise Stop(Status.UNSAFE, f"the archive's listing disagrees with its content: {name}")
        return
    missing = [line for line in said.splitlines() if "Cannot find volume" in line]
    if missing:
        raise Stop(Status.INCOMPLETE, missing[0])
    if code in (2, 3):  # fatal error, CRC error: the archive is damaged
        raise Stop(Status.CORRUPT, _first_damaged(infos, names, pieces) or last)
    if code == 8:
        raise Stop(Status.UNSAFE, "unpacking needs more memory than the limit allows (a very large dictionary)")
    if code == 11:
        raise Stop(Status.ENCRYPTED, "a member needs a password")
    if code == 10:
        raise Stop(Status.UNSAFE, "the archive's listing disagrees with its content (unrar found no files)")
    raise EnvironmentFault(f"unrar failed with exit code {code}: {last}")


def _first_damaged(infos: list[Any], names: list[str], pieces: list[Written]) -> str | None:
    for info, name, piece in zip(infos, names, pieces, strict=False):
        if piece.size < info.file_size:
            return f"{name}: unexpected end of data"
        if info.CRC is not None and piece.crc32 != info.CRC:
            return f"{name}: checksum error"
    return None
