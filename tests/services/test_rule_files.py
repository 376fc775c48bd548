"""Reading the rule files teams already have into validated patterns."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_server.errors import RuleFileError
from mcp_server.rules.parse import parse_rule_file
from mcp_server.schemas import MAX_PATTERN_CHARS, MAX_TITLE_CHARS
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
    assert rule.title == "React conventions" and rule.content == "# React\n\nUse function components."
    assert rule.target_contexts == ("/*.tsx", "src/**/*.ts")  # Cursor's `*.tsx`: the root's (rules/dialects.py)
    assert rule.meta["description"] == "React conventions" and rule.meta["format"] == "cursor_mdc"


def test_brace_globs_are_split_only_outside_their_braces(tmp_path: Path) -> None:
    [cursor] = parse(tmp_path, ".cursor/rules/web.mdc",
                     "---\nglobs: src/**/*.{ts,tsx}, *.{css,scss},docs/*.md\n---\nX.\n")
    assert cursor.target_contexts == ("src/**/*.{ts,tsx}", "/*.{css,scss}", "docs/*.md")
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
    assert rule.target_contexts == ("**/*.py", "**/scripts/**") and rule.title == "Python style"  # any depth
    [everywhere] = parse(tmp_path, "x.instructions.md", '---\napplyTo: "**"\n---\nAll files.\n')
    assert everywhere.target_contexts == ()


@pytest.mark.parametrize(("front", "mode", "globs"), [
    ("description: Style\nglobs: src/**/*.ts\nalwaysApply: true", "always", ()),
    ("description: React\nglobs: src/**/*.{ts,tsx}\nalwaysApply: false", "auto", ("src/**/*.{ts,tsx}",)),
    ("description: Read before writing a migration\nglobs:\nalwaysApply: false", "requested", ()),
    ("description:\nglobs:\nalwaysApply: false", "manual", ()),
])
def test_each_cursor_rule_mode_is_recorded(tmp_path: Path, front: str, mode: str, globs: tuple[str, ...]) -> None:
    [rule] = parse(tmp_path, ".cursor/rules/rule.mdc", f"---\n{front}\n---\n# Rule\n\nBody.\n")
    assert (rule.meta["attach"], rule.target_contexts) == (mode, globs)


def test_copilot_apply_to_and_exclude_agent_are_recorded(tmp_path: Path) -> None:
    [everywhere] = parse(tmp_path, "a.instructions.md", '---\napplyTo: "**"\nexcludeAgent: "code-review"\n---\nX.\n')
    assert (everywhere.meta["attach"], everywhere.meta["exclude_agent"]) == ("always", "code-review")
    [unattached] = parse(tmp_path, "b.instructions.md", "---\ndescription: Incident reports\n---\nY.\n")
    assert (unattached.meta["attach"], unattached.target_contexts) == ("requested", ())
    assert "exclude_agent" not in unattached.meta
    [bare] = parse(tmp_path, "c.instructions.md", "# Notes\n\nZ.\n")
    assert bare.meta["attach"] == "manual"


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


def instructions_file(min_chars: int, last_word: str = "quokkaplex") -> str:
    """A Copilot `*.instructions.md` shaped like the long public ones: applyTo and description front
    matter, a title, then many `##` sections of prose, lists and code, padded to `min_chars`; only
    its last section holds `last_word`."""
    parts = ['---\napplyTo: "**/*.ts,**/*.tsx"\ndescription: "TypeScript and React guidelines for the web app"\n'
             "---\n\n# TypeScript Guidelines\n\nFollow these rules for every TypeScript file.\n"]
    section = 0
    while sum(map(len, parts)) < min_chars:
        section += 1
        parts.append(f"\n## {section}. Components and state, part {section}\n\n"
                     f"- Prefer function components; keep hooks at the top of component {section}.\n"
                     "- Derive state instead of syncing it with `useEffect`.\n"
                     "- Name event handlers `handleX` and props `onX`.\n\n"
                     "```tsx\nexport function Button({ onClick }: Props) {\n"
                     "  return <button onClick={onClick} />;\n}\n```\n\n"
                     "Keep files under 300 lines; split a component when it grows a second responsibility, "
                     "and test it with Testing Library from the user's point of view.\n")
    parts.append(f"\n## Last words\n\nThe {last_word} rule: lint before every commit.\n")
    return "".join(parts)


def test_a_60_kb_copilot_file_is_one_pattern_with_all_its_text(tmp_path: Path) -> None:
    text = instructions_file(60_000)
    assert MAX_PATTERN_CHARS > len(text) > 60_000  # the size of the longest public rule files
    [rule] = parse(tmp_path, ".github/instructions/typescript.instructions.md", text)
    body = text.split("---\n", 2)[2].strip()
    assert rule.content == body and rule.content.endswith("The quokkaplex rule: lint before every commit.")
    assert rule.target_contexts == ("**/*.ts", "**/*.tsx")


def test_a_file_over_the_pattern_bound_says_so_and_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError) as raised:
        parse(tmp_path, ".github/instructions/huge.instructions.md", instructions_file(MAX_PATTERN_CHARS + 10))
    message = str(raised.value)
    assert f"the limit for a pattern is {MAX_PATTERN_CHARS}" in message and "Split" in message


CURSOR_PERSONA = ("---\ndescription: Senior reviewer persona for pull requests in this repository\n"
                  "globs: src/**/*.{ts,tsx}\nalwaysApply: false\n---\n\n# Persona\n\nYou are a senior reviewer.\n\n"
                  "## Checks\n\n- Types are strict.\n")


def test_a_description_titles_the_pattern_instead_of_a_generic_heading(tmp_path: Path) -> None:
    [cursor] = parse(tmp_path, ".cursor/rules/review.mdc", CURSOR_PERSONA)
    assert cursor.title == "Senior reviewer persona for pull requests in this repository"
    assert cursor.content.startswith("# Persona\n\nYou are a senior reviewer.")  # nothing of the file is lost
    [copilot] = parse(tmp_path, ".github/instructions/py.instructions.md",
                      '---\napplyTo: "**/*.py"\ndescription: \'Python: typing and `ruff` rules\'\n---\n'
                      "# Persona\n\nType everything.\n")
    assert copilot.title == "Python: typing and ruff rules"
    [titled] = parse(tmp_path, "docs/rules/errors.md",
                     "---\ntitle: Error handling\ndescription: How services raise errors\n---\n# Errors\n\nRaise.\n")
    assert titled.title == "Error handling"  # a stated title comes first


@pytest.mark.parametrize(("heading", "title"), [
    ("# **Persona**", "Persona"),
    ("# `make test` before __every__ push", "make test before every push"),
    ("# Use *snake_case* for my_module_name", "Use snake_case for my_module_name"),
    ("# See [the guide](https://example.com/guide) ~~now~~", "See the guide now"),
])
def test_titles_from_headings_are_plain_text(tmp_path: Path, heading: str, title: str) -> None:
    [rule] = parse(tmp_path, ".cursor/rules/x.mdc", f"---\nglobs: '*.py'\n---\n{heading}\n\nBody.\n")
    assert rule.title == title and rule.content == "Body."
    sections = parse(tmp_path, "AGENTS.md", f"# Guide\n\nIntro.\n\n#{heading}\n\nSection.\n")
    assert [r.title for r in sections] == ["Guide", title]  # sections keep their headings, made plain


def test_a_dot_file_name_is_not_a_title_when_the_text_has_one(tmp_path: Path) -> None:
    [rule] = parse(tmp_path, "rules/.cursor.mdc", "---\nglobs: '*.go'\n---\n**Go services** wrap errors with %w.\n\n"
                                                   "More text.\n")
    assert rule.title == "Go services wrap errors with %w."
    [named] = parse(tmp_path, "rules/go.mdc", "---\nglobs: '*.go'\n---\nWrap errors.\n")
    assert named.title == "go"  # an ordinary file name still titles an untitled file


def test_a_long_description_is_cut_at_a_word_within_the_title_limit(tmp_path: Path) -> None:
    description = " ".join(["Consistent error handling across every service"] * 12)  # 563 characters
    [rule] = parse(tmp_path, ".cursor/rules/errors.mdc", f"---\ndescription: {description}\n---\nBody.\n")
    kept = rule.title.removesuffix("…")
    assert len(rule.title) <= MAX_TITLE_CHARS and rule.title.endswith("…") and len(kept) > MAX_TITLE_CHARS - 50
    assert description.startswith(kept) and description[len(kept)] == " "  # cut between two words
    assert rule.meta["description"] == description  # kept whole where it belongs


def test_sectioned_files_keep_section_titles_despite_a_description(tmp_path: Path) -> None:
    rules = parse(tmp_path, ".github/copilot-instructions.md",
                  "---\ndescription: Team rules\n---\n# Team\n\nIntro.\n\n## **Reviews**\n\nOne approval.\n")
    assert [r.title for r in rules] == ["Team", "Reviews"]
