"""The HTTP server under hostile or careless clients and operators: SIGTERM releases the embedded
PostgreSQL, slow clients are cut off, connections are limited, provenance never crosses users, and
a 401 advertises no OAuth server that does not exist."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx2
import psutil
import pytest

from mcp_server.http_auth import add_token
from tests.helpers import call, clean_env, connect, free_port, http_server

pytestmark = pytest.mark.anyio

GUARD_S = 30  # against a hang only: every wait below ends long before when the server behaves


# --- SIGTERM and the embedded PostgreSQL ---------------------------------------------------------


def start_embedded_http(data_dir: Path, cwd: Path) -> tuple[subprocess.Popen[str], int]:
    """`serve --transport http` on the embedded PostgreSQL in `data_dir`, once it accepts connections."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcp_server", "serve", "--transport", "http", "--port", str(port)],
        cwd=cwd, env=clean_env(ALETHEIA_DATA_DIR=str(data_dir), EMBEDDING_PROVIDER="hashing",
                               EMBEDDING_MODEL="hashing-v2"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while not port_open(port):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)
    return proc, port


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def handle_pids(pgdata: Path) -> list[int]:
    """The processes pgserver believes use this PostgreSQL (it stops it when the last one leaves)."""
    return list(json.loads((pgdata / ".handle_pids.json").read_text()))


def postmaster_running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE  # (a zombie has exited, unreaped)
    except psutil.NoSuchProcess:
        return False


def test_sigterm_releases_the_embedded_postgresql(scratch_dir: Path, cli_cwd: Path) -> None:
    """Two servers share one embedded PostgreSQL: SIGTERM of the first leaves it running for the
    second without a dead pid in pgserver's list; SIGTERM of the last one stops it. Both exit 0."""
    data_dir = scratch_dir / "data"
    pgdata = data_dir / "pgdata"
    first, _ = start_embedded_http(data_dir, cli_cwd)
    second, _ = start_embedded_http(data_dir, cli_cwd)
    try:
        postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
        assert sorted(handle_pids(pgdata)) == sorted([first.pid, second.pid])

        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=GUARD_S) == 0, first.stderr.read() if first.stderr else ""
        assert handle_pids(pgdata) == [second.pid]
        assert postmaster_running(postmaster)

        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=GUARD_S) == 0, second.stderr.read() if second.stderr else ""
        assert handle_pids(pgdata) == []
        assert not (pgdata / "postmaster.pid").exists()
        assert not postmaster_running(postmaster)
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if (pgdata / "postmaster.pid").exists():  # the bug this tests: do not leave it running
            os.kill(int((pgdata / "postmaster.pid").read_text().split()[0]), signal.SIGINT)  # fast shutdown


# --- slow clients ----------------------------------------------------------------------------------


def trickle(port: int, first: bytes, drip: bytes) -> int:
    """Send `first`, then `drip` one byte every 0.1 s; return how many drip bytes went out before the
    server closed the connection (len(drip) + 1 if it never did)."""
    with socket.create_connection(("127.0.0.1", port), timeout=GUARD_S) as sock:
        sock.sendall(first)
        for sent, byte in enumerate(drip):
            try:
                sock.sendall(bytes([byte]))
                if closed_within(sock, 0.1):
                    return sent
            except (BrokenPipeError, ConnectionResetError):
                return sent
        return len(drip) + 1


def silent_connection_closed(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=GUARD_S) as sock:
        return closed_within(sock, GUARD_S)


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes the connection within `seconds` (what it still sends is read and dropped)."""
    deadline = time.monotonic() + seconds
    try:
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if sock.recv(4096) == b"":
                return True
        return False
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.settimeout(GUARD_S)


REQUEST_START = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n"
SLOW_HEADER = b"X-Slow: " + b"a" * 300  # 30 s at a byte every 0.1 s
# What an MCP client sends before its body, so the server reads the body (it answers 406 or 415,
# without reading it, to a request that lacks them).
BODY_START = REQUEST_START + (b"Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n"
                              b"Content-Length: 400\r\n\r\n{")
SLOW_BODY = b" " * 300


async def test_clients_trickling_a_request_are_cut_off(database_url: str, cli_cwd: Path) -> None:
    """Headers, a body, a request pipelined behind an answered one, or nothing at all, sent slower
    than ALETHEIA_HTTP_REQUEST_TIMEOUT_S allows: the server closes the connection, and serves a
    normal client meanwhile."""
    answered_first = b"GET /nothing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with http_server(cli_cwd, database_url, ALETHEIA_HTTP_REQUEST_TIMEOUT_S="1") as url:
        port = int(url.split(":")[2].split("/")[0])
        cut_after: dict[str, int] = {}

        async def run(name: str, first: bytes, drip: bytes) -> None:
            cut_after[name] = await anyio.to_thread.run_sync(trickle, port, first, drip)

        async def silent() -> None:
            cut_after["nothing"] = 0 if await anyio.to_thread.run_sync(silent_connection_closed, port) else 1

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run, "headers", REQUEST_START, SLOW_HEADER)
            tasks.start_soon(run, "body", BODY_START, SLOW_BODY)
            # In one packet: a request answered at once, then the start of one whose body trickles.
            tasks.start_soon(run, "pipelined body", answered_first + BODY_START, SLOW_BODY)
            tasks.start_soon(run, "pipelined headers", answered_first + REQUEST_START, SLOW_HEADER)
            tasks.start_soon(silent)
            async with connect(url) as client:
                assert (await call(client, "server_status"))["database"]["kind"] == "external"
    assert cut_after["headers"] < len(SLOW_HEADER) and cut_after["pipelined headers"] < len(SLOW_HEADER), cut_after
    assert cut_after["body"] < len(SLOW_BODY) and cut_after["pipelined body"] < len(SLOW_BODY), cut_after
    assert cut_after["nothing"] == 0  # closed although it never sent a byte


UVICORN_DEFAULT_IDLE_S = 5


def test_an_idle_keep_alive_connection_is_closed(database_url: str, cli_cwd: Path) -> None:
    """ALETHEIA_HTTP_IDLE_TIMEOUT_S=1 closes an idle kept-alive connection well before uvicorn's
    default would (an upper bound with a wide margin, not a timing)."""
    with http_server(cli_cwd, database_url, ALETHEIA_HTTP_IDLE_TIMEOUT_S="1") as url:
        port = int(url.split(":")[2].split("/")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=GUARD_S) as sock:
            sock.sendall(b"GET /nothing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 404")
            assert closed_within(sock, UVICORN_DEFAULT_IDLE_S - 1.5)


@contextmanager
def held_connections(port: int, count: int) -> Iterator[list[socket.socket]]:
    """`count` kept-alive connections, each after one answered request (so the server has surely
    accepted it), left open and idle."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=GUARD_S)
            sockets.append(sock)
            sock.sendall(b"GET /nothing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 404")
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


