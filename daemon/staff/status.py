"""Where each enterprise stands, read from the database: the one definition staff, digest and export share.

A message's outcome is a person's latest decision on it, else the automatic verdict. An enterprise is
已受理 when any of its messages is accepted (counting the versions), else 待人工 when one still waits for a
person, else 已退回 when it sent anything at all, else 未提交.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlmodel import Session, col, select

from ..domain import Code, Outcome, Problem
from ..render import BadRecipient, single_address
from ..storage.models import Decision, Enterprise, MessageRecord, OutboxItem, ProblemRecord


class Standing(StrEnum):
    ACCEPTED = "已受理"
    REVIEW = "待人工"
    REJECTED = "已退回"
    MISSING = "未提交"


@dataclass(frozen=True)
class MessageView:
    record: MessageRecord
    outcome: Outcome
    """The outcome that counts: a person's latest decision, else the automatic verdict."""
    decision: Decision | None
    codes: tuple[str, ...]
    problems: tuple[ProblemRecord, ...]
    reply_states: tuple[str, ...]

    @property
    def found(self) -> tuple[Problem, ...]:
        return tuple(Problem(Code(p.code), p.role, p.suggestion, p.detail) for p in self.problems)


@dataclass(frozen=True)
class EnterpriseStatus:
    enterprise: Enterprise
    standing: Standing
    messages: tuple[MessageView, ...]
    """Every message that is not ignored, oldest first."""

    @property
    def versions(self) -> int:
        return sum(1 for m in self.messages if m.outcome is Outcome.ACCEPTED)

    @property
    def last_received(self) -> datetime | None:
        return self.messages[-1].record.received_at if self.messages else None

    @property
    def latest_accepted(self) -> MessageView | None:
        accepted = [m for m in self.messages if m.outcome is Outcome.ACCEPTED]
        return accepted[-1] if accepted else None

    @property
    def open_problems(self) -> tuple[Problem, ...]:
        """What is wrong with the latest message, unless the enterprise is already accepted."""
        if self.standing is Standing.ACCEPTED or not self.messages:
            return ()
        return self.messages[-1].found

    @property
    def sent_by_stranger(self) -> bool:
        """The accepted version came from an address that is not the roster's contact for the enterprise:
        anyone can send a valid-looking package in another's name, so staff must see it."""
        latest = self.latest_accepted
        contacts = contact_addresses(self.enterprise.email)
        return bool(latest and contacts and (latest.record.sender or "") not in contacts)


_SEPARATORS = re.compile(r"[\s;；,，、/]+")


def contact_addresses(cell: str) -> list[str]:
    """The addresses in a roster's email cell, which offices fill with one, two, or a typo."""
    found = []
    for piece in _SEPARATORS.split(cell.strip()):
        try:
            found.append(single_address(piece))
        except BadRecipient:
            continue
    return [address.lower() for address in dict.fromkeys(found)]


def message_views(session: Session) -> list[MessageView]:
    """Every recorded message, oldest first, with what counts."""
    records = list(session.exec(select(MessageRecord).order_by(col(MessageRecord.received_at), col(MessageRecord.id))))
    decisions: dict[int, Decision] = {}
    for made in session.exec(select(Decision).order_by(col(Decision.decided_at), col(Decision.id))):
        decisions[made.message_id] = made  # the latest wins
    problems: dict[int, list[ProblemRecord]] = defaultdict(list)
    for problem in session.exec(select(ProblemRecord).order_by(col(ProblemRecord.position))):
        problems[problem.message_id].append(problem)
    replies: dict[int, list[str]] = defaultdict(list)
    for reply in session.exec(select(OutboxItem).where(col(OutboxItem.message_id).is_not(None))):
        assert reply.message_id is not None
        replies[reply.message_id].append(reply.state)
    views = []
    for record in records:
        assert record.id is not None
        decision = decisions.get(record.id)
        outcome = Outcome(decision.outcome) if decision else Outcome(record.outcome)
        found = tuple(problems[record.id])
        views.append(
            MessageView(record, outcome, decision, tuple(p.code for p in found), found, tuple(replies[record.id]))
        )
    return views


def enterprise_statuses(
    session: Session, city: str | None = None, views: list[MessageView] | None = None
) -> list[EnterpriseStatus]:
    """One status per roster enterprise, in roster order (`views`: the message views, if already read)."""
    query = select(Enterprise).where(Enterprise.in_roster == True).order_by(col(Enterprise.id))  # noqa: E712
    if city:
        query = query.where(Enterprise.city == city)
    enterprises = list(session.exec(query))
    by_enterprise: dict[int, list[MessageView]] = defaultdict(list)
    for view in message_views(session) if views is None else views:
        if view.record.enterprise_id is not None and view.outcome is not Outcome.IGNORED:
            by_enterprise[view.record.enterprise_id].append(view)
    statuses = []
    for enterprise in enterprises:
        assert enterprise.id is not None
        messages = tuple(by_enterprise[enterprise.id])
        statuses.append(EnterpriseStatus(enterprise, standing_of(messages), messages))
    return statuses


def standing_of(messages: tuple[MessageView, ...]) -> Standing:
    outcomes = {m.outcome for m in messages}
    if Outcome.ACCEPTED in outcomes:
        return Standing.ACCEPTED
    if Outcome.REVIEW in outcomes:
        return Standing.REVIEW
    if messages:
        return Standing.REJECTED
    return Standing.MISSING
