"""Pattern results that do not fit MAX_RESPONSE_CHARS are paged or summarised, never cut silently
(issue 19): find_patterns and generate_context_file page with `cursor`, conventions_for summarises,
and provenance records only what was returned."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from mcp_server.rules.render import BEGIN, END
from mcp_server.server import create_server
from tests.helpers import call, call_error, make_settings

pytestmark = pytest.mark.anyio
LIMIT = 4_000
UNLIMITED = 10_000_000
# Globs of different specificity for api/users.py, so the ranking has an order worth keeping.
GLOBS = [["api/users.py"], ["api/*.py"], ["api/**"], ["**/*.py"], []]


def size(result: dict[str, Any]) -> int:
    return len(json.dumps(result, ensure_ascii=False, separators=(",", ":")))


@asynccontextmanager
async def server(database_url: str, tmp_path: Path, limit: int) -> AsyncIterator[Client]:
    async with Client(create_server(make_settings(database_url, tmp_path, max_response_chars=limit))) as client:
        yield client


async def add_patterns(client: Client, count: int, chars: int, *, scoped: bool = True) -> list[int]:
    """`count` patterns of about `chars` characters, with globs of every specificity for api/users.py
    (`scoped` False: none, so that they all apply everywhere)."""
    ids = []
    for i in range(count):
        text = f"Rule {i}: " + " ".join(f"word{i}x{j}" for j in range(chars // 10))
        globs = GLOBS[i % len(GLOBS)] if scoped else []
        ids.append((await call(client, "add_pattern", {"content": text[:chars], "title": f"Rule {i}",
                                                       "target_contexts": globs}))["id"])
    return ids


async def walk(client: Client, tool: str, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page of a paged tool call, checking each fits."""
    pages: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await call(client, tool, arguments | ({"cursor": cursor} if cursor else {}))
        assert size(page) <= LIMIT
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return pages


async def provenance(client: Client) -> list[int]:
    """The pattern ids the session was shown since the last logged exchange."""
    logged = await call(client, "log_exchange", {"messages": [{"role": "user", "content": "q"}], "response": "a"})
    return list((await call(client, "get_conversation", {"id": logged["id"]}))["pattern_ids"])


async def test_find_patterns_pages_walk_the_whole_ranking(database_url: str, tmp_path: Path) -> None:
    # The issue: find_patterns(limit=100) returned 11 results and no cursor.
    arguments = {"file_path": "api/users.py", "limit": 100}
    async with server(database_url, tmp_path, UNLIMITED) as unlimited:
        await add_patterns(unlimited, 40, 900)
        ranking = [p["id"] for p in (await call(unlimited, "find_patterns", arguments))["results"]]
    assert len(ranking) == 40
    async with server(database_url, tmp_path, LIMIT) as client:
        first = await call(client, "find_patterns", arguments)
        # Provenance: only the ids of the page returned.
        assert await provenance(client) == sorted(p["id"] for p in first["results"])
        pages = await walk(client, "find_patterns", arguments)
        assert len(pages) > 1 and all(page["results"] for page in pages) and pages[0] == first
        assert [p["id"] for page in pages for p in page["results"]] == ranking  # none missing, none twice
        assert not any(p["truncated"] for page in pages for p in page["results"])


async def test_a_pattern_larger_than_a_response_comes_alone_and_marked(database_url: str, tmp_path: Path) -> None:
    async with server(database_url, tmp_path, LIMIT) as client:
        small = await add_patterns(client, 3, 300)
        huge_text = "Huge rule. " + "x" * 30_000 + " THE END"
        huge = (await call(client, "add_pattern", {"content": huge_text, "title": "Huge",
                                                   "target_contexts": ["api/users.py"]}))["id"]
        pages = await walk(client, "find_patterns", {"file_path": "api/users.py"})
        [first, *rest] = pages
        assert [p["id"] for p in first["results"]] == [huge]  # most specific: first, alone
        shown = first["results"][0]
        assert shown["truncated"] is True and shown["content_chars"] == len(huge_text)
        assert shown["content"].startswith("Huge rule. xxx") and "THE END" not in shown["content"]
        assert f"aletheia://patterns/{huge}" in shown["content"]
        assert sorted(p["id"] for page in rest for p in page["results"]) == sorted(small)
        resource = await client.read_resource(f"aletheia://patterns/{huge}")
        assert json.loads(resource.contents[0].text)["content"] == huge_text  # type: ignore[union-attr]


