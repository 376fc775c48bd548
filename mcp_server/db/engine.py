"""Where the database is and how we connect to it.

One canonical libpq-style DSN (`postgresql://...`) is used everywhere: asyncpg takes it as is,
and SQLAlchemy (Alembic only) gets connections from asyncpg through `async_creator`, so the two
never disagree about hosts, sockets or SSL options.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import parse_qs, urlsplit

import anyio
import asyncpg
from pgvector.asyncpg import register_vector

from mcp_server.db.embedded import EMBEDDED_DATABASE, start_embedded_server, with_database
from mcp_server.db.errors import driver_errors_translated
from mcp_server.errors import ConfigurationError, DatabaseUnavailableError
from mcp_server.identity import current_user_id
from mcp_server.redact import redact_url
from mcp_server.settings import Settings

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy
    from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger(__name__)

# What repositories receive: a pooled connection, or a plain one (migrations, tests, maintenance).
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

# The documented spellings (README.md, "Database and schema"), plus `postgres://` and psycopg2's.
_ACCEPTED_SCHEMES = {
    "postgresql",
    "postgres",
    "postgresql+asyncpg",
    "postgresql+psycopg",
    "postgresql+psycopg2",
}

# hnsw.iterative_scan of pooled connections: set on connect; a search may turn it off for itself
# (db.planner_stats.TableStats.hnsw_scan_mode), and the next block that is not a search turns it
# back on (restore_search_settings).
ITERATIVE_SCAN = "relaxed_order"
# plan_cache_mode: every connection plans each statement for its parameters (see _connection_setup);
# a search that gains nothing from it runs with a generic plan (db.planner_stats.search_terms).
CUSTOM_PLAN = "force_custom_plan"
GENERIC_PLAN = "force_generic_plan"

# GIN pending-list size of pooled connections (single-row writes): db/upkeep.py explains it.
INTERACTIVE_GIN_PENDING_LIST_LIMIT = "64kB"

# The embedded server's buffer cache (see _prepare_embedded).
EMBEDDED_SHARED_BUFFERS = "512MB"


@dataclass(frozen=True)
class DatabaseTarget:
    """A database we can connect to; `dsn` holds the password, `display` never does."""

    dsn: str
    embedded: bool

    @property
    def display(self) -> str:
        return redact_url(self.dsn)

    @property
    def location(self) -> str:
        """`host:port/database` (or the socket directory), for messages."""
        parts = urlsplit(self.dsn)
        host = parts.hostname or parse_qs(parts.query).get("host", ["localhost"])[0]
        port = f":{parts.port}" if parts.port else ""
        database = parts.path.lstrip("/") or "postgres"
        return f"{host}{port}/{database}"


def normalize_database_url(url: str) -> str:
    """Map any accepted spelling to the plain `postgresql://` DSN asyncpg understands."""
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _ACCEPTED_SCHEMES:
        shown = redact_url(url) if sep else "<not a URL>"
        raise ConfigurationError(
            f"DATABASE_URL {shown} is not a PostgreSQL URL: use postgresql://user:password@host:5432/db "
            "(postgresql+asyncpg:// and postgresql+psycopg:// are accepted too), or unset it to use the "
            "embedded PostgreSQL."
        )
    return f"postgresql://{rest}"


async def resolve_target(settings: Settings) -> DatabaseTarget:
    """The configured database, starting the embedded one when DATABASE_URL is unset."""
    if settings.database_url is not None:
        return DatabaseTarget(normalize_database_url(settings.database_url.get_secret_value()), embedded=False)

    admin_uri = await anyio.to_thread.run_sync(start_embedded_server, settings.pgdata_dir)
    with driver_errors_translated():
        await _prepare_embedded(admin_uri, EMBEDDED_DATABASE, settings.db_connect_timeout_s)
    return DatabaseTarget(with_database(admin_uri, EMBEDDED_DATABASE), embedded=True)


async def _prepare_embedded(admin_uri: str, name: str, timeout: float) -> None:
    """Create our database if needed and size the embedded server's buffer cache."""
    conn = await asyncpg.connect(admin_uri, timeout=timeout)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            # Another process may create it at the same moment: that is fine.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                await conn.execute(f'CREATE DATABASE "{name}"')
        # initdb's 128 MB is smaller than the HNSW index alone at 100k x 384 (~200 MB): every
        # search then copies index pages from the OS cache (HNSW ef_search=100: 13 ms instead of
        # 4 ms). Only the initdb default is replaced (a value set with ALTER SYSTEM is kept); it
        # takes effect at the server's next start. Pages are allocated as they are first used.
        source = await conn.fetchval("SELECT sourcefile FROM pg_settings WHERE name = 'shared_buffers'")
        if source is None or source.endswith("/postgresql.conf"):
            await conn.execute(f"ALTER SYSTEM SET shared_buffers = '{EMBEDDED_SHARED_BUFFERS}'")
    finally:
        await conn.close()


