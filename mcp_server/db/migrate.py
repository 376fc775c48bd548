"""Bring a database to the schema this version needs, safely, at start-up.

- All of it runs in one transaction holding a PostgreSQL advisory lock, so N processes starting
  at once on an empty database migrate exactly once (the others wait, then find it at head).
- A database whose tables exist without `alembic_version` (the seed's, or `create_all`) is
  recognised and stamped at the newest revision its schema already has, then upgraded.
- EMBEDDING_DIM is checked against the stored vector columns before anything changes.
- Nothing is printed: Alembic's own output goes to stderr.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from mcp_server.db.engine import DatabaseTarget, connect, engine_over
from mcp_server.db.errors import driver_errors_translated
from mcp_server.db.schema_check import VECTOR_DIMENSIONS_SQL, migrations_dir, shipped_head
from mcp_server.errors import EmbeddingDimensionMismatchError
from mcp_server.settings import Settings

logger = logging.getLogger(__name__)

# pg_advisory_xact_lock key: "aletheia migrations" (any constant unique to this application).
MIGRATION_LOCK_KEY = 0x616C_6574_6D69_67

T = TypeVar("T")


def alembic_config(settings: Settings, stdout: TextIO | None = None) -> Config:
    """An Alembic Config for our migrations carrying the application's settings."""
    migrations = migrations_dir()
    ini = migrations.parent / "alembic.ini"
    if not ini.exists():
        ini = migrations / "alembic.ini"
    config = Config(str(ini), stdout=stdout or sys.stderr)
    config.set_main_option("script_location", str(migrations))
    config.attributes["settings"] = settings
    return config


@dataclass(frozen=True)
class MigrationReport:
    from_revision: str | None
    to_revision: str | None
    adopted_at: str | None = None

    @property
    def migrated(self) -> bool:
        return self.from_revision != self.to_revision


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def check_embedding_dimension(connection: Connection, settings: Settings) -> None:
    stored_dimensions = {str(r[0]): int(r[1]) for r in connection.execute(text(VECTOR_DIMENSIONS_SQL)).all()}
    for column, stored in stored_dimensions.items():
        if stored != settings.embedding_dim:
            raise EmbeddingDimensionMismatchError(settings.embedding_dim, stored, column)


def detect_existing_revision(connection: Connection, settings: Settings) -> str | None:
    """The newest revision an unversioned schema already fully has, or None if it has none.

    Walks forward and stops at the first revision whose objects are missing. Revisions after
    0001 are idempotent, so stamping too early is harmless while stamping too late is not.
    """
    inspector = inspect(connection)
    tables = set(inspector.get_table_names())
    if "memory_shards" not in tables:
        return None
    memory_columns = {c["name"] for c in inspector.get_columns("memory_shards")}
    memory_indexes = {i["name"] for i in inspector.get_indexes("memory_shards")}
    pattern_columns = (
        {c["name"] for c in inspector.get_columns("eng_patterns")} if "eng_patterns" in tables else set()
    )
    conversation_columns = (
        {c["name"] for c in inspector.get_columns("raw_conversations")} if "raw_conversations" in tables else set()
    )
    markers: list[tuple[str, bool]] = [
        ("0001", True),
        ("0002", "updated_at" in memory_columns),
        ("0003", not settings.pgvector_enable_ivfflat or "ix_memory_shards_embedding_ivfflat" in memory_indexes),
        ("0004", {"source", "metadata"} <= memory_columns),
        ("0005", "raw_conversations" in tables),
        ("0006", "eng_patterns" in tables),
        ("0007", "content_hash" in memory_columns and "title" in pattern_columns),
        ("0008", "context_keys" in pattern_columns),
        ("0009", "memory_ids" in conversation_columns),
        ("0010", _has_policy(connection, "memory_shards", "aletheia_user_isolation")),
        ("0011", bool(connection.execute(text("SELECT to_regproc('aletheia_term_shares')")).scalar())),
    ]
    found = None
    for revision, present in markers:
        if not present:
            break
        found = revision
    return found


