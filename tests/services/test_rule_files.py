"""Reading the rule files teams already have into validated patterns."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_server.errors import RuleFileError
from mcp_server.rules.parse import parse_rule_file
from mcp_server.services.rule_files import read_rule_file
from mcp_server.settings import Settings

SETTINGS = Settings(_env_file=None)


def parse(tmp_path: Path, name: str, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return read_rule_file(path, text, SETTINGS).patterns


def test_cursor_mdc_with_unquoted_glob_string(tmp_path: Path) -> None:
    [rule] = parse(tmp_path, ".cursor/rules/react.mdc",
                   "---\ndescription: React conventions\nglobs: *.tsx, src/**/*.ts\nalwaysApply: false\n---\n\n"
                   "# React\n\nUse function components.\n")
    assert rule.title == "React" and rule.content == "Use function components."
    assert rule.target_contexts == ("*.tsx", "src/**/*.ts")
    assert rule.meta["description"] == "React conventions" and rule.meta["format"] == "cursor_mdc"


def test_brace_globs_are_split_only_outside_their_braces(tmp_path: Path) -> None:
    [cursor] = parse(tmp_path, ".cursor/rules/web.mdc",
                     "---\nglobs: src/**/*.{ts,tsx}, *.{css,scss},docs/*.md\n---\nX.\n")
    assert cursor.target_contexts == ("src/**/*.{ts,tsx}", "*.{css,scss}", "docs/*.md")
    [copilot] = parse(tmp_path, "web.instructions.md", "---\napplyTo: '**/*.{ts,tsx,js}'\n---\nY.\n")
    assert copilot.target_contexts == ("**/*.{ts,tsx,js}",)


def test_cursor_mdc_with_glob_list_and_always_apply(tmp_path: Path) -> None:
    [scoped] = parse(tmp_path, "a.mdc", "---\nglobs:\n  - 'api/*.py'\n  - 'tests/**'\n---\nBody.\n")
    assert scoped.target_contexts == ("api/*.py", "tests/**") and scoped.title == "a"
    [everywhere] = parse(tmp_path, "b.mdc", "---\nglobs: '*.py'\nalwaysApply: true\n---\nBody.\n")
    assert everywhere.target_contexts == ()


def test_copilot_instructions_apply_to(tmp_path: Path) -> None:
    [rule] = parse(tmp_path, ".github/instructions/python.instructions.md",
                   '---\napplyTo: "**/*.py,scripts/**"\ndescription: "Python style"\n---\n# Python\n\nUse ruff.\n')
    assert rule.target_contexts == ("**/*.py", "scripts/**") and rule.title == "Python"
    [everywhere] = parse(tmp_path, "x.instructions.md", '---\napplyTo: "**"\n---\nAll files.\n')
    assert everywhere.target_contexts == ()


def test_agents_md_is_split_into_sections(tmp_path: Path) -> None:
    rules = parse(tmp_path, "AGENTS.md", "# Project guide\n\nIntro text.\n\n## Testing\n\nRun pytest.\n\n"
                                         "## Style\n\nUse ruff.\n\n## Style\n\nSecond style section.\n")
    assert [(r.title, r.content) for r in rules] == [
        ("Project guide", "Intro text."), ("Testing", "Run pytest."), ("Style", "Use ruff."),
        ("Style (2)", "Second style section."),
    ]


def test_headings_padded_with_spaces_parse_in_one_pass() -> None:
    # A rule file is untrusted: the old heading regex backtracked cubically on such padding
    # (7 s for 2,000 spaces; these 6,000 took minutes).
    pad = " " * 6000
    rules = parse_rule_file("AGENTS.md", "AGENTS.md", f"# Guide{pad}x\n\nIntro.\n\n## Testing{pad}y ##\n\nRun pytest.\n"
                                         "##not a heading\n### Deeper\n\nkept\n")
    assert [(r.title.split()[0], r.content) for r in rules] == [
        ("Guide", "Intro."), ("Testing", "Run pytest.\n##not a heading\n### Deeper\n\nkept")]
    [single] = parse_rule_file("note.md", "note.md", f"#{pad}\n# Title{pad}\nBody.\n")
    assert single.content.endswith("Body.")


def test_plain_markdown_front_matter(tmp_path: Path) -> None:
    [rule] = parse(tmp_path, "docs/errors.md",
                   "---\ntitle: Error handling\ntags: [api, errors]\nstrategy_type: convention\n"
                   "target_contexts: ['api/**']\nauthor: carol\n---\n\nRaise domain errors.\n")
    assert (rule.title, rule.tags, rule.strategy_type, rule.target_contexts, rule.author) == (
        "Error handling", ("api", "errors"), "convention", ("api/**",), "carol")


@pytest.mark.parametrize(("name", "text", "reason"), [
    ("broken.md", "---\ntitle: [unclosed\n---\nBody\n", "not valid YAML"),
    ("open.md", "---\ntitle: x\nBody without a closing line\n", "not closed"),
    ("list.md", "---\n- a\n- b\n---\nBody\n", "mapping"),
    ("globs.md", "---\ntarget_contexts: 5\n---\nBody\n", "target_contexts"),
    ("emptyglob.md", "---\ntarget_contexts: ['']\n---\nBody\n", "empty"),
    ("nothing.md", "---\ntitle: x\n---\n\n", "no content"),
])
def test_malformed_files_say_why(tmp_path: Path, name: str, text: str, reason: str) -> None:
    with pytest.raises(RuleFileError, match=reason):
        parse(tmp_path, name, text)
