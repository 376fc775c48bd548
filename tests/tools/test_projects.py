"""Projects through the real MCP client, in real git repositories made here: a server started in a
repository reads and writes that repository's rows (and the global ones), whichever clone it is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp import Client

from mcp_server.server import create_server
from mcp_server.settings import Settings
from tests.helpers import call, call_error, make_repository

pytestmark = pytest.mark.anyio

A, B = "github.com/org/a", "github.com/org/b"


@asynccontextmanager
async def server_in(directory: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Client]:
    """The server as a client starts it in `directory` (the project comes from there)."""
    monkeypatch.chdir(directory)
    async with Client(create_server(settings)) as client:
        yield client


async def test_two_repositories_keep_their_rows_apart_and_share_the_global_ones(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo_a = make_repository(tmp_path / "a", "git@github.com:Org/A.git")
    repo_b = make_repository(tmp_path / "b", "https://github.com/org/b")
    clone_a = make_repository(tmp_path / "elsewhere" / "a-again", "ssh://git@github.com/org/a.git")

    async with server_in(repo_a, settings, monkeypatch) as client:
        status = await call(client, "server_status")
        assert status["project"] == {"key": A, "detection": "git remote", "root": repo_a.resolve().as_posix()}
        stored = await call(client, "remember", {"content": "Repo A deploys with blue/green."})
        assert stored["project"] == A
        preference = await call(client, "remember", {"content": "I prefer small deploy commits.", "scope": "global"})
        assert preference["project"] is None
        await call(client, "add_pattern", {"content": "A: every deploy script is idempotent.", "title": "A deploys",
                                           "target_contexts": ["deploy/*.sh"]})
        await call(client, "add_pattern", {"content": "Org: deploy scripts use set -eu.", "title": "Org shell",
                                           "target_contexts": ["deploy/*.sh"], "scope": "global"})
        await call(client, "log_exchange", {"messages": [{"role": "user", "content": "how do we deploy A?"}],
                                            "response": "blue/green"})

    (repo_b / "src").mkdir()
    async with server_in(repo_b / "src", settings, monkeypatch) as client:  # started in a subfolder
        recalled = await call(client, "recall", {"query": "deploy", "limit": 10})
        assert [(r["content"], r["project"]) for r in recalled["results"]] == [
            ("I prefer small deploy commits.", None)]
        found = await call(client, "find_patterns", {"file_path": "deploy/run.sh"})
        assert [(p["title"], p["project"]) for p in found["results"]] == [("Org shell", None)]
        assert (await call(client, "search_conversations"))["items"] == []
        everything = await call(client, "recall", {"query": "deploy", "limit": 10, "scope": "all"})
        assert {r["project"] for r in everything["results"]} == {A, None}
        await call(client, "remember", {"content": "Repo B deploys on Fridays."})

    async with server_in(clone_a, settings, monkeypatch) as client:  # a teammate's clone, elsewhere
        recalled = await call(client, "recall", {"query": "deploy", "limit": 10})
        assert sorted(r["content"] for r in recalled["results"]) == [
            "I prefer small deploy commits.", "Repo A deploys with blue/green."]
        found = await call(client, "find_patterns", {"file_path": "deploy/run.sh"})
        # Of the same fit, the project's own pattern comes before the global one.
        assert [p["title"] for p in found["results"]] == ["A deploys", "Org shell"]
        [exchange] = (await call(client, "search_conversations"))["items"]
        assert exchange["project"] == A
        only_global = await call(client, "recall", {"query": "deploy", "limit": 10, "scope": "global"})
        assert [r["content"] for r in only_global["results"]] == ["I prefer small deploy commits."]
        listed = await call(client, "list_memories")
        assert [m["project"] for m in listed["items"]] == [None, A]


async def test_the_same_memory_in_two_projects_is_two_memories(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with server_in(make_repository(tmp_path / "a", "git@github.com:org/a"), settings, monkeypatch) as client:
        first = await call(client, "remember", {"content": "Run the linter before pushing."})
        again = await call(client, "remember", {"content": "Run the linter before pushing."})
        elsewhere = await call(client, "remember", {"content": "Run the linter before pushing.", "project": B})
    assert (first["created"], again["created"], again["id"]) == (True, False, first["id"])
    assert elsewhere["created"] is True and elsewhere["id"] != first["id"] and elsewhere["project"] == B


async def test_an_absolute_file_path_inside_the_repository_matches_like_a_relative_one(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repository(tmp_path / "app", "https://github.com/org/app")
    async with server_in(repo, settings, monkeypatch) as client:
        await call(client, "add_pattern", {"content": "Services live under src.", "title": "src",
                                           "target_contexts": ["src/**"]})
        await call(client, "add_pattern", {"content": "Handlers are thin.", "title": "handlers",
                                           "target_contexts": ["src/api/*.py"]})
        relative = await call(client, "find_patterns", {"file_path": "src/api/users.py"})
        absolute = await call(client, "find_patterns", {"file_path": str(repo / "src" / "api" / "users.py")})
        assert [p["title"] for p in absolute["results"]] == [p["title"] for p in relative["results"]] == [
            "handlers", "src"]
        outside = await call_error(client, "find_patterns", {"file_path": str(tmp_path / "other" / "x.py")})
        assert f"outside the repository of project github.com/org/app ({repo.resolve().as_posix()})" in outside
        escaping = await call_error(client, "find_patterns", {"file_path": f"{repo}/src/../../etc/passwd"})
        assert "outside the repository of project github.com/org/app" in escaping
        assert "NUL character" in await call_error(client, "find_patterns", {"file_path": f"{repo}/src/\x00.py"})
        windows = await call_error(client, "find_patterns", {"file_path": "C:\\work\\app\\src\\x.py"})
        assert "outside the repository of project github.com/org/app" in windows
        # Named for another repository: its root is not known here, so an absolute path cannot be placed.
        named = await call_error(client, "find_patterns", {"file_path": str(repo / "src" / "x.py"),
                                                           "project": "github.com/org/other"})
        assert "is absolute, but project github.com/org/other was named here" in named
        assert "pass the path relative to the repository root" in named


async def test_an_absolute_file_path_without_a_repository_is_a_clear_error(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with server_in(tmp_path, settings, monkeypatch) as client:
        await call(client, "add_pattern", {"content": "Services live under src.", "target_contexts": ["src/**"]})
        assert [p["content"] for p in (await call(client, "find_patterns", {"file_path": "src/x.py"}))["results"]] \
            == ["Services live under src."]
        error = await call_error(client, "find_patterns", {"file_path": "/home/me/app/src/x.py"})
        assert "is absolute, but there is no current project (no git repository)" in error


@pytest.mark.parametrize(("project", "reason"), [
    ("   ", "`project` is blank"),
    ("x" * 201, "`project` is 201 characters; a project name has at most 200"),
    ("org/\x1brepo", "`project` contains a control character"),
])
async def test_a_bad_project_name_is_a_clear_tool_error(client: Client, project: str, reason: str) -> None:
    for tool, arguments in (("remember", {"content": "x"}), ("recall", {"query": "x"}),
                            ("find_patterns", {"query": "x"}), ("search_conversations", {})):
        assert reason in await call_error(client, tool, {**arguments, "project": project})


async def test_a_short_listing_keeps_the_projects_patterns_before_global_ones(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repository(tmp_path / "app", "https://github.com/org/app")
    async with server_in(repo, settings, monkeypatch) as client:
        for title in ("Alpha", "Beta"):  # global rules that sort before the project's own by title
            await call(client, "add_pattern", {"content": f"{title} rule.", "title": title, "scope": "global"})
        await call(client, "add_pattern", {"content": "Our own rule.", "title": "Zulu"})
        found = await call(client, "find_patterns", {"limit": 1})
        assert [p["title"] for p in found["results"]] == ["Zulu"]
        generated = await call(client, "generate_context_file", {"format": "agents_md", "max_patterns": 2})
        text = generated["files"][0]["content"]
        assert "Our own rule." in text and "Alpha rule." in text and "Beta rule." not in text
