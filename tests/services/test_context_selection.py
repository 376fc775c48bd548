"""Which patterns go into a context file: the files git tracks, how many each pattern applies to,
the relevance order, and RuleFileService.context on the real database (budget, left out)."""

from __future__ import annotations

import random
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mcp_server.app_context import open_app
from mcp_server.errors import InvalidInputError
from mcp_server.rules.budget import DEFAULT_MAX_CHARS
from mcp_server.rules.globs import match_contexts
from mcp_server.schemas import Pattern
from mcp_server.services.patterns import PatternInput
from mcp_server.services.repository_files import count_applying, relevance_order, tracked_files
from mcp_server.settings import Settings
from tests.helpers import make_repository

ORIGIN = "https://github.com/org/app.git"
PROJECT = "github.com/org/app"


def pattern(pattern_id: int, globs: list[str] | None = None, project: str | None = None,
            **metadata: Any) -> Pattern:
    return Pattern(id=pattern_id, title=f"Rule {pattern_id}", content="x", tags=[], strategy_type=None,
                   target_contexts=globs or [], author=None, metadata=metadata, last_updated=datetime.now(UTC),
                   project=project)


def add_tracked(repository: Path, paths: list[str]) -> None:
    for name in paths:
        target = repository / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("x\n")
    subprocess.run(["git", "-C", str(repository), "add", "-A"], check=True)


# --- the tracked files ---------------------------------------------------------------------------


def test_tracked_files_are_what_git_tracks(tmp_path: Path) -> None:
    repository = make_repository(tmp_path / "repo")
    add_tracked(repository, ["src/app.py", "src/web/ü.ts", "name with spaces.md", "README.md"])
    (repository / "untracked.py").write_text("x\n")
    (repository / ".gitignore").write_text("ignored/\n")

    listed = tracked_files(repository)

    assert listed.note is None
    assert sorted(listed.paths) == ["README.md", "name with spaces.md", "src/app.py", "src/web/ü.ts"]


def test_tracked_files_are_capped_and_say_so(tmp_path: Path) -> None:
    repository = make_repository(tmp_path / "repo")
    add_tracked(repository, [f"f{i}.py" for i in range(5)])

    listed = tracked_files(repository, limit=3)

    assert len(listed.paths) == 3 and listed.note == "Only the first 3 tracked files were counted."
    assert tracked_files(repository, limit=5).note is None  # exactly the limit: all of them


def test_no_repository_or_no_git_gives_no_files_and_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.py").write_text("x\n")
    failed = tracked_files(plain)
    assert failed.paths == [] and failed.note is not None
    assert "`git ls-files` failed" in failed.note and "not a git repository" in failed.note

    gone = tracked_files(tmp_path / "gone")
    assert gone.paths == [] and gone.note is not None and "does not exist" in gone.note

    repository = make_repository(tmp_path / "repo")
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs-here"))
    missing = tracked_files(repository)
    assert missing.paths == [] and missing.note is not None and "git is not installed" in missing.note


# --- counting ------------------------------------------------------------------------------------


def test_counts_are_what_match_contexts_says_file_by_file() -> None:
    rng = random.Random(7)
    folders = ["src", "src/web", "src/api", "tests", "docs", "Lib", "tools/ci"]
    paths = sorted({f"{rng.choice(folders)}/{rng.choice(['a', 'b', 'test_c', 'Makefile'])}{i % 9}."
                    f"{rng.choice(['py', 'ts', 'tsx', 'md', 'PY'])}" for i in range(600)} | {"Makefile", "setup.py"})
    globs = [["**/*.py"], ["*.py"], ["src/**"], ["src/**/*.{ts,tsx}"], ["**/test_*"], ["src/**", "!src/web/**"],
             ["docs/", "tests/**/*.md"], ["Makefile"], ["src/*/a*.ts"], ["**/*.{py,md}", "!tests/**", "tests/a*"],
             ["nothing/**"], ["lib/**"]]
    patterns = [pattern(i, g) for i, g in enumerate(globs, start=1)]
    patterns += [pattern(50, ["**/*.py"], globs_ignore_case=True), pattern(51, ["lib/**"], globs_ignore_case=True),
                 pattern(52, ["**/*", "!**/*.py"], globs_ignore_case=True)]
    patterns.append(pattern(100))  # always
    patterns.append(pattern(101, attach="requested", description="When writing migrations"))

    counted = count_applying(patterns, paths)

    assert counted.every == 1 and counted.note is None
    for p in patterns[:len(globs) + 3]:
        ignore_case = bool(p.metadata.get("globs_ignore_case"))
        expected = sum(match_contexts(p.target_contexts, path, ignore_case).applies for path in paths)
        assert counted.counts[p.id] == expected, p.target_contexts
    assert counted.counts[100] == len(paths) and counted.counts[101] == 0
    # Copilot's globs (VS Code matches them ignoring case): `.PY` and `Lib/` count too.
    assert counted.counts[50] > counted.counts[1] and counted.counts[51] > counted.counts[12] == 0
    assert counted.counts[1] == counted.counts[2] > 0  # (`*.py`: at any depth, as in .gitignore)


