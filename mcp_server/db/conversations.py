"""SQL for raw_conversations (scoped to one user in every statement)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from mcp_server.db.engine import Connection
from mcp_server.db.hybrid_query import TEXT_SEARCH_CONFIG, Params
from mcp_server.db.projects import ALL_ROWS, KEY_OF_ROW, Scope
from mcp_server.schemas import CallOutcome, Conversation, ReplaySelection

# The gateway's columns (migration 0021): NULL for exchanges logged otherwise.
CALL_COLUMNS = "t.endpoint, t.stream, t.outcome, t.ttft_ms, t.usage, t.replay_of"
FULL_COLUMNS = ("t.id, t.created_at, t.request_id, t.provider, t.model, t.messages, t.response, t.status_code, "
                f"t.latency_ms, t.memory_ids, t.pattern_ids, t.redactions, {KEY_OF_ROW}, t.request, {CALL_COLUMNS}")
# Which exchanges a selection of replays keeps (SQL over the fixed keys of ReplaySelection only).
REPLAYS_PREDICATE: dict[str, str] = {
    "include": "TRUE", "only": "t.replay_of IS NOT NULL", "exclude": "t.replay_of IS NULL",
}


def _conversation(record: asyncpg.Record) -> Conversation:
    """A row holding FULL_COLUMNS, built without validation: the columns' types are the model's.
    The list fields no column fills are given: for a `default_factory`, model_construct inspects
    the factory's signature on every call (pydantic 2.14), ~0.1 ms each, per row stored or read."""
    return Conversation.model_construct(**record, shortened=[], omitted_messages=[])


@dataclass(frozen=True, slots=True)
class ExchangeListing:
    """An exchange as search results list it (the service makes its preview)."""

    id: int
    created_at: datetime
    request_id: str | None
    provider: str | None
    model: str | None
    status_code: int | None
    latency_ms: int | None
    messages: list[Any]
    response: Any
    project: str | None
    endpoint: str | None
    stream: bool | None
    outcome: CallOutcome | None
    ttft_ms: int | None
    usage: dict[str, Any] | None
    replay_of: int | None


async def insert_once(conn: Connection, row: dict[str, Any]) -> tuple[Conversation, bool]:
    """Insert unless this user already logged `request_id`; returns (stored row, created).

    A transaction-scoped advisory lock on (user, request_id) makes concurrent retries of the same
    exchange store it once (see migration 0009 for why this is not a unique index).
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1 || E'\\x1f' || $2, 0))",
                           row["user_id"], row["request_id"])
        existing = await conn.fetchrow(
            f"SELECT {FULL_COLUMNS} FROM raw_conversations t WHERE t.user_id = $1 AND t.request_id = $2 "
            "ORDER BY t.id LIMIT 1",
            row["user_id"], row["request_id"],
        )
        if existing is not None:
            return _conversation(existing), False
        columns = list(row)
        placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        created = await conn.fetchrow(
            f"INSERT INTO raw_conversations AS t ({', '.join(columns)}) VALUES ({placeholders}) "
            f"RETURNING {FULL_COLUMNS}",
            *row.values(),
        )
        assert created is not None
        return _conversation(created), True


async def get(conn: Connection, user_id: str, *, row_id: int | None = None,
              request_id: str | None = None) -> Conversation | None:
    record = await conn.fetchrow(
        f"SELECT {FULL_COLUMNS} FROM raw_conversations t WHERE t.user_id = $1 "
        "AND ($2::bigint IS NULL OR t.id = $2) AND ($3::text IS NULL OR t.request_id = $3) ORDER BY t.id LIMIT 1",
        user_id, row_id, request_id,
    )
    return _conversation(record) if record is not None else None


async def search(conn: Connection, user_id: str, *, query: str | None, provider: str | None,
                 model: str | None, since: datetime | None, until: datetime | None, limit: int,
                 before_id: int | None = None, scope: Scope = ALL_ROWS,
                 replays: ReplaySelection = "include") -> list[ExchangeListing]:
    """Newest first; `query` is full text over the messages' and response's string values."""
    params = Params(user_id, query, provider, model, since, until, limit, before_id)
    in_scope = scope.predicate(params.add) or "TRUE"
    records = await conn.fetch(
        f"""
        SELECT t.id, t.created_at, t.request_id, t.provider, t.model, t.status_code, t.latency_ms, t.messages,
               t.response, {KEY_OF_ROW}, {CALL_COLUMNS}
        FROM raw_conversations t
        WHERE t.user_id = $1
          AND ($2::text IS NULL OR t.content_tsv @@ websearch_to_tsquery('{TEXT_SEARCH_CONFIG}', $2))
          AND ($3::text IS NULL OR t.provider = $3) AND ($4::text IS NULL OR t.model = $4)
          AND ($5::timestamptz IS NULL OR t.created_at >= $5) AND ($6::timestamptz IS NULL OR t.created_at < $6)
          AND ($8::bigint IS NULL OR t.id < $8) AND {in_scope} AND {REPLAYS_PREDICATE[replays]}
        ORDER BY t.created_at DESC, t.id DESC LIMIT $7
        """,
        *params.values,
    )
    return [ExchangeListing(**r) for r in records]


async def stream(conn: Connection, user_id: str, since: datetime | None, until: datetime | None,
                 model: str | None, scope: Scope = ALL_ROWS,
                 replays: ReplaySelection = "include") -> AsyncIterator[Conversation]:
    """The user's exchanges, oldest first, through a server-side cursor (in its own transaction)."""
    params = Params(user_id, since, until, model)
    in_scope = scope.predicate(params.add) or "TRUE"
    async with conn.transaction():
        cursor = conn.cursor(
            f"SELECT {FULL_COLUMNS} FROM raw_conversations t WHERE t.user_id = $1 "
            "AND ($2::timestamptz IS NULL OR t.created_at >= $2) AND ($3::timestamptz IS NULL OR t.created_at < $3) "
            f"AND ($4::text IS NULL OR t.model = $4) AND {in_scope} AND {REPLAYS_PREDICATE[replays]} "
            "ORDER BY t.created_at, t.id",
            *params.values, prefetch=500,
        )
        async for record in cursor:
            yield _conversation(record)


async def purge_older_than(conn: Connection, user_id: str | None, cutoff: datetime,
                           scope: Scope = ALL_ROWS) -> int:
    """Delete exchanges in `scope` created before `cutoff` (every user's when `user_id` is None)."""
    params = Params(cutoff, user_id)
    in_scope = scope.predicate(params.add) or "TRUE"
    status = await conn.execute(
        f"DELETE FROM raw_conversations t WHERE t.created_at < $1 AND ($2::text IS NULL OR t.user_id = $2) "
        f"AND {in_scope}",
        *params.values,
    )
    return int(status.split()[-1])

