"""Database access: connection, schema (models + Alembic), repositories and search."""
