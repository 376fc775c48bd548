"""A local fake of the OpenAI and Anthropic APIs for the gateway's tests (stdlib only, its own thread).

It speaks both APIs over real TCP (loopback only), streaming (SSE, chunked) and not, records what
it received and the exact bytes it sent, and can be told to answer an error, to drop the
connection mid-stream, or to stream slowly (to see a client go away). TCP_NODELAY is set, or the
kernel holds small SSE writes back (Nagle + delayed ACK).
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.helpers import LoopbackHTTPServer

ANSWER = "Hello from the fake upstream"


@dataclass
class Received:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-cased names
    body: Any


@dataclass
class Reply:
    """What to answer the next request (else the default answer of its endpoint)."""

    status: int = 200
    body: Any = None  # JSON
    headers: dict[str, str] = field(default_factory=dict)
    events: list[tuple[str | None, Any]] | None = None  # SSE (event name, data) instead of `body`
    drop_after: int | None = None  # close the connection after this many events, mid-body
    trickle_s: float | None = None  # after the events, send keep-alive comments this long
    gzip: bool = False  # a JSON body compressed (Content-Encoding: gzip)


def chat_events(text: str = ANSWER, model: str = "gpt-fake") -> list[tuple[str | None, Any]]:
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model}
    words = text.split(" ")
    events: list[tuple[str | None, Any]] = [
        (None, {**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})]
    events += [(None, {**head, "choices": [{"index": 0, "delta": {"content": w if i == 0 else " " + w}}]})
               for i, w in enumerate(words)]
    events.append((None, {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    events.append((None, {**head, "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": len(words),
                                                          "total_tokens": 7 + len(words)}}))
    events.append((None, "[DONE]"))
    return events


def chat_tool_call_events() -> list[tuple[str | None, Any]]:
    head = {"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1, "model": "gpt-fake"}

    def delta(d: dict[str, Any], finish: str | None = None) -> tuple[None, dict[str, Any]]:
        return None, {**head, "choices": [{"index": 0, "delta": d, "finish_reason": finish}]}

    return [
        delta({"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
        delta({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\": "}}]}),
        delta({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
        delta({}, "tool_calls"),
        (None, "[DONE]"),
    ]


def chat_completion(text: str = ANSWER) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}}


def response_object(text: str = ANSWER) -> dict[str, Any]:
    return {"id": "resp_1", "object": "response", "created_at": 1, "status": "completed", "model": "gpt-fake",
            "output": [{"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                        "content": [{"type": "output_text", "text": text, "annotations": []}]}],
            "usage": {"input_tokens": 7, "output_tokens": 5, "total_tokens": 12,
                      "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}},
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": []}


def response_events(text: str = ANSWER) -> list[tuple[str | None, Any]]:
    final = response_object(text)
    started = {**final, "status": "in_progress", "output": [], "usage": None}
    events: list[tuple[str | None, Any]] = [
        ("response.created", {"type": "response.created", "sequence_number": 0, "response": started})]
    for i, word in enumerate(text.split(" ")):
        events.append(("response.output_text.delta", {
            "type": "response.output_text.delta", "sequence_number": i + 1, "item_id": "msg_1", "output_index": 0,
            "content_index": 0, "delta": word if i == 0 else " " + word, "logprobs": []}))
    events.append(("response.completed", {"type": "response.completed", "sequence_number": 99, "response": final}))
    return events


def anthropic_message(text: str = ANSWER) -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-fake",
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 7, "output_tokens": 5}}


def anthropic_events(text: str = ANSWER) -> list[tuple[str | None, Any]]:
    start = {**anthropic_message(), "content": [], "stop_reason": None, "usage": {"input_tokens": 7,
                                                                                   "output_tokens": 1}}
    events: list[tuple[str | None, Any]] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
    ]
    events += [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                        "delta": {"type": "text_delta", "text": w if i == 0 else " " + w}})
               for i, w in enumerate(text.split(" "))]
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                           "usage": {"output_tokens": 9}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return events


def sse(events: list[tuple[str | None, Any]]) -> list[bytes]:
    out = []
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        out.append(((f"event: {name}\n" if name else "") + f"data: {text}\n\n").encode())
    return out


class FakeUpstream(LoopbackHTTPServer):
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.replies: deque[Reply] = deque()
        self.sent: list[bytes] = []  # the body bytes of each answer, as sent
        self.client_went_away = threading.Event()  # a trickled stream's reader closed the connection
        super().__init__(self._handler_class())

    def reply(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def default(self, method: str, path: str, body: Any) -> Reply:
        route = path.split("?")[0]
        stream = isinstance(body, dict) and body.get("stream") is True
        if route == "/v1/chat/completions":
            return Reply(events=chat_events()) if stream else Reply(body=chat_completion())
        if route == "/v1/responses":
            return Reply(events=response_events()) if stream else Reply(body=response_object())
        if route == "/v1/messages":
            return Reply(events=anthropic_events()) if stream else Reply(body=anthropic_message())
        if route == "/v1/messages/count_tokens":
            return Reply(body={"input_tokens": 11})
        if route == "/v1/embeddings":
            return Reply(body={"object": "list", "data": [{"object": "embedding", "index": 0,
                                                           "embedding": [0.5, 0.5]}], "model": "emb-fake",
                               "usage": {"prompt_tokens": 1, "total_tokens": 1}})
        if route.startswith("/v1/models"):
            return Reply(body={"object": "list", "data": [{"id": "gpt-fake", "object": "model", "created": 1,
                                                           "owned_by": "fake"}]})
        return Reply(status=404, body={"error": {"message": f"no route {route}"}})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._answer(None)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                self._answer(json.loads(raw) if raw else None)

            def _answer(self, body: Any) -> None:
                upstream.received.append(Received(self.command, self.path, {k.lower(): v for k, v in
                                                                           self.headers.items()}, body))
                reply = upstream.replies.popleft() if upstream.replies else upstream.default(
                    self.command, self.path, body)
                request_id = f"req_fake_{len(upstream.received)}"
                self.send_response(reply.status)
                self.send_header("x-request-id", request_id)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.events is None:
                    data = json.dumps(reply.body).encode()
                    if reply.gzip:
                        data = gzip.compress(data)
                        self.send_header("content-encoding", "gzip")
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    upstream.sent.append(data)  # (before the body: a client may look as soon as it has it)
                    self.wfile.write(data)
                    return
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                sent = b""
                for index, chunk in enumerate(sse(reply.events)):
                    if reply.drop_after is not None and index == reply.drop_after:
                        upstream.sent.append(sent)
                        self.connection.shutdown(socket.SHUT_RDWR)  # mid-body, no final chunk
                        self.close_connection = True
                        return
                    self._chunk(chunk)
                    sent += chunk
                if reply.trickle_s is not None and not self._trickle(reply.trickle_s):
                    upstream.sent.append(sent)
                    return
                upstream.sent.append(sent)  # (before the last chunk: a client may look as soon as the body ends)
                self.wfile.write(b"0\r\n\r\n")

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _trickle(self, seconds: float) -> bool:
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    try:
                        self._chunk(b": keep-alive\n\n")
                    except OSError:
                        upstream.client_went_away.set()
                        self.close_connection = True
                        return False
                    time.sleep(0.02)
                return True

        return Handler


@contextmanager
def running_upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream
