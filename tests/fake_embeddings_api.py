"""A real, local OpenAI-compatible embeddings server for the tests (stdlib only, its own thread).

Requests actually travel over TCP to it, so the tests check what the client really sends
(URL, headers, batches) and how it copes with what a server really answers (shuffled data,
429 with Retry-After, 401, 500s, garbage vectors, slow replies).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import numpy as np

from mcp_server.embeddings.hashing import HashingEmbedder
from tests.helpers import LoopbackHTTPServer


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # None: embeddings of the request's input
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    raw: bytes | None = None  # sent verbatim instead of JSON


def reference_vector(text: str, dimension: int) -> np.ndarray:
    """The vector the fake server returns for `text` (normalised; distinct for distinct texts)."""
    return HashingEmbedder(dimension).embed_sync([text])[0]


class FakeEmbeddingsAPI(LoopbackHTTPServer):
    def __init__(self, dimension: int = 16, shuffle: bool = False, context_tokens: int | None = None) -> None:
        self.dimension = dimension
        self.shuffle = shuffle
        # Like a real API's context length (OpenAI: 8,191 tokens): a longer input is refused, 400.
        # Each UTF-8 byte counts as a token: the most a byte-level BPE tokenizer can make of a text.
        self.context_tokens = context_tokens
        self.received: list[Received] = []
        self.replies: deque[Reply] = deque()
        self.vector_hook: Callable[[list[float], int], list[float]] | None = None
        self._lock = threading.Lock()
        super().__init__(self._handler_class())

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def reply(self, *replies: Reply) -> None:
        """Queue replies for the next requests; once they are used up, requests succeed."""
        self.replies.extend(replies)

    def _default_reply(self, body: Any) -> Reply:
        inputs = body.get("input") if isinstance(body, dict) else None
        longest = max((len(t.encode()) for t in inputs if isinstance(t, str)), default=0) if inputs else 0
        if self.context_tokens is not None and longest > self.context_tokens:
            return Reply(status=400, body={"error": {
                "message": f"This model's maximum context length is {self.context_tokens} tokens, however you "
                           f"requested {longest} tokens. Please reduce your prompt.",
                "type": "invalid_request_error", "param": None, "code": "context_length_exceeded"}})
        return Reply()

    def _success(self, inputs: list[str]) -> dict[str, Any]:
        data = []
        for index, text in enumerate(inputs):
            embedding = reference_vector(text, self.dimension).tolist()
            if self.vector_hook is not None:
                embedding = self.vector_hook(embedding, index)
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        if self.shuffle:
            random.Random(len(self.received)).shuffle(data)
        return {"object": "list", "data": data, "model": "fake", "usage": {"prompt_tokens": 0, "total_tokens": 0}}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"null")
                with api._lock:
                    api.received.append(
                        Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    reply = api.replies.popleft() if api.replies else api._default_reply(body)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.raw is not None:
                    payload = reply.raw
                else:
                    content = api._success(body["input"]) if reply.body is None else reply.body
                    payload = json.dumps(content).encode()  # allow_nan: NaN goes out as a bare NaN
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                """Keep the test output quiet."""

        return Handler


@contextmanager
def running_api(dimension: int = 16, shuffle: bool = False,
                context_tokens: int | None = None) -> Iterator[FakeEmbeddingsAPI]:
    with FakeEmbeddingsAPI(dimension, shuffle, context_tokens) as api:
        yield api