def describe_connect_error(target: DatabaseTarget, exc: BaseException) -> str:
    """One line naming the host and the reason, never the password."""
    if isinstance(exc, asyncpg.InvalidPasswordError):
        reason = "password authentication failed; check the user and password in DATABASE_URL"
    elif isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        reason = "the server rejected this user; check the user name and pg_hba.conf"
    elif isinstance(exc, asyncpg.InvalidCatalogNameError):
        reason = "the database does not exist; create it or fix the database name in DATABASE_URL"
    elif isinstance(exc, socket.gaierror):
        reason = "the host name could not be resolved"
    elif isinstance(exc, ConnectionRefusedError):
        reason = "connection refused; is PostgreSQL running and listening there?"
    elif isinstance(exc, TimeoutError):
        reason = "timed out; check the host, port and firewall (DB_CONNECT_TIMEOUT_S sets the limit)"
    elif isinstance(exc, OSError):
        reason = exc.strerror or type(exc).__name__
    elif isinstance(exc, asyncpg.PostgresError):
        reason = getattr(exc, "message", None) or type(exc).__name__
    else:
        reason = type(exc).__name__
    # Some driver messages repeat the DSN; make sure no password can leak through them.
    password = urlsplit(target.dsn).password
    if password:
        reason = reason.replace(password, "***")
    end = "" if reason.endswith((".", "?", "!")) else "."
    return f"Cannot connect to PostgreSQL at {target.location}: {reason}{end}"


_CONNECT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


async def connect(target: DatabaseTarget, timeout: float) -> asyncpg.Connection:
    """A single connection, with connection failures turned into DatabaseUnavailableError."""
    try:
        return await asyncpg.connect(target.dsn, timeout=timeout)
    except _CONNECT_ERRORS as exc:
        raise DatabaseUnavailableError(describe_connect_error(target, exc)) from None


@contextlib.asynccontextmanager
async def single_connection(target: DatabaseTarget, timeout: float) -> AsyncIterator[Connection]:
    """A connection of its own (no pool, no user scope), closed after the block; the driver's
    errors raised in the block are translated (db/errors.py)."""
    conn = await connect(target, timeout)
    try:
        with driver_errors_translated():
            yield conn
    finally:
        await conn.close()


async def register_codecs(conn: asyncpg.Connection) -> None:
    """What repositories expect of a connection: vectors as numpy arrays (pgvector's binary codec)
    and jsonb as Python objects."""
    await register_vector(conn)
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


def _connection_setup(settings: Settings) -> Callable[[asyncpg.Connection], Awaitable[None]]:
    async def init(conn: asyncpg.Connection) -> None:
        await register_codecs(conn)
        # Session settings for every query on this connection (no per-query SET round trips):
        # ef_search trades speed for recall; iterative scans keep filtered HNSW queries complete
        # (recall turns them off for a search that needs none; the reset below turns them on again).
        # asyncpg prepares every statement; after five runs PostgreSQL may switch to a generic
        # plan, which cannot see the search's constants (how common the query's terms are, how
        # selective a metadata filter is) and then picks one plan for all: custom plans only.
        # A small GIN pending list keeps full-text lookups fast under single-row writes (db.upkeep).
        await conn.execute(
            f"SET hnsw.ef_search = {int(settings.hnsw_ef_search)}; SET hnsw.iterative_scan = {ITERATIVE_SCAN}; "
            f"SET plan_cache_mode = {CUSTOM_PLAN}; "
            f"SET gin_pending_list_limit = '{INTERACTIVE_GIN_PENDING_LIST_LIMIT}'"
        )

    return init


# The role the application works as; row-level security (migration 0010) applies to it.
APP_ROLE = "aletheia_app"


@dataclass
class _SessionState:
    """What a pooled connection's session is set to (db.engine sets it, and only when it changes)."""

    user: str | None = None  # acting for this user as APP_ROLE; None: the login role
    scan: str = ITERATIVE_SCAN  # hnsw.iterative_scan
    plan: str = CUSTOM_PLAN  # plan_cache_mode


# Per raw connection (a pool hands out proxies of it; `reset` gets the connection itself).
_SESSIONS: weakref.WeakKeyDictionary[asyncpg.Connection, _SessionState] = weakref.WeakKeyDictionary()


