"""A hostile glob must not freeze the server (issue 16, item 2).

Python's `re` backtracked for minutes on `*a*a*a*a*a*a*a*a*a*ab` against "a" * 80, in the event
loop: every user's calls waited and SIGTERM went unheard. The hang tests run the server as a
real client starts it (a stdio subprocess), so a frozen server fails the test at the guard's
deadline instead of freezing the test too; the stdio client kills the server on the way out.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from mcp_server.rules.globs import MAX_GLOB_CHARS, MAX_GLOB_WILDCARDS, MAX_PATH_CHARS
from tests.helpers import call, call_error, clean_env, sql

pytestmark = pytest.mark.anyio

HOSTILE = "*a*a*a*a*a*a*a*a*a*ab"  # within the limits: stored, and must match in linear time
LEGACY = "*a" * 24 + "b"  # beyond the wildcard limit: only a row written before the limits has it
GUARD_S = 10  # the calls take milliseconds; before the fix, minutes
TOO_MANY_WILDCARDS = f"a glob may have at most {MAX_GLOB_WILDCARDS} (each `*`, `**`, `?` and `[...]` counts)"


def stdio_server(database_url: str, cwd: Path) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "mcp_server", "serve"], cwd=str(cwd),
                                 env=clean_env(DATABASE_URL=database_url, EMBEDDING_PROVIDER="hashing"))


async def add(client: Client, title: str, globs: list[str]) -> int:
    created = await call(client, "add_pattern", {"content": f"{title}: follow it.", "title": title,
                                                 "target_contexts": globs})
    return int(created["id"])


async def found_ids(client: Client, file_path: str) -> set[int]:
    with anyio.fail_after(GUARD_S):
        found = await call(client, "find_patterns", {"file_path": file_path})
    return {r["id"] for r in found["results"]}


async def test_a_hostile_glob_does_not_freeze_find_patterns(database_url: str, cli_cwd: Path) -> None:
    async with Client(stdio_server(database_url, cli_cwd)) as client:
        everywhere = await add(client, "Newline at the end", ["**/*"])
        a_files = await add(client, "A files", ["a*"])
        hostile = await add(client, "Planted", [HOSTILE])

        assert await found_ids(client, "a" * 80) == {everywhere, a_files}
        assert hostile in await found_ids(client, "src/" + "a" * 30 + "b")  # still a glob that works
        with anyio.fail_after(GUARD_S):
            assert (await call(client, "server_status"))["database"]  # the server still answers


async def test_a_glob_stored_before_the_limits_never_matches(database_url: str, cli_cwd: Path) -> None:
    async with Client(stdio_server(database_url, cli_cwd)) as client:
        a_files = await add(client, "A files", ["a*"])
        legacy = await add(client, "Legacy", ["src/**"])
        await sql(database_url, "UPDATE eng_patterns SET target_contexts = $1, context_keys = '{*}' WHERE id = $2",
                  [LEGACY], legacy)

        assert await found_ids(client, "a" * 80) == {a_files}  # (Python's `re` backtracked for hours here)
        assert await found_ids(client, "a" * 80 + "b") == {a_files}  # would match, but the glob is refused
        got = await call(client, "get_pattern", {"id": legacy})
        assert got["target_contexts"] == [LEGACY]  # nothing stored is lost
        # Editing the pattern asks for valid globs, and giving them repairs it.
        assert TOO_MANY_WILDCARDS in await call_error(client, "update_pattern", {"id": legacy, "content": "New."})
        await call(client, "update_pattern", {"id": legacy, "target_contexts": ["src/**"]})
        assert legacy in await found_ids(client, "src/app.py")


def write_rule(root: Path, name: str, globs: str) -> None:
    path = root / ".cursor" / "rules" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\ndescription: {name}\nglobs: {globs}\nalwaysApply: false\n---\n# {name}\n\nFollow it.\n")


async def test_a_hostile_mdc_imported_does_not_freeze_find_patterns(database_url: str, tmp_path: Path,
                                                                    cli_cwd: Path) -> None:
    repo = tmp_path / "repo"
    write_rule(repo, "planted.mdc", HOSTILE)  # unquoted, as Cursor writes it (`*a` is no YAML alias here)
    write_rule(repo, "react.mdc", "a*, *.tsx")
    write_rule(repo, "huge.mdc", LEGACY)
    run = functools.partial(subprocess.run, [sys.executable, "-m", "mcp_server", "patterns", "import", "."],
                            cwd=repo, env=clean_env(DATABASE_URL=database_url, EMBEDDING_PROVIDER="hashing"),
                            capture_output=True, text=True, timeout=300)
    imported = await anyio.to_thread.run_sync(run)

    assert imported.returncode == 2, imported.stdout + imported.stderr
    assert "3 file(s): 2 pattern(s) created, 0 updated, 0 unchanged, 1 file(s) with problems." in imported.stdout
    assert "huge.mdc" in imported.stderr and TOO_MANY_WILDCARDS in imported.stderr
    ids = {r["title"]: r["id"] for r in await sql(database_url, "SELECT id, title FROM eng_patterns")}
    assert set(ids) == {"planted.mdc", "react.mdc"}

    async with Client(stdio_server(database_url, cli_cwd)) as client:
        assert await found_ids(client, "a" * 80) == {ids["react.mdc"]}
        # (Cursor's slashless globs are the root's: rules/dialects.py)
        assert await found_ids(client, "a" * 10 + "b") == {ids["planted.mdc"], ids["react.mdc"]}


@pytest.mark.parametrize(("tool", "arguments", "expected"), [
    ("add_pattern", {"content": "x", "target_contexts": ["src/" + "a" * MAX_GLOB_CHARS]},
     f"is {MAX_GLOB_CHARS + 4} characters long; a glob may have at most {MAX_GLOB_CHARS}: name a folder"),
    ("add_pattern", {"content": "x", "target_contexts": ["api/*.py", LEGACY]},
     f"has 24 wildcards; {TOO_MANY_WILDCARDS}"),
    ("update_pattern", {"id": 0, "target_contexts": ["?" * (MAX_GLOB_WILDCARDS + 1)]},
     f"has {MAX_GLOB_WILDCARDS + 1} wildcards"),
    ("find_patterns", {"file_path": "a/" * (MAX_PATH_CHARS // 2) + "b"},
     f"`file_path` is {MAX_PATH_CHARS + 1:,} characters long; at most {MAX_PATH_CHARS:,} are accepted"),
    ("generate_context_file", {"format": "agents_md", "paths": ["x" * (MAX_PATH_CHARS + 1)]},
     f"at most {MAX_PATH_CHARS:,} are accepted"),
    # An absolute path is checked before it is resolved against the project's root (or echoed).
    ("find_patterns", {"file_path": "/" + "a" * 100_000},
     f"`file_path` is 100,001 characters long; at most {MAX_PATH_CHARS:,} are accepted"),
])
async def test_globs_and_paths_beyond_the_limits_are_refused(client: Client, database_url: str, tool: str,
                                                             arguments: dict[str, object], expected: str) -> None:
    kept = await add(client, "Kept", ["*.py"])
    if "id" in arguments:
        arguments = {**arguments, "id": kept}
    before = [tuple(r) for r in await sql(database_url, "SELECT * FROM eng_patterns")]
    assert expected in await call_error(client, tool, arguments)
    assert [tuple(r) for r in await sql(database_url, "SELECT * FROM eng_patterns")] == before
    assert kept in await found_ids(client, "src/app.py")  # and the rest keeps working
