"""What judging one message may know besides the message: the rules, the rosters, and the mailbox's past.

The pipeline stays a pure function of its inputs: whatever the database knows that matters to a verdict
(a bureau's earlier emails, the reply a sender answers, the volumes an enterprise sent before) comes in as
data through `History`, which the recorder implements with queries and `check` leaves empty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Protocol

from ..campaign import CallRules
from ..domain import Attachment, RosterEntry
from .bureau import Bundle
from .match import Roster


@dataclass(frozen=True)
class EarlierVolumes:
    """Volumes of one set that earlier emails carried."""

    volumes: tuple[Attachment, ...]
    first_received: datetime
    """When the first of them arrived: the window for the rest counts from then."""


class History(Protocol):
    def bundle(self, city: str, call: str) -> Bundle:
        """What the earlier emails of this city's bureau brought for this call."""
        ...

    def replied_enterprise(self, message_ids: Sequence[str]) -> str | None:
        """The enterprise one of our replies with one of these Message-IDs was about."""
        ...

    def earlier_volumes(self, stem: str, sender: str | None, since: datetime) -> EarlierVolumes | None:
        """Volumes of the set named `stem` that this sender sent since then, not yet judged complete."""
        ...

    def accepted_archive(self, enterprise: str) -> str | None:
        """The fingerprint of the enterprise's latest accepted archive."""
        ...


class NoHistory:
    """A mailbox with no past: what `check` judges against."""

    def bundle(self, city: str, call: str) -> Bundle:
        return Bundle()

    def replied_enterprise(self, message_ids: Sequence[str]) -> str | None:
        return None

    def earlier_volumes(self, stem: str, sender: str | None, since: datetime) -> EarlierVolumes | None:
        return None

    def accepted_archive(self, enterprise: str) -> str | None:
        return None


@dataclass(frozen=True)
class Context:
    rules: CallRules = field(default_factory=CallRules)
    rosters: Mapping[str, Roster] = field(default_factory=dict)
    """Each call's roster (the staff's summary table and the bureaus' tables), by call code."""
    bureau_senders: Mapping[str, str] = field(default_factory=dict)
    """Addresses or domains staff confirmed as a city's bureau, on top of the configuration's."""
    history: History = field(default_factory=NoHistory)
    volumes_across_emails: bool = False
    """Whether a set of volumes may arrive over several emails (there is a mailbox to remember them);
    without one, an incomplete set is judged incomplete at once."""

    @property
    def everyone(self) -> Roster | None:
        """Every enterprise of every call's roster; None when nobody is listed and need not be."""
        return _merged(tuple(self.rosters.values()), self.rules.listed_only)

    def senders(self) -> Mapping[str, str]:
        return {**self.rules.bureau_senders, **self.bureau_senders}


@lru_cache(maxsize=4)
def _merged(rosters: tuple[Roster, ...], listed_only: bool) -> Roster | None:
    """The rosters as one. The recorder keeps its Roster objects until a roster changes, so they are merged
    once rather than for every message (5,000 names take about 20 ms to index)."""
    entries: dict[str, RosterEntry] = {}
    for roster in rosters:
        for entry in roster.entries:
            entries.setdefault(entry.name, entry)
    return Roster(entries.values()) if entries or listed_only else None