def test_a_large_count_checks_every_nth_file_and_keeps_the_order() -> None:
    paths = [f"src/m{i}/f{i}.py" for i in range(20_000)] + [f"tools/t{i}.sh" for i in range(2_000)]
    patterns = [pattern(1, ["**/*.py"]), pattern(2, ["**/tools/**"]), pattern(3, ["tools/t1*.sh"])]

    counted = count_applying(patterns, paths, max_checks=5_000)

    assert counted.every > 1 and counted.note is not None and "estimates" in counted.note
    assert abs(counted.counts[1] - 20_000) <= counted.every * 2
    assert counted.counts[1] > counted.counts[2] > counted.counts[3] > 0
    exact = count_applying(patterns, paths)
    assert exact.every == 1 and exact.counts == {1: 20_000, 2: 2_000, 3: 1_111}


def test_exclusions_are_matched_once_each_and_count_in_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    # Lone-`*` imports give many patterns an exclusion: each must be matched once, within the bound.
    paths = sorted(f"src/gen{i % 40}/f{i}.ts" for i in range(4_000))  # (as git lists them)
    patterns = [pattern(i, ["src/**", f"!src/gen{i % 20}/**"]) for i in range(1, 101)]
    checks = 0

    def counted_glob_matches(glob: str, path: str, ignore_case: bool = False) -> bool:
        nonlocal checks
        checks += 1
        return match_contexts([glob.removeprefix("!")], path, ignore_case).applies

    monkeypatch.setattr("mcp_server.services.repository_files.glob_matches", counted_glob_matches)
    counted = count_applying(patterns, paths, max_checks=20_000)

    assert checks <= 20_000 * 1.1  # (about: the plan comes from a probe of the files)
    assert counted.every > 1 and counted.note is not None
    assert all(abs(counted.counts[p.id] - 3_900) <= counted.every * 3 for p in patterns), counted.counts
    monkeypatch.undo()
    exact = count_applying(patterns, paths)
    assert exact.every == 1 and set(exact.counts.values()) == {3_900}


# --- the order -----------------------------------------------------------------------------------


def test_relevance_order() -> None:
    patterns = [
        pattern(1, ["**/*.sh"]),  # 1 file
        pattern(2, ["**/*.py"]),  # 40 files
        pattern(3),  # always, global
        pattern(4, ["docs/**"], project=PROJECT),  # 1 file, but the project's own
        pattern(5, attach="manual"),
        pattern(6, attach="requested", description="When writing a migration"),
        pattern(7, project=PROJECT),  # always, the project's
        pattern(8, ["**/*.py"]),  # same count as 2: by id
        pattern(9, attach="requested", description="When releasing", project=PROJECT),
        pattern(10, ["**/*.rs"]),  # no file
    ]
    counts = {1: 1, 2: 40, 3: 50, 4: 1, 5: 0, 6: 0, 7: 50, 8: 40, 9: 0, 10: 0}

    ordered = [p.id for p in relevance_order(patterns, counts)]

    assert ordered == [7, 3, 9, 6, 4, 2, 8, 1, 10, 5]
    # Without counts (no repository): the same tiers, then by id.
    assert [p.id for p in relevance_order(patterns, {})] == [7, 3, 9, 6, 4, 1, 2, 8, 10, 5]


# --- RuleFileService.context on the real database ------------------------------------------------

BODY = ("Keep functions small and name them for what they do. Validate input at the edge, raise domain "
        "errors, and log with context. ")


def rule_text(index: int) -> str:
    return f"Rule number {index}. " + BODY * 11  # ~1.5 KB, as the public rule files average


def corpus(settings: Settings) -> tuple[list[PatternInput], dict[str, str]]:
    """300 patterns: 10 always-apply (5 the project's), one for the 40 Python files, one for the single
    shell script, 12 for the 5 text files, and 276 for file types the repository does not have."""
    items: list[PatternInput] = []

    def add(title: str, globs: list[str], project: str | None = None) -> None:
        items.append(PatternInput.build(settings, content=rule_text(len(items)), title=title,
                                        target_contexts=globs, project=project))

    for i in range(10):
        add(f"Always {i}", [], PROJECT if i < 5 else None)
    add("Wide python", ["**/*.py"])
    add("Narrow shell", ["**/*.sh"])
    for i in range(12):
        add(f"Text {i}", ["**/*.txt"])
    for i in range(276):
        add(f"Unused {i:03}", [f"**/*.x{i}"])
    files = {f"src/pkg{i % 4}/mod{i}.py": "x\n" for i in range(40)}
    files |= {"tools/release.sh": "x\n"} | {f"notes/n{i}.txt": "x\n" for i in range(5)}
    return items, files


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    return make_repository(tmp_path / "app", origin=ORIGIN)


