"""What staff do to one message: decide it by hand, or send its answer again.

A decision never erases the automatic verdict: both stay, and the latest decision is what counts.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlmodel import Session, col, select

from ..domain import Outcome
from ..service.recorder import add_version
from ..service.replies import REPLY_KINDS, ReplyPlanner
from ..storage.models import Decision, Enterprise, MessageRecord, OutboxItem


class ActionError(Exception):
    """The action cannot be done; the message says why, for the person who asked."""


_REFERENCE = re.compile(r"^(?:SB-?|#)?0*(\d+)$", re.IGNORECASE)


def find_message(session: Session, reference: str) -> MessageRecord:
    """A message by its receipt number (SB-000012), #12 or 12."""
    found = _REFERENCE.match(reference.strip())
    row = session.get(MessageRecord, int(found.group(1))) if found else None
    if row is None:
        raise ActionError(f"no message {reference!r} (use the number in the reply, e.g. SB-000012)")
    return row


def decide(
    session: Session, planner: ReplyPlanner, row: MessageRecord, accept: bool, note: str, moment: datetime
) -> OutboxItem | None:
    """Record a person's verdict and queue the enterprise's notice of it."""
    assert row.id is not None
    if accept:
        enterprise = session.get(Enterprise, row.enterprise_id) if row.enterprise_id else None
        if enterprise is None:
            raise ActionError(
                f"SB-{row.id:06d} names no known enterprise, so it cannot be accepted: fix the roster and run "
                "`shenbao recheck`, or ask the enterprise to send it again"
            )
        add_version(session, enterprise, row.id)
    outcome = Outcome.ACCEPTED if accept else Outcome.REJECTED
    session.add(Decision(message_id=row.id, outcome=outcome, note=note, decided_at=moment))
    return planner.queue(session, row, moment, kind="receipt" if accept else "decision", note=note, guard=False)


def resend(session: Session, planner: ReplyPlanner, row: MessageRecord, moment: datetime) -> OutboxItem | None:
    """Queue the message's last answer again (rendered afresh, with a new Message-ID)."""
    assert row.id is not None
    last = session.exec(
        select(OutboxItem).where(OutboxItem.message_id == row.id).order_by(col(OutboxItem.id).desc())
    ).first()
    decision = session.exec(
        select(Decision).where(Decision.message_id == row.id).order_by(col(Decision.id).desc())
    ).first()
    kind = last.kind if last else REPLY_KINDS.get(Outcome(row.outcome))
    if kind is None:
        raise ActionError(f"SB-{row.id:06d} was ignored ({row.outcome}): it is never answered")
    return planner.queue(session, row, moment, kind=kind, note=decision.note if decision else "", guard=False)
