"""A person's Claude Code, Windsurf and Cline rule files, in every way their tool attaches them, mean
the same after `patterns import` (CLI, real database) and `context generate` of that tool's format:
the generated files, parsed again, scope each rule to the same globs with the same attach mode, and
importing the repository again skips what was generated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcp_server.rules import render
from mcp_server.rules.parse import RuleDraft, parse_rule_file
from tests.helpers import run_cli, sql, write_tree

pytestmark = pytest.mark.anyio

# Per format: the person's rule files (shaped like the tools' documentation), the folder the
# generated files go in, and the attach modes the files are in.
PERSON_RULES = {
    "claude_md": {
        ".claude/rules/api.md": '---\npaths:\n  - "src/api/**/*.{ts,tsx}"\n  - "Makefile"\n---\n'
                                "# API handlers\n\nValidate every request body.\n",
        ".claude/rules/frontend/tests.md": "---\npaths: **/*.test.ts, src/*\n---\n# Tests\n\nOne behaviour per test.\n",
        ".claude/rules/style.md": "# House style\n\nShort functions, early returns.\n",
    },
    "windsurf": {
        ".windsurf/rules/style.md": "---\ntrigger: always_on\ndescription: House style\n---\n"
                                    "Short functions, early returns.\n",
        ".windsurf/rules/web.md": "---\ntrigger: glob\nglobs: src/**/*.{ts,tsx}, *.md, src/*, Dockerfile\n"
                                 "description: Web code\n---\n# Web\n\nNo default exports.\n",
        ".windsurf/rules/migrations.md": "---\ntrigger: model_decision\ndescription: When adding a database "
                                         "migration\n---\n# Migrations\n\nOne change per migration.\n",
        ".windsurf/rules/release.md": "---\ntrigger: manual\n---\n# Release\n\nTag, then publish the notes.\n",
    },
    "cline": {
        ".clinerules/docs.md": '---\npaths:\n  - "docs/**/*.md"\n  - "README.md"\n  - "CHANGELOG"\n---\n'
                               "# Docs\n\nOne idea per paragraph.\n",
        ".clinerules/style.md": "# House style\n\nShort functions, early returns.\n",
    },
}
GENERATED_DIR = {"claude_md": ".claude/rules", "windsurf": ".windsurf/rules", "cline": ".clinerules"}
MODES = {"claude_md": ["always", "auto", "auto"], "windsurf": ["always", "auto", "manual", "requested"],
         "cline": ["always", "auto"]}


def last_line(content: str) -> str:
    """A rule's last line: what identifies it in a person's file and in a generated one (which adds
    a title heading and may say when it applies)."""
    return content.strip().splitlines()[-1]


def meaning(draft: RuleDraft) -> tuple[list[str], str]:
    """When a rule applies: its canonical globs and its attach mode (rules/render.py)."""
    return list(draft.target_contexts), render.attach_mode(draft.target_contexts, draft.metadata)


def parsed(root: Path, relative: str) -> list[RuleDraft]:
    return parse_rule_file(relative.rsplit("/", 1)[-1], relative, (root / relative).read_text())


@pytest.mark.parametrize("fmt", list(PERSON_RULES))
async def test_a_persons_rules_mean_the_same_after_import_and_generate(
    fmt: str, database_url: str, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    rules = PERSON_RULES[fmt]
    write_tree(repo, rules)
    person = {last_line(d.content): meaning(d) for name in rules for d in parsed(repo, name)}
    assert sorted(mode for _, mode in person.values()) == MODES[fmt]

    imported = await run_cli(["patterns", "import", "."], repo, database_url)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert f"{len(rules)} file(s): {len(rules)} pattern(s) created" in imported.stdout, imported.stdout
    rows = await sql(database_url, "SELECT content, target_contexts, metadata FROM eng_patterns")
    stored = {last_line(r["content"]): (list(r["target_contexts"]),
                                        render.attach_mode(r["target_contexts"], json.loads(r["metadata"])))
              for r in rows}
    assert stored == person

    generated = await run_cli(["context", "generate", "--format", fmt], repo, database_url)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    regenerated: dict[str, tuple[list[str], str]] = {}
    folder = repo / GENERATED_DIR[fmt]
    for path in sorted(folder.glob(f"{render.GENERATED_PREFIX}*.md")):
        [draft] = parsed(repo, path.relative_to(repo).as_posix())
        regenerated[last_line(draft.content)] = meaning(draft)
    if fmt == "claude_md":  # Claude Code always loads CLAUDE.md: the rules that apply everywhere go there
        claude_md = (repo / "CLAUDE.md").read_text()
        section = claude_md[claude_md.index(render.BEGIN):claude_md.index(render.END)]
        for line, (_, mode) in person.items():
            if mode == "always":
                assert line in section
                regenerated[line] = ([], "always")
    assert regenerated == person

    # The generated files are ours: importing the repository again skips them and changes nothing.
    again = await run_cli(["patterns", "import", "."], repo, database_url)
    assert again.returncode == 0, again.stdout + again.stderr
    ours = len(list(folder.glob(f"{render.GENERATED_PREFIX}*.md"))) + (fmt == "claude_md")
    assert (f"{len(rules)} file(s): 0 pattern(s) created, 0 updated, {len(rules)} unchanged, 0 file(s) with "
            f"problems. {ours} generated file(s) skipped.") in again.stdout, again.stdout


async def test_a_rule_file_that_does_not_say_when_it_applies_is_reported_and_the_rest_imported(
    database_url: str, tmp_path: Path
) -> None:
    write_tree(tmp_path, {
        ".windsurf/rules/odd.md": "---\ntrigger: sometimes\n---\nMaybe.\n",
        ".claude/rules/bad.md": "---\npaths: 3\n---\nNever.\n",
        ".clinerules/ok.md": "---\npaths: docs/**\n---\n# Docs\n\nShort.\n",
    })
    result = await run_cli(["patterns", "import", "."], tmp_path, database_url)
    assert result.returncode == 2
    assert "3 file(s): 1 pattern(s) created, 0 updated, 0 unchanged, 2 file(s) with problems." in result.stdout
    assert ("odd.md: `trigger: sometimes` is not a Windsurf trigger: use one of always_on, glob, model_decision, "
            "manual") in result.stderr
    assert 'bad.md: `paths` must be a glob string or a list of globs (quoted, e.g. "src/**/*.ts"), not 3 (int)' \
        in result.stderr
    rows = await sql(database_url, "SELECT title, target_contexts, metadata->>'format' AS format FROM eng_patterns")
    assert [tuple(r) for r in rows] == [("Docs", ["docs/**"], "cline_rule")]
