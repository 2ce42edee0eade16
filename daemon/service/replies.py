"""Deciding and queueing the answer to a recorded message, inside the transaction that records it.

Ignored mail is never answered; mail whose From is not one mailbox cannot be; past
`max_per_address_per_hour` replies to one address, a reply is recorded as suppressed (a loop guard), never
sent later.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from ..campaign import MIB, CallRules
from ..domain import Code, Outcome, Problem
from ..explain import advice, review_reason, role_of, shanghai_time, title
from ..render import BadRecipient, Renderer
from ..storage.models import DocumentRecord, MessageRecord, OutboxItem, ProblemRecord, Submission
from ..storage.states import OutboxState
from .outbox import enqueue

log = logging.getLogger(__name__)

REPLY_KINDS = {Outcome.ACCEPTED: "receipt", Outcome.REJECTED: "rejection", Outcome.REVIEW: "review"}


def human_size(size: int) -> str:
    if size >= MIB:
        return f"{size / MIB:.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size} 字节"


def reference(record_id: int) -> str:
    return f"SB-{record_id:06d}"


class ReplyPlanner:
    def __init__(self, renderer: Renderer, rules: CallRules, campaign: str, max_per_address_per_hour: int) -> None:
        self.renderer = renderer
        self.rules = rules
        self.campaign = campaign
        self.max_per_hour = max_per_address_per_hour

    def queue(
        self,
        session: Session,
        row: MessageRecord,
        now: datetime,
        *,
        kind: str | None = None,
        note: str = "",
        hold: bool = False,
        guard: bool = True,
    ) -> OutboxItem | None:
        """Queue the answer to `row` (its verdict already in `session`); None when it must not or cannot be
        answered. `kind` defaults to the verdict's reply; `hold` keeps a dry run's reply unsent until the
        daemon runs for real; `guard` applies the per-address loop guard (off for staff's own actions)."""
        kind = kind or REPLY_KINDS.get(Outcome(row.outcome))
        if kind is None or row.sender is None or row.id is None:
            return None
        try:
            email = self.renderer.email(
                kind, self.context(session, row, note), to=row.sender, now=now, in_reply_to=row.message_id
            )
        except BadRecipient:
            log.warning("message %s: sender %r cannot be answered", row.id, row.sender)
            return None
        state = OutboxState.HELD if hold else OutboxState.QUEUED
        if guard and self._recent(session, row.sender, now) >= self.max_per_hour:
            state = OutboxState.SUPPRESSED
            log.warning("message %s: reply to %s suppressed by the loop guard", row.id, row.sender)
        return enqueue(session, email, kind, now, message_id=row.id, state=state)

    def _recent(self, session: Session, recipient: str, now: datetime) -> int:
        since = now - timedelta(hours=1)
        query = (
            select(func.count())
            .select_from(OutboxItem)
            .where(
                OutboxItem.recipient == recipient,
                OutboxItem.created_at > since,
                OutboxItem.state != OutboxState.SUPPRESSED,
            )
        )
        return int(session.exec(query).one())

    def context(self, session: Session, row: MessageRecord, note: str = "") -> dict[str, Any]:
        """What the templates say about `row`, read from the database (so a resend says the same)."""
        assert row.id is not None
        submission = session.exec(select(Submission).where(Submission.message_id == row.id)).first()
        documents = session.exec(select(DocumentRecord).where(DocumentRecord.message_id == row.id)).all()
        problems = [
            Problem(Code(p.code), p.role, p.suggestion, p.detail)
            for p in session.exec(
                select(ProblemRecord).where(ProblemRecord.message_id == row.id).order_by(col(ProblemRecord.position))
            )
        ]
        return {
            "campaign": self.campaign,
            "enterprise": row.enterprise_name,
            "reference": reference(row.id),
            "received_at": shanghai_time(row.received_at),
            "their_subject": row.subject,
            "version": submission.version if submission else 1,
            "note": note,
            "documents": [
                {
                    "label": (role.label if (role := role_of(d.role, self.rules)) else d.role),
                    "name": d.name,
                    "size": human_size(d.size),
                    "sha256": d.sha256,
                }
                for d in documents
            ],
            "problems": [{"title": title(p, self.rules), "advice": advice(p, self.rules)} for p in problems],
            "reason": review_reason(tuple(problems)),
            "max_archive_mb": f"{self.rules.max_archive_bytes / MIB:g}",
            "roles": "、".join(role.label for role in self.rules.roles),
            "deadline": shanghai_time(self.rules.deadline) if self.rules.deadline else "",
        }
