"""Each context-file format has the structure its tool expects (front matter read back with YAML, as
the tools read it); scoped patterns stay scoped; headings sit under the pattern's own; marked
sections merge cleanly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from mcp_server.rules.parse import split_front_matter
from mcp_server.rules.render import BEGIN, END, demote_headings, merge_marked, render, scope_folder
from mcp_server.rules.render import slug as render_slug
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
    rendered = render("agents_md", PATTERNS)
    assert [f.path for f in rendered.files] == ["AGENTS.md", "api/AGENTS.md"]
    assert rendered.members == {"api/AGENTS.md": [1], "AGENTS.md": [2, 3]}
    root, nested = (f.content for f in rendered.files)
    for text in (root, nested):
        assert text.startswith(BEGIN) and text.rstrip().endswith(END)
    assert "## Frontend" in root and "## General" in root
    assert root.index("## Frontend") < root.index("## General")
    assert "### Small PRs\n\nKeep pull requests small." in root  # unscoped: no "Applies to"
    assert "# Engineering patterns: `api/`" in nested and "## Convention" in nested
    assert "### Validate bodies\n\n_Applies to: `api/*.py`_\n\nUse pydantic models." in nested


def test_claude_md_holds_what_applies_everywhere() -> None:
    rendered = render("claude_md", PATTERNS)
    assert rendered.files[0].path == "CLAUDE.md" and rendered.members["CLAUDE.md"] == [2]
    assert "### Small PRs" in rendered.files[0].content and "TSX components" not in rendered.files[0].content


def test_cursor_rules_have_cursor_front_matter() -> None:
    files = {f.path: f.content for f in render("cursor_mdc", PATTERNS).files}
    assert set(files) == {".cursor/rules/aletheia-validate-bodies-1.mdc", ".cursor/rules/aletheia-small-prs-2.mdc",
                          ".cursor/rules/aletheia-tsx-components-3.mdc"}
    front, body = split_front_matter(files[".cursor/rules/aletheia-tsx-components-3.mdc"], lenient=True)
    assert front == {"description": "TSX components", "globs": "**/*.tsx, src/**/*.ts", "alwaysApply": False}
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
    assert front["applyTo"] == "**/*.tsx,src/**/*.ts"


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
    # Always after one line break, so that removing the section gives the file back (tests/rules/test_sync.py).
    assert merge_marked("Mine.", section) == "Mine.\n" + section
    assert merge_marked("Mine.\n\n\n", section) == "Mine.\n\n\n\n" + section
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
    assert cursor_front(pattern(6, "Scoped", "X.", ["*.py"], attach="requested"))["globs"] == "**/*.py"
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
    assert agents.path == "AGENTS.md"
    assert "### Migrations\n\n_Applies on request, not to every task: Before a migration_\n" in agents.content
    assert "### Release\n\n_Applies only when asked for by name, not to every task._\n" in agents.content


# --- every attach mode in every new format, read back as each tool reads it ------------------------

ALWAYS = pattern(10, "House style", "Two-space indentation.", [])
AUTO = pattern(11, "Web components", "Function components.", ["src/web/**/*.tsx", "src/web/api/*.ts"], "frontend")
REQUESTED = pattern(12, "Migrations", "One change each.", [], attach="requested", description="Before a migration")
MANUAL = pattern(13, "Release", "Tag it.", [], attach="manual")
MODES = {"always": ALWAYS, "auto": AUTO, "requested": REQUESTED, "manual": MANUAL}


def only_file(fmt: str, one: Pattern) -> tuple[str, dict[str, object], str]:
    """(path, front matter parsed by YAML, body) of the single file `one` renders to."""
    [file] = render(fmt, [one]).files
    front, body = split_front_matter(file.content, lenient=False)  # strict YAML: no lenient reading
    return file.path, front, body.lstrip("\n")


def test_windsurf_rules_state_each_mode_as_trigger() -> None:
    """Windsurf/Devin: `trigger` always_on | glob (+ globs) | model_decision (+ description) | manual."""
    expected = {
        "always": {"trigger": "always_on", "description": "House style"},
        "auto": {"trigger": "glob", "description": "Web components", "globs": "src/web/**/*.tsx, src/web/api/*.ts"},
        "requested": {"trigger": "model_decision", "description": "Before a migration"},
        "manual": {"trigger": "manual"},
    }
    for mode, one in MODES.items():
        path, front, body = only_file("windsurf", one)
        assert path == f".windsurf/rules/aletheia-{render_slug(one)}.md"
        assert front == expected[mode], mode
        assert body.startswith(f"# {one.title}\n\n") and one.content in body
    _, front, _ = only_file("windsurf", pattern(14, "Py", "X.", ["*.py"]))
    assert front["globs"] == "**/*.py"  # quoted in the file: a bare `*` would be a YAML alias


def test_claude_rules_scope_with_paths_and_claude_md_holds_the_rest() -> None:
    path, front, body = only_file("claude_md", AUTO)
    assert path == ".claude/rules/aletheia-web-components-11.md"
    assert front == {"paths": ["src/web/**/*.tsx", "src/web/api/*.ts"]}  # a YAML list, as Claude Code documents
    assert body == "# Web components\n\nFunction components.\n"
    rendered = render("claude_md", [ALWAYS, AUTO, REQUESTED, MANUAL])
    assert [f.path for f in rendered.files] == ["CLAUDE.md", path]
    assert rendered.members == {"CLAUDE.md": [10, 12, 13], path: [11]}
    shared = rendered.files[0].content
    assert "### House style\n\nTwo-space indentation." in shared
    assert "### Migrations\n\n_Applies on request, not to every task: Before a migration_\n" in shared
    assert "### Release\n\n_Applies only when asked for by name, not to every task._\n" in shared


def test_cline_rules_scope_with_paths_and_say_when_on_request() -> None:
    path, front, body = only_file("cline", AUTO)
    assert body == "# Web components\n\nFunction components.\n"
    assert path == ".clinerules/aletheia-web-components-11.md"
    assert front == {"paths": ["src/web/**/*.tsx", "src/web/api/*.ts"]}
    for one in (ALWAYS, REQUESTED, MANUAL):  # no front matter: Cline loads the file for every task
        [file] = render("cline", [one]).files
        assert file.content.startswith(f"# {one.title}\n\n")
    [requested] = render("cline", [REQUESTED]).files
    assert "_Applies on request, not to every task: Before a migration_" in requested.content
    [manual] = render("cline", [MANUAL]).files
    assert "_Applies only when asked for by name, not to every task._" in manual.content
    [always] = render("cline", [ALWAYS]).files
    assert "_Applies" not in always.content


def test_gemini_md_nests_like_agents_md() -> None:
    rendered = render("gemini_md", [ALWAYS, AUTO, REQUESTED, MANUAL])
    assert [f.path for f in rendered.files] == ["GEMINI.md", "src/web/GEMINI.md"]
    assert rendered.members == {"GEMINI.md": [10, 12, 13], "src/web/GEMINI.md": [11]}
    nested = rendered.files[1].content
    assert nested.startswith(BEGIN) and nested.rstrip().endswith(END)
    assert "_Applies to: `src/web/**/*.tsx`, `src/web/api/*.ts`_" in nested
    assert "_Applies on request, not to every task: Before a migration_" in rendered.files[0].content


def test_copilot_front_matter_is_yaml_for_each_mode() -> None:
    [always] = render("copilot", [ALWAYS]).files
    assert always.path == ".github/copilot-instructions.md"
    assert only_file("copilot", AUTO)[1] == {"applyTo": "src/web/**/*.tsx,src/web/api/*.ts",
                                             "description": "Web components"}
    assert only_file("copilot", REQUESTED)[1] == {"description": "Before a migration"}
    path, front, body = only_file("copilot", MANUAL)  # no front matter at all (an empty one is none)
    assert path.endswith("release-13.instructions.md") and front == {} and body.startswith("# Release\n")


@pytest.mark.parametrize(("globs", "folder"), [
    (["src/web/**/*.tsx", "src/web/api/*.ts"], "src/web"),
    (["**/*.py"], ""),
    (["*.py"], ""),  # no slash: any depth
    (["Makefile"], ""),
    (["api/*.py"], "api"),
    (["docs/"], "docs"),
    (["docs/**"], "docs"),
    (["./src/x/*.go", "/src/x/y/*.go"], "src/x"),
    (["src/{a,b}/*.ts"], "src"),
    (["src/a/*.py", "lib/*.py"], ""),  # no folder holds both
    (["src/main.py"], "src"),
    (["src/web/**", "!src/web/legacy/**"], "src/web"),  # exclusions only narrow
    (["../outside/*.py"], ""),
    ([".git/hooks/*"], ""),
    ([".GIT/hooks/*"], ""),  # the same folder on macOS and Windows
    (["pkg/.Git/**"], "pkg"),
])
def test_a_scoped_pattern_goes_in_the_nearest_folder_holding_all_its_globs(globs: list[str], folder: str) -> None:
    assert scope_folder(globs) == folder
    [file] = render("agents_md", [pattern(1, "T", "X.", globs)]).files
    assert file.path == (f"{folder}/AGENTS.md" if folder else "AGENTS.md")


# --- headings ------------------------------------------------------------------------------------------

SECTIONED = """# Setup