def _has_policy(connection: Connection, table: str, policy: str) -> bool:
    return bool(connection.execute(
        text("SELECT 1 FROM pg_policies WHERE schemaname = current_schema() AND tablename = :t AND policyname = :p"),
        {"t": table, "p": policy},
    ).scalar())


def _locked(config: Config, work: Callable[[Connection], T]) -> Callable[[Connection], T]:
    """Wrap `work` so that it runs holding the migration lock, with Alembic on this connection."""

    def run(connection: Connection) -> T:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        config.attributes["connection"] = connection
        try:
            return work(connection)
        finally:
            config.attributes.pop("connection", None)

    return run


async def run_locked(target: DatabaseTarget, settings: Settings, config: Config,
                     work: Callable[[Connection], T]) -> T:
    """Run `work(connection)` in one committed transaction under the migration lock."""
    raw = await connect(target, settings.db_connect_timeout_s)  # clear error if unreachable
    engine = engine_over(raw)
    with driver_errors_translated():
        try:
            async with engine.connect() as connection:
                result = await connection.run_sync(_locked(config, work))
                await connection.commit()
                return result
        finally:
            await engine.dispose()
            if not raw.is_closed():
                await raw.close()


async def upgrade(target: DatabaseTarget, settings: Settings, revision: str = "head") -> MigrationReport:
    """Check the embedding dimension, adopt an unversioned schema, and upgrade to `revision`."""
    config = alembic_config(settings)

    def work(connection: Connection) -> MigrationReport:
        check_embedding_dimension(connection, settings)
        before = current_revision(connection)
        adopted = None
        if before is None:
            adopted = detect_existing_revision(connection, settings)
            if adopted is not None:
                logger.warning(
                    "database has aletheia tables but no alembic_version: stamping it at %s", adopted
                )
                command.stamp(config, adopted)
        command.upgrade(config, revision)
        after = current_revision(connection)
        return MigrationReport(before, after, adopted)

    report = await run_locked(target, settings, config, work)
    if report.migrated:
        logger.info("database schema migrated from %s to %s", report.from_revision or "empty", report.to_revision)
    else:
        logger.info("database schema already at %s", report.to_revision)
    return report


async def _alembic_command(target: DatabaseTarget, settings: Settings,
                           run: Callable[[Config], object]) -> MigrationReport:
    config = alembic_config(settings)

    def work(connection: Connection) -> MigrationReport:
        before = current_revision(connection)
        run(config)
        return MigrationReport(before, current_revision(connection))

    return await run_locked(target, settings, config, work)


async def downgrade(target: DatabaseTarget, settings: Settings, revision: str) -> MigrationReport:
    return await _alembic_command(target, settings, lambda config: command.downgrade(config, revision))


async def stamp(target: DatabaseTarget, settings: Settings, revision: str) -> MigrationReport:
    return await _alembic_command(target, settings, lambda config: command.stamp(config, revision))


async def read_revision(target: DatabaseTarget, settings: Settings) -> str | None:
    return await run_locked(target, settings, alembic_config(settings), current_revision)


def history(settings: Settings, stdout: TextIO) -> None:
    """Print the migrations, newest first."""
    command.history(alembic_config(settings, stdout=stdout), verbose=False)


def new_revision(settings: Settings, message: str, stdout: TextIO) -> list[Path]:
    """Create the next, empty migration file; returns its path.

    Revisions are numbered (0012, ...): the start-up fast path finds the head by number.
    """
    next_id = f"{int(shipped_head()) + 1:04d}"
    script = command.revision(alembic_config(settings, stdout=stdout), message=message, rev_id=next_id)
    scripts = script if isinstance(script, list) else [script]
    return [Path(s.path) for s in scripts if s is not None]
