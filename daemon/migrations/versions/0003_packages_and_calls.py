"""Packages and calls: a message carries one package per enterprise; enterprises are listed per call.

Each message of release 0.1.0 that was an enterprise's submission becomes one package (its enterprise,
archive, outcome, problems and documents move there); its submission, decisions and the roster's listing
are kept, for the single call of that configuration (code `default`). City bureaus' letters and tables,
and the senders staff confirm as bureaus, get tables of their own.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_CALL = "default"
_OUTCOMES = "'accepted', 'rejected', 'review', 'ignored', 'pending', 'bureau'"
_KINDS = "'submission', 'bureau', 'question', 'ignored', 'unreadable'"


def upgrade() -> None:
    op.create_table(
        "package",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=True),
        sa.Column("enterprise_name", sa.String(), nullable=True),
        sa.Column("call", sa.String(), nullable=True),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("archive_name", sa.String(), nullable=True),
        sa.Column("archive_size", sa.Integer(), nullable=True),
        sa.Column("archive_fingerprint", sa.String(), nullable=True),
        sa.Column("joined_into", sa.Integer(), nullable=True),
        sa.CheckConstraint(f"outcome IN ({_OUTCOMES})", name="ck_package_outcome"),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprise.id"]),
        sa.ForeignKeyConstraint(["joined_into"], ["package.id"]),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id", "position"),
    )
    with op.batch_alter_table("package") as batch:
        batch.create_index(batch.f("ix_package_enterprise_id"), ["enterprise_id"], unique=False)
        batch.create_index(batch.f("ix_package_message_id"), ["message_id"], unique=False)
        batch.create_index(batch.f("ix_package_outcome"), ["outcome"], unique=False)
    op.create_table(
        "nomination",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("call", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("city", sa.String(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("contact", sa.String(), nullable=False),
        sa.Column("phone", sa.String(), nullable=False),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("source IN ('roster', 'table', 'staff')", name="ck_nomination_source"),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprise.id"]),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("enterprise_id", "call", "source"),
    )
    with op.batch_alter_table("nomination") as batch:
        batch.create_index(batch.f("ix_nomination_call"), ["call"], unique=False)
        batch.create_index(batch.f("ix_nomination_enterprise_id"), ["enterprise_id"], unique=False)
    op.create_table(
        "bureau_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("city", sa.String(), nullable=False),
        sa.Column("call", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("table_call", sa.String(), nullable=True),
        sa.Column("entries", sa.String(), nullable=True),
        sa.CheckConstraint("kind IN ('letter', 'table')", name="ck_bureau_file_kind"),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("bureau_file") as batch:
        batch.create_index(batch.f("ix_bureau_file_city"), ["city"], unique=False)
        batch.create_index(batch.f("ix_bureau_file_message_id"), ["message_id"], unique=False)
    op.create_table(
        "bureau_reminder",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("city", sa.String(), nullable=False),
        sa.Column("call", sa.String(), nullable=False),
        sa.Column("day", sa.String(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("city", "call", "day"),
    )
    op.create_table(
        "bureau_sender",
        sa.Column("address", sa.String(), nullable=False),
        sa.Column("city", sa.String(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"]),
        sa.PrimaryKeyConstraint("address"),
    )

    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("kind", sa.String(), nullable=False, server_default="submission"))
        batch.add_column(sa.Column("city", sa.String(), nullable=True))
        batch.add_column(sa.Column("call", sa.String(), nullable=True))
    with op.batch_alter_table("problem") as batch:
        batch.add_column(sa.Column("package_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("enterprise", sa.String(), nullable=True))
    with op.batch_alter_table("document") as batch:
        batch.add_column(sa.Column("package_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("decision") as batch:
        batch.add_column(sa.Column("package_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("actor", sa.String(), nullable=False, server_default=""))

    _move_data()

    with op.batch_alter_table("message") as batch:
        batch.drop_constraint("ck_message_outcome", type_="check")
        batch.create_check_constraint("ck_message_outcome", f"outcome IN ({_OUTCOMES})")
        batch.create_check_constraint("ck_message_kind", f"kind IN ({_KINDS})")
        batch.drop_index("ix_message_enterprise_id")
        batch.drop_column("enterprise_id")
        batch.drop_column("enterprise_name")
        batch.drop_column("archive_name")
        batch.alter_column("kind", server_default=None)
    with op.batch_alter_table("problem") as batch:
        batch.create_foreign_key("fk_problem_package_id", "package", ["package_id"], ["id"])
        batch.create_index(batch.f("ix_problem_package_id"), ["package_id"], unique=False)
    with op.batch_alter_table("document") as batch:
        batch.alter_column("package_id", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key("fk_document_package_id", "package", ["package_id"], ["id"])
        batch.create_index(batch.f("ix_document_package_id"), ["package_id"], unique=False)
    _replace_submission()
    with op.batch_alter_table("decision") as batch:
        batch.alter_column("actor", server_default=None)
        batch.create_foreign_key("fk_decision_package_id", "package", ["package_id"], ["id"])
        batch.create_index(batch.f("ix_decision_package_id"), ["package_id"], unique=False)
    with op.batch_alter_table("enterprise") as batch:
        batch.drop_column("in_roster")


def _move_data() -> None:
    """Each enterprise submission of 0.1.0 becomes one package; the roster becomes nominations."""
    connection = op.get_bind()
    connection.execute(
        sa.text(
            "UPDATE message SET kind = CASE"
            " WHEN outcome = 'ignored' THEN 'ignored'"
            " WHEN EXISTS (SELECT 1 FROM problem p WHERE p.message_id = message.id"
            "   AND p.code = 'unreadable_message') THEN 'unreadable'"
            " WHEN EXISTS (SELECT 1 FROM problem p WHERE p.message_id = message.id"
            "   AND p.code = 'not_a_submission') THEN 'question'"
            " ELSE 'submission' END"
        )
    )
    connection.execute(
        sa.text(
            "INSERT INTO package (message_id, position, enterprise_id, enterprise_name, call, outcome, archive_name)"
            " SELECT id, 0, enterprise_id, enterprise_name, :call, outcome, archive_name"
            " FROM message WHERE kind = 'submission'"
        ),
        {"call": _CALL},
    )
    for table in ("problem", "document", "decision"):
        connection.execute(
            sa.text(
                f"UPDATE {table} SET package_id = (SELECT package.id FROM package"
                f" WHERE package.message_id = {table}.message_id)"
            )
        )
    connection.execute(
        sa.text(
            "INSERT INTO nomination (enterprise_id, call, source, city, title, contact, phone, email)"
            " SELECT id, :call, 'roster', city, title, contact, phone, email FROM enterprise WHERE in_roster"
        ),
        {"call": _CALL},
    )


def _replace_submission() -> None:
    """Submissions are unique per package, no longer per message: the table is made anew (its old unique
    constraint has no name to drop it by on every database)."""
    op.create_table(
        "submission_v3",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("call", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprise.id"]),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"]),
        sa.ForeignKeyConstraint(["package_id"], ["package.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("package_id"),
    )
    op.get_bind().execute(
        sa.text(
            "INSERT INTO submission_v3 (id, enterprise_id, message_id, package_id, call, version)"
            " SELECT s.id, s.enterprise_id, s.message_id, p.id, :call, s.version"
            " FROM submission s JOIN package p ON p.message_id = s.message_id"
        ),
        {"call": _CALL},
    )
    if op.get_bind().dialect.name == "postgresql":  # rows copied with their ids: move the sequence past them
        op.execute(
            "SELECT setval(pg_get_serial_sequence('submission_v3', 'id'), COALESCE(MAX(id), 1)) FROM submission_v3"
        )
    op.drop_table("submission")
    op.rename_table("submission_v3", "submission")
    with op.batch_alter_table("submission") as batch:
        batch.create_index(batch.f("ix_submission_enterprise_id"), ["enterprise_id"], unique=False)
        batch.create_index(batch.f("ix_submission_message_id"), ["message_id"], unique=False)
