"""The rules of one call for submissions, as data.

The defaults are the notice of the 质量标杆 call: one RAR archive of at most 200 MB holding the application
form, the typical-experience write-up and the proof materials, each in Word format. A deployment changes
them in the `[campaign]` section of its configuration, never in code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

MIB = 1 << 20


@dataclass(frozen=True)
class Role:
    """One document the archive must hold, and how it is recognised."""

    code: str
    label: str
    """The name the notice uses, for messages to people."""
    keywords: tuple[str, ...]
    """A file whose name (or one of whose folders' names) contains one of these plays this role."""
    formats: tuple[str, ...] = ("doc", "docx")
    """Accepted file extensions, without the dot."""


DEFAULT_ROLES: tuple[Role, ...] = (
    Role("application_form", "申报书", ("申报书",)),
    Role("experience", "典型经验材料", ("典型经验",)),
    Role("proof", "证明材料", ("证明材料",)),
)


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps that keep a hostile archive from exhausting the machine. Tripping one sends it to a person."""

    max_members: int = 1000
    max_unpacked_bytes: int = 2048 * MIB
    max_ratio: float = 200.0
    """Largest unpacked/packed ratio, checked only once the unpacked size passes `ratio_floor_bytes`."""
    ratio_floor_bytes: int = 16 * MIB
    timeout_seconds: float = 300.0
    memory_bytes: int = 1024 * MIB


@dataclass(frozen=True)
class CallRules:
    deadline: datetime | None = None
    max_archive_bytes: int = 200 * MIB
    max_message_bytes: int = 300 * MIB
    """Larger messages are not downloaded (room for a 200 MiB archive after base64)."""
    roles: tuple[Role, ...] = DEFAULT_ROLES
    limits: ArchiveLimits = field(default_factory=ArchiveLimits)
    review_senders: tuple[str, ...] = ()
    """Addresses or whole domains (city bureaus, colleagues) whose mail a person always decides."""
