"""Which enterprise is this? The subject must be its full registered name, as the notice asks.

Both sides are normalised the same way, so that what mail clients and keyboards add (full-width brackets,
spaces, zero-width characters, 回复:/Fw: prefixes) does not matter, while a wrong or shortened name does.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from ..domain import Code, Problem, RosterEntry

_PREFIXES = re.compile(r"^(?:(?:回复|答复|转发|回覆|轉發|re|fw|fwd)(?:\[\d+\])?:)++", re.IGNORECASE)
"""Every leading prefix in one pass: removing one at a time copied the rest each time (quadratic)."""
_SUGGESTION_CUTOFF = 0.6


def normalise(text: str) -> str:
    """NFKC, no white space or invisible characters, no leading reply/forward prefixes."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf"))
    return _PREFIXES.sub("", text, count=1)


class Roster:
    """The enterprises invited to submit, looked up by normalised name."""

    def __init__(self, entries: Iterable[RosterEntry]) -> None:
        self.entries = tuple(entries)
        self._by_key = {normalise(e.name): e for e in self.entries}

    def __len__(self) -> int:
        return len(self.entries)

    def find(self, name: str) -> RosterEntry | None:
        return self._by_key.get(normalise(name))

    def closest(self, name: str) -> RosterEntry | None:
        """The entry the sender most likely meant: one whose name the text contains, else the most similar."""
        key = normalise(name)
        if not key:
            return None
        inside = [k for k in self._by_key if k in key]
        if inside:
            return self._by_key[max(inside, key=len)]
        close = difflib.get_close_matches(key, list(self._by_key), n=1, cutoff=_SUGGESTION_CUTOFF)
        return self._by_key[close[0]] if close else None


@dataclass(frozen=True)
class Match:
    enterprise: str | None
    """The roster's spelling of the name; with no roster, the normalised subject."""
    problem: Problem | None = None


def match_subject(subject: str, roster: Roster | None) -> Match:
    key = normalise(subject)
    if roster is None:
        return Match(key) if key else Match(None, Problem(Code.UNKNOWN_ENTERPRISE))
    entry = roster.find(subject)
    if entry is not None:
        return Match(entry.name)
    suggestion = roster.closest(subject)
    return Match(None, Problem(Code.UNKNOWN_ENTERPRISE, suggestion=suggestion.name if suggestion else None))
