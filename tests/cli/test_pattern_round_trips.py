"""Import identity on real files through the CLI: an export imports back to the same patterns, our
own generated files are not imported again, unchanged files are reported (and versioned) as
unchanged, `--prune` and `patterns delete`, and a missing path that does not stop the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_server.app_context import open_app
from mcp_server.rules.parse import split_front_matter
from tests.helpers import make_settings, run_cli, sql, write_tree

pytestmark = pytest.mark.anyio

RULES = {
    ".cursor/rules/react.mdc": "---\ndescription: React\nglobs: *.tsx, src/**/*.{ts,tsx}\nalwaysApply: false\n---\n"
                              "# React components\n\nUse function components.\n",
    ".cursorrules": "Prefer composition over inheritance.\n",
    ".github/instructions/py.instructions.md": '---\napplyTo: "**/*.py"\ndescription: Python\n---\n'
                                              "# Python style\n\nType hints everywhere.\n",
    "AGENTS.md": "# Agents\n\n## Testing\n\nRun make test.\n\n## Commits\n\nImperative mood.\n",
    "docs/rules/errors.md": "---\ntitle: Errors\ntags: [api]\nstrategy_type: convention\n"
                            "target_contexts: ['api/**']\n---\nRaise domain errors.\n",
}
FIELDS = ("id, title, content, tags, strategy_type, target_contexts, author, metadata, source_path, project_id, "
          "last_updated, updated_by")


async def rows(url: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in await sql(url, f"SELECT {FIELDS} FROM eng_patterns ORDER BY id")]


async def version_count(url: str) -> int:
    return len(await sql(url, "SELECT 1 FROM eng_pattern_versions"))


async def test_an_export_imports_back_to_the_same_patterns_and_changes_nothing(
    database_url: str, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    write_tree(repo, RULES)
    assert (await run_cli(["patterns", "import", "."], repo, database_url)).returncode == 0
    async with open_app(make_settings(database_url, tmp_path), load_in_background=False) as app:
        made = await app.patterns.add("Keep handlers thin.", title="Handlers", tags=["api"], scope="global")
        # No title, and content that starts with a heading (which an import would take for a title).
        untitled = await app.patterns.add("# Logging\n\nLog with structlog.", scope="global")
    before, versions = await rows(database_url), await version_count(database_url)
    assert len(before) == 8

    export = tmp_path / "export"
    assert "Exported 8 pattern(s)" in (await run_cli(["patterns", "export", str(export)], tmp_path,
                                                     database_url)).stdout
    back = await run_cli(["patterns", "import", str(export)], tmp_path, database_url)

    assert back.returncode == 0, back.stdout + back.stderr
    assert "8 file(s): 0 pattern(s) created, 0 updated, 8 unchanged" in back.stdout
    assert await rows(database_url) == before  # not even last_updated moved
    assert await version_count(database_url) == versions

    # An edited export updates the pattern it came from (with or without a source file), in place.
    [handlers] = export.glob(f"handlers-{made.id}.md")
    handlers.write_text(handlers.read_text().replace("Keep handlers thin.", "Keep handlers thin and typed."))
    [react] = [p for p in export.iterdir() if "source_path: .cursor/rules/react.mdc\n" in p.read_text()]
    react.write_text(react.read_text().replace("Use function components.", "Use function components only."))
    edited = await run_cli(["patterns", "import", str(export)], tmp_path, database_url)
    assert "8 file(s): 0 pattern(s) created, 2 updated, 6 unchanged" in edited.stdout, edited.stdout
    after = {r["id"]: r for r in await sql(database_url, "SELECT id, title, content, source_path FROM eng_patterns")}
    assert len(after) == 8
    assert after[made.id]["content"] == "Keep handlers thin and typed." and after[made.id]["source_path"] is None
    assert after[untitled.id]["title"] is None and after[untitled.id]["content"].startswith("# Logging")
    [react_row] = [r for r in after.values() if r["source_path"] == ".cursor/rules/react.mdc"]
    assert react_row["content"].endswith("Use function components only.")
    # ...and the rule file it was imported from is still its identity.
    again = await run_cli(["patterns", "import", "."], repo, database_url)
    assert "0 pattern(s) created, 1 updated, 5 unchanged" in again.stdout, again.stdout


async def test_our_own_generated_files_are_skipped_not_copied(database_url: str, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_tree(repo, {
        "rules/markers.md": "---\ntitle: Markers\ntarget_contexts: ['docs/**']\n---\n"
                            "Never type <!-- aletheia:end --> or <!-- aletheia:begin --> in a doc.\n",
        "rules/small.md": "---\ntitle: Small PRs\n---\nKeep PRs small.\n<!-- aletheia:end -->\nReally.\n",
        "AGENTS.md": "# Guide\n\n## Reviews\n\nOne approval is enough.\n",
    })
    assert (await run_cli(["patterns", "import", "."], repo, database_url)).returncode == 0
    for fmt in ("agents_md", "claude_md", "cursor_mdc", "copilot"):
        generated = await run_cli(["context", "generate", "--format", fmt], repo, database_url)
        assert generated.returncode == 0, generated.stderr
    assert "<\\!-- aletheia:end -->" in (repo / "AGENTS.md").read_text()  # escaped in the generated section
    before, versions = await rows(database_url), await version_count(database_url)

    again = await run_cli(["patterns", "import", "."], repo, database_url)

    assert again.returncode == 0, again.stdout + again.stderr
    # The person's files (rules/*.md, AGENTS.md outside its section) are read; 3 Cursor rules, 1
    # Copilot instruction file and 1 Claude rule (the scoped pattern), docs/AGENTS.md (its nested
    # file), CLAUDE.md and copilot-instructions.md are ours.
    assert "3 file(s): 0 pattern(s) created, 0 updated, 3 unchanged, 0 file(s) with problems. " \
           "8 generated file(s) skipped." in again.stdout, again.stdout
    assert await rows(database_url) == before
    assert await version_count(database_url) == versions
    named = await run_cli(["patterns", "import", *map(str, (repo / ".cursor" / "rules").iterdir())], repo,
                          database_url)
    assert "0 file(s): 0 pattern(s) created" in named.stdout and "3 generated file(s) skipped." in named.stdout


async def test_reimporting_unchanged_files_reports_them_unchanged(database_url: str, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_tree(repo, RULES)
    first = await run_cli(["patterns", "import", "."], repo, database_url)
    assert "5 file(s): 6 pattern(s) created, 0 updated, 0 unchanged" in first.stdout
    before, versions = await rows(database_url), await version_count(database_url)

    again = await run_cli(["patterns", "import", "."], repo, database_url)

    assert "5 file(s): 0 pattern(s) created, 0 updated, 6 unchanged" in again.stdout, again.stdout
    assert await rows(database_url) == before
    assert await version_count(database_url) == versions  # the trigger of migration 0019 wrote nothing


async def test_prune_removes_what_an_imported_file_no_longer_holds(database_url: str, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_tree(repo, {**RULES, "CLAUDE.md": "# Claude\n\n## Style\n\nShort sentences.\n"})
    assert (await run_cli(["patterns", "import", "."], repo, database_url)).returncode == 0
    (repo / "AGENTS.md").write_text("# Agents\n\n## Tests\n\nRun make test.\n\n## Commits\n\nImperative mood.\n")
    (repo / "CLAUDE.md").write_text("# Claude\n\n## Tone\n\nShort sentences.\n")  # renamed, not imported below
    [testing] = await sql(database_url, "SELECT id FROM eng_patterns WHERE title = 'Testing'")

    kept = await run_cli(["patterns", "import", "AGENTS.md"], repo, database_url)
    assert "1 pattern(s) created, 0 updated, 1 unchanged" in kept.stdout and "pruned" not in kept.stdout
    pruned = await run_cli(["patterns", "import", "--prune", "AGENTS.md", "docs"], repo, database_url)

    assert pruned.returncode == 0, pruned.stderr
    assert "0 pattern(s) created, 0 updated, 3 unchanged" in pruned.stdout
    assert f"pruned pattern {testing['id']} (Testing): no longer in AGENTS.md" in pruned.stdout
    titles = sorted(r["title"] for r in await sql(database_url, "SELECT title FROM eng_patterns"))
    assert "Testing" not in titles and {"Tests", "Commits", "Style", "Errors"} <= set(titles)  # CLAUDE.md: not now
    [history] = await sql(database_url, "SELECT action, note FROM eng_pattern_versions WHERE pattern_id = $1 "
                                        "ORDER BY version DESC LIMIT 1", testing["id"])
    assert tuple(history) == ("delete", "pruned: no longer in AGENTS.md")


async def test_patterns_delete_removes_one_pattern_for_maintainers(database_url: str, tmp_path: Path) -> None:
    write_tree(tmp_path, {"rules.md": "---\ntitle: Errors\n---\nRaise domain errors.\n"})
    assert (await run_cli(["patterns", "import", "rules.md"], tmp_path, database_url)).returncode == 0
    [row] = await sql(database_url, "SELECT id FROM eng_patterns")

    refused = await run_cli(["patterns", "delete", str(row["id"])], tmp_path, database_url,
                            ALETHEIA_USER_ID="bob", ALETHEIA_PATTERN_MAINTAINERS="alice")
    assert refused.returncode == 1 and "pattern maintainers (alice)" in refused.stderr
    deleted = await run_cli(["patterns", "delete", str(row["id"])], tmp_path, database_url)
    missing = await run_cli(["patterns", "delete", str(row["id"])], tmp_path, database_url)

    assert deleted.returncode == 0 and f"Deleted pattern {row['id']}: Errors." in deleted.stdout
    assert await sql(database_url, "SELECT id FROM eng_patterns") == []
    assert missing.returncode == 1 and f"No pattern with id {row['id']}" in missing.stderr


async def test_a_missing_path_is_reported_and_the_rest_imported(database_url: str, tmp_path: Path) -> None:
    write_tree(tmp_path, {"rules/errors.md": "---\ntitle: Errors\n---\nRaise domain errors.\n"})

    result = await run_cli(["patterns", "import", "no-such-folder", "rules", "gone.md"], tmp_path, database_url)

    assert result.returncode == 2
    assert "1 file(s): 1 pattern(s) created, 0 updated, 0 unchanged, 2 file(s) with problems." in result.stdout
    assert "no-such-folder: no such file or folder" in result.stderr
    assert "gone.md: no such file or folder" in result.stderr
    assert [r["title"] for r in await sql(database_url, "SELECT title FROM eng_patterns")] == ["Errors"]


async def test_a_retitled_single_rule_file_updates_its_pattern_in_place(database_url: str, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    rule = repo / ".cursor" / "rules" / "react.mdc"
    rule.parent.mkdir(parents=True)
    rule.write_text("---\ndescription: React components\nglobs: src/**/*.tsx\n---\n# React\n\nUse hooks.\n")
    assert (await run_cli(["patterns", "import", "."], repo, database_url)).returncode == 0
    [before] = await sql(database_url, "SELECT id, title FROM eng_patterns")
    # A title derived differently by an older release, and a description edited since.
    await sql(database_url, "UPDATE eng_patterns SET title = 'React' WHERE id = $1", before["id"])
    rule.write_text("---\ndescription: React function components\nglobs: src/**/*.tsx\n---\n# React\n\nUse hooks.\n")
    again = await run_cli(["patterns", "import", "."], repo, database_url)
    assert again.returncode == 0 and "0 pattern(s) created, 1 updated" in again.stdout
    rows = await sql(database_url, "SELECT id, title FROM eng_patterns")
    assert [tuple(r) for r in rows] == [(before["id"], "React function components")]


async def test_a_rule_file_over_a_megabyte_is_reported_and_the_rest_imported(database_url: str, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (repo / "docs" / "huge.md").write_text("# Huge\n\n" + "[" * 1_100_000)
    (repo / "docs" / "ok.md").write_text("# Ok\n\nKeep it small.\n")
    result = await run_cli(["patterns", "import", "docs"], repo, database_url)
    assert result.returncode == 2
    assert "huge.md: the file has 1,100,008 bytes; a rule file may have at most 1,000,000" in result.stderr
    assert [r["title"] for r in await sql(database_url, "SELECT title FROM eng_patterns")] == ["Ok"]


# Rule files shaped like the public Cursor and Copilot corpora, one of each way a tool attaches them.
ATTACH_MODE_RULES = {
    ".cursor/rules/house-style.mdc": "---\ndescription: House style for every file\nglobs:\nalwaysApply: true\n---\n"
                                     "# House style\n\n- Two-space indentation.\n- No trailing whitespace.\n",
    ".cursor/rules/react-components.mdc": "---\ndescription: React component conventions\n"
                                          "globs: src/components/**/*.tsx, src/**/*.{ts,tsx}\nalwaysApply: false\n"
                                          "---\n# React\n\nUse function components and hooks.\n",
    ".cursor/rules/db-migrations.mdc": "---\ndescription: How to write a database migration; read before adding "
                                       "one\nglobs:\nalwaysApply: false\n---\n# Migrations\n\n"
                                       "1. One change per migration.\n2. Always write the downgrade.\n",
    ".cursor/rules/release-checklist.mdc": "---\ndescription:\nglobs:\nalwaysApply: false\n---\n"
                                           "# Release checklist\n\nBump the version, tag, publish the notes.\n",
}


def cursor_attach_mode(front: dict[str, object]) -> str:
    """How Cursor attaches a rule from its front matter (docs.cursor.com, Rules: rule types)."""
    if front.get("alwaysApply") is True:
        return "Always"
    if front.get("globs"):
        return "Auto Attached"
    return "Agent Requested" if front.get("description") else "Manual"


async def test_every_cursor_rule_mode_means_the_same_after_import_and_generate(
    database_url: str, tmp_path: Path
) -> None:
    original, regenerated = tmp_path / "original", tmp_path / "regenerated"
    write_tree(original, ATTACH_MODE_RULES)
    assert (await run_cli(["patterns", "import", "."], original, database_url)).returncode == 0
    generated = await run_cli(["context", "generate", "--format", "cursor_mdc", "--root", str(regenerated)],
                              tmp_path, database_url)
    assert generated.returncode == 0, generated.stdout + generated.stderr

    def modes(root: Path) -> dict[str, tuple[str, object, object]]:
        """Each rule's last line -> (Cursor's attach mode, globs, description)."""
        found = {}
        for path in (root / ".cursor" / "rules").glob("*.mdc"):
            front, body = split_front_matter(path.read_text(), lenient=True)
            last_line = body.strip().splitlines()[-1]  # a generated file adds a title heading above the rule
            found[last_line] = (cursor_attach_mode(front), front.get("globs") or None, front.get("description") or None)
        return found

    before, after = modes(original), modes(regenerated)
    assert sorted(mode for mode, _, _ in before.values()) == ["Agent Requested", "Always", "Auto Attached", "Manual"]
    assert after == before


async def test_copilot_rules_keep_exclude_agent_and_stay_unattached_without_apply_to(
    database_url: str, tmp_path: Path
) -> None:
    original, regenerated = tmp_path / "original", tmp_path / "regenerated"
    write_tree(original, {
        ".github/instructions/review.instructions.md": '---\napplyTo: "**"\nexcludeAgent: "coding-agent"\n'
                                                       '---\n# Review\n\nFlag missing tests.\n',
        ".github/instructions/python.instructions.md": "---\napplyTo: '**/*.py'\nexcludeAgent: code-review\n"
                                                       "description: Python style\n---\n# Python\n\nType hints.\n",
        ".github/instructions/incidents.instructions.md": "---\ndescription: 'Writing an incident report'\n---\n"
                                                          "# Incidents\n\nTimeline first, blame never.\n",
    })
    assert (await run_cli(["patterns", "import", "."], original, database_url)).returncode == 0
    generated = await run_cli(["context", "generate", "--format", "copilot", "--root", str(regenerated)],
                              tmp_path, database_url)
    assert generated.returncode == 0, generated.stdout + generated.stderr

    def fronts(root: Path) -> dict[str, dict[str, object]]:
        found = {}
        for path in (root / ".github" / "instructions").glob("*.instructions.md"):
            front, body = split_front_matter(path.read_text(), lenient=False)
            found[body.strip().splitlines()[-1]] = {k: v for k, v in front.items() if k in ("applyTo", "excludeAgent")}
        return found

    assert fronts(regenerated) == fronts(original) == {
        "Flag missing tests.": {"applyTo": "**", "excludeAgent": "coding-agent"},
        "Type hints.": {"applyTo": "**/*.py", "excludeAgent": "code-review"},
        "Timeline first, blame never.": {},  # no applyTo: VS Code never attaches it by itself
    }
    assert not (regenerated / ".github" / "copilot-instructions.md").exists()  # nothing is on for every agent