async def test_find_patterns_cursor_refused_with_other_arguments(database_url: str, tmp_path: Path) -> None:
    async with server(database_url, tmp_path, LIMIT) as client:
        await add_patterns(client, 20, 900)
        first = await call(client, "find_patterns", {"file_path": "api/users.py", "limit": 50})
        cursor = first["next_cursor"]
        assert cursor is not None
        other = await call_error(client, "find_patterns", {"file_path": "api/other.py", "limit": 50, "cursor": cursor})
        assert "other arguments" in other and "repeat" in other
        bogus = await call_error(client, "find_patterns", {"file_path": "api/users.py", "limit": 50,
                                                           "cursor": "not-a-cursor"})
        assert "not one find_patterns returned" in bogus
        # The ranking changed between two pages: refused rather than paged with a gap or a repeat.
        await call(client, "add_pattern", {"content": "New and most specific.", "target_contexts": ["api/users.py"]})
        changed = await call_error(client, "find_patterns", {"file_path": "api/users.py", "limit": 50,
                                                             "cursor": cursor})
        assert "changed since this cursor" in changed and "without `cursor`" in changed


async def test_generate_context_file_pages_whole_files(database_url: str, tmp_path: Path) -> None:
    # The issue: 7 files came back while `pattern_ids` listed 200.
    arguments = {"format": "cursor_mdc", "max_patterns": 60}
    async with server(database_url, tmp_path, UNLIMITED) as unlimited:
        ids = await add_patterns(unlimited, 30, 700)
        complete = await call(unlimited, "generate_context_file", arguments)
    assert sorted(complete["pattern_ids"]) == ids and len(complete["files"]) == 30 and not complete["left_out"]
    async with server(database_url, tmp_path, LIMIT) as client:
        first = await call(client, "generate_context_file", arguments)
        assert 0 < len(first["pattern_ids"]) < len(ids)
        assert await provenance(client) == sorted(first["pattern_ids"])  # only the page's patterns
        pages = await walk(client, "generate_context_file", arguments)
        assert len(pages) > 1 and all(page["files"] for page in pages)
        files = [file for page in pages for file in page["files"]]
        assert files == complete["files"]  # every file, whole, in order, once
        for page in pages:  # each page names the patterns of its own files
            assert page["pattern_ids"] == [i for file in page["files"] for i in file["pattern_ids"]]
        assert sorted(i for page in pages for i in page["pattern_ids"]) == ids


async def test_a_file_larger_than_a_response_is_summarised_never_cut(database_url: str, tmp_path: Path) -> None:
    # The issue: claude_md content was cut mid-file, without its end marker.
    async with server(database_url, tmp_path, LIMIT) as client:
        ids = await add_patterns(client, 12, 900, scoped=False)  # all in CLAUDE.md: 11,000 characters
        pages = await walk(client, "generate_context_file", {"format": "claude_md", "max_patterns": 60})
        # A summary shows no pattern: the session saw only the patterns of the files returned.
        assert await provenance(client) == sorted(i for page in pages for i in page["pattern_ids"])
        summaries = [summary for page in pages for summary in page["summarised"]]
        assert [s["path"] for s in summaries] == ["CLAUDE.md"]
        [claude] = summaries
        assert claude["content_chars"] > LIMIT and "aletheia-mcp context generate --format claude_md" in claude["note"]
        assert claude["pattern_ids"]
        for page in pages:
            for file in page["files"]:
                assert BEGIN not in file["content"] or file["content"].rstrip().endswith(END)
        listed = [i for page in pages for i in page["pattern_ids"]] + claude["pattern_ids"]
        assert sorted(listed) == sorted(ids)


