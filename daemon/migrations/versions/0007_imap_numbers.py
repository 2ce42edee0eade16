"""IMAP numbers as 64-bit integers: UIDVALIDITY, UID and RFC822.SIZE are unsigned 32-bit values, past
PostgreSQL's `integer` (at most 2**31 - 1); SQLite's INTEGER already held them.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_COLUMNS = {"folder_state": ("uidvalidity",), "mailbox_item": ("uidvalidity", "uid", "size")}


def upgrade() -> None:
    for table, columns in _COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False)
