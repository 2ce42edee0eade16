"""Messages that fail or wait: each mailbox item's subject, failed attempts and last error; the states
`pending`, `no_room` and `quarantined`.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_STATES = ("skipped", "pending", "no_room", "downloaded", "recorded", "done", "kept", "quarantined")


def upgrade() -> None:
    with op.batch_alter_table("mailbox_item") as batch:
        batch.add_column(sa.Column("subject", sa.String(), nullable=False, server_default=""))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_error", sa.String(), nullable=True))
        batch.drop_constraint("ck_mailbox_item_state", type_="check")
        batch.create_check_constraint(
            "ck_mailbox_item_state", f"state IN ({', '.join(repr(state) for state in _STATES)})"
        )
