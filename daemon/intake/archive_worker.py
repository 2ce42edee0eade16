"""Reads one untrusted archive (RAR or ZIP, told by content), inside a child of the isolated runner.

The runner caps the child's address space (the `unrar` it starts inherits the cap), kills its process group
when time runs out, and runs it in the archive's private folder. The reader never writes to a path taken from
the archive (members are streamed into files it names by position), accepts only regular files, and stops at
the member-count, unpacked-size and ratio caps while streaming.

Input or environment: what the archive makes happen is a verdict in the Report (corrupt, encrypted,
incomplete, unsafe); what the machine makes happen raises EnvironmentFault. Running out of memory while
reading is the cap doing its work against the archive (unsafe); an error the reader did not foresee on a
hostile archive is unsafe too, so that a person looks, as a crash of the old worker process was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..campaign import ArchiveLimits
from .documents import Member
from .faults import EnvironmentFault, fault, is_environmental
from .rar_reader import read_rar
from .reading import Caps, Status, Stop, duplicate_names
from .signatures import Kind, archive_kind
from .zip_reader import read_zip


@dataclass(frozen=True)
class Request:
    archive: Path
    """The private copy of the archive (of its first volume, the others beside it)."""
    outdir: Path
    packed_size: int
    limits: ArchiveLimits
    search_path: str
    """The caller's PATH, where `unrar` is looked for at each reading."""


@dataclass(frozen=True)
class Report:
    status: Status
    detail: str | None = None
    kind: Kind | None = None
    members: tuple[Member, ...] = ()
    duplicates: tuple[str, ...] = ()


def read_archive(request: Request) -> Report:
    try:
        with open(request.archive, "rb") as first:
            head = first.read(8)
    except OSError as error:
        raise fault("reading our copy of the archive", error) from error
    kind = archive_kind(head)
    caps = Caps(request.limits, request.packed_size)
    try:
        if kind is Kind.RAR:
            members = read_rar(request.archive, request.outdir, caps, request.search_path)
        elif kind is Kind.ZIP:
            members = read_zip(request.archive, request.outdir, caps)
        else:
            return Report(Status.CORRUPT, "neither a RAR nor a ZIP archive")
    except Stop as stop:
        return Report(stop.status, stop.detail, kind)
    except EnvironmentFault:
        raise
    except MemoryError:
        return Report(Status.UNSAFE, "memory limit reached while reading", kind)
    except OSError as error:
        if is_environmental(error):
            raise fault("reading the archive", error) from error
        return Report(Status.CORRUPT, f"{type(error).__name__}: {error}", kind)
    except Exception as error:  # noqa: BLE001 - a hostile archive may make a library fail any way it can
        return Report(Status.UNSAFE, f"inspection failed: {type(error).__name__}: {error}"[:300], kind)
    return Report(Status.OK, None, kind, tuple(members), duplicate_names(members))
