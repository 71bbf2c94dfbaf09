"""Clients of other systems: the SQL database (``db/``: tables, repository, Alembic)."""
