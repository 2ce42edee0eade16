"""Alembic migrations of the database schema, one file per change; `shenbao db upgrade` applies them.

Forward only: a migration has no downgrade. To go back a version, restore the backup taken before the
upgrade (README, "Upgrading").
"""
