"""`aletheia-mcp patterns import/export/list` and `context generate` on real files."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from mcp_server.db.embedded import with_database
from tests.helpers import clean_env, sql, write_tree

pytestmark = pytest.mark.anyio

RULES = {
    ".cursor/rules/react.mdc": "---\ndescription: React\nglobs: *.tsx, src/**/*.ts\nalwaysApply: false\n---\n"
                              "# React components\n\nUse function components.\n",
    ".cursorrules": "Prefer composition over inheritance.\n",
    ".github/instructions/py.instructions.md": '---\napplyTo: "**/*.py"\ndescription: Python\n---\n'
                                              "# Python style\n\nType hints everywhere.\n",
    ".github/copilot-instructions.md": "# Team\n\n## Reviews\n\nOne approval is enough.\n",
    "AGENTS.md": "# Agents\n\n## Testing\n\nRun make test.\n\n## Commits\n\nImperative mood.\n",
    "docs/rules/errors.md": "---\ntitle: Errors\ntags: [api]\nstrategy_type: convention\n"
                            "target_contexts: ['api/**']\n---\nRaise domain errors.\n",
    "docs/rules/broken.md": "---\ntitle: [oops\n---\nBody\n",
}


def run_cli(args: list[str], cwd: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(DATABASE_URL=url, EMBEDDING_PROVIDER="hashing", COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "mcp_server", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


async def test_import_mixed_folder_reimport_and_round_trip(
    database_url: str, pg_admin_uri: str, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    write_tree(repo, RULES)

    first = run_cli(["patterns", "import", "."], repo, database_url)

    assert first.returncode == 2, first.stdout + first.stderr
    assert "7 file(s): 7 pattern(s) created, 0 updated, 0 unchanged, 1 file(s) with problems." in first.stdout
    assert "docs/rules/broken.md: front matter is not valid YAML" in first.stderr
    rows = {r["title"]: r for r in await sql(database_url, "SELECT * FROM eng_patterns")}
    by_file = {r["source_path"]: r for r in rows.values()}
    assert by_file[".cursor/rules/react.mdc"]["target_contexts"] == ["/*.tsx", "src/**/*.ts"]  # Cursor: the root's
    assert by_file[".github/instructions/py.instructions.md"]["target_contexts"] == ["**/*.py"]
    assert rows["Cursor rules"]["target_contexts"] == []
    assert rows["Errors"]["tags"] == ["api"] and rows["Errors"]["target_contexts"] == ["api/**"]
    assert {"Testing", "Commits", "Reviews"} <= set(rows)
    assert rows["Testing"]["source_path"] == "AGENTS.md"

    (repo / "AGENTS.md").write_text("# Agents\n\n## Testing\n\nRun make test before pushing.\n\n## Commits\n\n"
                                    "Imperative mood.\n")
    again = run_cli(["patterns", "import", "."], repo, database_url)
    assert "0 pattern(s) created, 1 updated, 6 unchanged" in again.stdout
    assert len(await sql(database_url, "SELECT id FROM eng_patterns")) == 7
    testing = await sql(database_url, "SELECT content FROM eng_patterns WHERE title = 'Testing'")
    assert testing[0]["content"] == "Run make test before pushing."

    listed = run_cli(["patterns", "list"], repo, database_url)
    assert listed.returncode == 0 and ".cursor/rules/react.mdc" in listed.stdout

    exported = run_cli(["patterns", "export", str(tmp_path / "export")], repo, database_url)
    assert "Exported 7 pattern(s)" in exported.stdout
    other = f"t_{uuid.uuid4().hex[:12]}"
    await sql(pg_admin_uri, f'CREATE DATABASE "{other}"')
    other_url = with_database(pg_admin_uri, other)
    try:
        back = run_cli(["patterns", "import", str(tmp_path / "export")], tmp_path, other_url)
        assert "7 pattern(s) created" in back.stdout, back.stdout + back.stderr
        fields = "title, content, tags, strategy_type, target_contexts, author, metadata"
        original = sorted(tuple(r) for r in await sql(database_url, f"SELECT {fields} FROM eng_patterns"))
        copied = sorted(tuple(r) for r in await sql(other_url, f"SELECT {fields} FROM eng_patterns"))
        assert copied == original
        twice = run_cli(["patterns", "import", str(tmp_path / "export")], tmp_path, other_url)
        assert "0 pattern(s) created, 0 updated, 7 unchanged" in twice.stdout  # no copies in another database
    finally:
        await sql(pg_admin_uri, f'DROP DATABASE IF EXISTS "{other}" WITH (FORCE)')


async def test_context_generate_merges_checks_and_dry_runs(database_url: str, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_tree(repo, {"rules/a.md": "---\ntitle: API errors\ntarget_contexts: ['api/**']\n---\nRaise domain errors.\n",
                      "rules/b.md": "---\ntitle: Small PRs\n---\nKeep PRs small.\n"})
    assert run_cli(["patterns", "import", "rules"], repo, database_url).returncode == 0
    person = "# Our agents guide\n\nWritten by a person.  Keep   me.\n"
    (repo / "AGENTS.md").write_text(person)

    assert run_cli(["context", "generate", "--format", "agents_md", "--check"], repo, database_url).returncode == 1
    dry = run_cli(["context", "generate", "--format", "agents_md", "--dry-run"], repo, database_url)
    assert dry.returncode == 0 and "+### API errors" in dry.stdout
    assert (repo / "AGENTS.md").read_text() == person  # nothing written

    written = run_cli(["context", "generate", "--format", "agents_md"], repo, database_url)
    assert "updated AGENTS.md" in written.stdout
    text = (repo / "AGENTS.md").read_text()
    assert text.startswith(person) and "### Small PRs" in text
    nested = (repo / "api" / "AGENTS.md").read_text()  # a pattern scoped to api/ goes in the nearest AGENTS.md
    assert "### API errors" in nested and "_Applies to: `api/**`_" in nested
    (repo / "AGENTS.md").write_text(text + "\nA footer the person added.\n")

    check = run_cli(["context", "generate", "--format", "agents_md", "--check"], repo, database_url)
    assert check.returncode == 0 and "Up to date." in check.stdout

    cursor = run_cli(["context", "generate", "--format", "cursor_mdc"], repo, database_url)
    assert cursor.returncode == 0
    generated = sorted(p.name for p in (repo / ".cursor" / "rules").iterdir())
    assert len(generated) == 2 and all(n.startswith("aletheia-") and n.endswith(".mdc") for n in generated)
    (repo / ".cursor" / "rules" / "hand-written.mdc").write_text("---\nglobs: x\n---\nmine\n")
    (repo / ".cursor" / "rules" / "aletheia-stale-999.mdc").write_text("old generated")
    stale = run_cli(["context", "generate", "--format", "cursor_mdc", "--check"], repo, database_url)
    assert stale.returncode == 1 and "aletheia-stale-999.mdc" in stale.stdout
    run_cli(["context", "generate", "--format", "cursor_mdc"], repo, database_url)
    names = sorted(p.name for p in (repo / ".cursor" / "rules").iterdir())
    assert "aletheia-stale-999.mdc" not in names and "hand-written.mdc" in names
    final = (repo / "AGENTS.md").read_text()
    assert final.endswith("\nA footer the person added.\n") and final.startswith(person)


def test_context_generate_names_the_path_it_cannot_write(database_url: str, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("a file where the repository root should be\n")
    result = run_cli(["context", "generate", "--format", "agents_md", "--root", str(not_a_folder)], tmp_path,
                     database_url)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert str(not_a_folder) in line and "database" not in line  # the path, not a lost connection
