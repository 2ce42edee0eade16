"""Which enterprise is this? The subject should be its full registered name, as the notice asks.

Both sides are normalised the same way, so that what mail clients and keyboards add (full-width brackets,
spaces, zero-width characters, 回复:/Fw: prefixes, the 【退回通知】 tag of the reply being answered) does not
matter, while a wrong or shortened name does. By configuration a subject that contains exactly one roster
name, or an archive whose name starts with it, is that enterprise's, with a polite note.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from ..campaign import NameMatch
from ..domain import Code, Problem, RosterEntry

_PREFIXES = re.compile(
    r"^(?:(?:回复|答复|转发|回覆|轉發|re|fw|fwd|aw|wg)(?:\[\d+\])?:|【[^【】]{1,12}】)++", re.IGNORECASE
)
"""Every leading reply/forward prefix and bracketed tag (such as our own 【退回通知】, which a reply to our mail
carries) in one pass: removing one at a time copied the rest each time (quadratic)."""
_SUGGESTION_CUTOFF = 0.6


def normalise(text: str) -> str:
    """NFKC, no white space or invisible characters, no leading reply/forward prefixes or 【…】 tags."""
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

    def containing(self, text: str) -> list[RosterEntry]:
        """The entries whose full name the text contains, none of them part of a longer one found."""
        key = normalise(text)
        inside = [k for k in self._by_key if k and k in key]
        return [self._by_key[k] for k in inside if not any(k != other and k in other for other in inside)]

    def starting(self, text: str) -> RosterEntry | None:
        """The entry with the longest full name the text starts with."""
        key = normalise(text)
        found = [k for k in self._by_key if k and key.startswith(k)]
        return self._by_key[max(found, key=len)] if found else None

    def closest(self, name: str) -> RosterEntry | None:
        """The entry the sender most likely meant: one whose name the text contains, else the most similar."""
        key = normalise(name)
        if not key:
            return None
        inside = self.containing(name)
        if inside:
            return max(inside, key=lambda e: len(e.name))
        close = difflib.get_close_matches(key, list(self._by_key), n=1, cutoff=_SUGGESTION_CUTOFF)
        return self._by_key[close[0]] if close else None


@dataclass(frozen=True)
class Match:
    enterprise: str | None
    """The roster's spelling of the name; with no roster, the normalised subject."""
    problem: Problem | None = None
    note: Problem | None = None
    """Said politely when the subject was read leniently."""

    @property
    def suggestion(self) -> str | None:
        return self.problem.suggestion if self.problem else None


def match_subject(subject: str, roster: Roster | None, mode: NameMatch = NameMatch.EXACT) -> Match:
    key = normalise(subject)
    if roster is None:
        return Match(key) if key else Match(None, Problem(Code.UNKNOWN_ENTERPRISE))
    entry = roster.find(subject)
    if entry is not None:
        return Match(entry.name)
    if mode is NameMatch.CONTAINS:
        inside = roster.containing(subject)
        if len(inside) == 1:
            return Match(
                inside[0].name, note=Problem(Code.SUBJECT_NOT_EXACT, suggestion=inside[0].name, detail=subject)
            )
    suggestion = roster.closest(subject)
    if suggestion is None:
        return Match(None, Problem(Code.UNKNOWN_ENTERPRISE))
    return Match(
        None,
        Problem(Code.UNKNOWN_ENTERPRISE, suggestion=suggestion.name, detail=differences(key, suggestion.name) or None),
    )


def check_archive_name(name: str, enterprise: str, mode: NameMatch = NameMatch.EXACT) -> Problem | None:
    """A problem when the archive's name (without .rar) is not the enterprise's, or a note when it only starts
    with it and the mode allows that."""
    key, expected = normalise(name), normalise(enterprise)
    if key == expected:
        return None
    if mode is NameMatch.PREFIX and key.startswith(expected):
        return Problem(Code.ARCHIVE_NAME_NOT_EXACT, suggestion=enterprise, detail=name)
    return Problem(Code.ARCHIVE_NAME_MISMATCH, suggestion=enterprise, detail=name)


def differences(wrong: str, right: str) -> str:
    """Where two names differ, the way a person would say it: 「泊」应为「舶」; 多了「的」; 缺少「有限」.

    Empty when the names are equal, or so different that pointing at characters would not help.
    """
    wrong, right = normalise(wrong), normalise(right)
    matcher = difflib.SequenceMatcher(a=wrong, b=right, autojunk=False)
    if wrong == right or matcher.ratio() < _SUGGESTION_CUTOFF:
        return ""
    said = []
    for operation, a1, a2, b1, b2 in matcher.get_opcodes():
        if operation == "replace":
            said.append(f"「{wrong[a1:a2]}」应为「{right[b1:b2]}」")
        elif operation == "delete":
            said.append(f"多了「{wrong[a1:a2]}」")
        elif operation == "insert":
            said.append(f"缺少「{right[b1:b2]}」")
    return "；".join(said)


def one_character_off(wrong: str, right: str) -> bool:
    """Whether two names differ in exactly one character (a typo, not another enterprise)."""
    wrong, right = normalise(wrong), normalise(right)
    if wrong == right or abs(len(wrong) - len(right)) > 1:
        return False
    matcher = difflib.SequenceMatcher(a=wrong, b=right, autojunk=False)
    changed = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    return len(changed) == 1 and max(op[2] - op[1] for op in changed) <= 1 and max(op[4] - op[3] for op in changed) <= 1


def is_typo(wrong: str, right: str) -> bool:
    """Whether `wrong` is `right` mistyped (at most two characters changed, added or left out), rather than
    another name altogether."""
    wrong, right = normalise(wrong), normalise(right)
    matcher = difflib.SequenceMatcher(a=wrong, b=right, autojunk=False)
    changed = sum(max(a2 - a1, b2 - b1) for op, a1, a2, b1, b2 in matcher.get_opcodes() if op != "equal")
    return 0 < changed <= 2
