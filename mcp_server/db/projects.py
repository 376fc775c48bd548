"""SQL for projects (shared by every user, like patterns; rows refer to a project by its id)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from mcp_server.db.engine import Connection

TABLE = "projects"
# The project's key for a row of another table, as a select-list expression over alias `t`.
KEY_OF_ROW = "(SELECT p.key FROM projects p WHERE p.id = t.project_id) AS project"


@dataclass(frozen=True)
class Scope:
    """Which rows a read covers, by project:
    - "project+global": the project's rows and the global ones (a project not stored yet: global only);
    - "project": the project's rows only (None: the rows of no project);
    - "global": the rows of no project;
    - "all": every row;
    - "nothing": no row (a project that holds nothing yet)."""

    project_id: int | None
    kind: Literal["project+global", "project", "global", "all", "nothing"]

    def predicate(self, add: Callable[[Any], str]) -> str | None:
        """SQL over alias `t` (None: no condition); `add` hands out a placeholder for a value."""
        if self.kind == "all":
            return None
        if self.kind == "nothing":
            return "FALSE"
        if self.kind == "global" or self.project_id is None:
            return "t.project_id IS NULL"
        placeholder = add(self.project_id)
        if self.kind == "project":
            return f"t.project_id = {placeholder}"
        return f"(t.project_id = {placeholder} OR t.project_id IS NULL)"


ALL_ROWS = Scope(None, "all")


async def find(conn: Connection, key: str) -> int | None:
    found = await conn.fetchval("SELECT id FROM projects WHERE key = $1", key)
    return int(found) if found is not None else None


async def ensure(conn: Connection, key: str) -> int:
    """The id of the project `key`, created when it does not exist yet (concurrent callers agree)."""
    row = await conn.fetchval(
        """
        WITH created AS (
            INSERT INTO projects (key) VALUES ($1) ON CONFLICT (key) DO NOTHING RETURNING id
        )
        SELECT id FROM created UNION ALL SELECT id FROM projects WHERE key = $1 LIMIT 1
        """,
        key,
    )
    if row is None:  # created by another session after this statement's snapshot: visible now
        row = await conn.fetchval("SELECT id FROM projects WHERE key = $1", key)
    return int(row)


@dataclass(frozen=True, slots=True)
class ProjectRows:
    key: str | None  # None: the global rows
    memories: int  # of the acting user
    patterns: int
    conversations: int  # of the acting user


async def rows_per_project(conn: Connection) -> list[ProjectRows]:
    """Every project (and the global rows first), with how many rows each holds."""
    records = await conn.fetch(
        """
        WITH counted AS (
            SELECT project_id, count(*) AS memories, 0 AS patterns, 0 AS conversations
              FROM memory_shards GROUP BY project_id
            UNION ALL SELECT project_id, 0, count(*), 0 FROM eng_patterns GROUP BY project_id
            UNION ALL SELECT project_id, 0, 0, count(*) FROM raw_conversations GROUP BY project_id
            UNION ALL SELECT id, 0, 0, 0 FROM projects
        )
        SELECT p.key, sum(c.memories)::bigint AS memories, sum(c.patterns)::bigint AS patterns,
               sum(c.conversations)::bigint AS conversations
        FROM counted c LEFT JOIN projects p ON p.id = c.project_id
        GROUP BY p.key ORDER BY p.key NULLS FIRST
        """
    )
    return [ProjectRows(r["key"], int(r["memories"]), int(r["patterns"]), int(r["conversations"]))
            for r in records]


async def rename(conn: Connection, old: str, new: str) -> bool:
    """Give the project `old` the key `new`; False when there is no project `old`."""
    status = await conn.execute("UPDATE projects SET key = $2 WHERE key = $1", old, new)
    return status == "UPDATE 1"
