"""Keeping the database's roster equal to the summary table, and reading it back for matching."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from ..domain import RosterEntry
from ..intake.match import Roster, normalise
from ..staff.roster import read_roster
from ..storage.db import get_meta, roster_entries, set_meta
from ..storage.models import Enterprise

_ROSTER_KEY = "roster_sha256"


@dataclass(frozen=True)
class RosterChange:
    added: int
    updated: int
    withdrawn: int
    """Enterprises no longer in the table: kept, with their history, but no longer matched."""


def import_roster(session: Session, entries: list[RosterEntry]) -> RosterChange:
    """Upsert by normalised name: re-importing a corrected table updates rows, never duplicates them."""
    existing = {e.key: e for e in session.exec(select(Enterprise))}
    added = updated = 0
    keys = set()
    for entry in entries:
        key = normalise(entry.name)
        keys.add(key)
        row = existing.get(key)
        if row is None:
            row = Enterprise(key=key, name=entry.name)
            added += 1
        elif _differs(row, entry):
            updated += 1
        row.name, row.city, row.title = entry.name, entry.city, entry.title
        row.contact, row.phone, row.email = entry.contact, entry.phone, entry.email
        row.in_roster = True
        session.add(row)
    withdrawn = 0
    for key, row in existing.items():
        if row.in_roster and key not in keys:
            row.in_roster = False
            session.add(row)
            withdrawn += 1
    return RosterChange(added, updated, withdrawn)


def _differs(row: Enterprise, entry: RosterEntry) -> bool:
    stored = (row.name, row.city, row.title, row.contact, row.phone, row.email, row.in_roster)
    return stored != (entry.name, entry.city, entry.title, entry.contact, entry.phone, entry.email, True)


def refresh_roster(engine: Engine, path: Path | None) -> RosterChange | None:
    """Load the configured roster file into the database when its content changed since the last load."""
    if path is None:
        return None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with Session(engine) as session:
        if get_meta(session, _ROSTER_KEY) == digest:
            return None
        change = import_roster(session, read_roster(path))
        set_meta(session, _ROSTER_KEY, digest)
        session.commit()
        return change


def database_roster(engine: Engine) -> Roster | None:
    """The roster to match against; None when no roster was ever loaded (the subject is then the name)."""
    with Session(engine) as session:
        rows = roster_entries(session)
    if not rows:
        return None
    return Roster(RosterEntry(r.name, r.city, r.title, r.contact, r.phone, r.email) for r in rows)
