"""Bearer tokens end to end: `aletheia-mcp tokens add|list|revoke` as a subprocess, and their effect
on a running HTTP server (revocation and expiry without a restart); unsafe files and blank user ids
refused by the CLI and by the server's start; concurrent changes all kept; a broken or unreadable
file refuses every token (401, logged) and never fails a request with a 500."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest

from mcp_server.http_auth import add_token, read_tokens, revoke_tokens, token_hash
from tests.helpers import call, clean_env, connect, free_port, http_server

pytestmark = pytest.mark.anyio

LIST_REQUEST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
ACCEPT = {"Accept": "application/json, text/event-stream"}


def tokens(cwd: Path, tokens_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mcp_server", "tokens", *args], cwd=cwd,
                          env=clean_env(ALETHEIA_HTTP_TOKENS_FILE=str(tokens_file)),
                          capture_output=True, text=True, timeout=60)


def new_token(cwd: Path, tokens_file: Path, *args: str) -> str:
    result = tokens(cwd, tokens_file, "add", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def listed(cwd: Path, tokens_file: Path) -> list[dict[str, str]]:
    """`tokens list` parsed: one dict per token (ID, USER, CREATED, EXPIRES, LABEL)."""
    result = tokens(cwd, tokens_file, "list")
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    names = header.split()
    rows = []
    for line in lines:
        token_id, user, created, *rest = line.split()
        expires = " ".join(rest[:2]) if rest[1:2] == ["(expired)"] else rest[0]
        label = " ".join(rest[2:] if rest[1:2] == ["(expired)"] else rest[1:])
        rows.append(dict(zip(names, [token_id, user, created, expires, label], strict=True)))
    return rows


async def status_code(url: str, token: str) -> int:
    async with httpx2.AsyncClient(timeout=30) as http:
        response = await http.post(url, json=LIST_REQUEST, headers={**ACCEPT, "Authorization": f"Bearer {token}"})
        return response.status_code


async def test_list_and_revoke_act_on_a_running_server(database_url: str, cli_cwd: Path, tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    laptop = new_token(cli_cwd, path, "alice", "--label", "laptop", "--expires-in", "30d")
    desktop = new_token(cli_cwd, path, "alice", "--label", "desktop")
    bobs = new_token(cli_cwd, path, "bob")

    rows = listed(cli_cwd, path)
    assert [(r["USER"], r["LABEL"]) for r in rows] == [("alice", "laptop"), ("alice", "desktop"), ("bob", "")]
    in_30_days = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d")
    assert rows[0]["EXPIRES"].startswith(in_30_days) and rows[1]["EXPIRES"] == "never"
    shown = tokens(cli_cwd, path, "list").stdout
    stored = json.loads(path.read_text())["tokens"]
    assert not any(secret in shown for secret in (laptop, desktop, bobs, *(t["sha256"] for t in stored)))

    with http_server(cli_cwd, database_url, ALETHEIA_HTTP_TOKENS_FILE=str(path)) as url:
        for token, user in ((laptop, "alice"), (desktop, "alice"), (bobs, "bob")):
            async with connect(url, token) as client:
                assert (await call(client, "server_status"))["user_id"] == user

        revoked = tokens(cli_cwd, path, "revoke", rows[0]["ID"])
        assert revoked.returncode == 0 and revoked.stdout.strip() == f"revoked {rows[0]['ID']} (alice, laptop)"
        assert await status_code(url, laptop) == 401  # no restart needed
        assert await status_code(url, desktop) == 200

        by_user = tokens(cli_cwd, path, "revoke", "bob")
        assert by_user.returncode == 0 and "(bob)" in by_user.stdout
        assert await status_code(url, bobs) == 401
        assert [r["LABEL"] for r in listed(cli_cwd, path)] == ["desktop"]

    unknown = tokens(cli_cwd, path, "revoke", "carol")
    assert unknown.returncode == 1 and "No token has the id or user 'carol'" in unknown.stderr
    assert "tokens list" in unknown.stderr


async def test_an_expired_token_gets_401(database_url: str, cli_cwd: Path, tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    token = new_token(cli_cwd, path, "alice", "--expires-in", "2h")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    later = new_token(cli_cwd, path, "alice", "--expires", tomorrow.isoformat())
    assert listed(cli_cwd, path)[1]["EXPIRES"] == f"{tomorrow.isoformat()}T00:00Z"
    with http_server(cli_cwd, database_url, ALETHEIA_HTTP_TOKENS_FILE=str(path)) as url:
        assert await status_code(url, token) == 200
        data = json.loads(path.read_text())  # three hours go by
        data["tokens"][0]["expires_at"] = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
        path.write_text(json.dumps(data))
        assert await status_code(url, token) == 401
        assert await status_code(url, later) == 200
    assert listed(cli_cwd, path)[0]["EXPIRES"].endswith("(expired)")


@pytest.mark.parametrize("arguments, message", [
    (["--expires-in", "0d"], "is not a duration: write e.g. 12h, 30d or 8w"),
    (["--expires-in", "soon"], "is not a duration"),
    (["--expires", "next week"], "is not a date: write YYYY-MM-DD"),
    (["--expires", "2020-01-01"], "is in the past"),
    (["--expires-in", "1d", "--expires", "2999-01-01"], "not both"),
])
def test_a_bad_expiry_is_refused(cli_cwd: Path, tmp_path: Path, arguments: list[str], message: str) -> None:
    path = tmp_path / "tokens.json"
    result = tokens(cli_cwd, path, "add", "alice", *arguments)
    assert result.returncode == 1 and message in result.stderr and result.stdout == ""
    assert not path.exists()


@pytest.mark.parametrize("user", ["", "   ", "bob\nroot"])
def test_a_blank_user_id_is_refused(cli_cwd: Path, tmp_path: Path, user: str) -> None:
    path = tmp_path / "tokens.json"
    new_token(cli_cwd, path, "alice")
    before = path.read_text()
    result = tokens(cli_cwd, path, "add", user)
    assert result.returncode == 1 and result.stdout == ""
    assert "The user id of a token must be a non-empty string without control characters" in result.stderr
    assert path.read_text() == before


def serve_refused(cwd: Path, database_url: str, tokens_file: Path) -> subprocess.CompletedProcess[str]:
    """Start the HTTP server on this tokens file; it must stop before serving anything."""
    return subprocess.run(
        [sys.executable, "-m", "mcp_server", "serve", "--transport", "http", "--port", str(free_port())],
        cwd=cwd, env=clean_env(DATABASE_URL=database_url, EMBEDDING_PROVIDER="hashing",
                               ALETHEIA_HTTP_TOKENS_FILE=str(tokens_file)),
        capture_output=True, text=True, timeout=60,
    )


def test_a_blank_user_id_in_the_file_stops_the_server(database_url: str, cli_cwd: Path, tmp_path: Path) -> None:
    """A hand-edited entry with an empty user would act as the server's own user: refused."""
    path = tmp_path / "tokens.json"
    new_token(cli_cwd, path, "alice")
    data = json.loads(path.read_text())
    data["tokens"][0]["user_id"] = " "
    path.write_text(json.dumps(data))
    for result in (serve_refused(cli_cwd, database_url, path), tokens(cli_cwd, path, "list")):
        assert result.returncode == 1, result.stderr
        assert "is not a valid tokens file (The user id of a token must be a non-empty string" in result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("unsafe", ["file 0o666", "file 0o620", "directory 0o777"])
