"""Fixtures of the hook runtime's tests: a hook environment on the test's database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hooks.runtime_helpers import HookRuntime, runtime_dir


@pytest.fixture
def hooks(database_url: str, scratch_dir: Path) -> Iterator[HookRuntime]:
    """The real `aletheia-mcp hook` against the test's database, with a runtime directory of its own
    (every hook server started in it is stopped at the end)."""
    with runtime_dir() as runtime:
        yield HookRuntime(database_url, scratch_dir / "data", runtime)
