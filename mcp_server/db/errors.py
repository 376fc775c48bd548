"""Driver errors, translated once, at the edge of db/, into the errors.py hierarchy.

Nothing above db/ imports asyncpg: what the driver raises while db/ works leaves it as
ConnectionLostError (the connection was lost or refused: a restart, a terminated backend, a
database that is down) or DatabaseRefusedError (PostgreSQL refused a statement; its message,
which can quote the data, goes to the log only).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from mcp_server.errors import ConnectionLostError, DatabaseRefusedError

logger = logging.getLogger(__name__)

# A lost or refused connection: the database restarted, a backend was terminated, or it is down.
CONNECTION_LOST: tuple[type[BaseException], ...] = (
    OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError, asyncpg.CrashShutdownError,
    # raised by asyncpg when the server terminated the connection while a statement was starting
    asyncpg.exceptions._base.InternalClientError,
)


@contextmanager
def driver_errors_translated() -> Iterator[None]:
    """Re-raise the driver's exceptions raised inside the block as the domain's (also when a task
    group inside the block wrapped them in an exception group)."""
    try:
        yield
    except CONNECTION_LOST as exc:
        raise _lost(exc) from None
    except asyncpg.PostgresError as exc:
        raise _refused(exc) from None
    except BaseExceptionGroup as group:
        lost = group.subgroup(CONNECTION_LOST)
        if lost is not None:
            raise _lost(_first(lost)) from None
        refused = group.subgroup(asyncpg.PostgresError)
        if refused is not None:
            raise _refused(_first(refused)) from None
        raise


def _lost(exc: BaseException) -> ConnectionLostError:
    logger.warning("database connection lost or refused: %s", type(exc).__name__)
    return ConnectionLostError(type(exc).__name__)


def _refused(exc: BaseException) -> DatabaseRefusedError:
    logger.error("database error", exc_info=exc)
    return DatabaseRefusedError(getattr(exc, "sqlstate", None))


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    inner = group.exceptions[0]
    return _first(inner) if isinstance(inner, BaseExceptionGroup) else inner