def test_a_tokens_file_others_can_write_is_refused(
    database_url: str, cli_cwd: Path, tmp_path: Path, unsafe: str
) -> None:
    """Whoever can write the file can mint a token for any user: refused, as ssh refuses such keys."""
    folder = tmp_path / "config"
    folder.mkdir(mode=0o700)
    path = folder / "tokens.json"
    new_token(cli_cwd, path, "alice")
    what, mode = unsafe.split()
    target = path if what == "file" else folder
    target.chmod(int(mode, 8))
    before = path.read_text()

    for result in (serve_refused(cli_cwd, database_url, path), tokens(cli_cwd, path, "list"),
                   tokens(cli_cwd, path, "add", "mallory")):
        assert result.returncode == 1, result.stderr
        assert f"its {what} {target} is writable by other users (mode {mode[2:].zfill(4)})" in result.stderr
        assert f"chmod go-w {target}" in result.stderr
    assert path.read_text() == before

    target.chmod(0o700 if what == "directory" else 0o600)  # fixed as the message says: accepted again
    assert [r["USER"] for r in listed(cli_cwd, path)] == ["alice"]


async def test_a_tokens_file_made_writable_while_serving_refuses_every_token(
    database_url: str, cli_cwd: Path, tmp_path: Path
) -> None:
    path = tmp_path / "tokens.json"
    token = new_token(cli_cwd, path, "alice")
    with http_server(cli_cwd, database_url, ALETHEIA_HTTP_TOKENS_FILE=str(path)) as url:
        assert await status_code(url, token) == 200
        path.chmod(0o666)
        assert await status_code(url, token) == 401  # fail closed (the log says why)
        path.chmod(0o600)
        assert await status_code(url, token) == 200


