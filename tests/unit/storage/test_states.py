"""The state machines: each allowed step works, anything else is refused before it reaches the database."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from daemon.storage.states import ITEM_STEPS, OUTBOX_STEPS, IllegalStep, ItemState, OutboxState, advance


@dataclass
class Row:
    state: OutboxState | ItemState
    id: int = 7


def test_a_queued_reply_goes_to_sending_then_sent_then_bounced() -> None:
    row = Row(OutboxState.QUEUED)
    for state in (OutboxState.SENDING, OutboxState.SENT, OutboxState.BOUNCED):
        advance(row, state, OUTBOX_STEPS)
    assert row.state is OutboxState.BOUNCED


def test_a_sent_reply_is_never_queued_again() -> None:
    row = Row(OutboxState.SENT)
    with pytest.raises(IllegalStep, match="sent -> queued"):
        advance(row, OutboxState.QUEUED, OUTBOX_STEPS)
    assert row.state is OutboxState.SENT


def test_an_uncertain_reply_is_never_sent_again_automatically() -> None:
    assert OutboxState.SENDING not in OUTBOX_STEPS[OutboxState.UNCERTAIN]
    assert OutboxState.QUEUED not in OUTBOX_STEPS[OutboxState.UNCERTAIN]


def test_a_moved_message_is_never_recorded_again() -> None:
    row = Row(ItemState.DONE)
    with pytest.raises(IllegalStep):
        advance(row, ItemState.RECORDED, ITEM_STEPS)


@pytest.mark.parametrize("steps", [OUTBOX_STEPS, ITEM_STEPS])
def test_every_state_has_its_steps_listed(steps: dict[object, frozenset[object]]) -> None:
    enum = type(next(iter(steps)))
    assert set(steps) == set(enum)


def test_a_quarantined_message_is_requeued_to_where_it_had_got_never_straight_to_done() -> None:
    for back in (ItemState.PENDING, ItemState.DOWNLOADED, ItemState.RECORDED):
        row = Row(ItemState.QUARANTINED)
        advance(row, back, ITEM_STEPS)
        assert row.state is back
    with pytest.raises(IllegalStep, match="quarantined -> done"):
        advance(Row(ItemState.QUARANTINED), ItemState.DONE, ITEM_STEPS)


def test_a_message_waiting_for_room_is_downloaded_or_quarantined_but_never_recorded_undownloaded() -> None:
    assert ITEM_STEPS[ItemState.NO_ROOM] == {ItemState.DOWNLOADED, ItemState.QUARANTINED}
    with pytest.raises(IllegalStep):
        advance(Row(ItemState.NO_ROOM), ItemState.RECORDED, ITEM_STEPS)
