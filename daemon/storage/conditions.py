"""SQL conditions that both the intake's history (`service.history`) and the staff's views (`app.queries`)
ask, defined once below both."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from ..domain import Code, MessageKind
from .models import MessageRecord, ProblemRecord


def confirmed_bureau_messages(call: str | None = None) -> Any:
    """SQL: the ids of bureaus' emails from senders that speak for a city (listed, or confirmed by staff)."""
    unconfirmed = select(ProblemRecord.message_id).where(ProblemRecord.code == Code.BUREAU_UNCONFIRMED.value)
    query = select(MessageRecord.id).where(
        MessageRecord.kind == MessageKind.BUREAU, col(MessageRecord.id).not_in(unconfirmed)
    )
    return query.where(MessageRecord.call == call) if call is not None else query
