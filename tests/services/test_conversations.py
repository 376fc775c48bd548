"""ConversationService on the real database: provenance taken by the exchange that is logged (and
kept when logging fails), the retention job, the JSONL export, and calls captured by the gateway
(stored whole, redacted, bounded, once; replays selected or not)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mcp_server.app_context import open_app
from mcp_server.errors import InvalidInputError
from mcp_server.schemas import CapturedCall, ConversationPage
from mcp_server.services.captured_rows import SHORTENED_MARK
from mcp_server.settings import Settings
from tests.helpers import make_settings, sql

pytestmark = pytest.mark.anyio
PROMPT = [{"role": "user", "content": "What did we decide about retries?"}]


async def test_provenance_goes_to_the_next_logged_exchange_only(settings: Settings) -> None:
    async with open_app(settings) as app:
        memory = await app.memories.remember("Retries use exponential backoff with jitter.")
        pattern = await app.patterns.add("Wrap HTTP calls in the retry helper.", title="Retries",
                                         target_contexts=["api/**"])
        await app.memories.recall("retries", session="s1")
        await app.patterns.find_page(file_path="api/client.py", session="s1")
        await app.memories.recall("retries", session="s2")  # another session's context

        with pytest.raises(InvalidInputError):
            await app.conversations.log([], "no prompt", session="s1")  # not logged: provenance kept
        first = await app.conversations.get((await app.conversations.log(PROMPT, "Backoff.", session="s1")).id)
        second = await app.conversations.get((await app.conversations.log(PROMPT, "Again.", session="s1")).id)

    assert (first.memory_ids, first.pattern_ids) == ([memory.id], [pattern.id])
    assert (second.memory_ids, second.pattern_ids) == ([], [])


async def test_retention_purges_only_older_exchanges(database_url: str, tmp_path: Path) -> None:
    async with open_app(make_settings(database_url, tmp_path), load_in_background=False) as app:
        old = await app.conversations.log(PROMPT, "old answer")
        new = await app.conversations.log(PROMPT, "new answer")
    await sql(database_url, "UPDATE raw_conversations SET created_at = now() - interval '40 days' WHERE id = $1",
              old.id)
    async with open_app(make_settings(database_url, tmp_path, conversation_retention_days=30),
                        load_in_background=False):
        pass  # the start-up job runs when the application opens
    rows = await sql(database_url, "SELECT id FROM raw_conversations")
    assert [r["id"] for r in rows] == [new.id]


async def test_export_writes_redacted_jsonl_oldest_first(settings: Settings) -> None:
    secret = "ghp_" + "a1B2" * 9
    async with open_app(settings, load_in_background=False) as app:
        await app.conversations.log(PROMPT, f"use {secret}", model="m1", request_id="r1")
        await app.conversations.log(PROMPT, "second", model="m2", request_id="r2")
        everything, only_m2 = io.StringIO(), io.StringIO()
        assert await app.conversations.export_jsonl(everything) == 2
        assert await app.conversations.export_jsonl(only_m2, model="m2") == 1
    lines = [json.loads(line) for line in everything.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == ["r1", "r2"]
    assert lines[0]["response"] == "use [REDACTED:github_token]" and secret not in everything.getvalue()
    assert json.loads(only_m2.getvalue())["request_id"] == "r2"


# --- calls captured by the gateway (log_captured) ----------------------------------------------

OPENAI_KEY = "sk-proj-" + "Q7x9Lm2Vb4Nc8Rt1Yw6Ze3Ka5Hd0Pf" * 2


def captured(request_id: str, **fields: object) -> CapturedCall:
    values: dict[str, object] = {
        "request_id": request_id, "provider": "openai", "endpoint": "/v1/chat/completions", "model": "gpt-x",
        "request": {"model": "gpt-x", "messages": PROMPT, "temperature": 0.2},
        "response": {"choices": [{"message": {"role": "assistant", "content": "Backoff with jitter."}}]},
        "status_code": 200, "latency_ms": 120, "ttft_ms": None, "usage": {"prompt_tokens": 9, "completion_tokens": 4},
        "outcome": "completed", "stream": False, "project": None, "created_at": datetime(2026, 12, 1, tzinfo=UTC),
    }
    values.update(fields)
    return CapturedCall.model_validate(values)


async def test_a_captured_call_is_stored_whole_once_and_read_back(settings: Settings) -> None:
    anthropic = captured(
        "msg-1", provider="anthropic", endpoint="/v1/messages", model="claude-x", stream=True, ttft_ms=35,
        request={"model": "claude-x", "system": "You are terse.", "max_tokens": 64, "stream": True,
                 "messages": [{"role": "user", "content": [{"type": "text", "text": "Why retries?"}]}]},
        response={"role": "assistant", "content": [{"type": "text", "text": "Transient faults."}],
                  "stop_reason": "end_turn"},
        usage={"input_tokens": 12, "output_tokens": 3}, project="github.com/org/gw")
    responses = captured("resp-1", endpoint="/v1/responses", request={"model": "gpt-x", "input": "Say hi"},
                         outcome="upstream_error", status_code=429, response={"error": {"message": "slow down"}})
    async with open_app(settings, load_in_background=False) as app:
        first = await app.conversations.log_captured(anthropic)
        again = await app.conversations.log_captured(anthropic)  # the spool may store a call twice
        await app.conversations.log_captured(responses)
        stored = await app.conversations.get(first.id)
        text_input = await app.conversations.get(request_id="resp-1")
        listed = (await app.conversations.search(scope="all")).items

    assert (first.created, again.created, again.id) == (True, False, first.id)
    assert len(await sql(settings.database_url.get_secret_value(), "SELECT id FROM raw_conversations")) == 2  # type: ignore[union-attr]
    # The conversation goes to `messages` (what full text reads), the rest of the body to `request`.
    assert stored.messages == anthropic.request["messages"]
    assert stored.request == {"model": "claude-x", "system": "You are terse.", "max_tokens": 64, "stream": True}
    assert (stored.endpoint, stored.provider, stored.model, stored.stream, stored.ttft_ms, stored.outcome) == (
        "/v1/messages", "anthropic", "claude-x", True, 35, "completed")
    assert stored.usage == {"input_tokens": 12, "output_tokens": 3} and stored.project == "github.com/org/gw"
    assert stored.created_at == anthropic.created_at and stored.replay_of is None
    # /v1/responses: a string input is one user message.
    assert text_input.messages == [{"role": "user", "content": "Say hi"}] and text_input.request == {"model": "gpt-x"}
    assert (text_input.status_code, text_input.outcome) == (429, "upstream_error")
    summary = next(item for item in listed if item.id == first.id)
    assert (summary.endpoint, summary.stream, summary.outcome, summary.ttft_ms) == ("/v1/messages", True,
                                                                                  "completed", 35)
    assert "Why retries?" in summary.preview and "Transient faults." in summary.preview


async def test_secrets_in_a_captured_call_are_redacted_everywhere(settings: Settings) -> None:
    call = captured("sec-1", request={
        "model": "gpt-x", "messages": [{"role": "user", "content": f"my key is {OPENAI_KEY}"}],
        "tools": [{"type": "function", "function": {"name": "deploy", "description": f"uses {OPENAI_KEY}"}}],
        "metadata": {"api_key": "hunter2-Zq8vX3nL0pR7"},
    }, response={"choices": [{"message": {"role": "assistant", "content": f"Saved {OPENAI_KEY}."}}]})
    async with open_app(settings, load_in_background=False) as app:
        logged = await app.conversations.log_captured(call)
    rows = await sql(settings.database_url.get_secret_value(),  # type: ignore[union-attr]
                     "SELECT messages::text || request::text || response::text AS t FROM raw_conversations")
    assert OPENAI_KEY not in rows[0]["t"] and "hunter2-Zq8vX3nL0pR7" not in rows[0]["t"]
    assert rows[0]["t"].count("[REDACTED:") >= 4 and logged.redactions >= 4


async def test_a_captured_call_over_the_size_limit_is_stored_shortened(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, max_exchange_bytes=20_000)
    attachment = "é" * 40_000  # two bytes each: the limit is in bytes
    call = captured("big-1", request={"model": "gpt-x", "messages": [
        {"role": "user", "content": "Summarise this:"}, {"role": "user", "content": attachment}]},
        response={"choices": [{"message": {"role": "assistant", "content": "It repeats é." + "!" * 30_000}}]})
    async with open_app(settings, load_in_background=False) as app:
        logged = await app.conversations.log_captured(call)
        stored = await app.conversations.get(logged.id)
    size = len(json.dumps({"messages": stored.messages, "request": stored.request, "response": stored.response},
                          ensure_ascii=False, separators=(",", ":")).encode())
    assert size <= 20_000
    kept = stored.messages[1]["content"]
    assert kept.startswith("éééé") and SHORTENED_MARK in kept and "MAX_EXCHANGE_BYTES=20,000" in kept
    assert stored.messages[0]["content"] == "Summarise this:"  # short texts are whole
    assert stored.response["choices"][0]["message"]["content"].startswith("It repeats é.")


async def test_replays_can_be_listed_with_without_or_alone(settings: Settings) -> None:
    async with open_app(settings, load_in_background=False) as app:
        original = await app.conversations.log_captured(captured("orig-1"))
        replay = await app.conversations.log_captured(captured("replay-1", replay_of=original.id, model="gpt-y"))
        await app.conversations.log(PROMPT, "hook-logged", request_id="hook-1")

        def ids(page: ConversationPage) -> set[int]:
            return {item.id for item in page.items}

        everything = ids(await app.conversations.search(scope="all"))
        only = await app.conversations.search(scope="all", replays="only")
        originals = ids(await app.conversations.search(scope="all", replays="exclude"))
        exports = {}
        for selection in ("include", "only", "exclude"):
            out = io.StringIO()
            await app.conversations.export_jsonl(out, replays=selection)  # type: ignore[arg-type]
            exports[selection] = [json.loads(line) for line in out.getvalue().splitlines()]
        with pytest.raises(InvalidInputError, match='"include"'):
            await app.conversations.search(replays="both")  # type: ignore[arg-type]

    assert len(everything) == 3 and replay.id in everything
    assert [item.id for item in only.items] == [replay.id] and only.items[0].replay_of == original.id
    assert replay.id not in originals and original.id in originals and len(originals) == 2
    assert [line["request_id"] for line in exports["only"]] == ["replay-1"]
    assert exports["only"][0]["replay_of"] == original.id and exports["only"][0]["endpoint"] == "/v1/chat/completions"
    assert sorted(line["request_id"] for line in exports["exclude"]) == ["hook-1", "orig-1"]
    assert len(exports["include"]) == 3


async def test_a_captured_call_with_an_invalid_project_goes_to_the_default_one(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, project="github.com/org/default")
    async with open_app(settings, load_in_background=False) as app:
        logged = await app.conversations.log_captured(captured("bad-project", project="x" * 500))
        assert (await app.conversations.get(logged.id)).project == "github.com/org/default"


async def test_a_captured_call_the_database_could_not_hold_is_repaired(settings: Settings) -> None:
    # Python's JSON reader accepts a lone surrogate escape and NaN; PostgreSQL's jsonb takes neither.
    body = json.loads('{"model": "m", "messages": [{"role": "user", "content": "half \\ud83d pair"}], '
                      '"temperature": NaN}')
    async with open_app(settings, load_in_background=False) as app:
        stored = await app.conversations.get((await app.conversations.log_captured(captured("odd", request=body))).id)
    assert stored.messages[0]["content"] == "half \ufffd pair" and stored.request == {"model": "m",
                                                                                   "temperature": "nan"}


async def test_a_large_request_is_shortened_to_fit_when_a_model_reads_the_call(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, max_response_chars=5_000)
    system = "Follow the house style. " * 1_000  # a gateway call's system prompt, larger than its messages
    async with open_app(settings, load_in_background=False) as app:
        logged = await app.conversations.log_captured(captured("long-system", provider="anthropic",
                                                               endpoint="/v1/messages", request={
            "model": "claude-x", "system": system, "messages": PROMPT}))
        read = await app.conversations.read(logged.id)
        page = await app.conversations.read(logged.id, field="/request/system", offset=4_000)
    assert len(read.model_dump_json()) <= 5_000
    assert [cut.field for cut in read.shortened] == ["/request/system"]
    assert page.request is not None and page.request["system"].startswith(system[4_000:4_100])


async def test_log_exchange_stores_a_lone_surrogate_as_the_replacement_character(settings: Settings) -> None:
    """JSON may carry "\\ud800" (a client cutting a string mid-pair); PostgreSQL takes no lone
    surrogate, so it is stored as U+FFFD instead of failing the whole exchange."""
    async with open_app(settings, load_in_background=False) as app:
        logged = await app.conversations.log([{"role": "user", "content": "cut \ud800 here"}], "ok \udfff")
        stored = await app.conversations.get(logged.id)
    assert stored.messages[0]["content"] == "cut \ufffd here" and stored.response == "ok \ufffd"
