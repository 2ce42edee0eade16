"""The web console: its users (Argon2 password hashes, a role each) and the audit log of what they did.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('viewer', 'staff', 'admin')", name="ck_web_user_role"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("web_user") as batch:
        batch.create_index(batch.f("ix_web_user_name"), ["name"], unique=True)
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("enterprise_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.String(), nullable=False),
        sa.Column("address", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprise.id"]),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit") as batch:
        batch.create_index(batch.f("ix_audit_actor"), ["actor"], unique=False)
        batch.create_index(batch.f("ix_audit_enterprise_id"), ["enterprise_id"], unique=False)
        batch.create_index(batch.f("ix_audit_message_id"), ["message_id"], unique=False)
