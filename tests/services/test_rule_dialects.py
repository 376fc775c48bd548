"""Imported rule files apply to the files their tool would attach them to (rules/dialects.py), end to
end: files on disk, `patterns import` (the rule-files service), a real database, and find_patterns
through the real MCP client."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from mcp_server.app_context import open_app
from mcp_server.server import create_server
from mcp_server.settings import Settings
from tests.helpers import call, sql, write_tree

pytestmark = pytest.mark.anyio

RULES = {
    ".cursor/rules/build.mdc": "---\ndescription: Build files\nglobs: Makefile, *.cmake\nalwaysApply: false\n---\n"
                               "Keep build targets phony.\n",
    ".cursor/rules/src-top.mdc": "---\ndescription: Top of src\nglobs: src/*\nalwaysApply: false\n---\n"
                                 "Only the entry points live here.\n",
    ".github/instructions/ts.instructions.md": "---\napplyTo: 'src/**/*.TS'\ndescription: TypeScript\n---\n"
                                              "Strict mode everywhere.\n",
}


async def titles_for(client: Client, path: str) -> set[str]:
    found = await call(client, "find_patterns", {"file_path": path})
    return {pattern["title"] for pattern in found["results"]}


async def test_imported_globs_apply_as_their_tools_mean(settings: Settings, database_url: str,
                                                        tmp_path: Path) -> None:
    write_tree(tmp_path, RULES)
    async with open_app(settings, load_in_background=False) as app:
        report = await app.rule_files.import_files([tmp_path / ".cursor", tmp_path / ".github"])
    assert (report.created, report.problems) == (3, [])
    rows = await sql(database_url, "SELECT title, target_contexts, metadata->'globs_ignore_case' AS ignore_case "
                                   "FROM eng_patterns")
    stored = {r["title"]: (r["target_contexts"], r["ignore_case"]) for r in rows}
    assert stored == {"Build files": (["/Makefile", "/*.cmake"], None),
                      "Top of src": (["src/*", "!src/*/**"], None),
                      "TypeScript": (["**/src/**/*.TS"], "true")}

    async with Client(create_server(settings)) as client:
        await call(client, "add_pattern", {"title": "Python", "content": "Type hints.", "target_contexts": ["*.py"]})
        # Cursor: `Makefile` and `*.cmake` are the root's only.
        assert await titles_for(client, "Makefile") == {"Build files"}
        assert await titles_for(client, "x.cmake") == {"Build files"}
        assert await titles_for(client, "sub/Makefile") == set()
        assert await titles_for(client, "sub/x.cmake") == set()
        # Cursor: `src/*` is the files directly in src/.
        assert await titles_for(client, "src/main.c") == {"Top of src"}
        assert await titles_for(client, "src/lib/util.c") == set()
        # Copilot: at any depth, ignoring case.
        assert await titles_for(client, "pkg/src/a.ts") == {"TypeScript"}
        assert await titles_for(client, "SRC/Deep/B.Ts") == {"TypeScript"}
        assert await titles_for(client, "pkg/lib/a.ts") == set()
        # A pattern stored as before (plain `*.py`): any depth, case-sensitive, as it always was.
        assert await titles_for(client, "a/b/c.py") == {"Python"}
        assert await titles_for(client, "c.PY") == set()


async def test_a_pattern_stored_before_keeps_matching(settings: Settings, database_url: str) -> None:
    """Rows written before dialects (globs and keys as the old code stored them, no ignore-case flag)
    are found as before."""
    async with Client(create_server(settings)) as client:
        await call(client, "add_pattern", {"title": "Python", "content": "Type hints.", "target_contexts": ["*.py"]})
        await sql(database_url, "UPDATE eng_patterns SET context_keys = '{e:py}', metadata = '{}'::jsonb")
        await call(client, "add_pattern", {"title": "Tests", "content": "Arrange, act, assert.",
                                           "target_contexts": ["tests"]})
        assert await titles_for(client, "pkg/api/users.py") == {"Python"}
        assert await titles_for(client, "users.py") == {"Python"}
        # `tests` (git: the folder at any depth) is found for the files inside it, too.
        assert await titles_for(client, "pkg/tests/test_users.py") == {"Python", "Tests"}


async def test_an_exclusion_written_first_still_excludes(settings: Settings, database_url: str,
                                                        tmp_path: Path) -> None:
    """`globs: "!src/gen/**, src/**"`: the exclusion excludes from the whole list, wherever it is written
    (stored after the includes: canonical globs are read in order)."""
    rule = tmp_path / ".cursor" / "rules" / "handwritten.mdc"
    rule.parent.mkdir(parents=True)
    rule.write_text('---\ndescription: Hand-written code\nglobs: "!src/gen/**, src/**"\nalwaysApply: false\n---\n'
                    "Generated code is never edited by hand.\n")
    async with open_app(settings, load_in_background=False) as app:
        report = await app.rule_files.import_files([tmp_path / ".cursor"])
    assert (report.created, report.problems) == (1, [])
    rows = await sql(database_url, "SELECT target_contexts FROM eng_patterns")
    assert [r["target_contexts"] for r in rows] == [["src/**", "!src/gen/**"]]

    async with Client(create_server(settings)) as client:
        assert await titles_for(client, "src/api/users.ts") == {"Hand-written code"}
        assert await titles_for(client, "src/gen/client.ts") == set()
        assert await titles_for(client, "src/gen/v1/models.ts") == set()
