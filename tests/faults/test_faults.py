"""Faults survived, each against a real PostgreSQL of this module's own (so it can be killed)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import asyncpg
import pytest
from mcp import Client

from mcp_server.db.database import RETRY_FIRST_DELAY_S, RETRY_MAX_DELAY_S, ConnectionHealth, retry_delay
from mcp_server.server import create_server
from tests.helpers import call, clean_env, make_settings, sql
from tests.stoppable_postgres import StoppablePostgres, stoppable_postgres

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def postgres() -> Iterator[StoppablePostgres]:
    with stoppable_postgres() as server:
        yield server


@pytest.fixture
def fault_db(postgres: StoppablePostgres) -> str:
    return postgres.new_database()


async def test_terminated_backend_then_next_call_succeeds(
        postgres: StoppablePostgres, fault_db: str, tmp_path: Path) -> None:
    async with Client(create_server(make_settings(fault_db, tmp_path))) as client:
        stored = await call(client, "remember", {"content": "survives a killed backend"})
        killed = await sql(
            fault_db,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        assert killed, "the server's pooled connection should have been terminated"
        found = await call(client, "recall", {"query": "killed backend"})  # the very next call
        assert found["results"][0]["id"] == stored["id"]


async def test_database_restart_fails_clearly_then_recovers(
        postgres: StoppablePostgres, fault_db: str, tmp_path: Path) -> None:
    async with Client(create_server(make_settings(fault_db, tmp_path))) as client:
        await call(client, "remember", {"content": "before the restart"})
        postgres.stop("fast")
        try:
            during = await client.call_tool("recall", {"query": "restart"})
            assert during.is_error
            assert during.content[0].text.endswith(  # type: ignore[union-attr]
                "Database unavailable, retrying: the connection to PostgreSQL was lost or refused (restarting or "
                "down). Try the call again in a few seconds; repeating a write is safe."
            )
        finally:
            postgres.start()
        after = await call(client, "recall", {"query": "before the restart"})
        assert after["results"][0]["content"] == "before the restart"
        assert (await call(client, "remember", {"content": "after the restart"}))["created"] is True


async def wait_for_status(client: Client, condition: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """server_status, asked until `condition` holds (a 60 s guard against a hang, not a timing)."""
    with anyio.fail_after(60):
        while True:
            status = await call(client, "server_status")
            if condition(status):
                return status
            await anyio.sleep(0.2)


async def test_external_database_down_is_retried_with_backoff_and_reported(
    postgres: StoppablePostgres, fault_db: str, tmp_path: Path
) -> None:
    with_password = fault_db.replace("postgres:@", "postgres:s3cret-pw@", 1)  # (trust auth ignores it)
    assert with_password != fault_db
    async with Client(create_server(make_settings(with_password, tmp_path))) as client:
        await call(client, "remember", {"content": "before the outage"})
        postgres.stop("fast")
        try:
            assert (await client.call_tool("remember", {"content": "during the outage"})).is_error
            # The server keeps retrying on its own (no further calls needed), and says so.
            down = await wait_for_status(client, lambda s: s["database"]["connection"]["attempts"] >= 3)
        finally:
            postgres.start()
        connection = down["database"]["connection"]
        assert connection["state"] == "reconnecting" and connection["next_retry_at"] is not None
        assert connection["last_error"].startswith("Cannot connect to PostgreSQL at "), connection
        assert connection["restarts"] == 0
        assert down["counts"] is None and down["database"]["server_version"] is None
        assert "s3cret-pw" not in json.dumps(down)

        up = await wait_for_status(client, lambda s: s["database"]["connection"]["state"] == "available")
        assert up["database"]["connection"]["attempts"] == 0 and up["database"]["connection"]["next_retry_at"] is None
        assert up["counts"]["memories"] == 1
        assert (await call(client, "remember", {"content": "after the outage"}))["created"] is True


def test_reconnection_backoff_is_capped_and_jittered() -> None:
    delays = [[retry_delay(attempt) for attempt in range(1, 40)] for _ in range(2)]
    for run in delays:
        assert all(RETRY_FIRST_DELAY_S / 2 <= d <= RETRY_MAX_DELAY_S for d in run)
        assert max(run) > RETRY_MAX_DELAY_S / 2  # it grows to the cap
    assert delays[0] != delays[1]  # two servers that lost the same database do not retry in step


async def test_a_failed_attempt_after_a_request_reconnected_leaves_the_status_available() -> None:
    """The supervisor's attempt can fail while a request reconnects (an external database back up):
    that late failure must not show "available" with attempts and a retry time."""
    health = ConnectionHealth()
    health.lost("ConnectionDoesNotExistError")
    health.recovered()  # a request got through meanwhile
    assert health.failed("Cannot connect to PostgreSQL", 1.0) is False
    status = health.status()
    assert (status.state, status.attempts, status.next_retry_at) == ("available", 0, None)

    health.lost("ConnectionDoesNotExistError")
    assert health.failed("Cannot connect to PostgreSQL", 1.0) is True
    status = health.status()
    assert (status.state, status.attempts) == ("reconnecting", 1) and status.next_retry_at is not None
    health.recovered()
    status = health.status()
    assert (status.state, status.attempts, status.next_retry_at) == ("available", 0, None)


async def test_callers_waiting_for_the_first_attempt_wake_when_it_fails() -> None:
    health = ConnectionHealth()
    health.lost("ConnectionDoesNotExistError")
    with anyio.fail_after(60):  # the waiter must not sit out its 600 s (a guard against a hang)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(health.wait_first_attempt, 600.0)
            await anyio.lowlevel.checkpoint()  # (the waiter is waiting)
            health.failed("Cannot connect to PostgreSQL", 1.0)
    assert health.status().state == "reconnecting"


def test_immediate_stop_during_import_keeps_whole_batches(
    postgres: StoppablePostgres, fault_db: str, tmp_path: Path, cli_cwd: Path
) -> None:
    batch = 5_000
    lines = 60_000
    source = tmp_path / "big.jsonl"
    source.write_text(
        "".join(json.dumps({"content": f"row {i:06d}", "metadata": {"i": i}}) + "\n" for i in range(lines))
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcp_server", "memories", "import", "--no-embed", str(source)],
        cwd=cli_cwd,
        env=clean_env(DATABASE_URL=fault_db, EMBEDDING_PROVIDER="hashing", ALETHEIA_USER_ID="importer"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    async def count() -> int:
        conn = await asyncpg.connect(fault_db)
        try:
            exists = await conn.fetchval("SELECT to_regclass('memory_shards') IS NOT NULL")
            return int(await conn.fetchval("SELECT count(*) FROM memory_shards")) if exists else 0
        finally:
            await conn.close()

    deadline = time.monotonic() + 120
    while anyio.run(count) < batch:
        assert time.monotonic() < deadline and proc.poll() is None, "the import never committed a batch"
        time.sleep(0.05)
    postgres.stop("immediate")
    try:
        _, stderr = proc.communicate(timeout=60)
    finally:
        postgres.start()
    assert proc.returncode != 0 and "Traceback" not in stderr
    stored = anyio.run(count)
    assert stored % batch == 0 and 0 < stored < lines, stored

    async def contents() -> list[str]:
        conn = await asyncpg.connect(fault_db)
        try:
            return [r["content"] for r in await conn.fetch("SELECT content FROM memory_shards ORDER BY content")]
        finally:
            await conn.close()

    assert anyio.run(contents) == [f"row {i:06d}" for i in range(stored)]  # whole batches, in order


def test_killed_client_lets_the_server_exit_cleanly(postgres: StoppablePostgres, fault_db: str, cli_cwd: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcp_server", "serve"],
        cwd=cli_cwd,
        env=clean_env(DATABASE_URL=fault_db, EMBEDDING_PROVIDER="hashing"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }
    proc.stdin.write(json.dumps(init).encode() + b"\n")
    proc.stdin.flush()
    assert json.loads(proc.stdout.readline())["id"] == 1
    proc.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode() + b"\n")
    proc.stdin.write(
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": "remember", "arguments": {"content": "in flight when the client died"}},
            }
        ).encode()
        + b"\n"
    )
    proc.stdin.flush()
    proc.stdin.close()  # the client dies: its end of both pipes goes away
    proc.stdout.close()
    proc.wait(timeout=30)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert "Traceback" not in stderr, stderr

    async def leftovers() -> tuple[int, int]:
        conn = await asyncpg.connect(fault_db)
        try:
            sessions = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            locks = await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
            return int(sessions), int(locks)
        finally:
            await conn.close()

    deadline = time.monotonic() + 10
    while anyio.run(leftovers) != (0, 0):
        assert time.monotonic() < deadline, f"connections or advisory locks left behind: {anyio.run(leftovers)}"
        time.sleep(0.2)
