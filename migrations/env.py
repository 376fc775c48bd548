"""Alembic environment: works from the application and from the `alembic` command line.

From the application, `mcp_server.db.migrate` hands over an open connection (already holding
the migration advisory lock) and its Settings in `config.attributes`; nothing is printed and
logging is left as the application configured it (stderr). From the command line, the
database comes from the same settings (DATABASE_URL, or the embedded PostgreSQL).
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from mcp_server.db.migration_env import migration_settings
from mcp_server.db.models import metadata

config = context.config
target_metadata = metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        transaction_per_migration=False,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_command_line() -> None:
    from mcp_server.db.engine import resolve_target, sqlalchemy_engine

    settings = migration_settings(config)
    target = await resolve_target(settings)
    engine = sqlalchemy_engine(target, settings.db_connect_timeout_s)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline (--sql) mode is not supported: the migrations inspect the live schema.")

connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    asyncio.run(_run_from_command_line())