async def test_connections_beyond_the_limit_get_503(database_url: str, cli_cwd: Path) -> None:
    env = {"ALETHEIA_HTTP_MAX_CONNECTIONS": "4", "ALETHEIA_HTTP_IDLE_TIMEOUT_S": "120"}
    with http_server(cli_cwd, database_url, **env) as url:
        port = int(url.split(":")[2].split("/")[0])
        with held_connections(port, 2):  # within the limit: a normal client is served
            async with connect(url) as client:
                assert (await call(client, "server_status"))["database"]["kind"] == "external"
        with held_connections(port, 4):  # the limit reached: one more connection is refused
            async with httpx2.AsyncClient(timeout=GUARD_S) as http:
                refused = await http.get(url.replace("/mcp", "/nothing"))
            assert refused.status_code == 503
        deadline = time.monotonic() + GUARD_S  # the held ones closed: served again once the server sees it
        async with httpx2.AsyncClient(timeout=GUARD_S) as http:
            while (await http.get(url.replace("/mcp", "/nothing"))).status_code == 503:
                assert time.monotonic() < deadline
                await anyio.sleep(0.1)


# --- provenance between users --------------------------------------------------------------------


async def test_provenance_never_reaches_another_users_exchange(
    database_url: str, cli_cwd: Path, tmp_path: Path
) -> None:
    """Alice and Bob send the same client-chosen mcp-session-id: what Alice recalled is attached to
    Alice's next exchange, never to Bob's."""
    tokens = tmp_path / "tokens.json"
    alice, bob = add_token(tokens, "alice"), add_token(tokens, "bob")
    same_session = {"mcp-session-id": "shared-by-chance"}
    exchange = {"messages": [{"role": "user", "content": "how do we deploy?"}], "response": "blue/green"}
    with http_server(cli_cwd, database_url, ALETHEIA_HTTP_TOKENS_FILE=str(tokens)) as url:
        async with connect(url, alice, **same_session) as as_alice, connect(url, bob, **same_session) as as_bob:
            memory = (await call(as_alice, "remember", {"content": "alice deploys blue/green on fridays"}))["id"]
            assert [r["id"] for r in (await call(as_alice, "recall", {"query": "deploy"}))["results"]] == [memory]

            bobs = await call(as_bob, "log_exchange", exchange)
            alices = await call(as_alice, "log_exchange", exchange)

            assert (await call(as_bob, "get_conversation", {"id": bobs["id"]}))["memory_ids"] == []
            assert (await call(as_alice, "get_conversation", {"id": alices["id"]}))["memory_ids"] == [memory]


# --- 401 without an imaginary OAuth server -------------------------------------------------------


async def test_401_names_no_authorization_server(database_url: str, cli_cwd: Path, tmp_path: Path) -> None:
    """Static bearer tokens, not OAuth: the 401 says Bearer without `resource_metadata`, and no
    /.well-known metadata points clients at an authorization server that does not exist."""
    tokens = tmp_path / "tokens.json"
    add_token(tokens, "alice")
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    with http_server(cli_cwd, database_url, ALETHEIA_HTTP_TOKENS_FILE=str(tokens)) as url:
        base = url.removesuffix("/mcp")
        async with httpx2.AsyncClient(timeout=GUARD_S) as http:
            refused = await http.post(url, json=request)
            wrong = await http.post(url, json=request, headers={"Authorization": "Bearer aletheia_wrong"})
            metadata = {path: (await http.get(base + path)).status_code for path in (
                "/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp",
                "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")}
    for response in (refused, wrong):
        assert response.status_code == 401
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
        assert "resource_metadata" not in challenge and "http" not in challenge
    assert set(metadata.values()) == {404}, metadata
