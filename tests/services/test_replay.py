"""ReplayService on the real database, sending to a loopback fake of the three APIs: what is sent
(the stored request rebuilt, model replaced, stream off, the replaying person's credentials), what
is stored (a new exchange linked by replay_of), how it compares, which rows are selected, and what
happens when the upstream errs, drops the connection or is not there."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mcp_server.app_context import AppContext, open_app
from mcp_server.errors import InvalidInputError, NotFoundError
from mcp_server.schemas import CapturedCall
from mcp_server.services.replay import (
    PlannedReplay,
    ReplayCredentials,
    ReplayCriteria,
    ReplayResult,
    Tokens,
    answer_text,
    upstream_base,
)
from mcp_server.settings import Settings
from tests.helpers import make_settings, sql
from tests.replay_upstream import Failure, FakeUpstream, running_upstream

pytestmark = pytest.mark.anyio
KEYS = ReplayCredentials(openai_api_key="sk-replayer-openai-0123456789", anthropic_api_key="sk-ant-replayer-0123456")
TOOLS = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with running_upstream() as fake:
        yield fake


def chat_answer(text: str, prompt_tokens: int = 20, completion_tokens: int = 1) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion", "model": "gpt-4o-2024",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}}


def captured(endpoint: str, request: dict[str, Any], response: Any, **fields: Any) -> CapturedCall:
    """A call as the gateway hands it over (stored through the real service)."""
    values: dict[str, Any] = {
        "request_id": uuid.uuid4().hex, "endpoint": endpoint,
        "provider": "anthropic" if endpoint == "/v1/messages" else "openai", "model": request.get("model"),
        "request": request, "response": response, "status_code": 200, "latency_ms": 900, "ttft_ms": None,
        "usage": response.get("usage") if isinstance(response, dict) else None, "outcome": "completed",
        "stream": False, "project": "github.com/acme/app", "created_at": datetime.now(UTC),
    }
    values.update(fields)
    return CapturedCall(**values)


async def replay_ids(app: AppContext, upstream: FakeUpstream, *ids: int, model: str = "gpt-new",
                     credentials: ReplayCredentials = KEYS) -> tuple[list[PlannedReplay], list[ReplayResult]]:
    plan = await app.replay.plan(ReplayCriteria(ids=ids), model)
    results: list[ReplayResult] = []
    await app.replay.replay(plan, upstream.url, model, credentials, on_result=results.append)
    return plan, results


async def test_a_chat_completion_is_sent_again_as_the_new_model_and_stored_as_its_replay(
        settings: Settings, database_url: str, upstream: FakeUpstream) -> None:
    messages = [{"role": "system", "content": "Be exact."}, {"role": "user", "content": "What is 2+2?"}]
    request = {"model": "gpt-4o", "messages": messages, "temperature": 0.2, "tools": TOOLS, "stream": True,
               "stream_options": {"include_usage": True}}
    upstream.answers["What is 2+2?"] = "4"
    async with open_app(settings, load_in_background=False) as app:
        original = await app.conversations.log_captured(captured(
            "/v1/chat/completions", request, chat_answer("4"), stream=True, ttft_ms=300))
        results: list[ReplayResult] = []
        plan = await app.replay.plan(ReplayCriteria(ids=(original.id,)), "gpt-new")
        summary = await app.replay.replay(plan, upstream.url + "/v1/", "gpt-new", KEYS, on_result=results.append)
        [result] = results
        assert result.replay_id is not None
        replay = await app.conversations.get(result.replay_id)
        first = await app.conversations.get(original.id)

    [sent] = upstream.received
    assert sent.path == "/v1/chat/completions"  # a base URL given with /v1 works too
    assert sent.body == {"model": "gpt-new", "messages": messages, "temperature": 0.2, "tools": TOOLS,
                         "stream": False}  # stream off, and stream_options (streaming only) left out
    assert sent.headers["authorization"] == f"Bearer {KEYS.openai_api_key}" and "x-api-key" not in sent.headers

    assert (result.original_id, result.status_code, result.same_text, result.error) == (original.id, 200, True, None)
    assert (result.latency_before_ms, result.tokens_before) == (900, Tokens(20, 1))
    assert result.latency_after_ms is not None and result.tokens_after == Tokens(
        len(json.dumps(messages)) // 4, 1)
    assert (summary.replayed, summary.same_text, summary.different_text, summary.failed) == (1, 1, 0, 0)
    assert summary.latency_before_p50_ms == 900

    assert replay.replay_of == original.id and first.replay_of is None
    assert replay.request_id not in (None, first.request_id)
    assert (replay.project, replay.endpoint, replay.provider, replay.model) == (
        "github.com/acme/app", "/v1/chat/completions", "openai", "gpt-new")
    assert (replay.stream, replay.outcome, replay.status_code) == (False, "completed", 200)
    assert replay.messages == messages and replay.request is not None and replay.request["temperature"] == 0.2
    assert answer_text("/v1/chat/completions", replay.response) == "4"
    stored = await sql(database_url, "SELECT r::text AS row FROM raw_conversations r")
    assert not any("replayer" in record["row"] for record in stored)  # the credentials are never stored


async def test_anthropic_messages_and_responses_go_to_their_own_api_with_their_own_credentials(
        settings: Settings, upstream: FakeUpstream) -> None:
    upstream.answers["Hi"] = "Hello there"
    anthropic_request = {"model": "claude-x", "max_tokens": 100, "system": "Be brief.",
                         "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]}
    anthropic_answer = {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "Hello"}],
                        "usage": {"input_tokens": 8, "output_tokens": 2, "cache_read_input_tokens": 4}}
    responses_request = {"model": "gpt-4o", "instructions": "Be brief.",
                         "input": [{"role": "user", "content": "Hi"}]}
    responses_answer = {"object": "response", "output": [{"type": "message", "role": "assistant", "content": [
        {"type": "output_text", "text": "Hello   there"}]}], "usage": {"input_tokens": 5, "output_tokens": 2}}
    async with open_app(settings, load_in_background=False) as app:
        claude = await app.conversations.log_captured(captured("/v1/messages", anthropic_request, anthropic_answer))
        gpt = await app.conversations.log_captured(captured("/v1/responses", responses_request, responses_answer))
        _, results = await replay_ids(app, upstream, claude.id, gpt.id)

    by_path = {r.path: r for r in upstream.received}
    to_anthropic = by_path["/v1/messages"]
    assert to_anthropic.body == {**anthropic_request, "model": "gpt-new", "stream": False}  # system kept
    assert to_anthropic.headers["x-api-key"] == KEYS.anthropic_api_key
    assert to_anthropic.headers["anthropic-version"] == "2023-06-01" and "authorization" not in to_anthropic.headers
    to_openai = by_path["/v1/responses"]
    assert to_openai.body == {**responses_request, "model": "gpt-new", "stream": False}
    assert to_openai.headers["authorization"] == f"Bearer {KEYS.openai_api_key}"

    claude_result, gpt_result = results
    assert (claude_result.original_id, claude_result.same_text) == (claude.id, False)  # "Hello" -> "Hello there"
    assert claude_result.tokens_before == Tokens(12, 2)  # cache reads are input tokens too
    assert (gpt_result.original_id, gpt_result.same_text) == (gpt.id, True)  # whitespace aside, the same


async def test_exchanges_logged_before_the_gateway_replay_as_chat_completions_when_they_can(
        settings: Settings, upstream: FakeUpstream) -> None:
    async with open_app(settings, load_in_background=False) as app:
        plain = await app.conversations.log([{"role": "user", "content": "ping?"}], {"content": "pong"},
                                            model="old-model", latency_ms=50)
        tool_use = await app.conversations.log(
            [{"role": "user", "content": "add 1 and 2"},
             {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "add", "input": {}}]}],
            "3", model="old-model")
        plan = await app.replay.plan(ReplayCriteria(from_model="old-model"), "gpt-new")
        results: list[ReplayResult] = []
        summary = await app.replay.replay(plan, upstream.url, "gpt-new", KEYS, on_result=results.append)

    assert [(p.id, p.endpoint, p.message_count) for p in plan] == [
        (plain.id, "/v1/chat/completions", 1), (tool_use.id, None, 2)]
    assert "tool_use" in (plan[1].not_replayable or "")
    [sent] = upstream.received
    assert sent.body == {"model": "gpt-new", "messages": [{"role": "user", "content": "ping?"}], "stream": False}
    [result] = results
    assert (result.same_text, result.latency_before_ms, result.tokens_before) == (True, 50, None)
    assert (summary.replayed, summary.not_replayable) == (1, 1)


async def test_selection_by_time_model_provider_id_and_limit_leaves_replays_out_unless_named(
        settings: Settings, database_url: str, upstream: FakeUpstream) -> None:
    async with open_app(settings, load_in_background=False) as app:
        old = await app.conversations.log_captured(captured(
            "/v1/chat/completions", {"model": "m0", "messages": [{"role": "user", "content": "old"}]},
            chat_answer("pong"), request_id="old"))
        recent = await app.conversations.log_captured(captured(
            "/v1/chat/completions", {"model": "m0", "messages": [{"role": "user", "content": "recent"}]},
            chat_answer("pong"), request_id="recent"))
        other_model = await app.conversations.log_captured(captured(
            "/v1/chat/completions", {"model": "m1", "messages": [{"role": "user", "content": "m1"}]},
            chat_answer("pong"), request_id="other-model"))
        claude = await app.conversations.log_captured(captured(
            "/v1/messages", {"model": "m0", "max_tokens": 5, "messages": [{"role": "user", "content": "c"}]},
            {"content": [{"type": "text", "text": "pong"}]}, request_id="claude"))
        await sql(database_url, "UPDATE raw_conversations SET created_at = now() - interval '3 days' WHERE id = $1",
                  old.id)
        _, [done] = await replay_ids(app, upstream, recent.id)

        async def chosen(**criteria: Any) -> list[int]:
            return [p.id for p in await app.replay.plan(ReplayCriteria(**criteria), "gpt-new")]

        day_ago = (datetime.now(UTC) - timedelta(days=1)).isoformat()
        assert await chosen(from_model="m0") == [old.id, recent.id, claude.id]  # the replay (model gpt-new) aside
        assert await chosen(since=day_ago) == [recent.id, other_model.id, claude.id]  # replays left out
        assert await chosen(until=day_ago) == [old.id]
        assert await chosen(provider="anthropic") == [claude.id]
        assert await chosen(from_model="m0", provider="openai", limit=1) == [old.id]
        assert await chosen(ids=(claude.id, done.replay_id, old.id, claude.id)) == [old.id, claude.id,
                                                                                    done.replay_id]
        assert await chosen(ids=(claude.id, old.id), provider="openai") == [old.id]  # criteria combine

        with pytest.raises(InvalidInputError, match="Say which exchanges"):
            await chosen()
        with pytest.raises(InvalidInputError, match="ISO-8601"):
            await chosen(since="yesterday")
        with pytest.raises(NotFoundError):
            await chosen(ids=(999_999,))
        with pytest.raises(InvalidInputError, match="--model"):
            await app.replay.plan(ReplayCriteria(ids=(old.id,)), "  ")
    assert len(upstream.received) == 1  # planning sends nothing


async def test_redacted_secrets_are_sent_as_their_placeholders(settings: Settings, upstream: FakeUpstream) -> None:
    secret = "ghp_" + "a1B2" * 9
    async with open_app(settings, load_in_background=False) as app:
        logged = await app.conversations.log_captured(captured(
            "/v1/chat/completions", {"model": "m0", "messages": [{"role": "user", "content": f"use {secret}"}]},
            chat_answer("ok")))
        plain = await app.conversations.log_captured(captured(
            "/v1/chat/completions", {"model": "m0", "messages": [{"role": "user", "content": "nothing secret"}]},
            chat_answer("ok")))
        plan, _ = await replay_ids(app, upstream, logged.id, plain.id)
    assert [p.redacted for p in plan] == [True, False]
    assert upstream.received[0].body["messages"][0]["content"] == "use [REDACTED:github_token]"
    assert secret not in json.dumps([r.body for r in upstream.received])


async def test_upstream_errors_are_stored_and_reported_a_dropped_call_is_reported_only(
        settings: Settings, database_url: str, upstream: FakeUpstream) -> None:
    rate_limited = {"error": {"message": "Rate limit reached for gpt-new", "type": "rate_limit_error"}}
    upstream.failures.extend([Failure(429, rate_limited), Failure(body=None)])
    async with open_app(settings, load_in_background=False) as app:
        first = await app.conversations.log_captured(captured(
            "/v1/chat/completions", {"model": "m0", "messages": [{"role": "user", "content": "a"}]},
            chat_answer("pong"), request_id="a"))
        second = await app.conversations.log_captured(captured(
            "/v1/chat/completions", {"model": "m0", "messages": [{"role": "user", "content": "b"}]},
            chat_answer("pong"), request_id="b"))
        plan = await app.replay.plan(ReplayCriteria(ids=(first.id, second.id)), "gpt-new")
        results: list[ReplayResult] = []
        summary = await app.replay.replay(plan, upstream.url, "gpt-new", KEYS, on_result=results.append)
        limited, dropped = results
        assert limited.replay_id is not None
        stored = await app.conversations.get(limited.replay_id)

    assert (limited.status_code, limited.same_text, limited.tokens_after) == (429, None, None)
    assert limited.error == "429: Rate limit reached for gpt-new"
    assert (stored.status_code, stored.outcome, stored.response, stored.replay_of) == (
        429, "upstream_error", rate_limited, first.id)
    assert (dropped.replay_id, dropped.status_code) == (None, None)
    assert dropped.error is not None and dropped.error.startswith("no answer (")
    assert (summary.replayed, summary.failed, summary.same_text) == (1, 2, 0)
    rows = await sql(database_url, "SELECT count(*) AS n FROM raw_conversations WHERE replay_of IS NOT NULL")
    assert rows[0]["n"] == 1


async def test_an_upstream_that_cannot_be_reached_stops_the_replay_and_stores_nothing(
        settings: Settings, database_url: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, never listening: refused
        async with open_app(settings, load_in_background=False) as app:
            logged = await app.conversations.log_captured(captured(
                "/v1/chat/completions", {"model": "m0", "messages": [{"role": "user", "content": "a"}]},
                chat_answer("pong")))
            plan = await app.replay.plan(ReplayCriteria(ids=(logged.id,)), "gpt-new")
            with pytest.raises(InvalidInputError, match="Cannot connect to --upstream"):
                await app.replay.replay(plan, closed, "gpt-new", KEYS)
    rows = await sql(database_url, "SELECT count(*) AS n FROM raw_conversations")
    assert rows[0]["n"] == 1


async def test_a_request_stored_shortened_is_not_replayed(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(database_url, tmp_path, max_exchange_bytes=2048)
    async with open_app(settings, load_in_background=False) as app:
        logged = await app.conversations.log_captured(captured(
            "/v1/chat/completions", {"model": "m0", "messages": [{"role": "user", "content": "x " * 5000}]},
            chat_answer("pong")))
        [planned] = await app.replay.plan(ReplayCriteria(ids=(logged.id,)), "gpt-new")
    assert planned.endpoint is None and "shortened" in (planned.not_replayable or "")


def test_the_upstream_url_is_checked_and_a_trailing_v1_accepted() -> None:
    assert upstream_base("https://api.openai.com") == "https://api.openai.com"
    assert upstream_base(" http://127.0.0.1:8000/v1/ ") == "http://127.0.0.1:8000"
    assert upstream_base("http://proxy.example/openai/") == "http://proxy.example/openai"
    for bad in ("api.openai.com", "ftp://host", "http://", "http://host/?key=1", ""):
        with pytest.raises(InvalidInputError, match="--upstream"):
            upstream_base(bad)


def test_the_answer_text_of_each_api_and_of_older_shapes() -> None:
    assert answer_text("/v1/chat/completions", chat_answer(" two\n words ")) == "two words"
    tool_call = {"choices": [{"message": {"content": None, "tool_calls": [
        {"type": "function", "function": {"name": "add", "arguments": "{\"a\": 1}"}}]}}]}
    assert answer_text("/v1/chat/completions", tool_call) == 'add({"a": 1})'
    assert answer_text("/v1/messages", {"content": [{"type": "text", "text": "Sure."}, {
        "type": "tool_use", "name": "add", "input": {"b": 2, "a": 1}}]}) == 'Sure. add({"a": 1, "b": 2})'
    assert answer_text("/v1/responses", {"output": [{"type": "function_call", "name": "f", "arguments": "{}"}]}) \
        == "f({})"
    assert answer_text("/v1/chat/completions", "plain text") == "plain text"
    assert answer_text("/v1/chat/completions", {"content": "from a hook"}) == "from a hook"
