"""Generated files stay within a budget of characters; what does not fit is left out, with a reason,
and each shared file says how many of its patterns it left out (issue 19: 494 KB AGENTS.md files)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from mcp_server.errors import InvalidInputError
from mcp_server.rules import render
from mcp_server.rules.budget import DEFAULT_MAX_CHARS, MAX_FILE_CHARS, MIN_FILE_CHARS, within_budget
from mcp_server.schemas import CONTEXT_FORMATS, Pattern

NOTE = re.compile(r"_(\d+) more pattern\(s\)(?: for `[^`]+/`)? were left out of this file to keep it short: find them "
                  r"with the `find_patterns` tool or `aletheia-mcp patterns list`\._")


def pattern(pid: int, globs: list[str], chars: int = 1_050, **meta: object) -> Pattern:
    words = ("Prefer small functions; name things for what they mean. " * (chars // 56 + 1))[:chars]
    content = f"## Rule {pid}\n\n{words}\n\n```python\n# a comment in code\n```\n"
    return Pattern(id=pid, title=f"Rule {pid}", content=content, tags=[["api", "web", "ops"][pid % 3]],
                   strategy_type=None, target_contexts=globs, author=None, metadata=dict(meta),
                   last_updated=datetime.now(UTC))


def corpus() -> list[Pattern]:
    """447 patterns, ~494 KB of text, like the imported corpus of issue 19: always-on ones, scoped
    ones at any depth, ones nested under folders, ones attached on request."""
    kinds: list[tuple[list[str], dict[str, object]]] = [
        ([], {}), (["**/*.py"], {}), (["src/web/**/*.tsx"], {}), (["src/web/api/*.ts"], {}),
        (["docs/**"], {}), ([], {"attach": "requested", "description": "Before a release"}), ([], {"attach": "manual"}),
    ]
    patterns = [pattern(i, kinds[i % len(kinds)][0], **kinds[i % len(kinds)][1]) for i in range(1, 448)]
    assert 490_000 < sum(len(p.content) for p in patterns) < 500_000
    return patterns


@pytest.mark.parametrize("fmt", CONTEXT_FORMATS)
def test_494_kb_of_patterns_fit_every_file_and_the_rest_is_listed(fmt: str) -> None:
    patterns = corpus()
    budgeted = within_budget(fmt, patterns)
    limit = DEFAULT_MAX_CHARS[fmt]
    assert budgeted.rendered.files and all(len(f.content) <= limit for f in budgeted.rendered.files)
    # Every pattern is either in a file or left out with a reason, in the order given.
    left_ids = [p.id for p, _ in budgeted.left_out]
    assert sorted([p.id for p in budgeted.included] + left_ids) == [p.id for p in patterns]
    assert [p.id for p in budgeted.included] == [p.id for p in patterns if p.id not in set(left_ids)]
    for _, reason in budgeted.left_out:
        assert f"{limit:,}-character budget" in reason
    # members: which pattern is in which file, and nothing else is.
    members = budgeted.rendered.members
    assert sorted(i for ids in members.values() for i in ids) == sorted(p.id for p in budgeted.included)
    for file in budgeted.rendered.files:
        for pid in members[file.path]:
            assert f"Rule {pid}\n" in file.content
    # Each shared file that left patterns out says how many, inside its section.
    left_per_file: dict[str, int] = {}
    for p, _ in budgeted.left_out:
        path = render.target_path(fmt, p)
        left_per_file[path] = left_per_file.get(path, 0) + 1
    for file in budgeted.rendered.files:
        notes = NOTE.findall(file.content)
        if render.is_marked_path(file.path) and file.path in left_per_file:
            assert notes == [str(left_per_file[file.path])], file.path
            assert NOTE.search(file.content).start() < file.content.index(render.END)  # type: ignore[union-attr]
        else:
            assert notes == []


def test_agents_md_keeps_most_of_a_file_and_nests_the_scoped_ones() -> None:
    budgeted = within_budget("agents_md", corpus())
    paths = [f.path for f in budgeted.rendered.files]
    assert paths == ["AGENTS.md", "docs/AGENTS.md", "src/web/AGENTS.md", "src/web/api/AGENTS.md"]
    assert budgeted.left_out and budgeted.left_out[0][1].startswith("over the 32,000-character budget of AGENTS.md")
    assert "_37 more pattern(s) for `docs/` were left out" in budgeted.rendered.files[1].content
    for file in budgeted.rendered.files:
        assert len(file.content) > 30_000  # full, not a few patterns and much room left


def test_greedy_a_pattern_too_big_for_its_file_is_left_out_and_later_ones_still_go_in() -> None:
    small, huge, after = pattern(1, []), pattern(2, [], chars=60_000), pattern(3, [])
    budgeted = within_budget("claude_md", [small, huge, after])
    assert [p.id for p in budgeted.included] == [1, 3]
    [(left, reason)] = budgeted.left_out
    assert left.id == 2 and reason.startswith("over the 40,000-character budget of CLAUDE.md (it needs 60,")
    [file] = budgeted.rendered.files
    assert NOTE.findall(file.content) == ["1"] and "Rule 3\n" in file.content


def test_a_rule_file_over_the_budget_is_left_out_whole() -> None:
    """A 60 KB Windsurf rule: Windsurf would truncate it at 12,000 characters; it is not cut here."""
    budgeted = within_budget("windsurf", [pattern(1, ["*.py"], chars=60_000), pattern(2, ["*.py"])])
    assert [f.path for f in budgeted.rendered.files] == [".windsurf/rules/aletheia-rule-2-2.md"]
    [(left, reason)] = budgeted.left_out
    assert left.id == 1
    assert reason.startswith("its file .windsurf/rules/aletheia-rule-1-1.md would have 60,")
    assert reason.endswith("over the 12,000-character budget of a file")


def test_when_everything_fits_the_files_are_those_render_writes() -> None:
    patterns = corpus()[:20]
    for fmt in CONTEXT_FORMATS:
        budgeted = within_budget(fmt, patterns)
        assert budgeted.left_out == [] and budgeted.included == patterns
        assert budgeted.rendered == render.render(fmt, patterns)


def test_the_left_out_line_counts_in_the_budget() -> None:
    """A budget a few characters short of holding every pattern: one is left out, and the file with
    its note is still within the budget, exactly sized."""
    patterns = [pattern(i, []) for i in range(1, 6)]
    full = len(render.render("agents_md", patterns).files[0].content)
    for limit in range(full - 120, full):
        budgeted = within_budget("agents_md", patterns, max_chars=limit)
        [file] = budgeted.rendered.files
        assert len(file.content) <= limit and budgeted.left_out


def test_a_sections_size_is_known_without_rendering_it() -> None:
    section = render.Section("gemini_md", "src/web/GEMINI.md")
    for p in corpus()[:30]:
        before, cost = section.size(), section.cost(p)
        section.add(p)
        assert section.size() == before + cost
        for left in (0, 1, 9, 10, 1234):
            assert section.size(left) == len(section.content(left))


def test_budgets_are_bounded() -> None:
    assert set(DEFAULT_MAX_CHARS) == set(CONTEXT_FORMATS)
    assert all(MIN_FILE_CHARS <= v <= MAX_FILE_CHARS for v in DEFAULT_MAX_CHARS.values())
    with pytest.raises(InvalidInputError, match="between 1,000 and 100,000 characters"):
        within_budget("agents_md", corpus(), max_chars=MAX_FILE_CHARS + 1)
    with pytest.raises(InvalidInputError, match="between 1,000 and 100,000 characters"):
        within_budget("agents_md", corpus(), max_chars=10)
    with pytest.raises(InvalidInputError, match="Unknown format"):
        within_budget("word_doc", corpus())
    assert all(len(f.content) <= MAX_FILE_CHARS
               for f in within_budget("cline", corpus(), max_chars=MAX_FILE_CHARS).rendered.files)


def test_no_file_is_over_the_budget_even_when_its_frame_alone_would_be() -> None:
    """A very deep folder's file names the folder in its heading and in its left-out line: with a small
    budget that frame alone is over it, so the file is not written and its patterns are left out, saying why."""
    folder = "/".join(["d" * 60] * 8)
    patterns = [pattern(1, [f"{folder}/**"], chars=2_000), pattern(2, [f"{folder}/**"], chars=50),
                pattern(3, [], chars=50)]
    budgeted = within_budget("agents_md", patterns, max_chars=1_000)
    assert [(f.path, f.pattern_ids) for f in budgeted.rendered.files] == [("AGENTS.md", [3])]
    assert all(len(f.content) <= 1_000 for f in budgeted.rendered.files)
    assert [(p.id, "take" in reason) for p, reason in budgeted.left_out] == [(1, True), (2, True)]
    assert "its heading and left-out line, which name the folder" in budgeted.left_out[0][1]
