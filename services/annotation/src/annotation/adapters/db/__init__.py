"""SQL adapter: tables, engine, repository and Alembic migrations."""
