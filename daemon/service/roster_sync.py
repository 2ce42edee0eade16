"""Who is listed for which call: the staff's summary tables kept in the database, and the rosters read back.

An enterprise is listed for a call by a nomination: the configured roster file of that call (kept equal to
the file), a city bureau's summary table (recorded with the bureau's email), or a person's decision.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from ..domain import RosterEntry
from ..intake.match import Roster, normalise
from ..intake.roster import read_roster
from ..storage.db import get_meta, set_meta
from ..storage.models import Enterprise, Nomination
from ..storage.states import NominationSource


@dataclass(frozen=True)
class RosterChange:
    added: int
    updated: int
    withdrawn: int
    """Enterprises no longer in the table: kept, with their history, but no longer listed by it."""


def enterprise_for(session: Session, name: str) -> Enterprise:
    """The enterprise's row, created on first sight."""
    key = normalise(name)
    row = session.exec(select(Enterprise).where(Enterprise.key == key)).first()
    if row is None:
        row = Enterprise(name=name, key=key)
        session.add(row)
        session.flush()
    return row


def nominate(
    session: Session, entry: RosterEntry, call: str, source: NominationSource, message_id: int | None = None
) -> bool:
    """List `entry` for `call` by `source` (updating what that source said before); whether anything changed."""
    enterprise = enterprise_for(session, entry.name)
    if source is NominationSource.ROSTER:  # the staff's table spells the name as it should be
        enterprise.name = entry.name
    for field in ("city", "title", "contact", "phone", "email"):  # the enterprise's latest known details
        if getattr(entry, field):
            setattr(enterprise, field, getattr(entry, field))
    session.add(enterprise)
    row = session.exec(
        select(Nomination).where(
            Nomination.enterprise_id == enterprise.id, Nomination.call == call, Nomination.source == source
        )
    ).first()
    details = (entry.city, entry.title, entry.contact, entry.phone, entry.email)
    if row is not None and (row.city, row.title, row.contact, row.phone, row.email) == details:
        return False
    assert enterprise.id is not None
    row = row or Nomination(enterprise_id=enterprise.id, call=call, source=source)
    row.city, row.title, row.contact, row.phone, row.email = details
    row.message_id = message_id
    session.add(row)
    return True


def import_roster(session: Session, entries: list[RosterEntry], call: str) -> RosterChange:
    """Make the roster source of `call` equal to `entries`: re-importing a corrected table updates rows,
    never duplicates them."""
    before = {
        n.enterprise_id: n
        for n in session.exec(
            select(Nomination).where(Nomination.call == call, Nomination.source == NominationSource.ROSTER)
        )
    }
    added = updated = 0
    kept: set[int] = set()
    for entry in entries:
        existed = session.exec(select(Enterprise.id).where(Enterprise.key == normalise(entry.name))).first()
        changed = nominate(session, entry, call, NominationSource.ROSTER)
        enterprise = enterprise_for(session, entry.name)
        assert enterprise.id is not None
        kept.add(enterprise.id)
        if existed is None or existed not in before:
            added += 1
        elif changed:
            updated += 1
    withdrawn = [row for enterprise_id, row in before.items() if enterprise_id not in kept]
    for row in withdrawn:
        session.delete(row)
    return RosterChange(added, updated, len(withdrawn))


def refresh_rosters(engine: Engine, paths: Mapping[str, Path]) -> dict[str, RosterChange]:
    """Load each call's roster file into the database when its content changed since the last load."""
    changes = {}
    for call, path in paths.items():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        key = f"roster_sha256:{call}"
        with Session(engine) as session:
            if get_meta(session, key) == digest:
                continue
            changes[call] = import_roster(session, read_roster(path), call)
            set_meta(session, key, digest)
            session.commit()
    return changes


def nominations_mark(session: Session) -> tuple[int, int]:
    """Changes whenever a nomination is added or removed: when to read the rosters again."""
    count, highest = session.exec(select(func.count(), func.max(Nomination.id))).one()
    return int(count), int(highest or 0)


def database_rosters(session: Session) -> dict[str, Roster]:
    """Each call's roster, every source together (a roster file's row wins over a table's for the details)."""
    order = {NominationSource.STAFF: 0, NominationSource.TABLE: 1, NominationSource.ROSTER: 2}
    by_call: dict[str, dict[str, RosterEntry]] = defaultdict(dict)
    rows = session.exec(
        select(Nomination, Enterprise)
        .join(Enterprise, col(Enterprise.id) == Nomination.enterprise_id)
        .order_by(col(Nomination.id))
    ).all()
    for nomination, enterprise in sorted(rows, key=lambda pair: order[pair[0].source]):
        by_call[nomination.call][enterprise.key] = RosterEntry(
            enterprise.name, nomination.city, nomination.title, nomination.contact, nomination.phone, nomination.email
        )
    return {call: Roster(entries.values()) for call, entries in by_call.items()}


def listed(session: Session, call: str | None = None) -> Iterable[Enterprise]:
    """The enterprises listed for `call` (for any call when None), in the order they were first listed."""
    query = select(Enterprise).join(Nomination, col(Nomination.enterprise_id) == Enterprise.id)
    if call is not None:
        query = query.where(Nomination.call == call)
    return session.exec(query.distinct().order_by(col(Enterprise.id))).all()
