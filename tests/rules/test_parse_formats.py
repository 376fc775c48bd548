"""Claude Code, Windsurf and Cline rule files keep their meaning on import: the folder says the
format, the front matter says when the rule applies (rules/parse.py)."""

from __future__ import annotations

import pytest

from mcp_server.errors import RuleFileError
from mcp_server.rules.dialects import globs_name_files
from mcp_server.rules.parse import RuleDraft, folder_format, parse_rule_file


def parse(source_path: str, text: str) -> RuleDraft:
    [draft] = parse_rule_file(source_path.rsplit("/", 1)[-1], source_path, text)
    return draft


def when(draft: RuleDraft) -> tuple[list[str], str, str]:
    return draft.target_contexts, draft.metadata["attach"], draft.metadata["format"]


# --- which files ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("source_path", "expected"), [
    (".claude/rules/api.md", "claude_rule"),
    ("services/web/.claude/rules/api.md", "claude_rule"),  # a rule folder anywhere in the repository
    (".claude/rules/frontend/react.md", "claude_rule"),  # Claude Code reads the sub-folders too
    (".windsurf/rules/api.md", "windsurf_rule"),
    ("pkg/.windsurf/rules/api.md", "windsurf_rule"),
    (".clinerules/api.md", "cline_rule"),
    ("pkg/.clinerules/api.md", "cline_rule"),
    # Not a rule folder (or not the whole folder name).
    (".claude/api.md", None), ("rules/api.md", None), ("my.claude/rules/api.md", None),
    ("docs/.clinerules-old/api.md", None), (".clinerules/sub/api.md", None), (".windsurf/rules/sub/api.md", None),
    ("api.md", None),
])
def test_the_folder_says_the_format(source_path: str, expected: str | None) -> None:
    assert folder_format(source_path) == expected


def test_a_tool_folder_file_that_is_not_markdown_keeps_its_own_format() -> None:
    draft = parse(".claude/rules/react.mdc", "---\nglobs: src/*.tsx\n---\nHooks.\n")
    assert draft.metadata["format"] == "cursor_mdc"


# --- Claude Code and Cline: `paths` -----------------------------------------------------------------

@pytest.mark.parametrize("folder", [".claude/rules", ".clinerules"])
@pytest.mark.parametrize(("front", "globs"), [
    ('paths:\n  - "src/api/**/*.ts"\n  - "tests/**/*.test.ts"\n', ["src/api/**/*.ts", "tests/**/*.test.ts"]),
    ("paths: src/**/*.{ts,tsx}\n", ["src/**/*.{ts,tsx}"]),  # one string; braces are the glob's own
    ('paths: "src/**/*.ts, docs/*.md"\n', ["src/**/*.ts", "docs/*.md"]),  # a string: split at commas
    ('paths: ["src/**/*.ts", "{src,lib}/**/*.js"]\n', ["src/**/*.ts", "{src,lib}/**/*.js"]),
    # Unquoted globs starting with `*` (YAML aliases: not YAML), read as their author meant.
    ("paths:\n  - **/*.ts\n  - 'lib/*.js'\n", ["**/*.ts", "lib/*.js"]),
    ("paths: **/*.py\n", ["**/*.py"]),
    ("paths: [**/*.py, src/{a,b}/*.ts]\n", ["**/*.py", "src/{a,b}/*.ts"]),
    # Root-relative minimatch, as Cursor's: converted to canonical globs (rules/dialects.py).
    ('paths:\n  - "Makefile"\n  - "src/*"\n', ["src/*", "!src/*/**", "/Makefile"]),
])
def test_paths_scope_the_rule(folder: str, front: str, globs: list[str]) -> None:
    draft = parse(f"{folder}/api.md", f"---\n{front}---\n# API rules\n\nValidate every body.\n")
    assert when(draft) == (globs, "auto", "claude_rule" if folder == ".claude/rules" else "cline_rule")
    assert draft.title == "API rules" and draft.content == "Validate every body."


@pytest.mark.parametrize("folder", [".claude/rules", ".clinerules"])
@pytest.mark.parametrize("text", [
    "# Style\n\nShort functions.\n",  # no front matter
    "---\ndescription: House style\n---\n# Style\n\nShort functions.\n",
    "---\npaths:\n---\n# Style\n\nShort functions.\n",
    "---\npaths: []\n---\n# Style\n\nShort functions.\n",
    # `globs` is Cursor's key: Claude Code and Cline ignore it and load the rule always, and so do we.
    "---\nglobs: src/**/*.ts\n---\n# Style\n\nShort functions.\n",
])
def test_without_paths_the_rule_always_applies(folder: str, text: str) -> None:
    draft = parse(f"{folder}/style.md", text)
    assert when(draft)[:2] == ([], "always")


def test_titles_come_from_the_front_matter_else_the_first_heading() -> None:
    described = parse(".claude/rules/api.md", "---\ndescription: API handlers\npaths: src/api/**\n---\n"
                                              "# Persona\n\nValidate.\n")
    assert described.title == "API handlers" and described.content == "# Persona\n\nValidate."
    assert described.metadata["description"] == "API handlers"
    assert parse(".clinerules/api.md", "# **API** handlers\n\nValidate.\n").title == "API handlers"
    assert parse(".clinerules/api-rules.md", "Validate.\n").title == "api-rules"


