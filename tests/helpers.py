"""Helpers shared by the test modules (no test module imports another, or a conftest).

- settings and subprocess environments that never read the developer's own configuration;
- the MCP tool-call helpers, raw SQL on a test database;
- an HTTP server subprocess and a client connected to it.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import anyio
import asyncpg
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_server.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
# The newest migration shipped, found independently of the application's own code.
HEAD = sorted(p.name[:4] for p in (REPO_ROOT / "migrations" / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))[-1]


# --- settings and environments ------------------------------------------------------------------


def make_settings(database_url: str | None, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "data_dir": tmp_path / "data",
        "user_id": "tester",
        "embedding_provider": "hashing",
        "embedding_model": "hashing-v2",
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def clean_env(**extra: str) -> dict[str, str]:
    """A subprocess environment without the developer's aletheia/database settings."""
    drop = {"DATABASE_URL", "ALETHEIA_DATA_DIR", "ALETHEIA_USER_ID", "EMBEDDING_PROVIDER", "EMBEDDING_MODEL",
            "EMBEDDING_DIM", "LOG_LEVEL", "PGVECTOR_ENABLE_IVFFLAT", "PGVECTOR_IVFFLAT_LISTS"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["ALETHEIA_ENV_FILE"] = ""  # not the developer's ~/.config/aletheia/.env either
    env.update(extra)
    return env


# --- the CLI in a subprocess -------------------------------------------------------------------


def cli(args: list[str], cwd: Path, url: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`aletheia-mcp ARGS` on database `url` with the hashing embedder, output one line per message."""
    environment = clean_env(DATABASE_URL=url, EMBEDDING_PROVIDER="hashing", COLUMNS="200", **env)
    return subprocess.run([sys.executable, "-m", "mcp_server", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=300)


async def run_cli(args: list[str], cwd: Path, url: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`cli` from an async test (in a worker thread: the event loop keeps running)."""
    return await anyio.to_thread.run_sync(lambda: cli(args, cwd, url, **env))


# --- databases ----------------------------------------------------------------------------------


def admin_execute(pg_admin_uri: str, sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(pg_admin_uri)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


async def sql(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


# --- MCP tool calls -----------------------------------------------------------------------------


async def conversation_rows(url: str) -> list[dict[str, Any]]:
    """Every stored exchange, oldest first, with its project's key and its JSON columns decoded."""
    found = await sql(url, "SELECT c.*, p.key AS project_key FROM raw_conversations c "
                           "LEFT JOIN projects p ON p.id = c.project_id ORDER BY c.id")
    decoded = []
    for record in found:
        row = dict(record)
        for name in ("messages", "response", "request", "usage"):
            if isinstance(row.get(name), str):
                row[name] = json.loads(row[name])
        decoded.append(row)
    return decoded


async def call(client: Client, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments or {})
    assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
    assert result.structured_content is not None
    return result.structured_content


async def call_error(client: Client, tool: str, arguments: dict[str, Any]) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    text = result.content[0].text  # type: ignore[union-attr]
    assert "Traceback" not in text
    return text


# --- the HTTP transport in a subprocess ---------------------------------------------------------

class LoopbackHTTPServer:
    """A fake of a remote service the tests cannot reach (a model or embeddings API): a stdlib HTTP
    server on a free loopback port, answering from a thread while the `with` block runs."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def http_server(cwd: Path, url: str, host: str = "127.0.0.1", log: Path | None = None, **env: str) -> Iterator[str]:
    """`serve --transport http` on a free port; its stderr goes to `log` (to read while it runs) when given."""
    port = free_port()
    log_file = log.open("w") if log is not None else None
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcp_server", "serve", "--transport", "http", "--host", host, "--port", str(port)],
        cwd=cwd, env=clean_env(DATABASE_URL=url, EMBEDDING_PROVIDER="hashing", **env),
        stdout=subprocess.PIPE, stderr=log_file or subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                said = log.read_text() if log is not None else proc.stderr.read() if proc.stderr else ""
                raise AssertionError(f"server exited: {said}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if log_file is not None:
            log_file.close()


@asynccontextmanager
async def connect(url: str, token: str | None = None, **headers: str) -> AsyncIterator[Client]:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http, \
            Client(streamable_http_client(url, http_client=http)) as client:
        yield client


# --- git repositories ---------------------------------------------------------------------------


def write_tree(root: Path, files: Mapping[str, str]) -> None:
    """Write `files` (path relative to `root` -> text) under `root`, making their folders."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def make_repository(path: Path, origin: str | None = None) -> Path:
    """A real git repository at `path` (created), with `origin` as its remote when given."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    if origin is not None:
        subprocess.run(["git", "-C", str(path), "remote", "add", "origin", origin], check=True)
    return path


def set_origin(repository: Path, url: str) -> None:
    """Point the repository's `origin` at `url` (as `git remote set-url` does when a repository moves)."""
    subprocess.run(["git", "-C", str(repository), "remote", "set-url", "origin", url], check=True)
