"""Each context-file format has the structure its tool expects; marked sections merge cleanly."""

from __future__ import annotations

from datetime import UTC, datetime

import yaml

from mcp_server.rules.parse import split_front_matter
from mcp_server.rules.render import BEGIN, END, merge_marked, render
from mcp_server.schemas import Pattern


def pattern(pid: int, title: str, content: str, globs: list[str], strategy: str | None = None,
            **meta: object) -> Pattern:
    return Pattern(id=pid, title=title, content=content, tags=["api"] if strategy else [], strategy_type=strategy,
                   target_contexts=globs, author=None, metadata=dict(meta), last_updated=datetime.now(UTC))


PATTERNS = [
    pattern(1, "Validate bodies", "Use pydantic models.", ["api/*.py"], "convention",
            description="Validate: always, at the edge"),
    pattern(2, "Small PRs", "Keep pull requests small.", []),
    pattern(3, "TSX components", "Function components only.", ["*.tsx", "src/**/*.ts"], "frontend"),
]


def test_agents_md_groups_patterns_and_shows_globs() -> None:
    [file] = render("agents_md", PATTERNS).files
    assert file.path == "AGENTS.md"
    text = file.content
    assert text.startswith(BEGIN) and text.rstrip().endswith(END)
    assert "## Convention" in text and "## Frontend" in text and "## General" in text
    assert text.index("## Convention") < text.index("## General")
    assert "### Validate bodies\n\n_Applies to: `api/*.py`_\n\nUse pydantic models." in text
    assert "### Small PRs\n\nKeep pull requests small." in text  # unscoped: no "Applies to"


def test_claude_md_has_the_same_structure() -> None:
    [file] = render("claude_md", PATTERNS).files
    assert file.path == "CLAUDE.md" and "### TSX components" in file.content


def test_cursor_rules_have_cursor_front_matter() -> None:
    files = {f.path: f.content for f in render("cursor_mdc", PATTERNS).files}
    assert set(files) == {".cursor/rules/aletheia-validate-bodies-1.mdc", ".cursor/rules/aletheia-small-prs-2.mdc",
                          ".cursor/rules/aletheia-tsx-components-3.mdc"}
    front, body = split_front_matter(files[".cursor/rules/aletheia-tsx-components-3.mdc"], lenient=True)
    assert front == {"description": "TSX components", "globs": "*.tsx, src/**/*.ts", "alwaysApply": False}
    assert body.strip() == "# TSX components\n\nFunction components only."
    front, _ = split_front_matter(files[".cursor/rules/aletheia-small-prs-2.mdc"], lenient=True)
    assert front["alwaysApply"] is True and not front["globs"]
    front, _ = split_front_matter(files[".cursor/rules/aletheia-validate-bodies-1.mdc"], lenient=False)
    assert front["description"] == "Validate: always, at the edge"  # quoted because of ': '


def test_copilot_splits_unscoped_and_scoped_instructions() -> None:
    files = {f.path: f.content for f in render("copilot", PATTERNS).files}
    assert ".github/copilot-instructions.md" in files
    main = files[".github/copilot-instructions.md"]
    assert "Keep pull requests small." in main and "pydantic" not in main
    scoped = files[".github/instructions/aletheia-validate-bodies-1.instructions.md"]
    front, body = split_front_matter(scoped, lenient=False)
    assert yaml.safe_load(scoped.split("---")[1]) == front
    assert front == {"applyTo": "api/*.py", "description": "Validate: always, at the edge"}
    assert "Use pydantic models." in body
    front, _ = split_front_matter(files[".github/instructions/aletheia-tsx-components-3.instructions.md"], False)
    assert front["applyTo"] == "*.tsx,src/**/*.ts"


def test_merge_replaces_only_the_marked_section_byte_for_byte() -> None:
    before = "# My project\r\n\nHand-written intro.\n\n"
    after = "\n## Notes\n\nKept   exactly\tas is.\n"
    existing = before + f"{BEGIN}\nold generated text\n{END}" + after
    section = f"{BEGIN}\nnew generated text\n{END}\n"
    merged = merge_marked(existing, section)
    assert merged == before + f"{BEGIN}\nnew generated text\n{END}" + after
    assert merge_marked(merged, section) == merged  # idempotent


def test_merge_appends_to_a_file_without_markers_and_creates_new_files() -> None:
    section = f"{BEGIN}\nx\n{END}\n"
    assert merge_marked("Mine.\n", section) == "Mine.\n\n" + section
    assert merge_marked("Mine.", section) == "Mine.\n\n" + section
    assert merge_marked(None, section) == section


def cursor_front(one: Pattern) -> dict[str, object]:
    [file] = render("cursor_mdc", [one]).files
    return split_front_matter(file.content, lenient=True)[0]


def test_cursor_rules_state_each_attach_mode_as_cursor_reads_it() -> None:
    requested = pattern(4, "Migrations", "One change each.", [], attach="requested", description="Before a migration")
    manual = pattern(5, "Release", "Tag it.", [], attach="manual")
    assert cursor_front(requested) == {"description": "Before a migration", "globs": None, "alwaysApply": False}
    assert cursor_front(manual) == {"description": None, "globs": None, "alwaysApply": False}
    # Globs decide over a stated mode; without one, no globs still means every file (add_pattern).
    assert cursor_front(pattern(6, "Scoped", "X.", ["*.py"], attach="requested"))["globs"] == "*.py"
    assert cursor_front(pattern(7, "Everywhere", "Y.", []))["alwaysApply"] is True


def test_patterns_attached_on_request_are_not_written_as_always_on() -> None:
    requested = pattern(4, "Migrations", "One change each.", [], attach="requested", description="Before a migration")
    manual = pattern(5, "Release", "Tag it.", [], attach="manual", exclude_agent="coding-agent")
    files = {f.path: f.content for f in render("copilot", [*PATTERNS, requested, manual]).files}
    main = files[".github/copilot-instructions.md"]
    assert "Keep pull requests small." in main and "One change each." not in main and "Tag it." not in main
    front, _ = split_front_matter(files[".github/instructions/aletheia-migrations-4.instructions.md"], False)
    assert front == {"description": "Before a migration"}  # no applyTo: Copilot attaches it only on request
    front, _ = split_front_matter(files[".github/instructions/aletheia-release-5.instructions.md"], False)
    assert front == {"excludeAgent": "coding-agent"}
    [agents] = render("agents_md", [requested, manual]).files
    assert "### Migrations\n\n_Applies on request, not to every task: Before a migration_\n" in agents.content
    assert "### Release\n\n_Applies only when asked for by name, not to every task._\n" in agents.content
