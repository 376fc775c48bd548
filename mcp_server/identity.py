"""Who a call acts for, and the project its request names.

Over stdio the user is ALETHEIA_USER_ID; over HTTP, the user of the bearer token. An HTTP request
may also name its project (the `Aletheia-Project` header). Context variables (set by the tool
layer for the duration of one call) rather than parameters threaded through every service, so
the services keep one signature for the CLI and the tools.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_acting_user: ContextVar[str | None] = ContextVar("aletheia_acting_user", default=None)
_requested_project: ContextVar[str | None] = ContextVar("aletheia_requested_project", default=None)

PROJECT_HEADER = "aletheia-project"  # (HTTP header names are case-insensitive)


def current_user_id(default: str) -> str:
    return _acting_user.get() or default


def requested_project() -> str | None:
    """The project the request in progress names (its Aletheia-Project header), unchecked."""
    return _requested_project.get()


@contextmanager
def acting_as(user_id: str | None, project: str | None = None) -> Iterator[None]:
    user_token = _acting_user.set(user_id)
    project_token = _requested_project.set(project)
    try:
        yield
    finally:
        _requested_project.reset(project_token)
        _acting_user.reset(user_token)
