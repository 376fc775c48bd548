"""`aletheia-mcp memories export/import` and `reembed` as a person runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import clean_env, sql

pytestmark = pytest.mark.anyio


def run_cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"EMBEDDING_PROVIDER": "hashing", "ALETHEIA_USER_ID": "importer"}
    return subprocess.run([sys.executable, "-m", "mcp_server", *args], cwd=cwd, env=clean_env(**(base | env)),
                          capture_output=True, text=True, timeout=300)


async def test_import_export_round_trip_without_duplicates(database_url: str, cli_cwd: Path, tmp_path: Path) -> None:
    lines = [json.dumps({"content": f"imported memory {i}", "source": "bulk", "metadata": {"n": i},
                         "created_at": "2026-01-02T03:04:05+00:00"}) for i in range(1200)]
    lines.insert(10, json.dumps({"content": "imported memory 3", "source": "bulk"}))  # duplicate within the file
    lines.insert(20, "{not json")
    lines.insert(30, json.dumps({"content": ""}))
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")

    first = run_cli(["memories", "import", str(source)], cli_cwd, DATABASE_URL=database_url)

    assert first.returncode == 2, first.stderr  # some lines were rejected
    assert "Read 1203 line(s): 1200 imported, 1 already stored, 2 rejected." in first.stdout
    assert "line 21: not JSON" in first.stderr and "line 31: `content` is empty" in first.stderr
    assert "Embedded 1200 row(s)." in first.stdout
    rows = await sql(database_url, "SELECT count(*) AS n, count(embedding) AS embedded FROM memory_shards "
                                   "WHERE user_id = 'importer'")
    assert (rows[0]["n"], rows[0]["embedded"]) == (1200, 1200)

    again = run_cli(["memories", "import", "--no-embed", str(source)], cli_cwd, DATABASE_URL=database_url)
    assert "0 imported, 1201 already stored" in again.stdout
    assert (await sql(database_url, "SELECT count(*) AS n FROM memory_shards"))[0]["n"] == 1200

    exported_path = tmp_path / "out.jsonl"
    export = run_cli(["memories", "export", "--out", str(exported_path)], cli_cwd, DATABASE_URL=database_url)
    assert export.returncode == 0 and "Exported 1200 memories." in export.stderr
    exported = [json.loads(line) for line in exported_path.read_text().splitlines()]
    assert len(exported) == 1200
    assert exported[5] == {"content": "imported memory 5", "source": "bulk", "metadata": {"n": 5},
                           "created_at": "2026-01-02T03:04:05+00:00", "project": None}

    other_user = run_cli(["memories", "export"], cli_cwd, DATABASE_URL=database_url, ALETHEIA_USER_ID="someone")
    assert other_user.stdout == ""


def test_demo_runs_offline_and_narrates(cli_cwd: Path) -> None:
    result = run_cli(["demo"], cli_cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    for expected in ("remember", "recall", "server_status", "created=False", "mode: hybrid",
                     "blue/green"):
        assert expected in result.stdout, expected


def test_exports_name_the_file_they_cannot_write_and_keep_an_existing_one(
    database_url: str, cli_cwd: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-folder" / "out.jsonl"
    result = run_cli(["memories", "export", "--out", str(missing)], cli_cwd, DATABASE_URL=database_url)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"error: No such file or directory: {missing}" in result.stderr

    backup = tmp_path / "backup.jsonl"
    backup.write_text('{"content": "kept"}\n')
    unreachable = "postgresql://nobody:secret@127.0.0.1:1/none"
    result = run_cli(["memories", "export", "--out", str(backup)], cli_cwd, DATABASE_URL=unreachable,
                     DB_CONNECT_TIMEOUT_S="2")
    assert result.returncode == 1 and "Cannot connect to PostgreSQL" in result.stderr
    assert backup.read_text() == '{"content": "kept"}\n'  # opened only once the database is reached
