"""The application's database: where it is, brought to the schema this version needs, and a pool.

`open_database(settings)` is the start-up path (ARCHITECTURE.md, "Start-up"): resolve the database (starting
the embedded one), migrate it when it is not at head (the fast path asks PostgreSQL only for the
revision and the vector size), and open the pool. `Database` hands out connections with the
driver's errors translated (db/errors.py); a lost connection also expires the pool's others.

Recovery: a lost connection marks the database unavailable and wakes `Database.supervise` (a
background task of the application), which restarts the embedded PostgreSQL if its postmaster
stopped (db/embedded.py) and probes the database, retrying with capped, jittered backoff until
it answers. `ConnectionHealth` holds what `server_status` reports meanwhile. A call that finds
the embedded server restarting waits for the first restart attempt (well under a second, as a
rule) rather than failing; once an attempt has failed, calls fail at once ("Database unavailable,
retrying") until one succeeds. A restart attempt has a deadline, and shutdown abandons one in
flight, so neither a postmaster that never gets ready nor a lock held elsewhere delays the exit.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import asyncpg

from mcp_server.db.embedded import (
    EMBEDDED_DATABASE,
    RESTART_DEADLINE_S,
    EmbeddedServerStoppedError,
    ensure_embedded_running,
    with_database,
)
from mcp_server.db.engine import (
    Connection,
    DatabaseTarget,
    act_as_login_role,
    describe_connect_error,
    open_pool,
    resolve_target,
    restore_search_settings,
    single_connection,
)
from mcp_server.db.errors import driver_errors_translated
from mcp_server.db.planner_stats import TableStats
from mcp_server.db.schema_check import schema_is_current
from mcp_server.errors import ConnectionLostError, DatabaseUnavailableError
from mcp_server.schemas import DatabaseConnectionStatus
from mcp_server.settings import Settings

logger = logging.getLogger(__name__)

POOL_CLOSE_TIMEOUT_S = 5.0
# Reconnection backoff: the first retry after ~0.5 s, doubling up to 30 s; each delay is drawn
# between half and all of that, so replicas that lost the same database do not retry in step.
RETRY_FIRST_DELAY_S = 0.5
RETRY_MAX_DELAY_S = 30.0
# How long a call waits for the first attempt to restart the embedded PostgreSQL.
EMBEDDED_RESTART_WAIT_S = 20.0
# The restart attempt bounds itself (RESTART_DEADLINE_S); this guards against a worker thread stuck
# anywhere else (it is then abandoned and the attempt counts as failed).
RESTART_ATTEMPT_GUARD_S = RESTART_DEADLINE_S + 10.0


def retry_delay(attempt: int) -> float:
    """The wait after failed attempt number `attempt` (1-based): capped exponential, jittered."""
    cap = min(RETRY_MAX_DELAY_S, RETRY_FIRST_DELAY_S * 2.0 ** min(attempt - 1, 16))
    return cap * random.uniform(0.5, 1.0)


class ConnectionHealth:
    """Whether this process reaches the database, and the state of its reconnection."""

    def __init__(self) -> None:
        self.available = True
        self.attempts = 0
        self.next_retry_at: datetime | None = None
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self.restarts = 0
        self._lost = anyio.Event()  # set when the connection is lost: wakes the supervisor
        self._first_attempt_done = anyio.Event()  # set by the first attempt's outcome after a loss

    def lost(self, reason: str) -> None:
        if self.available:
            logger.warning("lost the database connection (%s); reconnecting", reason)
            self.available, self.attempts, self.next_retry_at = False, 0, None
            self._first_attempt_done = anyio.Event()
            self._lost.set()

    def failed(self, error: str, delay: float) -> bool:
        """Record a failed attempt; False (and nothing recorded) when the database is available
        again meanwhile (a request reconnected while the attempt was in flight)."""
        if self.available:
            return False
        self.attempts += 1
        self.last_error, self.last_error_at = error, datetime.now(UTC)
        self.next_retry_at = datetime.now(UTC) + timedelta(seconds=delay)
        self._first_attempt_done.set()
        return True

    def recovered(self) -> None:
        if self.available:
            return
        logger.warning("the database is available again (after %d failed attempt(s))", self.attempts)
        self.available, self.attempts, self.next_retry_at = True, 0, None
        self._lost = anyio.Event()
        self._first_attempt_done.set()

    async def wait_lost(self) -> None:
        await self._lost.wait()

    async def wait_first_attempt(self, timeout: float) -> None:
        """Until the first attempt after the loss has succeeded or failed (at most `timeout`)."""
        with anyio.move_on_after(timeout):
            await self._first_attempt_done.wait()

    def status(self) -> DatabaseConnectionStatus:
        return DatabaseConnectionStatus(
            state="available" if self.available else "reconnecting", attempts=self.attempts,
            next_retry_at=self.next_retry_at, last_error=self.last_error, last_error_at=self.last_error_at,
            restarts=self.restarts,
        )


class Database:
    def __init__(self, target: DatabaseTarget, pool: asyncpg.Pool[asyncpg.Record], hnsw_ef_search: int,
                 *, pgdata: Path | None = None, connect_timeout_s: float = 10.0) -> None:
        self.target = target
        self.hnsw_ef_search = hnsw_ef_search  # what every pooled connection searches with
        self.health = ConnectionHealth()
        self._pool = pool
        self._pgdata = pgdata  # the embedded server's data directory (None with DATABASE_URL)
        self._connect_timeout_s = connect_timeout_s
        self._supervised = False  # whether `supervise` runs (the application's pool; not maintenance ones)
        self._stats: dict[str, TableStats] = {}

    @classmethod
    async def open(cls, target: DatabaseTarget, settings: Settings, *, scoped: bool = True,
                   **pool_options: Any) -> Database:
        """A pool on `target` (see engine.open_pool for `scoped`)."""
        pool = await open_pool(target, settings, scoped=scoped, **pool_options)
        return cls(target, pool, settings.hnsw_ef_search, pgdata=settings.pgdata_dir if target.embedded else None,
                   connect_timeout_s=settings.db_connect_timeout_s)

    @asynccontextmanager
    async def connection(self, *, search: bool = False) -> AsyncIterator[Connection]:
        """A pooled connection acting for the calling user, for the length of the block.

        `search`: the block starts by setting the HNSW scan mode and the plan mode for its search
        (planner_stats.TableStats.search_terms or set_hnsw_scan); any other block gets the pool's
        settings back first if the connection's last search changed them."""
        if not self.health.available and self._pgdata is not None and self._supervised:
            if self.health.attempts == 0:  # the first restart is under way: it rarely takes a second
                await self.health.wait_first_attempt(EMBEDDED_RESTART_WAIT_S)
            if not self.health.available:  # an attempt failed: fail fast until one succeeds
                raise ConnectionLostError("the embedded PostgreSQL is being restarted")
        try:
            with driver_errors_translated():
                async with self._pool.acquire() as conn:
                    if not search:
                        await restore_search_settings(conn)
                    yield conn
        except ConnectionLostError as exc:
            await self._pool.expire_connections()  # the others in the pool are likely stale too
            self.health.lost(exc.cause)
            raise
        self.health.recovered()  # (no-op when it was available)

    @asynccontextmanager
    async def maintenance_connection(self) -> AsyncIterator[Connection]:
        """A pooled connection working as the login role, so on every user's rows (row-level
        security lets every role but the app role through: migration 0010). For the server's own
        upkeep (the vector backfill), never for a user's request."""
        async with self.connection() as conn:
            # For this block only: the pool's setup on the next acquisition sees the acting user
            # cleared and makes the connection act for a user again.
            await act_as_login_role(conn)
            yield conn

    async def supervise(self) -> None:
        """Background task: each time the connection is lost, bring the database back."""
        self._supervised = True
        while True:
            await self.health.wait_lost()
            await self._reconnect()

    async def _reconnect(self) -> None:
        """Restart the embedded server if needed and probe, with backoff, until the database answers."""
        while not self.health.available:
            error = await self._attempt()
            if error is None:
                await self._pool.expire_connections()
                self.health.recovered()
                return
            delay = retry_delay(self.health.attempts + 1)
            if not self.health.failed(error, delay):
                return  # a request reconnected meanwhile
            logger.warning("database still unavailable (attempt %d: %s); retrying in %.1f s",
                           self.health.attempts, error, delay)
            await anyio.sleep(delay)

    async def _attempt(self) -> str | None:
        """One attempt to bring the database back: None when it answers, else why not (one line, no
        password, and no local path for the embedded server)."""
        try:
            await self._restart_if_stopped()
        except EmbeddedServerStoppedError as exc:  # (its message names no path)
            return f"the embedded PostgreSQL could not be restarted: {exc}"
        except Exception as exc:  # background work: any failure means "not yet"
            logger.error("restarting the embedded PostgreSQL failed", exc_info=exc)
            return (f"the embedded PostgreSQL could not be restarted ({type(exc).__name__}; its log is in the "
                    "data directory)")
        try:
            async with single_connection(self.target, self._connect_timeout_s) as conn:
                await conn.fetchval("SELECT 1")
        except Exception as exc:
            message = (str(exc) if isinstance(exc, DatabaseUnavailableError)
                       else describe_connect_error(self.target, exc))
            return message.replace(self.target.location, "the embedded PostgreSQL") if self._pgdata else message
        return None

    async def _restart_if_stopped(self) -> None:
        if self._pgdata is None:
            return
        # The check blocks (locks, pg_ctl, readiness) but is bounded by its deadline. On cancellation
        # (shutdown) this task does not wait for it: the thread is abandoned, and told so, to stop at
        # its next poll rather than delay the interpreter's exit (which joins it).
        abandoned = threading.Event()
        try:
            with anyio.fail_after(RESTART_ATTEMPT_GUARD_S):
                check = await anyio.to_thread.run_sync(
                    partial(ensure_embedded_running, self._pgdata, abandoned=abandoned), abandon_on_cancel=True)
        finally:
            abandoned.set()
        if check.restarted:
            self.health.restarts += 1
        dsn = with_database(check.uri, EMBEDDED_DATABASE)
        if dsn != self.target.dsn:  # (pgserver picks the same socket directory again, but if not)
            self.target = replace(self.target, dsn=dsn)
            self._pool.set_connect_args(dsn)

    def statistics(self, table: str) -> TableStats:
        """The planner-statistics cache of `table` (search policy reads it; db/planner_stats.py)."""
        stats = self._stats.get(table)
        if stats is None:
            stats = self._stats[table] = TableStats(table)
        return stats

    async def close(self) -> None:
        """Close the pool, waiting a few seconds for connections in use; then cut them."""
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(POOL_CLOSE_TIMEOUT_S) as waited:
                await self._pool.close()
            if waited.cancelled_caught:
                self._pool.terminate()


async def open_database(settings: Settings, *, scoped: bool = True, **pool_options: Any) -> Database:
    """The configured database at the schema's head, with the application's pool (see
    engine.open_pool for `scoped`)."""
    target = await resolve_target(settings)
    with driver_errors_translated():
        if not await schema_is_current(target, settings):
            from mcp_server.db import migrate  # Alembic is imported only when something must change

            await migrate.upgrade(target, settings)
    return await Database.open(target, settings, scoped=scoped, **pool_options)
