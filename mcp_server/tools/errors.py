"""Turn failures into tool errors a model can act on: never a traceback, never a secret."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TypeVar

import asyncpg
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from mcp_server.app_context import AppContext
from mcp_server.errors import AletheiaError
from mcp_server.identity import acting_as

logger = logging.getLogger(__name__)
T = TypeVar("T")

DATABASE_UNAVAILABLE = (
    "The database is unavailable right now (connection lost); the server is retrying. "
    "Try the call again in a few seconds."
)


def app_of(ctx: Context) -> AppContext:
    return ctx.request_context.lifespan_context  # type: ignore[no-any-return]


async def run_tool(work: Awaitable[T]) -> T:
    """Await a service call acting for the HTTP token's user (if any), with errors made readable."""
    token = get_access_token()
    with acting_as(token.subject if token is not None else None):
        return await _readable_errors(work)


async def _readable_errors(work: Awaitable[T]) -> T:
    try:
        return await work
    except AletheiaError as exc:
        raise ToolError(str(exc)) from None
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
            asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError) as exc:
        logger.warning("database unavailable: %s", type(exc).__name__)
        raise ToolError(DATABASE_UNAVAILABLE) from None
    except asyncpg.PostgresError as exc:
        logger.exception("database error")
        raise ToolError(f"The database refused the request (SQLSTATE {exc.sqlstate}); the server log has "
                        "the details.") from None
    except Exception:
        logger.exception("unexpected error in a tool")
        raise ToolError("Internal error in aletheia-mcp; the server log (stderr) has the details.") from None
