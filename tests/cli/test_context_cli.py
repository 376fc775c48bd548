"""`aletheia-mcp context generate --check` for the formats of issue 19 (Claude Code rules, Gemini CLI,
Windsurf/Devin, Cline), through the real CLI: fresh files are up to date, an edited pattern is a diff."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio.to_thread
import pytest

from tests.helpers import clean_env, write_tree

pytestmark = pytest.mark.anyio

RULES = {
    "rules/web.md": "---\ntitle: Web components\ntarget_contexts: ['src/web/**/*.tsx', 'src/web/api/*.ts']\n---\n"
                    "# Components\n\nFunction components only.\n",
    "rules/prs.md": "---\ntitle: Small PRs\n---\nKeep pull requests small.\n",
    "rules/py.md": "---\ntitle: Python style\ntarget_contexts: ['**/*.py']\n---\nType hints everywhere.\n",
}
# What each format writes for those patterns (the files --check compares), up to the patterns' ids.
EXPECTED = {
    "claude_md": ["CLAUDE.md", ".claude/rules/aletheia-web-components-", ".claude/rules/aletheia-python-style-"],
    "gemini_md": ["GEMINI.md", "src/web/GEMINI.md"],
    "windsurf": [".windsurf/rules/aletheia-web-components-", ".windsurf/rules/aletheia-small-prs-",
                 ".windsurf/rules/aletheia-python-style-"],
    "cline": [".clinerules/aletheia-web-components-", ".clinerules/aletheia-small-prs-",
              ".clinerules/aletheia-python-style-"],
}


async def run_cli(args: list[str], cwd: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(DATABASE_URL=url, EMBEDDING_PROVIDER="hashing", COLUMNS="200")

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mcp_server", *args], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=300)

    return await anyio.to_thread.run_sync(run)



async def test_check_finds_drift_in_every_new_format(database_url: str, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_tree(repo, RULES)
    imported = await run_cli(["patterns", "import", "rules"], repo, database_url)
    assert imported.returncode == 0, imported.stdout + imported.stderr

    for fmt, expected in EXPECTED.items():
        before = await run_cli(["context", "generate", "--format", fmt, "--check"], repo, database_url)
        assert before.returncode == 1, (fmt, before.stdout, before.stderr)  # nothing written yet
        written = await run_cli(["context", "generate", "--format", fmt], repo, database_url)
        assert written.returncode == 0, (fmt, written.stdout, written.stderr)
        created = [line.removeprefix("created ") for line in written.stdout.splitlines() if line.startswith("created ")]
        assert len(created) == len(expected), (fmt, written.stdout)
        assert all(any(path.startswith(start) for path in created) for start in expected), (fmt, written.stdout)
        fresh = await run_cli(["context", "generate", "--format", fmt, "--check"], repo, database_url)
        assert fresh.returncode == 0 and "Up to date." in fresh.stdout, (fmt, fresh.stdout, fresh.stderr)

    (repo / "rules" / "web.md").write_text(RULES["rules/web.md"].replace("only.", "only, with hooks."))
    (repo / "rules" / "prs.md").write_text(RULES["rules/prs.md"].replace("small.", "small and focused."))
    edited = await run_cli(["patterns", "import", "rules"], repo, database_url)
    assert edited.returncode == 0 and "2 updated" in edited.stdout, edited.stdout + edited.stderr

    for fmt in EXPECTED:
        stale = await run_cli(["context", "generate", "--format", fmt, "--check"], repo, database_url)
        assert stale.returncode == 1, (fmt, stale.stdout, stale.stderr)
        assert "+Function components only, with hooks." in stale.stdout, (fmt, stale.stdout)
        assert "-Function components only." in stale.stdout
        assert "+Keep pull requests small and focused." in stale.stdout
        assert "differ from the pattern store" in stale.stderr


async def test_check_sees_a_nested_section_to_remove(database_url: str, tmp_path: Path) -> None:
    """A pattern moved out of src/web: --check reports src/web/AGENTS.md, generating removes our
    section from it and keeps what a person wrote there."""
    repo = tmp_path / "repo"
    (repo / "rules").mkdir(parents=True)
    (repo / "rules" / "web.md").write_text(RULES["rules/web.md"])
    (repo / "src" / "web").mkdir(parents=True)
    person = "# Web\n\nWritten by a person.\n"
    (repo / "src" / "web" / "AGENTS.md").write_text(person)
    assert (await run_cli(["patterns", "import", "rules"], repo, database_url)).returncode == 0
    assert (await run_cli(["context", "generate", "--format", "agents_md"], repo, database_url)).returncode == 0
    assert "Function components only." in (repo / "src" / "web" / "AGENTS.md").read_text()

    moved = RULES["rules/web.md"].replace("['src/web/**/*.tsx', 'src/web/api/*.ts']", "['**/*.tsx']")
    (repo / "rules" / "web.md").write_text(moved)
    assert (await run_cli(["patterns", "import", "rules"], repo, database_url)).returncode == 0
    stale = await run_cli(["context", "generate", "--format", "agents_md", "--check"], repo, database_url)
    assert stale.returncode == 1 and "a/src/web/AGENTS.md" in stale.stdout, stale.stdout + stale.stderr
    again = await run_cli(["context", "generate", "--format", "agents_md"], repo, database_url)
    assert again.returncode == 0 and "updated src/web/AGENTS.md" in again.stdout, again.stdout + again.stderr
    assert (repo / "src" / "web" / "AGENTS.md").read_text() == person
    assert "Function components only." in (repo / "AGENTS.md").read_text()
    fresh = await run_cli(["context", "generate", "--format", "agents_md", "--check"], repo, database_url)
    assert fresh.returncode == 0 and "Up to date." in fresh.stdout
