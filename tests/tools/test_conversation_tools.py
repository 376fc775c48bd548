"""log_exchange / search_conversations / get_conversation through the real MCP client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from mcp_server.server import create_server
from mcp_server.settings import Settings
from tests.helpers import call, call_error, make_settings, sql
from tests.redaction_cases import LOOK_ALIKES, SECRETS

pytestmark = pytest.mark.anyio


async def stored_text(database_url: str) -> str:
    rows = await sql(
        database_url, "SELECT messages::text AS m, response::text AS r, model, provider FROM raw_conversations"
    )
    return "\n".join(f"{r['m']} {r['r']} {r['model']} {r['provider']}" for r in rows)


async def test_every_secret_rule_is_redacted_in_the_table(client: Client, database_url: str) -> None:
    for index, (rule, secret, template) in enumerate(SECRETS):
        text = template.format(s=secret)
        openai_shape = [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": [{"type": "text", "text": text}]},
        ]
        logged = await call(
            client,
            "log_exchange",
            {"messages": openai_shape, "response": {"content": text}, "request_id": f"o-{index}", "model": "gpt-4o"},
        )
        assert logged["redactions"] >= 2, (rule, text)
        anthropic_shape = [
            {"role": "user", "content": [{"type": "text", "text": "Here:"}, {"type": "text", "text": text}]}
        ]
        await call(client, "log_exchange", {"messages": anthropic_shape, "response": text, "request_id": f"a-{index}"})

    stored = await stored_text(database_url)
    for rule, secret, _ in SECRETS:
        if len(secret) >= 8:
            assert secret not in stored, rule
        assert f"[REDACTED:{rule}]" in stored


def as_sent(text: str) -> object:
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    return parsed if isinstance(parsed, dict) else text


async def test_look_alikes_are_stored_unchanged(client: Client, database_url: str) -> None:
    for index, text in enumerate(LOOK_ALIKES):
        logged = await call(
            client,
            "log_exchange",
            {"messages": [{"role": "user", "content": text}], "response": text, "request_id": f"l-{index}"},
        )
        assert logged["redactions"] == 0, text
    rows = await sql(database_url, "SELECT messages, response FROM raw_conversations ORDER BY id")
    # Like every MCP SDK server, a `response` argument sent as JSON text of an object arrives as that object.
    assert [json.loads(r["response"]) for r in rows] == [as_sent(text) for text in LOOK_ALIKES]
    assert [json.loads(r["messages"])[0]["content"] for r in rows] == LOOK_ALIKES


async def test_request_id_is_idempotent_and_defaults_to_a_uuid(client: Client, database_url: str) -> None:
    first = await call(
        client,
        "log_exchange",
        {
            "messages": [{"role": "user", "content": "hi"}],
            "response": "hello",
            "request_id": "req-1",
            "status_code": 200,
            "latency_ms": 120,
        },
    )
    retry = await call(
        client,
        "log_exchange",
        {"messages": [{"role": "user", "content": "changed"}], "response": "other", "request_id": "req-1"},
    )
    assert retry == {**first, "created": False}
    rows = await sql(database_url, "SELECT response FROM raw_conversations")
    assert [json.loads(r["response"]) for r in rows] == ["hello"]
    fresh = await call(client, "log_exchange", {"messages": [{"role": "user", "content": "x"}], "response": "y"})
    assert len(fresh["request_id"]) == 36 and fresh["request_id"].count("-") == 4


async def test_provenance_records_ids_returned_in_the_session(client: Client) -> None:
    memory = (await call(client, "remember", {"content": "We deploy with blue/green."}))["id"]
    pattern = (await call(client, "add_pattern", {"content": "Validate bodies.", "target_contexts": ["api/*.py"]}))[
        "id"
    ]
    await call(client, "recall", {"query": "deploy blue green"})
    await call(client, "find_patterns", {"file_path": "api/users.py"})
    first = await call(client, "log_exchange", {"messages": [{"role": "user", "content": "q"}], "response": "a"})
    second = await call(client, "log_exchange", {"messages": [{"role": "user", "content": "q2"}], "response": "a2"})

    got = await call(client, "get_conversation", {"id": first["id"]})
    assert got["memory_ids"] == [memory] and got["pattern_ids"] == [pattern]
    assert (await call(client, "get_conversation", {"request_id": second["request_id"]}))["memory_ids"] == []


async def test_search_newest_first_with_previews_and_filters(client: Client) -> None:
    for i, (model, text) in enumerate(
        [
            ("gpt-4o", "How do retries work?"),
            ("claude", "Explain retries with jitter"),
            ("gpt-4o", "Unrelated question about lunch"),
        ]
    ):
        await call(
            client,
            "log_exchange",
            {
                "messages": [{"role": "user", "content": text}],
                "response": f"answer {i}",
                "model": model,
                "provider": "p",
            },
        )
    found = await call(client, "search_conversations", {"query": "retries"})
    assert [item["preview"] for item in found["items"]] == [
        "Q: Explain retries with jitter A: answer 1",
        "Q: How do retries work? A: answer 0",
    ]
    assert "messages" not in found["items"][0]
    by_model = await call(client, "search_conversations", {"model": "gpt-4o"})
    assert len(by_model["items"]) == 2
    future = await call(client, "search_conversations", {"since": "2999-01-01T00:00:00Z"})
    assert future["items"] == []


async def test_other_users_exchanges_are_invisible(settings: Settings, database_url: str, tmp_path: Path) -> None:
    async with Client(create_server(settings)) as alice:
        mine = await call(
            alice,
            "log_exchange",
            {
                "messages": [{"role": "user", "content": "alice secret plan"}],
                "response": "ok",
                "request_id": "shared-id",
            },
        )
    async with Client(create_server(make_settings(database_url, tmp_path, user_id="bob"))) as bob:
        assert (await call(bob, "search_conversations", {"query": "secret plan"}))["items"] == []
        assert "No logged exchange" in await call_error(bob, "get_conversation", {"id": mine["id"]})
        assert "No logged exchange" in await call_error(bob, "get_conversation", {"request_id": "shared-id"})
        bobs = await call(
            bob,
            "log_exchange",
            {"messages": [{"role": "user", "content": "b"}], "response": "b", "request_id": "shared-id"},
        )
        assert bobs["created"] is True and bobs["id"] != mine["id"]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"messages": "not a list", "response": "x"}, "valid list"),
        ({"messages": [], "response": "x"}, "empty"),
        ({"messages": [{"content": "no role"}], "response": "x"}, "role"),
        ({"messages": [{"role": "user", "content": 5}], "response": "x"}, "content"),
        ({"messages": [{"role": "user", "content": "x"}], "response": "x", "status_code": 700}, "status_code"),
        ({"messages": [{"role": "user", "content": "x"}], "response": "x", "latency_ms": -1}, "latency_ms"),
        ({"messages": [{"role": "user", "content": "x" * 1_100_000}], "response": "x"}, "MAX_EXCHANGE_BYTES"),
    ],
)
async def test_bad_input_stores_nothing(
    client: Client, database_url: str, arguments: dict[str, object], expected: str
) -> None:
    assert expected in await call_error(client, "log_exchange", arguments)
    assert await sql(database_url, "SELECT id FROM raw_conversations") == []


async def test_nul_characters_are_removed(client: Client, database_url: str) -> None:
    await call(
        client,
        "log_exchange",
        {"messages": [{"role": "user", "content": "a\u0000b"}], "response": {"te\u0000xt": "c\u0000d"}},
    )
    row = (await sql(database_url, "SELECT messages, response FROM raw_conversations"))[0]
    assert json.loads(row["messages"])[0]["content"] == "ab" and json.loads(row["response"]) == {"text": "cd"}