@pytest.mark.anyio
async def test_context_is_ranked_by_the_repository_and_fits_the_budget(
        settings: Settings, repository: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    items, files = corpus(settings)
    add_tracked(repository, list(files))
    monkeypatch.chdir(repository)  # the server's project: this repository (the MCP tool has no --root)
    async with open_app(settings) as app:
        await app.patterns.upsert_many(items)
        generated = await app.rule_files.context("agents_md", root=repository)
        via_tool = await app.rule_files.generate_page("agents_md")  # the MCP tool's one call: its first page
        by_id = {p.id: p.title for p in await app.patterns.all()}

    result = generated.files
    assert generated.files_counted == 46 and generated.notes == []
    # The tool's call ranks by the current project's repository too. The file fits a response, so it
    # comes whole (not summarised) even when the left-out list must give way (the rest counted).
    assert via_tool.files == result.files and not via_tool.summarised and via_tool.next_cursor is None
    assert via_tool.left_out == result.left_out[:len(via_tool.left_out)]
    assert len(via_tool.left_out) + via_tool.left_out_unlisted == len(result.left_out)
    assert [f.path for f in result.files] == ["AGENTS.md"]
    assert len(result.files[0].content) <= DEFAULT_MAX_CHARS["agents_md"]
    titles = [by_id[i] for i in result.pattern_ids]
    assert titles[:10] == [f"Always {i}" for i in range(10)]  # always-apply first, the project's before
    assert titles[10] == "Wide python" and "Text 0" in titles
    assert "Narrow shell" not in titles and not any(t.startswith("Unused") for t in titles)
    # Everything else is listed as left out, with the reason, most relevant first.
    left = [(by_id[p.id], p.reason) for p in result.left_out]
    assert len(left) == 300 - len(titles) and {p.id for p in result.left_out}.isdisjoint(result.pattern_ids)
    assert all("budget of AGENTS.md" in reason for _, reason in left)
    assert [t for t, _ in left].index("Narrow shell") < [t for t, _ in left].index("Unused 000")


@pytest.mark.anyio
async def test_max_patterns_takes_the_most_relevant_and_lists_the_rest(
        settings: Settings, repository: Path) -> None:
    items, files = corpus(settings)
    add_tracked(repository, list(files))
    async with open_app(settings) as app:
        await app.patterns.upsert_many(items)
        generated = await app.rule_files.context("agents_md", max_patterns=11, max_chars=100_000,
                                                 project=PROJECT, root=repository)
        by_id = {p.id: p.title for p in await app.patterns.all()}
    result = generated.files
    assert [by_id[i] for i in result.pattern_ids][-1] == "Wide python" and len(result.pattern_ids) == 11
    assert len(result.left_out) == 289
    assert result.left_out[0].reason == "beyond max_patterns (11): less relevant than the 11 taken"


@pytest.mark.anyio
async def test_outside_a_repository_generation_still_works_and_says_so(settings: Settings, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    async with open_app(settings) as app:
        await app.patterns.add("Run the tests before pushing.", title="Testing", scope="global")
        await app.patterns.add("Type hints everywhere.", title="Typing", target_contexts=["**/*.py"], scope="global")
        plan = await app.rule_files.plan_context_files(plain, "agents_md")
    assert plan.generated.files_counted == 0
    assert plan.generated.notes == [f"{plain} is not in a git repository, so the patterns were not ranked by the "
                                    "files they apply to."]
    assert len(plan.generated.files.pattern_ids) == 2 and (plain / "AGENTS.md").is_file()


@pytest.mark.anyio
async def test_a_budget_over_the_maximum_is_refused_before_any_work(settings: Settings, tmp_path: Path) -> None:
    async with open_app(settings) as app:
        with pytest.raises(InvalidInputError, match="100,000"):
            await app.rule_files.context("agents_md", max_chars=200_000, root=tmp_path)


@pytest.mark.anyio
async def test_nested_context_files_go_only_in_folders_the_repository_has(
        settings: Settings, repository: Path) -> None:
    """A scoped pattern goes in its folder's AGENTS.md when git tracks files there, else in the
    nearest folder that exists: generating creates no folder of its own (`legacy/` here)."""
    add_tracked(repository, ["src/web/app.tsx", "src/web/api/users.ts", "README.md"])
    async with open_app(settings) as app:
        await app.patterns.add("Function components.", title="Web", target_contexts=["src/web/**/*.tsx"],
                               scope="global")
        await app.patterns.add("Do not extend.", title="Legacy", target_contexts=["legacy/**"], scope="global")
        await app.patterns.add("No new deps.", title="Web vendor", target_contexts=["src/web/vendor/**"],
                               scope="global")
        generated = await app.rule_files.context("agents_md", root=repository)
    placed = {f.path: f.content for f in generated.files.files}
    assert set(placed) == {"AGENTS.md", "src/web/AGENTS.md"}
    assert "### Legacy" in placed["AGENTS.md"]
    assert "### Web\n" in placed["src/web/AGENTS.md"] and "### Web vendor" in placed["src/web/AGENTS.md"]
