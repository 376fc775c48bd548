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


async def find_for_update(conn: Connection, key: str) -> int | None:
    """The id of the project `key`, locked until the transaction ends (None: no such project)."""
    found = await conn.fetchval("SELECT id FROM projects WHERE key = $1 FOR UPDATE", key)
    return int(found) if found is not None else None


async def rename(conn: Connection, project_id: int, new: str) -> None:
    await conn.execute("UPDATE projects SET key = $2 WHERE id = $1", project_id, new)


@dataclass(frozen=True, slots=True)
class MergeCounts:
    memories: int  # moved
    duplicate_memories: int  # dropped: their user has the same content in the target already
    patterns: int  # moved
    clashing_patterns: int  # dropped: the target has the same (same file and section, or title and text)
    conversations: int  # moved


async def merge(conn: Connection, source: int, target: int) -> MergeCounts:
    """Move every user's rows of project `source` into project `target` (unscoped: the caller acts
    as the login role, inside a transaction). Where both hold the same row (a user's memory, a
    pattern from the same file and section, or the same title and text), the target's copy is
    kept. `source` itself stays: projects are never deleted, so that rows written under an id a
    running server cached (or committed while this ran) always belong to a project."""

    def count(status: str) -> int:  # "DELETE 3", "UPDATE 5"
        return int(status.rsplit(" ", 1)[-1])

    duplicates = count(await conn.execute(
        """
        DELETE FROM memory_shards m WHERE m.project_id = $1
          AND EXISTS (SELECT FROM memory_shards t WHERE t.project_id = $2 AND t.user_id = m.user_id
                      AND t.content_hash = m.content_hash)
        """, source, target))
    memories = count(await conn.execute(
        "UPDATE memory_shards SET project_id = $2 WHERE project_id = $1", source, target))
    clashes = count(await conn.execute(
        """
        DELETE FROM eng_patterns p WHERE p.project_id = $1
          AND EXISTS (SELECT FROM eng_patterns t WHERE t.project_id = $2
                      AND COALESCE(t.title, '') = COALESCE(p.title, '')
                      AND (t.source_path = p.source_path
                           OR (p.source_path IS NULL AND t.content = p.content)))
        """, source, target))
    patterns = count(await conn.execute(
        "UPDATE eng_patterns SET project_id = $2 WHERE project_id = $1", source, target))
    conversations = count(await conn.execute(
        "UPDATE raw_conversations SET project_id = $2 WHERE project_id = $1", source, target))
    for table in ("memory_shards", "eng_patterns", "raw_conversations"):  # recall's scan decision reads these
        await conn.execute(f"ANALYZE {table} (project_id)")
    return MergeCounts(memories, duplicates, patterns, clashes, conversations)
