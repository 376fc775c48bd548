"""The gateway between the real openai and anthropic SDKs and a fake upstream, over real sockets.

The gateway runs in-process (uvicorn on a free port, the app built by `build_gateway_app`, its
lifespan opening the real application on a real PostgreSQL); rows are read with SQL once the
gateway has shut down (its spool drained), so each test checks exactly one row per call.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anthropic
import anyio
import httpx2
import openai
import pytest
import uvicorn

from mcp_server.errors import ConfigurationError
from mcp_server.gateway.app import build_gateway_app
from mcp_server.http_auth import add_token
from mcp_server.http_transport import server_config
from mcp_server.schemas import MAX_PROJECT_CHARS
from mcp_server.settings import Settings
from tests.gateway.fake_upstream import (
    ANSWER,
    FakeUpstream,
    Reply,
    chat_completion,
    chat_events,
    chat_tool_call_events,
    running_upstream,
)
from tests.helpers import conversation_rows, free_port, make_settings, sql

pytestmark = pytest.mark.anyio

# A credential no redaction rule knows: if it is absent from the database, the gateway never copied it.
API_KEY = f"test-credential-{uuid.uuid4().hex}"
MESSAGES = [{"role": "user", "content": "Say hello"}]


def gateway_settings(database_url: str, tmp_path: Path, upstream: FakeUpstream, **overrides: Any) -> Settings:
    return make_settings(database_url, tmp_path, gateway_openai_upstream=upstream.url,
                         gateway_anthropic_upstream=upstream.url, **overrides)


class Clients:
    """SDK clients pointed at the gateway (closed when the gateway stops)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._open: list[openai.AsyncOpenAI | anthropic.AsyncAnthropic] = []

    def openai(self, **headers: str) -> openai.AsyncOpenAI:
        client = openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key=API_KEY, max_retries=0,
                                    default_headers=headers)
        self._open.append(client)
        return client

    def anthropic(self) -> anthropic.AsyncAnthropic:
        client = anthropic.AsyncAnthropic(base_url=self.url, api_key=API_KEY, max_retries=0)
        self._open.append(client)
        return client

    async def aclose(self) -> None:
        for client in self._open:
            await client.close()


@asynccontextmanager
async def running_gateway(settings: Settings, host: str = "127.0.0.1") -> AsyncIterator[Clients]:
    """The gateway on a free loopback port until the block ends, then shut down (spool drained)."""
    app = build_gateway_app(settings, host)
    port = free_port()
    server = uvicorn.Server(server_config(settings, app, "127.0.0.1", port))
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(server.serve)
        with anyio.fail_after(60):
            while not server.started:
                assert app.state.gateway.startup_error is None, app.state.gateway.startup_error
                await anyio.sleep(0.02)
        clients = Clients(f"http://127.0.0.1:{port}")
        try:
            yield clients
        finally:
            await clients.aclose()
            server.should_exit = True


async def assert_no_credential(database_url: str) -> None:
    leaked = await sql(database_url, "SELECT id FROM raw_conversations c WHERE strpos(row_to_json(c)::text, $1) > 0",
                       API_KEY)
    assert leaked == []


