"""Shared by the peer scripts, which run with a peer's own virtualenv python (not ours).

Two jobs: load aletheia-mcp's hashing embedder without its package (whose `__init__` files pull
in pydantic-settings, httpx and the rest of our dependencies, absent from the peer venvs), and
keep stdout for JSON-RPC only (chroma-mcp prints status lines there before serving).
Scripts import this as a top-level module: their own directory is first on `sys.path`.
"""

from __future__ import annotations

import importlib
import io
import os
import sys
import types
from pathlib import Path
from typing import Any, BinaryIO, TextIO

REPO = Path(__file__).resolve().parents[2]
DIMENSION = 384
MODEL = "hashing-v2"


def hashing_embedder() -> Any:
    """`HashingEmbedder(384, model="hashing-v2")`, the very class aletheia-mcp uses in the benchmark.

    Empty package modules for `mcp_server` and `mcp_server.embeddings` are registered with their
    real `__path__`, so importing `mcp_server.embeddings.hashing` loads only hashing.py, stopwords.py,
    base.py and errors.py (numpy and anyio are their only third-party imports).
    """
    for name, directory in (("mcp_server", REPO / "mcp_server"),
                            ("mcp_server.embeddings", REPO / "mcp_server" / "embeddings")):
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [str(directory)]
            sys.modules[name] = package
    hashing = importlib.import_module("mcp_server.embeddings.hashing")
    return hashing.HashingEmbedder(DIMENSION, model=MODEL)


class _SplitStdout:
    """`sys.stdout` for a peer server: `print()` goes to the log, but `.buffer` (which the MCP SDK
    wraps when its stdio transport starts) is the real stdout, the JSON-RPC channel."""

    def __init__(self, log: TextIO, protocol: BinaryIO) -> None:
        self._log = log
        self.buffer = protocol

    def write(self, text: str) -> int:
        return self._log.write(text)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding...: the log's
        return getattr(self._log, name)


def protect_stdout(log_path: str | None) -> None:
    """Keep stdout for JSON-RPC only, whoever else writes to it.

    File descriptors 1 and 2 are pointed at the log (native libraries and warnings land there,
    and it is quoted when a peer fails); the original stdout is kept on a duplicate descriptor
    and reachable only as `sys.stdout.buffer`.
    """
    protocol = io.BufferedWriter(io.FileIO(os.dup(1), "w"))
    if log_path:
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log_fd, 2)
        os.close(log_fd)
    os.dup2(2, 1)
    log = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
    sys.stderr = log
    sys.stdout = _SplitStdout(log, protocol)  # type: ignore[assignment]
