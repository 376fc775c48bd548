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


async def test_request_ids_differing_only_in_a_secret_stay_two_exchanges(client: Client, database_url: str) -> None:
    """A redacted request_id must not make a second, different exchange a "duplicate" (issue 16, item 4)."""
    ids = ["run-ghp_" + "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5", "run-ghp_" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8"]
    logged = [await call(client, "log_exchange", {"messages": [{"role": "user", "content": f"question {i}"}],
                                                  "response": f"answer {i}", "request_id": rid})
              for i, rid in enumerate(ids)]
    assert [entry["created"] for entry in logged] == [True, True]
    assert logged[0]["id"] != logged[1]["id"]
    assert logged[0]["request_id"] != logged[1]["request_id"]
    for entry, rid in zip(logged, ids, strict=True):
        assert entry["request_id"].startswith("run-[REDACTED:github_token]#") and rid[4:] not in entry["request_id"]
    again = await call(client, "log_exchange", {"messages": [{"role": "user", "content": "question 0"}],
                                                "response": "answer 0", "request_id": ids[0]})
    assert again == {**logged[0], "created": False}  # still idempotent
    found = await call(client, "get_conversation", {"request_id": ids[1]})
    assert found["id"] == logged[1]["id"] and found["response"] == "answer 1"
    rows = await sql(database_url, "SELECT request_id FROM raw_conversations ORDER BY id")
    assert [r["request_id"] for r in rows] == [entry["request_id"] for entry in logged]
    # A row logged before ids kept the digest (stored redacted only) is still found by its original id.
    await sql(database_url, "UPDATE raw_conversations SET request_id = split_part(request_id, '#', 1) WHERE id = $1",
              logged[1]["id"])
    assert (await call(client, "get_conversation", {"request_id": ids[1]}))["id"] == logged[1]["id"]


def _size(result: dict[str, object]) -> int:
    return len(json.dumps(result, ensure_ascii=False, separators=(",", ":")))


async def test_get_conversation_fits_max_response_chars_and_says_how_to_read_the_rest(
    database_url: str, tmp_path: Path
) -> None:
    """Issue 16, item 8: 147,133 characters were returned against 60,000. Many medium messages and one
    long answer: the longest texts are cut first, each cut is listed, and `field`/`offset` read it whole."""
    limit = 20_000
    settings = make_settings(database_url, tmp_path, max_response_chars=limit)
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i}: " + "word " * 90}
                for i in range(300)]
    answer = "".join(f"line {i:05d} of the final answer.\n" for i in range(3_000))  # ~90,000 characters
    async with Client(create_server(settings)) as client:
        logged = await call(client, "log_exchange", {"messages": messages, "response": answer})
        exchange = await call(client, "get_conversation", {"id": logged["id"]})
        assert _size(exchange) <= limit
        assert exchange["note"] and f"conversations show {logged['id']}" in exchange["note"]
        shortened = {entry["field"]: entry for entry in exchange["shortened"]}
        assert shortened["/response"]["total_chars"] == len(answer)
        assert exchange["response"].startswith("line 00000")
        shown = len(exchange["messages"])
        assert exchange["omitted_messages"] == list(range(1, 300 - shown + 1))
        assert exchange["messages"][0]["content"].startswith("message 0:")
        assert exchange["messages"][-1]["content"].startswith("message 299:")

        # page through the answer with field/offset: the pages put together are the whole text
        pages, offset = [], 0
        while offset < len(answer):
            part = await call(client, "get_conversation", {"id": logged["id"], "field": "/response",
                                                           "offset": offset})
            assert _size(part) <= limit
            [entry] = [e for e in part["shortened"] if e["field"] == "/response"]
            assert entry["shown_from"] == offset and entry["shown_chars"] > limit // 2
            pages.append(part["response"][: entry["shown_chars"]])
            offset += entry["shown_chars"]
        assert "".join(pages) == answer

        middle = await call(client, "get_conversation", {"id": logged["id"], "field": "/messages/150/content"})
        assert messages[150]["content"] in json.dumps(middle)
        assert _size(middle) <= limit

        bad = await call_error(client, "get_conversation", {"id": logged["id"], "field": "/messages/999/content"})
        assert "JSON Pointer" in bad
        beyond = await call_error(client, "get_conversation", {"id": logged["id"], "field": "/response",
                                                               "offset": len(answer) + 1})
        assert "`offset` must be between 0 and" in beyond

        small = await call(client, "log_exchange", {"messages": [{"role": "user", "content": "hi"}],
                                                    "response": "hello"})
        whole = await call(client, "get_conversation", {"id": small["id"]})
        assert (whole["shortened"], whole["omitted_messages"], whole["note"]) == ([], [], None)


async def test_search_selects_replays_originals_or_both(client: Client, database_url: str) -> None:
    original = await call(client, "log_exchange", {"messages": [{"role": "user", "content": "retry policy?"}],
                                                   "response": "backoff", "request_id": "orig"})
    await sql(database_url, "INSERT INTO raw_conversations (user_id, request_id, messages, response, endpoint, "
                            "stream, outcome, replay_of) SELECT user_id, 'again', messages, '\"jittered backoff\"', "
                            "'/v1/chat/completions', false, 'completed', id FROM raw_conversations")

    async def listed(**arguments: str) -> list[str]:
        page = await call(client, "search_conversations", arguments)
        return [item["request_id"] for item in page["items"]]

    assert sorted(await listed()) == ["again", "orig"]
    only = (await call(client, "search_conversations", {"replays": "only"}))["items"]
    assert [item["request_id"] for item in only] == ["again"] and only[0]["replay_of"] == original["id"]
    assert (only[0]["endpoint"], only[0]["stream"], only[0]["outcome"]) == ("/v1/chat/completions", False,
                                                                           "completed")
    assert await listed(replays="exclude") == ["orig"]
    assert "replays" in await call_error(client, "search_conversations", {"replays": "some"})