async def test_conventions_for_fits_and_summarises_the_rest(database_url: str, tmp_path: Path) -> None:
    # The issue: the prompt returned 161,135 characters.
    async with server(database_url, tmp_path, UNLIMITED) as unlimited:
        await add_patterns(unlimited, 40, 2_000)
        ranking = [p["id"] for p in (await call(unlimited, "find_patterns",
                                                {"file_path": "api/users.py", "limit": 100}))["results"]]
    async with server(database_url, tmp_path, LIMIT) as client:
        prompt = await client.get_prompt("conventions_for", {"file_path": "api/users.py"})
        assert size(prompt.model_dump(mode="json", exclude_none=True)) <= LIMIT
        [message] = prompt.messages
        header, _, payload = message.content.text.partition("\n\n")  # type: ignore[union-attr]
        entries = json.loads(payload)
        whole = [e for e in entries if "content" in e]
        summarised = [e for e in entries if "excerpt" in e]
        assert entries == whole + summarised and summarised  # most specific whole, the rest summarised
        assert [e["id"] for e in entries] == ranking[:len(entries)]
        assert "get_pattern" in header and f"The last {len(summarised)} of them" in header
        if len(entries) < len(ranking):
            assert f"{len(ranking) - len(entries)} more apply" in header and "find_patterns" in header
        assert all(set(e) == {"id", "title", "applies_to", "excerpt"} and len(e["excerpt"]) <= 200
                   for e in summarised)
        assert await provenance(client) == sorted(e["id"] for e in entries)  # what the message showed


@pytest.mark.parametrize("folders", [150, 700])  # a path of 608 and of 2,808 characters
async def test_conventions_for_fits_the_smallest_limit_whatever_the_path(
        database_url: str, tmp_path: Path, folders: int) -> None:
    # The review: a long file_path took the room the whole patterns were measured against.
    smallest = 2_000  # the least MAX_RESPONSE_CHARS allowed
    file_path = "src/" * folders + "users.py"
    async with server(database_url, tmp_path, smallest) as client:
        await add_patterns(client, 3, 800, scoped=False)
        prompt = await client.get_prompt("conventions_for", {"file_path": file_path})
        assert size(prompt.model_dump(mode="json", exclude_none=True)) <= smallest
        [message] = prompt.messages
        header, _, payload = message.content.text.partition("\n\n")  # type: ignore[union-attr]
        entries = json.loads(payload)
        assert entries and header.count("users.py") == 1  # the path's end (the file) is still named
        assert f"{3 - len(entries)} more apply" in header if len(entries) < 3 else "more apply" not in header
        assert await provenance(client) == sorted(e["id"] for e in entries)  # only what the message showed


async def test_what_was_left_out_is_counted_when_not_all_listed(database_url: str, tmp_path: Path) -> None:
    async with server(database_url, tmp_path, LIMIT) as client:
        await add_patterns(client, 60, 100, scoped=False)
        [page] = await walk(client, "generate_context_file", {"format": "agents_md", "max_patterns": 1})
        assert len(page["pattern_ids"]) == 1 and page["left_out"]
        # 59 left out do not fit in half a page: those not listed are counted, never dropped silently.
        assert len(page["left_out"]) + page["left_out_unlisted"] == 59 and page["left_out_unlisted"] > 0
        refused = await call_error(client, "generate_context_file", {"format": "agents_md", "max_chars": 200_000})
        assert "max_chars" in refused
        # The bounds are in the tool's schema, so that a model knows them before calling.
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        [bounded] = tools["generate_context_file"].input_schema["properties"]["max_chars"]["anyOf"][:1]
        assert (bounded["minimum"], bounded["maximum"]) == (1_000, 100_000)
