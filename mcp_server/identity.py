"""Who a call acts for. Over stdio that is ALETHEIA_USER_ID; over HTTP, the user of the bearer token.

A context variable (set by the tool layer for the duration of one call) rather than a parameter
threaded through every service, so the services keep one signature for the CLI and the tools.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_acting_user: ContextVar[str | None] = ContextVar("aletheia_acting_user", default=None)


def current_user_id(default: str) -> str:
    return _acting_user.get() or default


@contextmanager
def acting_as(user_id: str | None) -> Iterator[None]:
    token = _acting_user.set(user_id)
    try:
        yield
    finally:
        _acting_user.reset(token)