Intro.

## Steps

```bash
# a shell comment, not a heading
make setup
```

Notes
-----

####### seven hashes: not a heading
"""


def test_headings_are_demoted_under_the_pattern_heading_but_not_in_code() -> None:
    one = pattern(20, "Onboarding", SECTIONED, [])
    [shared] = render("agents_md", [one]).files
    text = shared.content
    assert "### Onboarding\n\n#### Setup\n\nIntro.\n\n##### Steps\n" in text
    assert "```bash\n# a shell comment, not a heading\nmake setup\n```" in text
    assert "##### Notes\n\n" in text and "-----" not in text  # a setext heading, written as ATX one level down
    assert "####### seven hashes" in text
    for fmt in ("windsurf", "cline", "cursor_mdc", "copilot"):
        [file] = render(fmt, [pattern(21, "Onboarding", SECTIONED, ["**/docs/**"])]).files
        body = split_front_matter(file.content, lenient=True)[1].lstrip("\n")
        assert body.startswith("# Onboarding\n\n## Setup\n\nIntro.\n\n### Steps\n"), fmt
        assert "\n# a shell comment, not a heading\n" in body


def test_demotion_caps_at_six_and_keeps_deeper_structure() -> None:
    assert demote_headings("# A\n\n## B\n\n##### E\n\n###### F", 3) == "#### A\n\n##### B\n\n###### E\n\n###### F"
    assert demote_headings("#### Already below\n\n##### Deeper", 3) == "#### Already below\n\n##### Deeper"
    assert demote_headings("> ## Quoted\n\n- ## In a list", 1) == "> ## Quoted\n\n- ## In a list"
    assert demote_headings("> # Quoted\n\n- # In a list", 1) == "> ## Quoted\n\n- ## In a list"
    assert demote_headings("No headings.\n\n    # indented code", 3) == "No headings.\n\n    # indented code"


def test_generated_globs_are_in_each_tools_dialect_and_the_rest_is_said_in_the_text() -> None:
    """Canonical globs are written back as each tool reads them (rules/dialects.py); what a tool's
    glob field cannot say is said in the rule's text rather than silently widened."""
    imported = pattern(30, "Build files", "Pin versions.", ["/Makefile", "/*.cmake"], format="cursor_mdc")
    assert cursor_front(imported)["globs"] == "Makefile, *.cmake"  # root only, as Cursor reads them
    top_level = pattern(31, "Top level", "Flat.", ["src/*", "!src/*/**"], format="cursor_mdc")
    assert cursor_front(top_level)["globs"] == "src/*"  # the files-only pair is one Cursor glob again
    excluded = pattern(32, "Python", "Typed.", ["*.py", "!tests/**"])
    [cursor] = render("cursor_mdc", [excluded]).files
    assert "globs: **/*.py\n" in cursor.content
    assert "_Does not apply to: `tests/**`_" in cursor.content
    [copilot] = render("copilot", [pattern(33, "API", "Thin.", ["api/*.py"])]).files
    front, body = split_front_matter(copilot.content, lenient=False)
    assert front["applyTo"] == "api/*.py"  # VS Code reads it at any depth: the text says where it holds
    assert "`api/*.py`" in body.split("Thin.")[0]


