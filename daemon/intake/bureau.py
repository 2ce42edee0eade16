"""City bureaus' emails: who sent them, what they carry, and what their city's bundle still lacks.

A bureau sends, for each call, a recommendation letter (推荐文件, PDF), a summary table (汇总表) and one
archive per recommended enterprise, often over several emails. Each email is judged knowing what the earlier
emails of the same city and call brought (`Bundle`), so the reply says what the city still lacks.
Pure functions: the pipeline reads the files, the recorder keeps the bundle.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePosixPath

from ..campaign import Call, NameMatch
from ..domain import Code, ParsedMessage, Problem, RosterEntry
from .match import Roster, normalise, one_character_off
from .spreadsheet import CallLabel, call_words

_BUREAU_WORDS = re.compile(r"(?:工业和信息化局|工信局|经济和信息化委员会|经信委)")
_RECOMMEND = "推荐"
_ENTERPRISE_NAME = re.compile(r"(?:公司|集团|厂|研究院|研究所|中心)$")
"""How a registered enterprise's full name ends: archives named so are enterprises' packages."""
_LETTER_WORDS = ("函", "推荐", "文件", "通知")


class FileKind(StrEnum):
    """What a file in a bureau's email is, by its content."""

    LETTER = "letter"
    TABLE = "table"
    RAR = "rar"
    ZIP = "zip"
    OTHER = "other"


def kind_of(name: str, head: bytes, is_workbook: bool) -> FileKind:
    """The kind of one file; `is_workbook`: its content is an Excel workbook (.xlsx zip or .xls OLE)."""
    if head.startswith(b"%PDF"):
        return FileKind.LETTER
    if is_workbook:
        return FileKind.TABLE
    if head.startswith(b"Rar!\x1a\x07"):
        return FileKind.RAR
    if head.startswith(b"PK\x03\x04") and PurePosixPath(name).suffix.lower() == ".zip":
        return FileKind.ZIP
    return FileKind.OTHER


def letter_rank(name: str) -> int:
    """Among several PDFs, the letter is the one whose name says so (函, 推荐…); lower is likelier."""
    return 0 if any(word in name for word in _LETTER_WORDS) else 1


def bureau_city(sender: str | None, senders: Mapping[str, str]) -> str | None:
    """The city whose bureau `sender` speaks for: a listed address, or an address in a listed domain."""
    if not sender:
        return None
    sender = sender.lower()
    if sender in senders:
        return senders[sender]
    domain = sender.rpartition("@")[2]
    for entry, city in senders.items():
        if "@" not in entry and (domain == entry or domain.endswith("." + entry)):
            return city
    return None


def city_named(text: str, cities: Iterable[str]) -> str | None:
    """The one city a subject or file name names (济宁市工业和信息化局 → 济宁)."""
    key = normalise(text)
    found = {city for city in cities if city and city in key}
    return found.pop() if len(found) == 1 else None


def looks_like_bureau(message: ParsedMessage, kinds: Sequence[tuple[str, FileKind]]) -> bool:
    """Mail from an unlisted sender that a bureau would send: a letter and a table, several enterprises'
    archives, or a subject naming a 市工业和信息化局 and 推荐. Such mail goes to a person, never rejected."""
    present = {kind for _, kind in kinds}
    if {FileKind.LETTER, FileKind.TABLE} <= present:
        return True
    stems = {normalise(PurePosixPath(name).name.split(".")[0]) for name, kind in kinds if kind is FileKind.RAR}
    if len([stem for stem in stems if _ENTERPRISE_NAME.search(stem)]) >= 2:
        return True
    subject = normalise(message.subject)
    return bool(_BUREAU_WORDS.search(subject)) and _RECOMMEND in subject


def call_labels(calls: Sequence[Call]) -> tuple[CallLabel, ...]:
    return tuple(CallLabel(call.code, call.table, call.name) for call in calls)


def call_named(text: str, calls: Sequence[Call]) -> str | None:
    """The one call a subject names by its words (全省 / 全国, 附件3 / 附件6)."""
    if len(calls) == 1:
        return calls[0].code
    key = normalise(text)
    found = [code for code, words in call_words(call_labels(calls)).items() if any(w in key for w in words)]
    return found[0] if len(found) == 1 else None


@dataclass(frozen=True)
class Bundle:
    """What the earlier emails of one city and call brought."""

    letter: bool = False
    table: bool = False
    rows: tuple[RosterEntry, ...] = ()
    """The enterprises its tables listed."""
    arrived: frozenset[str] = frozenset()
    """Normalised names of the enterprises whose archives arrived (accepted or not)."""
    elsewhere: Mapping[str, str] = field(default_factory=dict)
    """Normalised names recommended for this call by another city, and that city."""


@dataclass(frozen=True)
class ArchiveMatch:
    """Whose archive this is, by its name, against the bundle's table rows and the call's roster."""

    enterprise: str
    listed: bool
    """Whether a table row or the roster names the enterprise (else: unlisted, a person decides)."""
    near_miss: bool = False
    """The name is one character off a listed one: that enterprise's archive, misnamed."""


def match_archive(stem: str, rows: Sequence[RosterEntry], roster: Roster | None, mode: NameMatch) -> ArchiveMatch:
    """The enterprise an archive named `stem` belongs to: exactly a row or roster name, or (by `mode`)
    starting with one, or one character off one; else the name itself, unlisted."""
    listed = Roster(list(rows) + list(roster.entries if roster else ()))
    found = listed.find(stem)
    if found is None and mode is NameMatch.PREFIX:
        found = listed.starting(stem)
    if found is not None:
        return ArchiveMatch(found.name, True)
    near = [entry for entry in listed.entries if one_character_off(stem, entry.name)]
    if len(near) == 1:
        return ArchiveMatch(near[0].name, True, near_miss=True)
    return ArchiveMatch(stem, False)


@dataclass(frozen=True)
class ThisEmail:
    """What one bureau email brings to its bundle."""

    letter: bool
    table: tuple[RosterEntry, ...] | None
    archives: tuple[str, ...]
    """The enterprises whose archives it carries (names as matched)."""
    links: bool
    """It carries download links, behind which the archives probably are."""


def cross_checks(city: str, call: Call | None, before: Bundle, now: ThisEmail) -> list[Problem]:
    """What the city's bundle lacks or gets wrong once this email is added, in the order a reply says it."""
    problems: list[Problem] = []
    if not (before.letter or now.letter):
        problems.append(Problem(Code.MISSING_LETTER))
    rows = _rows(before.rows, now.table or ())
    if not (before.table or now.table is not None):
        problems.append(Problem(Code.MISSING_TABLE))
    arrived = before.arrived | {normalise(name) for name in now.archives}
    if not now.links:
        problems += [
            Problem(Code.MISSING_ARCHIVE, enterprise=row.name) for row in rows if normalise(row.name) not in arrived
        ]
    if call and call.max_per_city and now.table is not None and len(now.table) > call.max_per_city:
        problems.append(Problem(Code.TOO_MANY_NATIONAL, detail=str(len(now.table))))
    for row in now.table or ():
        other = before.elsewhere.get(normalise(row.name))
        if other and other != city:
            problems.append(Problem(Code.RECOMMENDED_TWICE, enterprise=row.name, detail=other))
    return problems


def _rows(earlier: Sequence[RosterEntry], latest: Sequence[RosterEntry]) -> list[RosterEntry]:
    """The bundle's rows: a later table's rows replace an earlier one's of the same name, order kept."""
    merged = {normalise(row.name): row for row in earlier}
    merged.update({normalise(row.name): row for row in latest})
    return list(merged.values())
