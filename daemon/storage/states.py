"""The state machines of stored rows, as data: each state an enum member, each allowed step listed.

A row's state changes only through `advance`, so a step the machine does not allow (a sent reply queued
again, a moved message downloaded again) fails loudly in the code that attempted it instead of corrupting
the record. The database holds the same sets of values as CHECK constraints (migration 0002).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Protocol, TypeVar


class OutboxState(StrEnum):
    """A reply or notice waiting to be sent, and what became of it."""

    QUEUED = "queued"
    HELD = "held"
    """Queued by a dry run: sent once the daemon runs for real."""
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    """The server refused it for good (5xx), or retries ran out."""
    SUPPRESSED = "suppressed"
    """Past the loop guard's limit for the address: recorded, never sent."""
    UNCERTAIN = "uncertain"
    """Interrupted after the server may have accepted it: never sent again automatically."""
    BOUNCED = "bounced"
    """Sent, then a bounce came back for it."""


class ItemState(StrEnum):
    """How far the handling of one message on the IMAP server got."""

    SKIPPED = "skipped"
    """Received before the call opened: left alone."""
    PENDING = "pending"
    """Not downloaded yet: its handling failed before the download, and is tried again on the next cycle."""
    NO_ROOM = "no_room"
    """Too large for the free space of the files folder: waits, undownloaded, and is tried on each cycle."""
    DOWNLOADED = "downloaded"
    RECORDED = "recorded"
    DONE = "done"
    """Moved (or flagged) on the server."""
    KEPT = "kept"
    """Recorded and left where it is (junk-folder mail that names no enterprise)."""
    QUARANTINED = "quarantined"
    """Its handling failed too often: set aside (flagged on the server) until staff requeue it."""


class NominationSource(StrEnum):
    """Where the listing of an enterprise for a call comes from."""

    ROSTER = "roster"
    """The staff's summary table (the configured roster file)."""
    TABLE = "table"
    """A city bureau's summary table."""
    STAFF = "staff"
    """A person's decision (a 省属 enterprise that sent its own submission)."""


class UserRole(StrEnum):
    """What a web console user may do."""

    VIEWER = "viewer"
    """Read every page and download; no action."""
    STAFF = "staff"
    """Also decide, attach, confirm and resend."""
    ADMIN = "admin"
    """Also read the whole audit log and the list of users."""


_S = TypeVar("_S", bound=StrEnum)

OUTBOX_STEPS: Mapping[OutboxState, frozenset[OutboxState]] = {
    OutboxState.QUEUED: frozenset({OutboxState.SENDING}),
    OutboxState.HELD: frozenset({OutboxState.QUEUED}),
    OutboxState.SENDING: frozenset({OutboxState.SENT, OutboxState.QUEUED, OutboxState.FAILED, OutboxState.UNCERTAIN}),
    OutboxState.SENT: frozenset({OutboxState.BOUNCED}),
    OutboxState.FAILED: frozenset({OutboxState.BOUNCED}),
    OutboxState.UNCERTAIN: frozenset({OutboxState.BOUNCED}),
    OutboxState.SUPPRESSED: frozenset(),
    OutboxState.BOUNCED: frozenset(),
}

ITEM_STEPS: Mapping[ItemState, frozenset[ItemState]] = {
    ItemState.PENDING: frozenset({ItemState.DOWNLOADED, ItemState.NO_ROOM, ItemState.QUARANTINED}),
    ItemState.NO_ROOM: frozenset({ItemState.DOWNLOADED, ItemState.QUARANTINED}),
    ItemState.DOWNLOADED: frozenset({ItemState.RECORDED, ItemState.QUARANTINED}),
    ItemState.RECORDED: frozenset({ItemState.DONE, ItemState.KEPT, ItemState.QUARANTINED}),
    # Requeued by staff: back to where its handling had got to.
    ItemState.QUARANTINED: frozenset({ItemState.PENDING, ItemState.DOWNLOADED, ItemState.RECORDED}),
    ItemState.SKIPPED: frozenset(),
    ItemState.DONE: frozenset(),
    ItemState.KEPT: frozenset(),
}


class IllegalStep(Exception):
    """A state change the machine does not allow: a bug in the caller, never a fact about the input."""


class _Stateful(Protocol[_S]):
    state: _S


def advance(row: _Stateful[_S], new: _S, steps: Mapping[_S, frozenset[_S]]) -> None:
    """Move `row` to state `new`, or raise IllegalStep when `steps` does not allow it."""
    if new not in steps[row.state]:
        raise IllegalStep(f"{type(row).__name__} {getattr(row, 'id', '?')}: {row.state} -> {new} is not allowed")
    row.state = new


def check_constraint(column: str, values: type[StrEnum]) -> str:
    """The SQL of the CHECK constraint that keeps `column` within the enum's values."""
    return f"{column} IN ({', '.join(repr(member.value) for member in values)})"
