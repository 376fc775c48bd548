"""`aletheia-mcp doctor` and `aletheia-mcp db ...` as a person runs them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mcp_server import cli
from mcp_server.db import migrate
from tests.helpers import HEAD, REPO_ROOT, clean_env


def run_cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mcp_server", *args], cwd=cwd,
                          env=clean_env(**{"EMBEDDING_PROVIDER": "hashing", **env}),
                          capture_output=True, text=True, timeout=120)


def test_doctor_on_a_fresh_database_migrates_and_passes(database_url: str, cli_cwd: Path) -> None:
    result = run_cli(["doctor"], cli_cwd, DATABASE_URL=database_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ok   schema: migrated empty database -> {HEAD} (head)" in result.stdout
    assert "ok   pgvector: version 0.8" in result.stdout
    assert "All checks passed." in result.stdout


def test_doctor_lists_a_dimension_mismatch_and_exits_1(database_url: str, cli_cwd: Path) -> None:
    assert run_cli(["db", "upgrade"], cli_cwd, DATABASE_URL=database_url).returncode == 0
    result = run_cli(["doctor"], cli_cwd, DATABASE_URL=database_url, EMBEDDING_DIM="768")
    assert result.returncode == 1
    assert "FAIL embedding dimension: EMBEDDING_DIM is 768 but the database stores 384" in result.stdout
    assert f"ok   schema: at {HEAD}" in result.stdout
    assert "1 problem(s) found." in result.stdout


def test_db_upgrade_downgrade_current_stamp(database_url: str, cli_cwd: Path) -> None:
    env = {"DATABASE_URL": database_url}
    assert run_cli(["db", "upgrade", "0005"], cli_cwd, **env).stdout.strip() == "Upgraded empty database -> 0005."
    current = run_cli(["db", "current"], cli_cwd, **env)
    assert current.stdout.strip() == f"0005 (head is {HEAD})"
    assert run_cli(["db", "upgrade"], cli_cwd, **env).stdout.strip() == f"Upgraded 0005 -> {HEAD}."
    assert run_cli(["db", "current"], cli_cwd, **env).stdout.strip() == f"{HEAD} (head)"
    previous = f"{int(HEAD) - 1:04d}"
    assert run_cli(["db", "downgrade"], cli_cwd, **env).stdout.strip() == f"Downgraded {HEAD} -> {previous}."
    assert run_cli(["db", "stamp", HEAD], cli_cwd, **env).stdout.strip() == f"Stamped {HEAD}."
    refused = run_cli(["db", "downgrade", "base"], cli_cwd, **env)  # no terminal to ask on, no --yes
    assert refused.returncode == 2
    assert "drops every table" in refused.stderr and "pass --yes" in refused.stderr
    assert run_cli(["db", "current"], cli_cwd, **env).stdout.strip() == f"{HEAD} (head)"  # nothing dropped
    for same_thing in (f"-{int(HEAD)}", "0001-1"):  # base, said otherwise
        refused = run_cli(["db", "downgrade", "--", same_thing], cli_cwd, **env)
        assert refused.returncode == 2 and f"`db downgrade {same_thing}` drops every table" in refused.stderr
    assert run_cli(["db", "current"], cli_cwd, **env).stdout.strip() == f"{HEAD} (head)"
    assert run_cli(["db", "downgrade", "base", "--yes"], cli_cwd, **env).stdout.strip() == f"Downgraded {HEAD} -> base."
    assert run_cli(["db", "current"], cli_cwd, **env).stdout.strip() == f"none (empty database) (head is {HEAD})"


def test_db_history_lists_every_revision(cli_cwd: Path) -> None:
    result = run_cli(["db", "history"], cli_cwd)
    assert result.returncode == 0
    for revision in [f"{i:04d}" for i in range(1, int(HEAD) + 1)]:
        assert revision in result.stdout


def test_db_revision_creates_a_file_after_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(REPO_ROOT / "migrations", copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(migrate, "migrations_dir", lambda: copy)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ALETHEIA_DATA_DIR", str(tmp_path / "data"))

    result = CliRunner().invoke(cli.app, ["db", "revision", "-m", "add widgets"])

    assert result.exit_code == 0, result.output
    created = list((copy / "versions").glob("*add_widgets.py"))
    assert len(created) == 1 and created[0].name == f"{int(HEAD) + 1:04d}_add_widgets.py"
    assert f'down_revision: str | None = "{HEAD}"' in created[0].read_text().replace("'", '"')


def test_version_flag(cli_cwd: Path) -> None:
    result = run_cli(["--version"], cli_cwd)
    assert result.returncode == 0 and result.stdout.strip() == cli.__version__
