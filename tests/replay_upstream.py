"""A loopback fake of the three APIs replay sends to (stdlib only, its own thread).

It answers `/v1/chat/completions`, `/v1/responses` and `/v1/messages` in each API's own shape
(the answer text chosen by the last user message, token usage made up from the sizes), records
every request it receives (path, lower-cased headers, JSON body), and can be told to answer the
next calls with an error status or to drop the connection without answering.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.helpers import LoopbackHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Failure:
    status: int = 500
    body: Any = None  # JSON; None: close the connection without answering


def _last_user_text(messages: Any) -> str:
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
            return str(content)
    return ""


class FakeUpstream(LoopbackHTTPServer):
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: dict[str, str] = {}  # last user message -> answer text (default "pong")
        self.failures: deque[Failure] = deque()
        self._lock = threading.Lock()
        super().__init__(self._handler_class())

    def answer(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        messages = body.get("input") if path == "/v1/responses" else body.get("messages")
        text = self.answers.get(_last_user_text(messages), "pong")
        used_in, used_out = len(json.dumps(messages)) // 4, len(text)
        if path == "/v1/chat/completions":
            return {"id": "chatcmpl-1", "object": "chat.completion", "model": body.get("model"),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": used_in, "completion_tokens": used_out,
                              "total_tokens": used_in + used_out}}
        if path == "/v1/responses":
            return {"id": "resp_1", "object": "response", "model": body.get("model"), "status": "completed",
                    "output": [{"type": "message", "role": "assistant",
                                "content": [{"type": "output_text", "text": text}]}],
                    "usage": {"input_tokens": used_in, "output_tokens": used_out,
                              "total_tokens": used_in + used_out}}
        return {"id": "msg_1", "type": "message", "role": "assistant", "model": body.get("model"),
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                "usage": {"input_tokens": used_in, "output_tokens": used_out}}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"null")
                with fake._lock:
                    fake.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                  body))
                    failure = fake.failures.popleft() if fake.failures else None
                if failure is not None and failure.body is None:
                    self.close_connection = True  # no status line at all: the client sees the connection drop
                    self.connection.close()
                    return
                status, answer = (failure.status, failure.body) if failure is not None else (
                    200, fake.answer(self.path, body))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


@contextmanager
def running_upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream
