"""Turn failures into tool errors a model can act on: never a traceback, never a secret."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

from mcp_server.app_context import AppContext
from mcp_server.errors import AletheiaError
from mcp_server.identity import acting_as
from mcp_server.tools.limits import fit

logger = logging.getLogger(__name__)
T = TypeVar("T")

DATABASE_UNAVAILABLE = (
    "Database unavailable, retrying: the connection to PostgreSQL was lost or refused (restarting or down). "
    "Try the call again in a few seconds; repeating a write is safe."
)


def app_of(ctx: Context) -> AppContext:
    return ctx.request_context.lifespan_context  # type: ignore[no-any-return]


# A lost or refused connection: the database restarted, a backend was terminated, or it is down.
CONNECTION_LOST: tuple[type[BaseException], ...] = (
    OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError, asyncpg.CrashShutdownError,
    # raised by asyncpg when the server terminated the connection while a statement was starting
    asyncpg.exceptions._base.InternalClientError,
)


async def run_tool(ctx: Context, call: Callable[[], Awaitable[T]]) -> T:
    """Run a service call for the HTTP token's user (if any), with errors made readable.

    A connection lost mid-call (backend terminated, database restarted) is retried once on a
    fresh connection: every write is idempotent (content hash, request_id) or harmless to repeat.
    """
    token = get_access_token()
    app = app_of(ctx)
    with acting_as(token.subject if token is not None else None):
        try:
            result = await _readable_errors(call)
        except _ConnectionLost:
            await app.pool.expire_connections()  # the others in the pool are likely stale too
            try:
                result = await _readable_errors(call)
            except _ConnectionLost:
                raise ToolError(DATABASE_UNAVAILABLE) from None
    return fit(result, app.settings.max_response_chars) if isinstance(result, BaseModel) else result


class _ConnectionLost(Exception):
    pass


async def _readable_errors(call: Callable[[], Awaitable[T]]) -> T:
    try:
        return await call()
    except AletheiaError as exc:
        raise ToolError(str(exc)) from None
    except CONNECTION_LOST as exc:
        logger.warning("database connection lost or refused: %s", type(exc).__name__)
        raise _ConnectionLost from None
    except asyncpg.PostgresError as exc:
        logger.exception("database error")
        raise ToolError(f"The database refused the request (SQLSTATE {exc.sqlstate}); the server log has "
                        "the details.") from None
    except Exception:
        logger.exception("unexpected error in a tool")
        raise ToolError("Internal error in aletheia-mcp; the server log (stderr) has the details.") from None
