"""What the documents say: each document's length, pictures, title, seal and text signature; each package's
seal and 质量标杆名称; a problem's severity where configuration decides it (the missing seal).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_SEALS = "'found', 'not_found', 'unreadable'"


def upgrade() -> None:
    with op.batch_alter_table("document") as batch:
        batch.add_column(sa.Column("read", sa.Boolean(), nullable=False, server_default=sa.false()))
        for name in ("words", "pages", "pictures"):
            batch.add_column(sa.Column(name, sa.Integer(), nullable=True))
        for name in ("title", "signature", "seal", "seal_picture"):
            batch.add_column(sa.Column(name, sa.String(), nullable=True))
        batch.create_check_constraint("ck_document_seal", f"seal IN ({_SEALS})")
        batch.create_index(batch.f("ix_document_sha256"), ["sha256"], unique=False)
    with op.batch_alter_table("document") as batch:
        batch.alter_column("read", server_default=None)
    with op.batch_alter_table("package") as batch:
        for name in ("seal", "seal_document", "seal_picture", "title"):
            batch.add_column(sa.Column(name, sa.String(), nullable=True))
        batch.create_check_constraint("ck_package_seal", f"seal IN ({_SEALS})")
    with op.batch_alter_table("problem") as batch:
        batch.add_column(sa.Column("severity", sa.String(), nullable=True))
        batch.create_check_constraint("ck_problem_severity", "severity IN ('note', 'review', 'reject')")
