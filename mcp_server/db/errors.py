"""Driver errors, translated once, at the edge of db/, into the errors.py hierarchy.

Nothing above db/ imports asyncpg: what the driver raises while db/ works leaves it as
ConnectionLostError (the connection was lost or refused: a restart, a terminated backend, a
database that is down) or DatabaseRefusedError (PostgreSQL refused a statement). The driver's
exception stays attached as the cause, for the log only: its message can quote the data, so
adapters log it and never show it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from mcp_server.errors import ConnectionLostError, DatabaseRefusedError

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
        raise ConnectionLostError(type(exc).__name__) from exc
    except asyncpg.PostgresError as exc:
        raise DatabaseRefusedError(exc.sqlstate) from exc
    except BaseExceptionGroup as group:
        lost = group.subgroup(CONNECTION_LOST)
        if lost is not None:
            raise ConnectionLostError(type(_first(lost)).__name__) from group
        refused = group.subgroup(asyncpg.PostgresError)
        if refused is not None:
            raise DatabaseRefusedError(getattr(_first(refused), "sqlstate", None)) from group
        raise


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    inner = group.exceptions[0]
    return _first(inner) if isinstance(inner, BaseExceptionGroup) else inner
