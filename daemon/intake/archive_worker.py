"""Reads one untrusted RAR archive, in a child process the parent can time out and kill.

Run as `python -m daemon.intake.archive_worker`: a JSON request on stdin, a JSON report on stdout. It caps
its own address space first (the `unrar` it starts inherits the cap), never writes to a path taken from the
archive (members are streamed into files it names itself), accepts only regular files, and stops at the
member-count, unpacked-size and ratio caps while streaming.
"""

from __future__ import annotations

import hashlib
import json
import resource
import sys
from dataclasses import asdict
from pathlib import Path, PurePosixPath
from typing import Any

from .documents import Member, sniff

_CHUNK = 1 << 20
_JUNK_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})


class Stop(Exception):
    """Ends the inspection with a status other than ok."""

    def __init__(self, status: str, detail: str) -> None:
        super().__init__(detail)
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


def inspect(archive: Path, outdir: Path, packed_size: int, limits: dict[str, float]) -> dict[str, Any]:
    import rarfile

    rarfile.UNRAR_TOOL = "unrar"
    rarfile.HACK_TMP_DIR = str(outdir)
    rarfile.tool_setup(unrar=True, unar=False, bsdtar=False, sevenzip=False, sevenzip2=False, force=True)
    members: list[Member] = []
    try:
        members = _read(rarfile, archive, outdir, packed_size, limits)
    except Stop as stop:
        return {"status": stop.status, "detail": stop.detail, "members": []}
    return {"status": "ok", "detail": None, "members": [asdict(m) for m in members]}


def _open(rarfile: Any, archive: Path) -> Any:
    try:
        rf = rarfile.RarFile(str(archive))
    except rarfile.NeedFirstVolume as error:
        raise Stop("incomplete", f"not the first volume: {error}") from error
    except rarfile.BadRarName as error:  # a volume of a set, named so that the next cannot be found
        raise Stop("incomplete", f"a volume of a multi-volume set: {error}") from error
    except rarfile.PasswordRequired as error:
        raise Stop("encrypted", "the file list is encrypted") from error
    except (rarfile.Error, OSError, EOFError, ValueError) as error:
        raise Stop("corrupt", f"{type(error).__name__}: {error}") from error
    if rf.needs_password():
        raise Stop("encrypted", "the archive needs a password")
    problem = rf.strerror()
    if problem:
        status = "incomplete" if "volume" in problem.lower() else "corrupt"
        raise Stop(status, problem)
    return rf


def _read(rarfile: Any, archive: Path, outdir: Path, packed_size: int, limits: dict[str, float]) -> list[Member]:
    rf = _open(rarfile, archive)
    infos = [info for info in rf.infolist() if not info.is_dir()]
    for info in infos:
        name = member_name(info, rarfile)
        if info.is_symlink() or info.file_redir is not None:
            raise Stop("unsafe", f"link or file-copy entry: {name}")
        if not info.is_file():
            raise Stop("unsafe", f"not a regular file: {name}")
        if unsafe_name(name):
            raise Stop("unsafe", f"unsafe path: {name}")
        if info.needs_password():
            raise Stop("encrypted", f"member needs a password: {name}")
    if len(infos) > limits["max_members"]:
        raise Stop("unsafe", f"{len(infos)} files, more than the limit of {int(limits['max_members'])}")
    declared = sum(info.file_size or 0 for info in infos)
    if declared > limits["max_unpacked_bytes"]:
        raise Stop("unsafe", f"unpacks to {declared} bytes, more than the limit")
    unpacked = 0
    members = []
    for index, info in enumerate(infos):
        name = member_name(info, rarfile)
        if is_junk(name):
            continue
        stored_as = f"member-{index:05d}"
        digest = hashlib.sha256()
        size = 0
        try:
            with rf.open(info) as source, open(outdir / stored_as, "wb") as target:
                while chunk := source.read(_CHUNK):
                    size += len(chunk)
                    unpacked += len(chunk)
                    _check_growth(unpacked, packed_size, limits)
                    digest.update(chunk)
                    target.write(chunk)
        except Stop:
            raise
        except (FileNotFoundError, rarfile.NeedFirstVolume) as error:
            raise Stop("incomplete", f"a volume is missing: {error}") from error
        except (rarfile.RarWrongPassword, rarfile.PasswordRequired) as error:
            raise Stop("encrypted", str(error)) from error
        except (rarfile.RarMemoryError, MemoryError) as error:
            raise Stop("unsafe", f"memory limit reached reading {name}") from error
        except (rarfile.Error, OSError, EOFError, ValueError) as error:
            raise Stop("corrupt", f"{name}: {type(error).__name__}: {error}") from error
        content = sniff(str(outdir / stored_as))
        members.append(Member(name, size, digest.hexdigest(), content, stored_as))
    return members


def _check_growth(unpacked: int, packed_size: int, limits: dict[str, float]) -> None:
    if unpacked > limits["max_unpacked_bytes"]:
        raise Stop("unsafe", "unpacked size over the limit")
    if unpacked > limits["ratio_floor_bytes"] and unpacked > limits["max_ratio"] * max(packed_size, 1):
        raise Stop("unsafe", f"compression ratio over {limits['max_ratio']:g}")


def _limit_memory(limit: int) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def main() -> None:
    request = json.loads(sys.stdin.read())
    _limit_memory(int(request["limits"]["memory_bytes"]))
    report = inspect(Path(request["archive"]), Path(request["outdir"]), int(request["packed_size"]), request["limits"])
    json.dump(report, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
