"""Streamable HTTP: bearer tokens mapped to users, Host/Origin checks, loopback-only without
tokens, and two stateless replicas serving one database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest

from mcp_server.http_auth import add_token, read_tokens
from tests.helpers import call, call_error, clean_env, connect, free_port, http_server, sql

pytestmark = pytest.mark.anyio


def test_tokens_file_stores_only_hashes(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    token = add_token(path, "alice", "laptop")
    assert token.startswith("aletheia_") and len(token) > 40
    assert token not in path.read_text()
    assert [(e.user_id, e.label) for e in read_tokens(path)] == [("alice", "laptop")]
    assert oct(path.stat().st_mode & 0o777) == "0o600"


async def test_tokens_map_to_users_and_isolate_them(database_url: str, cli_cwd: Path, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    alice, bob = add_token(tokens, "alice"), add_token(tokens, "bob")
    with http_server(cli_cwd, database_url, ALETHEIA_HTTP_TOKENS_FILE=str(tokens)) as url:
        async with connect(url, alice) as client:
            stored = await call(client, "remember", {"content": "alice deploys on fridays"})
            assert (await call(client, "server_status"))["user_id"] == "alice"
        async with connect(url, bob) as client:
            assert (await call(client, "recall", {"query": "deploys fridays"}))["results"] == []
            assert "No memory" in await call_error(client, "forget", {"id": stored["id"]})
        async with httpx2.AsyncClient() as http:
            unauthenticated = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
            wrong = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                    headers={"Authorization": "Bearer aletheia_not-a-real-token"})
        assert unauthenticated.status_code == 401 and wrong.status_code == 401
    rows = await sql(database_url, "SELECT user_id FROM memory_shards")
    assert [r["user_id"] for r in rows] == ["alice"]


async def test_dns_rebinding_protection(database_url: str, cli_cwd: Path) -> None:
    with http_server(cli_cwd, database_url) as url:
        request: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        async with httpx2.AsyncClient() as http:
            evil_host = await http.post(url, json=request, headers={**accept, "Host": "evil.example:80"})
            evil_origin = await http.post(url, json=request, headers={**accept, "Origin": "http://evil.example"})
        assert evil_host.status_code == 421 and evil_origin.status_code == 403
        async with connect(url) as client:  # loopback without tokens acts as ALETHEIA_USER_ID
            assert (await call(client, "server_status"))["database"]["kind"] == "external"


def test_non_loopback_without_tokens_is_refused(database_url: str, cli_cwd: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mcp_server", "serve", "--transport", "http", "--host", "0.0.0.0", "--port",
         str(free_port())],
        cwd=cli_cwd, env=clean_env(DATABASE_URL=database_url, EMBEDDING_PROVIDER="hashing"),
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "Refusing to serve HTTP on 0.0.0.0 without authentication" in result.stderr
    assert "ALETHEIA_HTTP_TOKENS_FILE" in result.stderr


async def test_two_replicas_serve_one_database(database_url: str, cli_cwd: Path, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    token = add_token(tokens, "carol")
    env = {"ALETHEIA_HTTP_TOKENS_FILE": str(tokens)}
    with http_server(cli_cwd, database_url, **env) as first, http_server(cli_cwd, database_url, **env) as second:
        async with connect(first, token) as a, connect(second, token) as b:
            stored = await call(a, "remember", {"content": "replicas share one postgres"})
            found = await call(b, "recall", {"query": "replicas postgres"})
            assert [r["id"] for r in found["results"]] == [stored["id"]]
            exchange = {"messages": [{"role": "user", "content": "q"}], "response": "a", "request_id": "lb-1"}
            logged = await call(a, "log_exchange", exchange)
            retried = await call(b, "log_exchange", exchange)  # a retry landing on the other replica
            assert retried["id"] == logged["id"] and retried["created"] is False
            for i in range(10):  # alternate replicas call by call, as a load balancer would
                await call(a if i % 2 else b, "remember", {"content": f"round robin {i}"})
            listed = await call(a, "list_memories", {"limit": 50})
            assert len(listed["items"]) == 11


async def test_a_request_names_its_project_in_a_header(database_url: str, cli_cwd: Path, tmp_path: Path) -> None:
    """Replicas serve every repository: each request says which (Aletheia-Project), and another user's
    clone of the same repository sees its patterns (memories stay each user's own)."""
    tokens = tmp_path / "tokens.json"
    alice, bob = add_token(tokens, "alice"), add_token(tokens, "bob")
    repo_a = {"Aletheia-Project": "github.com/org/a"}
    with http_server(cli_cwd, database_url, ALETHEIA_HTTP_TOKENS_FILE=str(tokens)) as url:
        async with connect(url, alice, **repo_a) as client:
            assert (await call(client, "server_status"))["project"] == {
                "key": "github.com/org/a", "detection": "header", "root": None}
            await call(client, "add_pattern", {"content": "Repo A: migrations are reversible.", "title": "A"})
            await call(client, "remember", {"content": "alice's note about repo A migrations"})
        async with connect(url, bob, **repo_a) as client:
            assert [p["title"] for p in (await call(client, "find_patterns", {"query": "migrations"}))["results"]] \
                == ["A"]
            assert (await call(client, "recall", {"query": "migrations"}))["results"] == []
        async with connect(url, bob, **{"Aletheia-Project": "github.com/org/b"}) as client:
            assert (await call(client, "find_patterns", {"query": "migrations"}))["results"] == []
        async with connect(url, bob, **{"Aletheia-Project": "x" * 201}) as client:
            assert "`Aletheia-Project header` is 201 characters" in await call_error(client, "recall", {"query": "x"})
