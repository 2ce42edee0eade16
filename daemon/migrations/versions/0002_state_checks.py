"""States as enumerations: CHECK constraints keep each state column within its machine's values.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_OUTCOMES = ("accepted", "rejected", "review", "ignored")
_CHECKS = {
    "message": ("ck_message_outcome", "outcome", _OUTCOMES),
    "outbox": (
        "ck_outbox_state",
        "state",
        ("queued", "held", "sending", "sent", "failed", "suppressed", "uncertain", "bounced"),
    ),
    "mailbox_item": ("ck_mailbox_item_state", "state", ("skipped", "downloaded", "recorded", "done", "kept")),
    "decision": ("ck_decision_outcome", "outcome", ("accepted", "rejected")),
}


def upgrade() -> None:
    for table, (name, column, values) in _CHECKS.items():
        with op.batch_alter_table(table) as batch:
            batch.create_check_constraint(name, f"{column} IN ({', '.join(repr(v) for v in values)})")