# --- concurrent changes, and a file that turns bad while serving ---------------------------------


def test_concurrent_changes_all_survive(tmp_path: Path) -> None:
    """Many `tokens add` (and a revoke) at once: each reads the file, adds, writes it back; without
    a lock, a write made from a stale read drops the tokens added in between."""
    path = tmp_path / "tokens.json"
    doomed = add_token(path, "mallory")
    users = [f"user{i}" for i in range(24)]
    start = threading.Barrier(len(users) + 1)

    def add(user: str) -> str:
        start.wait()
        return add_token(path, user)

    def revoke() -> None:
        start.wait()
        revoke_tokens(path, "mallory")

    with ThreadPoolExecutor(len(users) + 1) as pool:
        revoked = pool.submit(revoke)
        created = list(pool.map(add, users))
        revoked.result()
    stored = read_tokens(path)
    assert sorted(entry.user_id for entry in stored) == sorted(users)
    assert {entry.sha256 for entry in stored} == {token_hash(token) for token in created}
    assert token_hash(doomed) not in {entry.sha256 for entry in stored}


async def test_a_label_that_is_not_a_string_refuses_every_token(
    database_url: str, cli_cwd: Path, tmp_path: Path
) -> None:
    """A hand-edited `"label": 5`: reported as an invalid file (401 while serving, logged; refused at
    start and by `tokens list`), not a 500 from deep inside the SDK."""
    path, log = tmp_path / "tokens.json", tmp_path / "server.log"
    token = new_token(cli_cwd, path, "alice", "--label", "laptop")
    valid = path.read_text()
    data = json.loads(valid)
    data["tokens"][0]["label"] = 5
    with http_server(cli_cwd, database_url, log=log, ALETHEIA_HTTP_TOKENS_FILE=str(path)) as url:
        assert await status_code(url, token) == 200
        path.write_text(json.dumps(data))
        assert await status_code(url, token) == 401
        assert "refusing every token" in log.read_text() and "label 5 is not a string" in log.read_text()
        path.write_text(valid)
        assert await status_code(url, token) == 200  # corrected: served again, no restart
    path.write_text(json.dumps(data))
    for result in (serve_refused(cli_cwd, database_url, path), tokens(cli_cwd, path, "list")):
        assert result.returncode == 1 and "is not a valid tokens file (label 5 is not a string)" in result.stderr
        assert "Traceback" not in result.stderr


async def test_an_unreadable_tokens_file_refuses_every_token(
    database_url: str, cli_cwd: Path, tmp_path: Path
) -> None:
    """The file replaced by a directory while serving (reading it fails with an OSError, even as
    root, which a chmod 000 would not stop): 401 and a log line, never a 500; at start, a clear refusal."""
    path, log = tmp_path / "tokens.json", tmp_path / "server.log"
    token = new_token(cli_cwd, path, "alice")
    valid = path.read_text()
    with http_server(cli_cwd, database_url, log=log, ALETHEIA_HTTP_TOKENS_FILE=str(path)) as url:
        assert await status_code(url, token) == 200
        path.unlink()
        path.mkdir(mode=0o700)
        assert await status_code(url, token) == 401
        assert "refusing every token" in log.read_text() and "cannot be read (Is a directory)" in log.read_text()
        path.rmdir()
        path.write_text(valid)
        path.chmod(0o600)
        assert await status_code(url, token) == 200
    path.unlink()
    path.mkdir(mode=0o700)
    for result in (serve_refused(cli_cwd, database_url, path), tokens(cli_cwd, path, "list")):
        assert result.returncode == 1 and f"ALETHEIA_HTTP_TOKENS_FILE {path} cannot be read" in result.stderr
        assert "Traceback" not in result.stderr