async def test_openai_chat_completions_plain_streamed_and_tool_calls(database_url: str, tmp_path: Path) -> None:
    with running_upstream() as upstream:
        async with running_gateway(gateway_settings(database_url, tmp_path, upstream)) as gateway:
            client = gateway.openai()
            plain = await client.chat.completions.create(model="gpt-fake", messages=MESSAGES,  # type: ignore[arg-type]
                                                         temperature=0.2)
            assert plain.choices[0].message.content == ANSWER
            assert plain._request_id == "req_fake_1"  # the upstream's id, kept as the call's id

            stream = await client.chat.completions.create(model="gpt-fake", messages=MESSAGES,  # type: ignore[arg-type]
                                                          stream=True, stream_options={"include_usage": True})
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            assert text == ANSWER

            upstream.reply(Reply(events=chat_tool_call_events()))
            calls = await client.chat.completions.create(model="gpt-fake", messages=MESSAGES,  # type: ignore[arg-type]
                                                         stream=True)
            arguments = "".join([c.choices[0].delta.tool_calls[0].function.arguments or ""  # type: ignore[index,union-attr]
                                 async for c in calls if c.choices and c.choices[0].delta.tool_calls])
            assert arguments == '{"city": "Paris"}'
        for received in upstream.received:  # the client's credential went upstream untouched
            assert received.headers["authorization"] == f"Bearer {API_KEY}"
    stored = await conversation_rows(database_url)
    assert len(stored) == 3
    first, second, third = stored
    for row in stored:
        assert (row["provider"], row["endpoint"], row["model"], row["status_code"], row["outcome"]) == (
            "openai", "/v1/chat/completions", "gpt-fake", 200, "completed")
        assert row["messages"] == MESSAGES
        assert row["latency_ms"] >= 0
    assert first["request_id"] == "req_fake_1"
    assert first["request"]["temperature"] == 0.2 and first["stream"] is False and first["ttft_ms"] is None
    assert first["response"]["choices"][0]["message"]["content"] == ANSWER
    assert first["usage"] == {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
    assert second["stream"] is True and second["ttft_ms"] is not None
    assert second["response"]["choices"][0]["message"]["content"] == ANSWER
    assert second["response"]["choices"][0]["finish_reason"] == "stop"
    assert second["usage"]["completion_tokens"] == len(ANSWER.split())
    tool_call = third["response"]["choices"][0]["message"]["tool_calls"][0]
    assert tool_call == {"id": "call_1", "type": "function",
                         "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    assert third["response"]["choices"][0]["finish_reason"] == "tool_calls"
    await assert_no_credential(database_url)


async def test_openai_responses_plain_and_streamed(database_url: str, tmp_path: Path) -> None:
    with running_upstream() as upstream:
        async with running_gateway(gateway_settings(database_url, tmp_path, upstream)) as gateway:
            client = gateway.openai()
            plain = await client.responses.create(model="gpt-fake", input="Say hello", instructions="Be brief")
            assert plain.output_text == ANSWER
            stream = await client.responses.create(model="gpt-fake", input="Say hello", stream=True)
            deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
            assert "".join(deltas) == ANSWER
    plain_row, stream_row = await conversation_rows(database_url)
    for row in (plain_row, stream_row):
        assert (row["provider"], row["endpoint"], row["model"], row["outcome"]) == (
            "openai", "/v1/responses", "gpt-fake", "completed")
        assert row["response"]["output"][0]["content"][0]["text"] == ANSWER
        assert row["usage"]["total_tokens"] == 12
    assert plain_row["request"]["instructions"] == "Be brief"
    assert stream_row["stream"] is True and stream_row["ttft_ms"] is not None
    await assert_no_credential(database_url)


async def test_anthropic_messages_plain_and_streamed_and_unlogged_calls(database_url: str, tmp_path: Path) -> None:
    with running_upstream() as upstream:
        async with running_gateway(gateway_settings(database_url, tmp_path, upstream)) as gateway:
            client = gateway.anthropic()
            plain = await client.messages.create(model="claude-fake", max_tokens=50, system="Be brief",
                                                 messages=MESSAGES)  # type: ignore[arg-type]
            assert plain.content[0].text == ANSWER  # type: ignore[union-attr]
            async with client.messages.stream(model="claude-fake", max_tokens=50,
                                              messages=MESSAGES) as stream:  # type: ignore[arg-type]
                final = await stream.get_final_message()
            assert final.content[0].text == ANSWER  # type: ignore[union-attr]
            assert final.content[1].input == {"city": "Paris"}  # type: ignore[union-attr]
            # Passed through, not logged: token counts, models, embeddings.
            counted = await client.messages.count_tokens(model="claude-fake", messages=MESSAGES)  # type: ignore[arg-type]
            assert counted.input_tokens == 11
            assert [m.id async for m in client.models.list()] == ["gpt-fake"]
            await gateway.openai().embeddings.create(model="emb-fake", input="x")
            assert [m.id async for m in gateway.openai().models.list()] == ["gpt-fake"]
        paths = [r.path.split("?")[0] for r in upstream.received]
        assert paths == ["/v1/messages", "/v1/messages", "/v1/messages/count_tokens", "/v1/models",
                         "/v1/embeddings", "/v1/models"]
        assert ["anthropic-version" in r.headers for r in upstream.received] == [True] * 4 + [False] * 2
        for received in upstream.received:
            credential = received.headers.get("x-api-key") or received.headers.get("authorization")
            assert credential in (API_KEY, f"Bearer {API_KEY}")
    plain_row, stream_row = await conversation_rows(database_url)
    for row in (plain_row, stream_row):
        assert (row["provider"], row["endpoint"], row["model"], row["outcome"]) == (
            "anthropic", "/v1/messages", "claude-fake", "completed")
        assert row["messages"] == MESSAGES
    assert plain_row["request"]["system"] == "Be brief"
    assert plain_row["response"]["content"][0]["text"] == ANSWER
    assert stream_row["response"]["content"][0]["text"] == ANSWER
    assert stream_row["response"]["content"][1]["input"] == {"city": "Paris"}
    assert stream_row["response"]["stop_reason"] == "tool_use"
    assert stream_row["usage"]["output_tokens"] == 9 and stream_row["ttft_ms"] is not None
    await assert_no_credential(database_url)


async def test_upstream_errors_reach_the_client_as_sent(database_url: str, tmp_path: Path) -> None:
    limited = {"error": {"message": "Rate limit reached", "type": "requests", "param": None,
                         "code": "rate_limit_exceeded"}}
    broken = {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}
    with running_upstream() as upstream:
        upstream.reply(Reply(status=429, body=limited, headers={"retry-after": "7"}),
                       Reply(status=500, body=broken))
        async with running_gateway(gateway_settings(database_url, tmp_path, upstream)) as gateway:
            with pytest.raises(openai.RateLimitError) as rate_limited:
                await gateway.openai().chat.completions.create(model="gpt-fake",
                                                                     messages=MESSAGES)  # type: ignore[arg-type]
            with pytest.raises(anthropic.InternalServerError) as failed:
                await gateway.anthropic().messages.create(model="claude-fake", max_tokens=5,
                                                                messages=MESSAGES)  # type: ignore[arg-type]
        assert rate_limited.value.status_code == 429
        assert rate_limited.value.response.headers["retry-after"] == "7"
        assert rate_limited.value.response.content == upstream.sent[0]  # byte for byte
        assert failed.value.status_code == 500
        assert failed.value.response.content == upstream.sent[1]
    limited_row, broken_row = await conversation_rows(database_url)
    assert (limited_row["status_code"], limited_row["outcome"], limited_row["response"]) == (
        429, "upstream_error", limited)
    assert (broken_row["status_code"], broken_row["outcome"], broken_row["response"]) == (
        500, "upstream_error", broken)


async def test_a_stream_the_upstream_drops_is_dropped_for_the_client(database_url: str, tmp_path: Path) -> None:
    with running_upstream() as upstream:
        upstream.reply(Reply(events=chat_events(), drop_after=3))  # role, "Hello", " from", then gone
        async with running_gateway(gateway_settings(database_url, tmp_path, upstream)) as gateway:
            stream = await gateway.openai().chat.completions.create(
                model="gpt-fake", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
            got: list[str] = []
            with pytest.raises((httpx2.RemoteProtocolError, openai.APIConnectionError)):
                async for chunk in stream:
                    got.append(chunk.choices[0].delta.content or "")
            assert "".join(got) == "Hello from"
    (row,) = await conversation_rows(database_url)
    assert (row["outcome"], row["status_code"], row["stream"]) == ("upstream_dropped", 200, True)
    assert row["response"]["choices"][0]["message"]["content"] == "Hello from"


async def test_a_client_leaving_mid_stream_is_logged_as_such(database_url: str, tmp_path: Path) -> None:
    with running_upstream() as upstream:
        upstream.reply(Reply(events=chat_events()[:3], trickle_s=20))  # then keeps the stream open
        async with running_gateway(gateway_settings(database_url, tmp_path, upstream)) as gateway:
            stream = await gateway.openai().chat.completions.create(
                model="gpt-fake", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
            got = ""
            async for chunk in stream:
                got += chunk.choices[0].delta.content or ""
                if got == "Hello from":
                    break
            await stream.close()
            # The gateway gives up the upstream's connection too (no answer generated for nobody).
            assert await anyio.to_thread.run_sync(upstream.client_went_away.wait, 10)
    (row,) = await conversation_rows(database_url)
    assert (row["outcome"], row["status_code"], row["stream"]) == ("client_disconnected", 200, True)
    assert row["response"]["choices"][0]["message"]["content"] == "Hello from"


async def test_bytes_request_id_query_and_project_pass_as_sent(database_url: str, tmp_path: Path) -> None:
    body = {"model": "claude-fake", "max_tokens": 10, "stream": True, "messages": MESSAGES}
    with running_upstream() as upstream:
        async with running_gateway(gateway_settings(database_url, tmp_path, upstream)) as gateway, \
                httpx2.AsyncClient(timeout=30) as http:
            headers = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01", "x-request-id": "client-id-1",
                       "aletheia-project": "github.com/acme/app", "x-claude-code-session-id": "s-1"}
            async with http.stream("POST", f"{gateway.url}/v1/messages?beta=true", json=body,
                                   headers=headers) as answer:
                received = b"".join([chunk async for chunk in answer.aiter_raw()])
            assert answer.headers["x-request-id"] == "client-id-1"
            assert answer.headers["content-type"] == "text/event-stream"
            assert received == upstream.sent[0]  # the exact bytes, event by event
            generated = await http.post(f"{gateway.url}/v1/chat/completions", json={"model": "m", "messages": MESSAGES},
                                        headers={"authorization": f"Bearer {API_KEY}"})
        (sent, _) = upstream.received
        assert sent.path == "/v1/messages?beta=true"
        assert sent.headers["x-api-key"] == API_KEY and sent.headers["x-claude-code-session-id"] == "s-1"
        assert "aletheia-project" not in sent.headers
    first, second = await conversation_rows(database_url)
    assert (first["request_id"], first["project_key"]) == ("client-id-1", "github.com/acme/app")
    assert second["request_id"] == generated.headers["x-request-id"] == "req_fake_2"
    assert second["project_key"] is None  # outside any repository, no ALETHEIA_PROJECT
    await assert_no_credential(database_url)


async def test_a_compressed_answer_reaches_the_client_compressed_and_is_logged_readable(
        database_url: str, tmp_path: Path) -> None:
    with running_upstream() as upstream:
        upstream.reply(Reply(body=chat_completion(), gzip=True))
        async with running_gateway(gateway_settings(database_url, tmp_path, upstream)) as gateway, \
                httpx2.AsyncClient(timeout=30) as http:
            answer = await http.post(f"{gateway.url}/v1/chat/completions", json={"model": "m", "messages": MESSAGES},
                                     headers={"accept-encoding": "br, gzip;q=0.9, zstd"})
        assert answer.headers["content-encoding"] == "gzip" and answer.json() == chat_completion()
        # Only the codings the log can read are asked for (each one the client accepted).
        assert upstream.received[0].headers["accept-encoding"] == "gzip;q=0.9"
    (row,) = await conversation_rows(database_url)
    assert row["response"]["choices"][0]["message"]["content"] == ANSWER


async def test_an_unreachable_upstream_is_a_502_and_a_row(database_url: str, tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(database_url, tmp_path, gateway_openai_upstream=nowhere, project="github.com/acme/app")
    async with running_gateway(settings) as gateway:
        with pytest.raises(openai.APIStatusError) as failed:
            await gateway.openai().chat.completions.create(model="gpt-fake",
                                                                 messages=MESSAGES)  # type: ignore[arg-type]
    assert failed.value.status_code == 502
    assert "could not be reached" in failed.value.message and "GATEWAY_OPENAI_UPSTREAM" in failed.value.message
    (row,) = await conversation_rows(database_url)
    assert (row["outcome"], row["status_code"], row["project_key"]) == ("unreachable", 502, "github.com/acme/app")
    assert len(row["request_id"]) == 32  # made by the gateway
    await assert_no_credential(database_url)


async def test_bad_gateway_headers_and_paths_are_refused_and_not_forwarded(database_url: str, tmp_path: Path) -> None:
    with running_upstream() as upstream:
        async with running_gateway(gateway_settings(database_url, tmp_path, upstream)) as gateway, \
                httpx2.AsyncClient(timeout=30) as http:
            bad = await http.post(f"{gateway.url}/v1/chat/completions", json={"model": "m", "messages": MESSAGES},
                                  headers={"aletheia-project": "x" * (MAX_PROJECT_CHARS + 1)})
            unknown = await http.post(f"{gateway.url}/v1/audio/speech", json={})
        assert upstream.received == []
    assert bad.status_code == 400 and "Aletheia-Project header" in bad.json()["error"]["message"]
    assert unknown.status_code == 404 and "/v1/chat/completions" in unknown.json()["error"]["message"]
    assert await conversation_rows(database_url) == []


async def test_web_pages_cannot_use_the_gateway(database_url: str, tmp_path: Path) -> None:
    """A page in the user's browser can send a "simple" text/plain POST to a loopback port, or reach
    it by DNS rebinding: refused before anything reaches the upstream (API clients send JSON, no Origin)."""
    body = json.dumps({"model": "m", "messages": MESSAGES})
    with running_upstream() as upstream:
        async with running_gateway(gateway_settings(database_url, tmp_path, upstream)) as gateway, \
                httpx2.AsyncClient(timeout=30) as http:
            url = f"{gateway.url}/v1/chat/completions"
            simple = await http.post(url, content=body, headers={"content-type": "text/plain"})
            foreign = await http.post(url, content=body, headers={"content-type": "application/json",
                                                                   "origin": "https://evil.example"})
            rebound = await http.post(url, content=body, headers={"content-type": "application/json",
                                                                   "host": "evil.example:8788"})
        assert upstream.received == []
    assert (simple.status_code, foreign.status_code, rebound.status_code) == (400, 403, 421)
    assert await conversation_rows(database_url) == []


async def test_beyond_loopback_the_gateway_needs_its_own_token(database_url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="ALETHEIA_HTTP_TOKENS_FILE"):
        build_gateway_app(make_settings(database_url, tmp_path), "0.0.0.0")
    tokens = tmp_path / "secrets" / "tokens.json"
    token = add_token(tokens, "alice")
    settings = make_settings(database_url, tmp_path, http_tokens_file=tokens,
                             gateway_anthropic_upstream="http://127.0.0.1:1")
    with running_upstream() as upstream:
        settings = settings.model_copy(update={"gateway_openai_upstream": upstream.url})
        async with running_gateway(settings, host="0.0.0.0") as gateway:
            with pytest.raises(openai.AuthenticationError) as refused:
                await gateway.openai().chat.completions.create(model="gpt-fake",
                                                                     messages=MESSAGES)  # type: ignore[arg-type]
            assert "Aletheia-Token" in refused.value.message
            answer = await gateway.openai(**{"Aletheia-Token": token}).chat.completions.create(
                model="gpt-fake", messages=MESSAGES)  # type: ignore[arg-type]
            assert answer.choices[0].message.content == ANSWER
        (sent,) = upstream.received
        assert sent.headers["authorization"] == f"Bearer {API_KEY}" and "aletheia-token" not in sent.headers
    (row,) = await conversation_rows(database_url)
    assert row["outcome"] == "completed"
    assert await sql(database_url, "SELECT id FROM raw_conversations c WHERE strpos(row_to_json(c)::text, $1) > 0",
                     token) == []
