"""The schema commands (`aletheia-mcp db ...`): each resolves the configured database (starting
the embedded one when DATABASE_URL is unset) and runs the migration under the migration lock."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TextIO

from mcp_server.db import migrate
from mcp_server.db.engine import resolve_target
from mcp_server.db.migrate import MigrationReport
from mcp_server.db.schema_check import shipped_head
from mcp_server.settings import Settings


async def upgrade(settings: Settings, revision: str = "head") -> MigrationReport:
    """Upgrade the schema (adopting an unversioned one first)."""
    return await migrate.upgrade(await resolve_target(settings), settings, revision)


async def downgrade(settings: Settings, revision: str) -> MigrationReport:
    return await migrate.downgrade(await resolve_target(settings), settings, revision)


_RELATIVE = re.compile(r"(head|heads|\d+)?([-+]\d+)")


def downgrade_drops_everything(revision: str, current: str | None, head: str) -> bool:
    """Whether downgrading to `revision` would revert the first migration (drop every table).

    Our revisions are numbered (0001, 0002, ...), so `base`, `-N`, `head-N` and `0003-N` resolve by
    arithmetic; anything else Alembic might accept (a prefix of an id) counts as dropping everything,
    so the caller asks rather than guesses."""
    if current is None:
        return False  # an empty database: nothing to drop
    text = revision.strip().lower()
    at = int(current) if current.isdigit() else 0
    if text == "base":
        return True
    if text.isdigit():
        return int(text) <= 0
    relative = _RELATIVE.fullmatch(text)
    if relative is None:
        return True
    start = relative[1]
    origin = at if start is None else int(head) if start in ("head", "heads") else int(start)
    return origin + int(relative[2]) <= 0


async def stamp(settings: Settings, revision: str) -> MigrationReport:
    """Record `revision` in alembic_version without running migrations."""
    return await migrate.stamp(await resolve_target(settings), settings, revision)


async def current(settings: Settings) -> tuple[str | None, str]:
    """The database's revision (None: an empty database) and the shipped head."""
    return await migrate.read_revision(await resolve_target(settings), settings), shipped_head()


def history(settings: Settings, out: TextIO) -> None:
    """Print the migrations to `out`."""
    migrate.history(settings, out)


def new_revision(settings: Settings, message: str, out: TextIO) -> list[Path]:
    """Create the next, empty migration file in migrations/versions."""
    return migrate.new_revision(settings, message, out)
