"""No tool (nor prompt) returns more than MAX_RESPONSE_CHARS; lists end early and paginate without gaps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from mcp_server.server import create_server
from tests.helpers import call, make_settings

pytestmark = pytest.mark.anyio
LIMIT = 5_000


def size(result: dict[str, object]) -> int:
    return len(json.dumps(result, ensure_ascii=False, separators=(",", ":")))


async def every_memory_listed(client: Client, limit: int) -> list[int]:
    """The ids list_memories gives page after page (each page within LIMIT and not empty)."""
    seen: list[int] = []
    cursor = None
    for _ in range(100):
        page = await call(client, "list_memories", {"limit": limit} | ({"cursor": cursor} if cursor else {}))
        assert size(page) <= LIMIT and page["items"]
        seen += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("list_memories never ended")


async def test_every_result_fits_and_pages_have_no_gaps(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, max_response_chars=LIMIT)
    async with Client(create_server(settings)) as client:
        ids = [(await call(client, "remember", {"content": f"memory {i} " + "lorem ipsum " * 160}))["id"]
               for i in range(12)]
        assert await every_memory_listed(client, 10) == sorted(ids, reverse=True)  # cut short, nothing skipped

        recalled = await call(client, "recall", {"query": "lorem ipsum", "limit": 12})
        assert size(recalled) <= LIMIT and recalled["results"]
        while recalled["next_cursor"]:  # long contents shortened, then paged: none dropped
            following = await call(client, "recall", {"query": "lorem ipsum", "limit": 12,
                                                      "cursor": recalled["next_cursor"]})
            assert size(following) <= LIMIT
            recalled = {**following, "results": recalled["results"] + following["results"]}
        assert sorted(r["id"] for r in recalled["results"]) == sorted(ids)

        huge = "x" * 200_000
        logged = await call(client, "log_exchange", {"messages": [{"role": "user", "content": huge}],
                                                     "response": "ok"})
        exchange = await call(client, "get_conversation", {"id": logged["id"]})
        assert size(exchange) <= LIMIT
        assert "truncated" in exchange["messages"][0]["content"] and exchange["response"] == "ok"

        for i in range(6):
            await call(client, "add_pattern", {"content": f"rule {i} " + "detail " * 400, "title": f"Rule {i}"})
        generated = await call(client, "generate_context_file", {"format": "cursor_mdc"})
        assert size(generated) <= LIMIT and generated["files"] and generated["next_cursor"]
        found = await call(client, "find_patterns", {"limit": 100})
        assert size(found) <= LIMIT and found["results"] and found["next_cursor"]
        prompt = await client.get_prompt("conventions_for", {"file_path": "src/app.py"})
        assert size(prompt.model_dump(mode="json", exclude_none=True)) <= LIMIT


async def test_a_memory_larger_than_a_response_is_shortened_and_the_pages_still_reach_every_other(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, max_response_chars=LIMIT)
    async with Client(create_server(settings)) as client:
        contents = [f"short note {i}" for i in range(3)] + ["big " * 3_000, "bigger " * 3_000] \
            + [f"late note {i}" for i in range(3)]
        ids = [(await call(client, "remember", {"content": c}))["id"] for c in contents]
        # The two big ones shortened, one per page; none skipped.
        assert await every_memory_listed(client, 20) == sorted(ids, reverse=True)
        after_the_bigger = await call(client, "list_memories", {"limit": 20, "cursor": str(ids[5])})
        big = after_the_bigger["items"][0]
        assert big["id"] == ids[4] and "truncated" in big["content"]
