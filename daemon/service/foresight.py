"""Judging a message ahead of its turn, while the message before it is recorded, so that the daemon's two
cores overlap: the readers' children work on message k+1 while the daemon writes message k.

A judgement made ahead is used only when judging in turn would come out the same. Judging is a pure function
of the message and its context (`intake/context.py`); the only part of the context that recording message k
can change is the mailbox's past, which judging asks through four questions (`History`). Each question asked
ahead and its answer are noted; in its turn, the message's judgement stands when the rules, rosters and
senders are the same objects' equals and every question, asked again, gets the same answer. Otherwise the
message is judged again, in its turn, as if nothing had been done ahead. A judgement that ran out of its time
is judged again too: time is ours to give, never the sender's doing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from ..domain import Code
from ..intake.bureau import Bundle
from ..intake.context import Context, EarlierVolumes, History
from ..pipeline import Judgement

T = TypeVar("T")


class NotedHistory:
    """The mailbox's past as one judgement saw it: every question, with the answer it got."""

    def __init__(self, history: History) -> None:
        self._history = history
        self._asked: list[tuple[Callable[[History], object], object]] = []

    def bundle(self, city: str, call: str) -> Bundle:
        return self._ask(lambda history: history.bundle(city, call))

    def replied_enterprise(self, message_ids: Sequence[str]) -> str | None:
        return self._ask(lambda history: history.replied_enterprise(message_ids))

    def earlier_volumes(self, stem: str, sender: str | None, since: datetime) -> EarlierVolumes | None:
        return self._ask(lambda history: history.earlier_volumes(stem, sender, since))

    def accepted_archive(self, enterprise: str) -> str | None:
        return self._ask(lambda history: history.accepted_archive(enterprise))

    def answers_alike(self, history: History) -> bool:
        """Whether `history` answers every question noted as it was answered then."""
        return all(ask(history) == answer for ask, answer in self._asked)

    def _ask(self, question: Callable[[History], T]) -> T:
        answer = question(self._history)
        self._asked.append((question, answer))
        return answer


@dataclass(frozen=True)
class Foresight:
    """A stored message judged ahead, its files already in the blob store."""

    context: Context
    """What judging knew, its history a NotedHistory."""
    judgement: Judgement | None
    """None when judging ahead raised: the message is judged again in its turn, where the error counts."""

    def holds(self, now: Context) -> bool:
        """Whether judging the message now, with what judging knows now, would give this judgement."""
        if self.judgement is None or Code.JUDGING_TIMEOUT in self.judgement.verdict.codes:
            return False
        then = self.context
        assert isinstance(then.history, NotedHistory)
        return (
            then.rules == now.rules
            and then.rosters == now.rosters
            and then.bureau_senders == now.bureau_senders
            and then.volumes_across_emails == now.volumes_across_emails
            and then.history.answers_alike(now.history)
        )
