"""A loopback fake of the OpenAI chat completions API for the gateway benchmark.

Run as its own process (`python -m bench.fake_llm_upstream PORT`), so that its work does not
share a GIL with the benchmark's clients. It answers `POST /v1/chat/completions` at once: a JSON
completion, or (`"stream": true`) server-sent events sent one ASGI message each, the first one
before the rest, as a model's first token would be; after `x-fake-delay-ms` milliseconds when the
request has that header (a model's time to answer). `GET /v1/models` answers too (readiness).

Served by uvicorn (the HTTP stack the gateway itself runs on), so no HTTP is parsed by hand.
asyncio sets TCP_NODELAY on every TCP connection it accepts: small SSE writes are not held back
by Nagle's algorithm waiting for the client's delayed ACK (which costs ~40 ms a call on loopback).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MODEL = "gpt-fake"
DELAY_HEADER = b"x-fake-delay-ms"  # passes through the gateway like any header
ANSWER = ("The retry helper now backs off exponentially with full jitter, caps the wait at thirty "
          "seconds and logs each attempt with its delay and the error that caused it.")
ANSWER_WORDS = ANSWER.split(" ")
JSON_HEADERS = [(b"content-type", b"application/json")]
SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


def completion() -> bytes:
    return json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1, "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": " ".join(ANSWER_WORDS)},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 420, "completion_tokens": len(ANSWER_WORDS),
                  "total_tokens": 420 + len(ANSWER_WORDS)},
    }).encode()


def stream_events() -> list[bytes]:
    head = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": MODEL}

    def event(payload: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps({**head, **payload}).encode() + b"\n\n"

    events = [event({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})]
    events += [event({"choices": [{"index": 0, "delta": {"content": w if i == 0 else " " + w}}]})
               for i, w in enumerate(ANSWER_WORDS)]
    events.append(event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    events.append(event({"choices": [], "usage": {"prompt_tokens": 420, "completion_tokens": len(ANSWER_WORDS),
                                                  "total_tokens": 420 + len(ANSWER_WORDS)}}))
    events.append(b"data: [DONE]\n\n")
    return events


# Built once: the fake should cost as little as it can, so that what is measured is the gateway.
COMPLETION = completion()
EVENTS = stream_events()
MODELS = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode()


_request_ids = itertools.count(1)


def request_id() -> tuple[bytes, bytes]:
    """Each answer's own id, as OpenAI sends (the gateway keeps it as the row's request id)."""
    return b"x-request-id", b"req_%d" % next(_request_ids)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["method"] == "GET" and scope["path"] == "/v1/models":
        await _whole(send, 200, MODELS)
    elif scope["method"] == "POST" and scope["path"] == "/v1/chat/completions":
        delay_ms = dict(scope["headers"]).get(DELAY_HEADER)
        if delay_ms:  # a model's time before its answer (or its first token)
            await asyncio.sleep(int(delay_ms) / 1000)
        if json.loads(body).get("stream"):
            await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, request_id()]})
            for event in EVENTS:
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        else:
            await _whole(send, 200, COMPLETION)
    else:
        await _whole(send, 404, b'{"error": {"message": "not served by the fake upstream"}}')


async def _whole(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [*JSON_HEADERS, request_id()]})
    await send({"type": "http.response.body", "body": body})


def main(port: int) -> None:
    # Idle connections kept 75 s (nginx's default) rather than uvicorn's 5 s: the benchmark's paths
    # idle while the others are measured, and a reconnect is not what it measures.
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on",
                timeout_keep_alive=75)


if __name__ == "__main__":
    main(int(sys.argv[1]))
