"""`aletheia-mcp context generate` sized for a model: a budget per file (--max-chars), the most
relevant patterns first, and what was left out said, through the CLI in a subprocess."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from mcp_server.app_context import open_app
from mcp_server.schemas import CONTEXT_FORMATS
from mcp_server.services.patterns import PatternInput
from tests.helpers import make_repository, make_settings, run_cli

pytestmark = pytest.mark.anyio

ORIGIN = "https://github.com/org/app.git"
PROJECT = "github.com/org/app"
BODY = ("Keep functions small and name them for what they do. Validate input at the edge, raise domain "
        "errors, and log with context. ")
CODEX_AGENTS_MD_BUDGET = 32_000  # the default for agents_md: under Codex's 32 KiB


async def store_patterns(database_url: str, tmp_path: Path) -> None:
    """300 patterns of ~1.5 KB: 10 always-apply (5 the project's), one for the 40 Python files, one for
    the single shell script, 12 for the 5 text files, and 276 for file types the repository does not
    have."""
    settings = make_settings(database_url, tmp_path)
    items = []
    for index in range(300):
        if index < 10:
            title, globs, project = f"Always {index}", [], PROJECT if index < 5 else None
        elif index == 10:
            title, globs, project = "Wide python", ["**/*.py"], None
        elif index == 11:
            title, globs, project = "Narrow shell", ["**/*.sh"], None
        elif index < 24:
            title, globs, project = f"Text {index}", ["**/*.txt"], None
        else:
            title, globs, project = f"Unused {index:03}", [f"**/*.x{index}"], None
        items.append(PatternInput.build(settings, content=f"Rule number {index}. " + BODY * 11, title=title,
                                        target_contexts=globs, project=project))
    async with open_app(settings) as app:
        await app.patterns.upsert_many(items)


def tracked_repository(path: Path) -> Path:
    repository = make_repository(path, origin=ORIGIN)
    names = [f"src/pkg{i % 4}/mod{i}.py" for i in range(40)] + ["tools/release.sh"]
    for name in names + [f"notes/n{i}.txt" for i in range(5)]:
        (repository / name).parent.mkdir(parents=True, exist_ok=True)
        (repository / name).write_text("x\n")
    subprocess.run(["git", "-C", str(repository), "add", "-A"], check=True)
    return repository


async def test_generate_fits_the_budget_and_says_what_it_left_out(database_url: str, tmp_path: Path) -> None:
    await store_patterns(database_url, tmp_path)
    repository = tracked_repository(tmp_path / "app")

    written = await run_cli(["context", "generate", "--format", "agents_md"], repository, database_url)

    assert written.returncode == 0, written.stderr
    agents_md = (repository / "AGENTS.md").read_text()
    assert len(agents_md) <= CODEX_AGENTS_MD_BUDGET
    assert "### Always 0" in agents_md and "### Wide python" in agents_md and "### Narrow shell" not in agents_md
    lines = written.stdout.splitlines()
    assert lines[0] == "created AGENTS.md"
    [summary] = [m for line in lines if (m := re.fullmatch(r"(\d+) pattern\(s\) left out \((\d+) included\):", line))]
    left, included = int(summary[1]), int(summary[2])
    assert left + included == 300 and included >= 11
    listed = [line for line in lines if line.startswith("  ") and "budget of AGENTS.md" in line]
    # The most relevant of those left out first: the text rules that did not fit (5 files each), then
    # the shell one (1 file), then those for no file of the repository.
    titles = [line.split(":")[0].split(maxsplit=1)[1] for line in listed]
    narrow = titles.index("Narrow shell")
    assert len(titles) == 5 and all(t.startswith("Text") for t in titles[:narrow])
    assert all(t.startswith("Unused") for t in titles[narrow + 1:])
    assert f"... and {left - 5} more: run again with --show-left-out" in written.stdout

    # --check: stdout is the diff (none here), what was left out goes to stderr.
    checked = await run_cli(["context", "generate", "--format", "agents_md", "--check", "--show-left-out"],
                            repository, database_url)
    assert checked.returncode == 0 and checked.stdout == "Up to date.\n"
    assert f"{left} pattern(s) left out ({included} included):" in checked.stderr
    assert len([line for line in checked.stderr.splitlines() if "budget of AGENTS.md" in line]) == left


async def test_a_budget_over_the_maximum_is_refused(database_url: str, tmp_path: Path) -> None:
    repository = tracked_repository(tmp_path / "app")

    refused = await run_cli(["context", "generate", "--format", "agents_md", "--max-chars", "200000"], repository,
                            database_url)

    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "`max_chars` is 200,000" in refused.stderr and "100,000" in refused.stderr
    assert not (repository / "AGENTS.md").exists()


async def test_a_root_outside_any_repository_still_generates_and_says_so(database_url: str, tmp_path: Path) -> None:
    await store_patterns(database_url, tmp_path)
    plain = tmp_path / "plain"
    plain.mkdir()

    written = await run_cli(["context", "generate", "--format", "agents_md", "--max-chars", "8000"], plain,
                            database_url)

    assert written.returncode == 0, written.stderr
    assert "is not in a git repository, so the patterns were not ranked by the files they apply to." in written.stdout
    assert len((plain / "AGENTS.md").read_text()) <= 8_000
    assert "pattern(s) left out" in written.stdout


async def test_paths_in_notes_are_printed_as_they_are(database_url: str, tmp_path: Path) -> None:
    # Rich markup would eat `[b]` and refuse `[/x]` (a MarkupError traceback) in a folder's name.
    await store_patterns(database_url, tmp_path)
    plain = tmp_path / "notes [" / "x] [b]"  # (printed: `notes [/x] [b]`)
    plain.mkdir(parents=True)

    written = await run_cli(["context", "generate", "--format", "agents_md", "--max-chars", "8000"], plain,
                            database_url)

    assert written.returncode == 0, written.stderr
    assert f"{plain} is not in a git repository" in written.stdout


async def test_a_root_inside_a_repository_is_refused_naming_its_top(database_url: str, tmp_path: Path) -> None:
    # The patterns' globs and the ranking are the repository's: from packages/web, `src/**` would be
    # written to packages/web/src/AGENTS.md and only part of the tree swept.
    await store_patterns(database_url, tmp_path)
    repository = tracked_repository(tmp_path / "app")
    sub_folder = repository / "src" / "pkg0"

    refused = await run_cli(["context", "generate", "--format", "agents_md"], sub_folder, database_url)
    by_option = await run_cli(["context", "generate", "--format", "agents_md", "--root", "src/pkg0"], repository,
                              database_url)

    for result in (refused, by_option):
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert f"is inside the git repository at {repository.resolve()}" in result.stderr
        assert f"--root {repository.resolve()}" in result.stderr
    assert not list(repository.rglob("AGENTS.md"))  # nothing written
    written = await run_cli(["context", "generate", "--format", "agents_md", "--root", str(repository)], sub_folder,
                            database_url)
    assert written.returncode == 0 and (repository / "AGENTS.md").is_file()


async def test_format_help_names_every_format(database_url: str, tmp_path: Path) -> None:
    shown = await run_cli(["context", "generate", "--help"], tmp_path, database_url)
    assert shown.returncode == 0
    text = " ".join(shown.stdout.split())
    assert all(fmt in text for fmt in CONTEXT_FORMATS), text
    assert "--max-chars" in text
