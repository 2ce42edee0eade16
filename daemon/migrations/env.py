"""Alembic's entry point: migrations run on the connection `daemon.storage.schema` hands over.

`render_as_batch` makes every ALTER work on SQLite too (the table is copied and replaced in one
transaction), so one migration serves SQLite and PostgreSQL alike.
"""

from alembic import context
from sqlmodel import SQLModel

from daemon.storage import models  # noqa: F401 - registers the tables on SQLModel.metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