# --- front matter and text a stored value cannot break ----------------------------------------------------

YAML_LOOKALIKES = ["~", "null", "yes", "No", "on", "true", "123", "0x1F", "1e3", "2024-01-01", "Use this:",
                   "a: b", "Rule #1", "[draft]", "...", "--- x", "!important", "Plain words, as Cursor writes them"]


@pytest.mark.parametrize("fmt", ["cursor_mdc", "windsurf"])
@pytest.mark.parametrize("description", YAML_LOOKALIKES)
def test_a_description_reads_back_as_the_same_string(fmt: str, description: str) -> None:
    """Written bare only when YAML reads it back unchanged: `~` is not "no description", `yes` not
    a boolean, `2024-01-01` not a date, and `Use this:` does not break the front matter."""
    [file] = render(fmt, [pattern(1, "T", "X.", [], attach="requested", description=description)]).files
    front = yaml.safe_load(file.content.split("---\n")[1])
    assert front["description"] == description
    if description == YAML_LOOKALIKES[-1]:
        assert f"description: {description}\n" in file.content  # bare, as Cursor writes its own


def test_globs_with_backquotes_are_shown_whole_in_the_text() -> None:
    """A glob's backquote does not end the code span it is shown in (`_Applies to:`, `_Does not apply to:`)."""
    p = pattern(1, "T", "X.", ["src/`odd`/**", "!src/`odd`/gen/**", "``x"])
    text = render("agents_md", [p]).files[0].content + render("cline", [p]).files[0].content
    assert "_Applies to: ``src/`odd`/**``, ``!src/`odd`/gen/**``, ``` ``x ```_" in text
    assert "_Does not apply to: ``src/`odd`/gen/**``_" in text
