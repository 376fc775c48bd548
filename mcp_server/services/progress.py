"""How long work reports progress: the caller's `start(total)` returns the callback that each
finished step calls with how many items it did (the CLI draws a progress bar with it)."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int], None]
ProgressStart = Callable[[int], Progress]