@pytest.mark.parametrize(("front", "said"), [
    ("paths: 42\n", "not 42 (int)"),
    ("paths:\n  - 42\n  - src/*.ts\n", "not [42, 'src/*.ts']"),
    ("paths: {src: ts}\n", "not {'src': 'ts'} (dict)"),
    ("paths: true\n", "not True (bool)"),
])
@pytest.mark.parametrize("folder", [".claude/rules", ".clinerules"])
def test_paths_that_are_not_globs_are_refused_clearly(folder: str, front: str, said: str) -> None:
    with pytest.raises(RuleFileError) as error:
        parse(f"{folder}/api.md", f"---\n{front}---\nValidate.\n")
    assert str(error.value) == f'`paths` must be a glob string or a list of globs (quoted, e.g. "src/**/*.ts"), {said}'


def test_front_matter_that_is_neither_yaml_nor_key_value_lines_is_refused() -> None:
    with pytest.raises(RuleFileError, match=r"front matter line 2 is not `key: value`: '- \*\*/\*.ts'"):
        parse(".claude/rules/api.md", "---\npaths: src/*.ts\n- **/*.ts\n---\nValidate.\n")
    with pytest.raises(RuleFileError, match="not closed by a `---` line"):
        parse(".clinerules/api.md", "---\npaths:\n  - src/*.ts\nValidate.\n")


# --- Windsurf: `trigger` ----------------------------------------------------------------------------

@pytest.mark.parametrize(("front", "globs", "attach"), [
    ("trigger: always_on\n", [], "always"),
    ("trigger: always_on\nglobs: src/*.ts\n", [], "always"),  # Windsurf reads globs for `glob` only
    ("trigger: glob\nglobs: src/**/*.ts\n", ["src/**/*.ts"], "auto"),
    # A comma-separated string, braces kept whole; unquoted `*.md` (not YAML) read as meant.
    ("trigger: glob\nglobs: src/**/*.{ts,tsx}, *.md\n", ["src/**/*.{ts,tsx}", "/*.md"], "auto"),
    ("trigger: glob\nglobs:\n  - src/**/*.ts\n  - docs/**\n", ["src/**/*.ts", "docs/**"], "auto"),
    ("trigger: model_decision\ndescription: When adding a migration\n", [], "requested"),
    ("trigger: model_decision\n", [], "requested"),
    ("trigger: manual\n", [], "manual"),
    ("description: No trigger\n", [], "always"),  # as a plain markdown file
    ("trigger:\n", [], "always"),
])
def test_windsurf_triggers_are_attach_modes(front: str, globs: list[str], attach: str) -> None:
    draft = parse(".windsurf/rules/rule.md", f"---\n{front}---\n# Migrations\n\nOne change each.\n")
    assert when(draft) == (globs, attach, "windsurf_rule")


def test_a_model_decision_rule_keeps_its_description_for_the_agent() -> None:
    draft = parse(".windsurf/rules/migrations.md", "---\ntrigger: model_decision\ndescription: When adding a "
                                                   "migration\n---\n# Migrations\n\nOne change each.\n")
    assert draft.title == "When adding a migration" and draft.metadata["description"] == "When adding a migration"


@pytest.mark.parametrize(("trigger", "shown"), [
    ("sometimes", "sometimes"), ("Always_On", "Always_On"), ("always", "always"), ("1", "1"), ("[glob]", "['glob']"),
])
def test_an_unknown_trigger_names_the_allowed_ones(trigger: str, shown: str) -> None:
    with pytest.raises(RuleFileError) as error:
        parse(".windsurf/rules/rule.md", f"---\ntrigger: {trigger}\n---\nOne change each.\n")
    assert str(error.value) == (f"`trigger: {shown}` is not a Windsurf trigger: use one of always_on, glob, "
                                "model_decision, manual")


@pytest.mark.parametrize("front", ["trigger: glob\n", "trigger: glob\nglobs:\n", "trigger: glob\nglobs: ' , '\n"])
def test_a_glob_trigger_without_globs_is_refused(front: str) -> None:
    with pytest.raises(RuleFileError, match=r"`trigger: glob` needs `globs:`"):
        parse(".windsurf/rules/rule.md", f"---\n{front}---\nOne change each.\n")


def test_windsurf_globs_that_are_not_globs_are_refused() -> None:
    with pytest.raises(RuleFileError, match=r"`globs` must be a glob string or a list of globs .*not 3 \(int\)"):
        parse(".windsurf/rules/rule.md", "---\ntrigger: glob\nglobs: 3\n---\nOne change each.\n")


# --- generation reads these globs as files' names ---------------------------------------------------

@pytest.mark.parametrize("fmt", ["claude_rule", "windsurf_rule", "cline_rule"])
def test_the_formats_name_files_with_their_globs(fmt: str) -> None:
    assert globs_name_files({"format": fmt})
