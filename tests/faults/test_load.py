"""8 clients (4 over stdio, 4 over HTTP) writing and reading at once: no error, and the rows in
the database equal the successful writes exactly."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from mcp_server.http_auth import add_token
from tests.helpers import clean_env, connect, http_server, sql

pytestmark = pytest.mark.anyio
SECONDS = float(os.environ.get("ALETHEIA_LOAD_SECONDS", "60"))


async def test_eight_mixed_clients_for_a_minute(database_url: str, cli_cwd: Path, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    http_users = {f"http-{i}": add_token(tokens, f"http-{i}") for i in range(4)}
    writes: Counter[str] = Counter()
    logs: Counter[str] = Counter()
    reads: Counter[str] = Counter()
    errors: list[str] = []
    deadline = time.monotonic() + SECONDS

    async def work(client: Client, user: str) -> None:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            stored = await client.call_tool("remember", {"content": f"{user} note {n}: load test", "source": "load"})
            if stored.is_error:
                errors.append(f"{user} remember: {stored.content[0].text}")  # type: ignore[union-attr]
            else:
                writes[user] += 1
            found = await client.call_tool("recall", {"query": f"{user} note {n}", "limit": 3})
            if found.is_error:
                errors.append(f"{user} recall: {found.content[0].text}")  # type: ignore[union-attr]
            else:
                reads[user] += 1
            logged = await client.call_tool("log_exchange", {"messages": [{"role": "user", "content": f"q{n}"}],
                                                             "response": "a", "request_id": f"{user}-{n}"})
            if logged.is_error:
                errors.append(f"{user} log: {logged.content[0].text}")  # type: ignore[union-attr]
            else:
                logs[user] += 1

    async def stdio_client(user: str) -> None:
        params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_server", "serve"], cwd=str(cli_cwd),
                                       env=clean_env(DATABASE_URL=database_url, EMBEDDING_PROVIDER="hashing",
                                                     ALETHEIA_USER_ID=user, LOG_LEVEL="WARNING"))
        async with Client(params) as client:
            await work(client, user)

    async def http_client(url: str, user: str, token: str) -> None:
        async with connect(url, token) as client:
            await work(client, user)

    with http_server(cli_cwd, database_url, ALETHEIA_HTTP_TOKENS_FILE=str(tokens), LOG_LEVEL="WARNING") as url:
        async with anyio.create_task_group() as group:
            for i in range(4):
                group.start_soon(stdio_client, f"stdio-{i}")
            for user, token in http_users.items():
                group.start_soon(http_client, url, user, token)

    assert errors == []
    memories = {r["user_id"]: r["n"] for r in await sql(
        database_url, "SELECT user_id, count(*) AS n FROM memory_shards GROUP BY user_id")}
    exchanges = {r["user_id"]: r["n"] for r in await sql(
        database_url, "SELECT user_id, count(*) AS n FROM raw_conversations GROUP BY user_id")}
    assert memories == dict(writes) and exchanges == dict(logs)
    assert len(writes) == 8 and min(writes.values()) > 0
    print(f"\nload: {sum(writes.values())} remember, {sum(reads.values())} recall, {sum(logs.values())} "
          f"log_exchange calls in {SECONDS:.0f} s by 8 clients; errors: {len(errors)}")
