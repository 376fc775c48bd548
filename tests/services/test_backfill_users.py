"""The background vector backfill embeds every user's waiting rows, not only the server's own user's.

Over HTTP each token acts for its own user, and row-level security limits a pooled connection to
the acting user's rows: a backfill working as the server's own user never saw the others' rows,
which then waited for a vector forever (found by keywords only).
"""

from __future__ import annotations

import json

import pytest

from mcp_server.app_context import open_app
from mcp_server.identity import acting_as
from mcp_server.settings import Settings
from tests.helpers import sql

pytestmark = pytest.mark.anyio

USERS = ("tester", "alice", "bob")  # the server's own user (make_settings) and two HTTP users


async def test_backfill_embeds_the_waiting_rows_of_every_user(settings: Settings, database_url: str) -> None:
    async with open_app(settings, load_in_background=False) as app:
        for user in USERS:
            with acting_as(user):  # imported without embedding: the rows wait for a vector
                lines = [json.dumps({"content": f"{user}'s note {i} about canary releases"}) for i in range(3)]
                assert (await app.memories.import_jsonl(lines)).inserted == 3

        await app.vectors.backfill()

        waiting = {r["user_id"]: r["waiting"] for r in await sql(
            database_url, "SELECT user_id, count(*) FILTER (WHERE embedding IS NULL) AS waiting "
                          "FROM memory_shards GROUP BY user_id")}
        assert waiting == dict.fromkeys(USERS, 0)
        with acting_as("alice"):  # what alice's server_status says
            status = await app.status.report()
        assert status.counts is not None and status.counts.memories_awaiting_embedding == 0


async def test_backfill_keeps_the_pools_connections_scoped_to_their_user(settings: Settings) -> None:
    """The backfill works as the login role; the connection it used goes back to the pool, and the
    next call on it must be limited to its own user's rows again."""
    async with open_app(settings, load_in_background=False) as app:
        with acting_as("alice"):
            await app.memories.remember("alice's private note")
        await app.vectors.backfill()
        with acting_as("bob"):
            listed = await app.memories.list()
        assert listed.items == []