def _session(conn: Connection) -> _SessionState:
    # (asyncpg's PoolConnectionProxy keeps the connection as _con)
    raw: asyncpg.Connection[asyncpg.Record] = getattr(conn, "_con", None) or conn  # type: ignore[assignment]
    state = _SESSIONS.get(raw)
    if state is None:
        state = _SESSIONS[raw] = _SessionState()
    return state


def note_scan_mode(conn: Connection, mode: str, plan: str | None = None) -> None:
    """Record that the connection's hnsw.iterative_scan is set to `mode` (and its plan_cache_mode to
    `plan`) for one search (db.planner_stats), so that the next block that is not a search sets
    them back (restore_search_settings), and only when they differ."""
    state = _session(conn)
    state.scan = mode
    if plan is not None:
        state.plan = plan


async def act_as_login_role(conn: Connection) -> None:
    """Drop the acting user (row-level security then lets the login role through): the
    maintenance path. The next acquisition acts for a user again."""
    _session(conn).user = None  # first: cancelled during the round trip, it may have run
    await conn.execute("RESET ROLE; RESET aletheia.user_id")


def _act_for_user(default_user: str) -> Callable[[asyncpg.Connection], Awaitable[None]]:
    async def setup(conn: asyncpg.Connection) -> None:
        # Every connection handed out works as the app role for the acting user; row-level
        # security then limits it to that user's rows, whatever SQL runs. The setting stays on the
        # connection between acquisitions (a round trip saved on each: on stdio there is one user)
        # and changes whenever another user acquires it: no acquisition acts with another's setting.
        state, user = _session(conn), current_user_id(default_user)
        if state.user != user:
            # Unknown until it has run (a failed or cancelled setup closes the connection anyway).
            state.user = None
            # One round trip: set_config('role', ...) is SET ROLE.
            await conn.fetchval("SELECT set_config('role', $1, false), set_config('aletheia.user_id', $2, false)",
                                APP_ROLE, user)
            state.user = user

    return setup


async def restore_search_settings(conn: Connection) -> None:
    """Turn iterative scans and custom plans back on when the connection's last search turned them
    off (db.planner_stats): for any statement but a search, which sets both itself. A round trip
    only then (Database.connection calls it on acquisition)."""
    state = _session(conn)
    if state.scan != ITERATIVE_SCAN or state.plan != CUSTOM_PLAN:
        await conn.execute(f"SET hnsw.iterative_scan = {ITERATIVE_SCAN}; SET plan_cache_mode = {CUSTOM_PLAN}")
        state.scan, state.plan = ITERATIVE_SCAN, CUSTOM_PLAN


async def _keep_session(conn: asyncpg.Connection) -> None:
    # Instead of asyncpg's default RESET ALL on release, which would drop the HNSW settings made
    # in init and the acting user `setup` keeps (asyncpg still rolls back an open transaction).
    # What a search changed is restored on the next acquisition that is not a search.
    return None


async def open_pool(target: DatabaseTarget, settings: Settings, *, scoped: bool = True,
                    **overrides: Any) -> asyncpg.Pool:
    """The application's connection pool (pgvector and JSON codecs on every connection).

    `scoped`: connections act as the app role for the acting user (row-level security). The
    maintenance path (`reembed`, which must reach every user's rows) opens an unscoped pool.
    """
    options: dict[str, Any] = {
        # No minimum: asyncpg would otherwise reconnect in the background while the database is
        # down and log a traceback for each failure; connections are made on demand instead.
        "min_size": 0,
        "max_size": settings.db_pool_max_size,
        "timeout": settings.db_connect_timeout_s,
        "init": _connection_setup(settings),
        "reset": _keep_session,
    }
    if scoped:
        options["setup"] = _act_for_user(settings.user_id)
    options.update(overrides)
    try:
        return await asyncpg.create_pool(target.dsn, **options)
    except _CONNECT_ERRORS as exc:
        raise DatabaseUnavailableError(describe_connect_error(target, exc)) from None


def sqlalchemy_engine(target: DatabaseTarget, timeout: float) -> AsyncEngine:
    """An SQLAlchemy engine over asyncpg (used by the `alembic` command line)."""
    from sqlalchemy.ext.asyncio import create_async_engine  # only migrations need SQLAlchemy
    from sqlalchemy.pool import NullPool

    async def creator() -> asyncpg.Connection:
        return await asyncpg.connect(target.dsn, timeout=timeout)

    return create_async_engine("postgresql+asyncpg://", async_creator=creator, poolclass=NullPool)


def engine_over(connection: asyncpg.Connection) -> AsyncEngine:
    """An SQLAlchemy engine that uses one already-open asyncpg connection (for Alembic)."""
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    async def creator() -> asyncpg.Connection:
        return connection

    return create_async_engine("postgresql+asyncpg://", async_creator=creator, poolclass=NullPool)
