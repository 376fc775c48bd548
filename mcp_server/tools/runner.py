"""Run a tool's service call: for the HTTP token's user, with failures turned into tool errors a
model can act on (never a traceback, never a secret), and the result fitted to MAX_RESPONSE_CHARS."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

from mcp_server.app_context import AppContext
from mcp_server.errors import AletheiaError, ConnectionLostError, DatabaseRefusedError
from mcp_server.identity import PROJECT_HEADER, acting_as
from mcp_server.services.response_fit import fit

logger = logging.getLogger(__name__)
T = TypeVar("T")

# What a tool receives: the request's context, whose lifespan context is the application.
ToolContext = Context[AppContext, Any]

DATABASE_UNAVAILABLE = (
    "Database unavailable, retrying: the connection to PostgreSQL was lost or refused (restarting or down). "
    "Try the call again in a few seconds; repeating a write is safe."
)


def app_of(ctx: ToolContext) -> AppContext:
    return ctx.request_context.lifespan_context


@contextmanager
def acting_for(ctx: ToolContext) -> Iterator[None]:
    """For the length of the block, act for the HTTP token's user (if any) and in the project the
    request's Aletheia-Project header names (if any)."""
    token = get_access_token()
    with acting_as(token.subject if token is not None else None, (ctx.headers or {}).get(PROJECT_HEADER)):
        yield


async def run_tool(ctx: ToolContext, call: Callable[[], Awaitable[T]], *, fitted: bool = False) -> T:
    """Run a service call for the HTTP token's user (if any), with errors made readable, and fit
    its result to MAX_RESPONSE_CHARS (`fitted`: the service did, to record what the model sees).

    A connection lost mid-call (backend terminated, database restarted) is retried once on a
    fresh connection: every write is idempotent (content hash, request_id) or harmless to repeat.
    """
    app = app_of(ctx)
    with acting_for(ctx):
        try:
            result = await _readable_errors(call)
        except ConnectionLostError:
            try:
                result = await _readable_errors(call)
            except ConnectionLostError:
                raise ToolError(DATABASE_UNAVAILABLE) from None
    if fitted or not isinstance(result, BaseModel):
        return result
    return fit(result, app.settings.max_response_chars)


async def _readable_errors(call: Callable[[], Awaitable[T]]) -> T:
    try:
        return await call()
    except ConnectionLostError as exc:
        logger.warning("database connection lost or refused: %s", exc.cause)
        raise
    except DatabaseRefusedError as exc:
        logger.error("database error", exc_info=exc)  # the driver's message (the cause) goes to the log only
        raise ToolError(str(exc)) from None
    except AletheiaError as exc:
        raise ToolError(str(exc)) from None
    except Exception:
        logger.exception("unexpected error in a tool")
        raise ToolError("Internal error in aletheia-mcp; the server log (stderr) has the details.") from None
