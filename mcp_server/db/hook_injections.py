"""SQL for hook_injections: what the coding agents' hooks gave each session (migration 0022).

Every statement reads or writes one session of one user (row-level security agrees). A row is
*open* (`closed_at` NULL) while its turn is in progress; the Stop hook closes the turn's rows,
naming the exchange it logged (`exchange_id`) when it logged one. A row carries the prompt id of
its turn when the client gave one (a session start's rows have none: they belong to the next turn).

Hooks of one session can run at the same time (an agent's parallel tool calls): `lock_session`,
inside a transaction, makes reading what was given and recording what is given one step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from mcp_server.db.engine import Connection

TABLE = "hook_injections"
Kind = Literal["memory", "pattern", "denied-write"]
_SESSION = "user_id = $1 AND client = $2 AND session_id = $3"
# The open rows of a turn: those of its prompt id, and those with none (a session start's, or a
# client that gives no prompt ids). A turn without a prompt id takes every open row.
_TURN = f"{_SESSION} AND closed_at IS NULL AND ($4::text IS NULL OR prompt_id IS NULL OR prompt_id = $4)"


@dataclass(frozen=True)
class SessionKey:
    user_id: str
    client: str
    session_id: str


@dataclass
class Given:
    """What a session was given so far: ids in the order first given, and the new files whose
    first write was refused."""

    memory_ids: list[int] = field(default_factory=list)
    pattern_ids: list[int] = field(default_factory=list)
    denied_paths: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class TurnRows:
    """The open rows of a turn: each id once, and the newest row read (closing covers exactly these)."""

    memory_ids: list[int]
    pattern_ids: list[int]
    last_row: int | None


async def lock_session(conn: Connection, session: SessionKey) -> None:
    """Hold the session's lock until the transaction ends (call inside one)."""
    key = "\x1f".join((TABLE, session.user_id, session.client, session.session_id))
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)


async def record(conn: Connection, session: SessionKey, event: str, kind: Kind, item_ids: Sequence[int], *,
                 prompt_id: str | None = None, file_path: str | None = None) -> None:
    """One row per item given (for `denied-write`: one row naming the file, `item_ids` empty)."""
    items: list[int | None] = list(item_ids) if kind != "denied-write" else [None]
    if not items:
        return
    await conn.execute(
        f"INSERT INTO {TABLE} (user_id, client, session_id, event, kind, item_id, file_path, prompt_id) "
        "SELECT $1, $2, $3, $4, $5, item, $7, $8 FROM unnest($6::bigint[]) WITH ORDINALITY AS i(item, n) "
        "ORDER BY n",
        session.user_id, session.client, session.session_id, event, kind, items, file_path, prompt_id,
    )


async def given(conn: Connection, session: SessionKey) -> Given:
    records = await conn.fetch(f"SELECT kind, item_id, file_path FROM {TABLE} WHERE {_SESSION} ORDER BY id",
                               session.user_id, session.client, session.session_id)
    result = Given()
    seen: set[tuple[str, int]] = set()
    for r in records:
        if r["kind"] == "denied-write":
            result.denied_paths.add(r["file_path"])
        elif (r["kind"], r["item_id"]) not in seen:
            seen.add((r["kind"], r["item_id"]))
            (result.memory_ids if r["kind"] == "memory" else result.pattern_ids).append(int(r["item_id"]))
    return result


async def turn_rows(conn: Connection, session: SessionKey, prompt_id: str | None) -> TurnRows:
    """What the hooks gave during the turn `prompt_id` (see _TURN), each id once."""
    records = await conn.fetch(
        f"SELECT id, kind, item_id FROM {TABLE} WHERE {_TURN} AND kind IN ('memory', 'pattern') ORDER BY id",
        session.user_id, session.client, session.session_id, prompt_id,
    )
    memories = sorted({int(r["item_id"]) for r in records if r["kind"] == "memory"})
    patterns = sorted({int(r["item_id"]) for r in records if r["kind"] == "pattern"})
    return TurnRows(memories, patterns, int(records[-1]["id"]) if records else None)


async def close_turn(conn: Connection, session: SessionKey, prompt_id: str | None, *, exchange_id: int | None,
                     last_row: int | None = None) -> None:
    """Close the open rows of the turn `prompt_id` (up to `last_row`, the newest `turn_rows` read,
    when given): they count in `exchange_id`, or (None: the turn was not logged) in no turn."""
    await conn.execute(
        f"UPDATE {TABLE} SET closed_at = now(), exchange_id = $5 WHERE {_TURN} AND ($6::bigint IS NULL OR id <= $6)",
        session.user_id, session.client, session.session_id, prompt_id, exchange_id, last_row,
    )


async def purge_older_than(conn: Connection, user_id: str, before: datetime) -> int:
    """Forget the user's sessions' rows older than `before` (a session resumed after that gets its
    items once more)."""
    status = await conn.execute(f"DELETE FROM {TABLE} WHERE user_id = $1 AND created_at < $2", user_id, before)
    return int(status.rsplit(" ", 1)[-1])
