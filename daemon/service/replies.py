"""Deciding and queueing the answer to a recorded message, inside the transaction that records it.

Ignored mail is never answered; mail whose From is not one mailbox cannot be; past
`max_per_address_per_hour` replies to one address, a reply is recorded as suppressed (a loop guard), never
sent later. Everything a reply says is read back from the database, so a resend says the same.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from ..addresses import BadRecipient
from ..campaign import MIB, CallRules, SealPolicy
from ..domain import STAFF_NOTES, Code, MessageKind, Outcome, Problem, SealStatus
from ..explain import (
    OUTCOME_WORDS,
    advice,
    grouped,
    human_size,
    note_text,
    reference,
    review_reason,
    role_of,
    shanghai_time,
    title,
    volumes_text,
)
from ..render import Renderer
from ..storage.models import (
    BureauFile,
    DocumentRecord,
    MessageRecord,
    OutboxItem,
    PackageRecord,
    ProblemRecord,
    Submission,
)
from ..storage.states import OutboxState
from .outbox import enqueue

log = logging.getLogger(__name__)

REPLY_KINDS = {
    Outcome.ACCEPTED: "receipt",
    Outcome.REJECTED: "rejection",
    Outcome.REVIEW: "review",
    Outcome.PENDING: "volumes",
    Outcome.BUREAU: "bureau",
}


class ReplyPlanner:
    def __init__(
        self,
        renderer: Renderer,
        rules: CallRules,
        campaign: str,
        max_per_address_per_hour: int,
    ) -> None:
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
        by_staff: bool = False,
    ) -> OutboxItem | None:
        """Queue the answer to `row` (its verdict already in `session`); None when it must not or cannot be
        answered. `kind` defaults to the verdict's reply; `hold` keeps a dry run's reply unsent until the
        daemon runs for real; `guard` applies the per-address loop guard (off for staff's own actions);
        `by_staff`: the answer follows a person's decision."""
        kind = kind or REPLY_KINDS.get(row.outcome)
        if kind is None or row.sender is None or row.id is None:
            return None
        try:
            email = self.renderer.email(
                kind,
                self.context(session, row, note, by_staff=by_staff),
                to=row.sender,
                now=now,
                in_reply_to=row.message_id,
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

    def context(
        self, session: Session, row: MessageRecord, note: str = "", *, by_staff: bool = False
    ) -> dict[str, Any]:
        """What the templates say about `row`, read from the database."""
        assert row.id is not None
        rules = self.rules
        packages = session.exec(
            select(PackageRecord).where(PackageRecord.message_id == row.id).order_by(col(PackageRecord.position))
        ).all()
        problems: dict[int | None, list[Problem]] = defaultdict(list)
        for p in session.exec(
            select(ProblemRecord).where(ProblemRecord.message_id == row.id).order_by(col(ProblemRecord.position))
        ):
            problems[p.package_id].append(Problem(Code(p.code), p.role, p.suggestion, p.detail, p.enterprise))
        documents: dict[int, list[DocumentRecord]] = defaultdict(list)
        for document in session.exec(select(DocumentRecord).where(DocumentRecord.message_id == row.id)):
            documents[document.package_id].append(document)
        versions = {
            s.package_id: s.version for s in session.exec(select(Submission).where(Submission.message_id == row.id))
        }
        items = [self._package(p, problems[p.id], documents[p.id or 0], versions.get(p.id or 0)) for p in packages]
        own = problems[None]
        call = rules.call(row.call) or (rules.call(packages[0].call) if packages else None) or rules.own_call
        mine = items[0] if row.kind is MessageKind.SUBMISSION and items else None
        every = own + (mine["found"] if mine else [])
        bureau_files = self._bureau_files(session, row.id)
        return {
            "campaign": (call.name if call and call.name else "") or self.campaign,
            "reference": reference(row.id),
            "received_at": shanghai_time(row.received_at),
            "their_subject": row.subject,
            "note": note,
            "by_staff": by_staff,
            "online_filing": call.online_filing if call else "",
            "enterprise": mine["enterprise"] if mine else None,
            "version": mine["version"] if mine else 1,
            "archive": mine["archive"] if mine else None,
            "documents": mine["documents"] if mine else [],
            "notes": mine["notes"] if mine else [],
            "sealed": bool(mine and mine["sealed"]),
            "seal_checked": rules.seal is not SealPolicy.OFF,
            "same_as_accepted": bool(mine and mine["same"]),
            "problems": self._explained(every),
            "volumes": volumes_text(every),
            "reason": review_reason(tuple(every)),
            "links": [p.detail for p in every if p.code is Code.ATTACHMENT_LINK and p.detail],
            "max_archive_mb": f"{rules.max_archive_bytes / MIB:g}",
            "roles": "、".join(role.label for role in rules.roles),
            "deadline": shanghai_time(call.deadline) if call and call.deadline else "",
            # a bureau's email
            "city": row.city,
            "bureau_deadline": shanghai_time(call.bureau_deadline) if call and call.bureau_deadline else "",
            "letter": bureau_files.get("letter"),
            "table": bureau_files.get("table"),
            "packages": items,
            "checks": self._explained(own),
        }

    def _package(
        self, package: PackageRecord, found: list[Problem], documents: list[DocumentRecord], version: int | None
    ) -> dict[str, Any]:
        volumes = package.archive_fingerprint.split("+") if package.archive_fingerprint else []
        return {
            "enterprise": package.enterprise_name,
            "outcome": OUTCOME_WORDS[package.outcome],
            "accepted": package.outcome is Outcome.ACCEPTED,
            "version": version or 1,
            "found": [p for p in found if not p.is_note],
            "problems": self._explained([p for p in found if not p.is_note]),
            "notes": [note_text(p) for p in found if p.is_note and p.code not in STAFF_NOTES],
            "same": any(p.code is Code.SAME_AS_ACCEPTED for p in found),
            "sealed": package.seal is SealStatus.FOUND,
            "archive": {
                "name": f"{package.archive_name}.rar"
                if len(volumes) <= 1
                else f"{package.archive_name}（{len(volumes)} 卷）",
                "size": human_size(package.archive_size or 0),
                "sha256": "、".join(volumes),
            }
            if package.archive_name
            else None,
            "documents": [
                {
                    "label": (role.label if (role := role_of(d.role, self.rules)) else d.role),
                    "name": d.name,
                    "size": human_size(d.size),
                    "sha256": d.sha256,
                }
                for d in documents
            ],
        }

    def _explained(self, problems: list[Problem]) -> list[dict[str, str]]:
        return [
            {"title": title(p, self.rules), "advice": advice(p, self.rules)}
            for p in grouped(p for p in problems if not p.is_note)
        ]

    @staticmethod
    def _bureau_files(session: Session, message_id: int) -> dict[str, dict[str, object]]:
        """A bureau's letter and table in this message, by kind (`letter`, `table`)."""
        found: dict[str, dict[str, object]] = {}
        query = select(BureauFile).where(BureauFile.message_id == message_id).order_by(col(BureauFile.id))
        for file in session.exec(query):
            found.setdefault(file.kind, {"name": file.name, "pages": file.pages, "rows": file.rows})
        return found
