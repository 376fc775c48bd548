"""Projects from the command line, in real git repositories made here: rule files import into their
own repository's project, `projects list|rename`, `--project`, and what `doctor` says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import clean_env, make_repository, sql

pytestmark = pytest.mark.anyio

AGENTS = "# Guide\n\n## Testing\n\n{testing}\n\n## Style\n\n{style}\n"


def run_cli(args: list[str], cwd: Path, url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mcp_server", *args], cwd=cwd,
                          env=clean_env(DATABASE_URL=url, EMBEDDING_PROVIDER="hashing", COLUMNS="200", **env),
                          capture_output=True, text=True, timeout=300)


async def patterns(url: str) -> list[tuple[str | None, str, str, str]]:
    rows = await sql(url, "SELECT p.key, t.source_path, t.title, t.content FROM eng_patterns t "
                          "LEFT JOIN projects p ON p.id = t.project_id ORDER BY p.key, t.title")
    return [(r["key"], r["source_path"], r["title"], r["content"]) for r in rows]


async def test_same_named_sections_of_two_repositories_stay_apart(
    database_url: str, cli_cwd: Path, tmp_path: Path
) -> None:
    repo_a = make_repository(tmp_path / "a", "git@github.com:org/a.git")
    repo_b = make_repository(tmp_path / "b", "git@github.com:org/b.git")
    (repo_a / "AGENTS.md").write_text(AGENTS.format(testing="A: pytest -x.", style="A: ruff."))
    (repo_b / "docs").mkdir()
    (repo_b / "docs" / "AGENTS.md").write_text(AGENTS.format(testing="B: go test.", style="B: gofmt."))

    first = run_cli(["patterns", "import", str(repo_a / "AGENTS.md"), str(repo_b / "docs")], cli_cwd, database_url)
    assert first.returncode == 0, first.stderr
    assert "2 file(s): 4 pattern(s) created, 0 updated" in first.stdout
    assert await patterns(database_url) == [
        ("github.com/org/a", "AGENTS.md", "Style", "A: ruff."),
        ("github.com/org/a", "AGENTS.md", "Testing", "A: pytest -x."),
        ("github.com/org/b", "docs/AGENTS.md", "Style", "B: gofmt."),
        ("github.com/org/b", "docs/AGENTS.md", "Testing", "B: go test."),
    ]

    (repo_a / "AGENTS.md").write_text(AGENTS.format(testing="A: pytest -x -q.", style="A: ruff."))
    again = run_cli(["patterns", "import", "AGENTS.md"], repo_a, database_url)  # from inside the repository
    assert "1 file(s): 0 pattern(s) created, 2 updated" in again.stdout
    assert [row[3] for row in await patterns(database_url)] == ["A: ruff.", "A: pytest -x -q.", "B: gofmt.",
                                                                 "B: go test."]

    listed = run_cli(["patterns", "list", "--project", "github.com/org/b"], cli_cwd, database_url)
    assert listed.stdout.count("github.com/org/b") == 2 and "github.com/org/a" not in listed.stdout


def test_projects_list_and_rename(database_url: str, cli_cwd: Path, tmp_path: Path) -> None:
    repo = make_repository(tmp_path / "svc", "https://github.com/old-org/svc")
    exchange = json.dumps({"messages": [{"role": "user", "content": "hi"}], "response": "hello"})
    logged = subprocess.run([sys.executable, "-m", "mcp_server", "conversations", "log"], cwd=repo, input=exchange,
                            env=clean_env(DATABASE_URL=database_url, EMBEDDING_PROVIDER="hashing"),
                            capture_output=True, text=True, timeout=300)
    assert logged.returncode == 0, logged.stderr
    memories = tmp_path / "m.jsonl"
    memories.write_text('{"content": "global note", "project": null}\n{"content": "svc note"}\n')
    assert run_cli(["memories", "import", str(memories)], repo, database_url).returncode == 0

    listed = run_cli(["projects", "list"], cli_cwd, database_url)
    lines = [line.split("│") for line in listed.stdout.splitlines() if "│" in line]
    rows = {cells[1].strip(): [c.strip() for c in cells[2:5]] for cells in lines}
    assert rows == {"(global)": ["1", "0", "0"], "github.com/old-org/svc": ["1", "0", "1"]}

    renamed = run_cli(["projects", "rename", "github.com/old-org/svc", "github.com/new-org/svc"], cli_cwd,
                      database_url)
    assert renamed.returncode == 0 and "Renamed github.com/old-org/svc to github.com/new-org/svc." in renamed.stdout
    subprocess.run(["git", "-C", str(repo), "remote", "set-url", "origin", "git@github.com:new-org/svc.git"],
                   check=True)
    exported = run_cli(["memories", "export", "--project", "github.com/new-org/svc"], repo, database_url)
    assert [json.loads(line)["content"] for line in exported.stdout.splitlines()] == ["svc note"]
    clash = run_cli(["projects", "rename", "github.com/new-org/svc", "github.com/new-org/svc"], cli_cwd, database_url)
    assert clash.returncode == 1 and "exists already" in clash.stderr and "Traceback" not in clash.stderr


def test_doctor_shows_the_project_and_refuses_a_bad_name(database_url: str, tmp_path: Path) -> None:
    repo = make_repository(tmp_path / "svc", "https://github.com/org/svc")
    result = run_cli(["doctor"], repo, database_url)
    assert result.returncode == 0, result.stdout
    assert f"ok   project: github.com/org/svc (the origin remote of the git repository at {repo.resolve()})" \
        in result.stdout

    bad = run_cli(["doctor"], repo, database_url, ALETHEIA_PROJECT="org/\x07svc")
    assert bad.returncode == 1 and "Traceback" not in bad.stdout + bad.stderr
    assert "FAIL project: `ALETHEIA_PROJECT` contains a control character" in bad.stdout
