"""Rebuild a streamed (SSE) answer on the side, as the bytes pass through to the client.

The gateway never changes or holds back what the client receives: it feeds each chunk the
upstream sent to a `StreamTap`, which splits it into server-sent events and hands them to the
assembler of the API (OpenAI chat completions, OpenAI Responses, Anthropic Messages). At the end
`result()` is what a non-streaming call would have answered (text, tool calls, usage, stop
reason), and what is logged. A stream cut short gives what had arrived.
"""

from __future__ import annotations

import json
import zlib
from typing import Any, Protocol

# Codings the gateway can read for its log; it asks the upstream for no other (proxy.py).
READABLE_CODINGS = ("gzip", "deflate", "identity")
# The last event of a whole answer, per API (chat completions end with `data: [DONE]`).
END_EVENTS = frozenset({"message_stop", "response.completed", "response.incomplete", "response.failed"})


class SseEvents:
    """An incremental server-sent events parser (the WHATWG rules for lines and fields): bytes in,
    (event, data) out. Lines end with CRLF, LF or CR, also split across chunks."""

    def __init__(self) -> None:
        self._pending = b""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        text = self._pending + chunk
        # A CR at the very end may be the first half of a CRLF: wait for the next chunk to know.
        cut = len(text) - 1 if text.endswith(b"\r") else len(text)
        lines = text[:cut].replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        self._pending = lines.pop() + text[cut:]
        events: list[tuple[str, str]] = []
        for raw in lines:
            line = raw.decode("utf-8", errors="replace")
            if not line:
                if self._data or self._event:
                    events.append((self._event or "message", "\n".join(self._data)))
                self._event, self._data = "", []
                continue
            if line.startswith(":"):
                continue  # a comment (keep-alive)
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                self._event = value
            elif name == "data":
                self._data.append(value)
        return events


class Assembler(Protocol):
    def feed(self, event: str, data: Any) -> None: ...
    def result(self) -> dict[str, Any]: ...
    def usage(self) -> dict[str, Any] | None: ...
    def model(self) -> str | None: ...


class ChatCompletionAssembler:
    """OpenAI `/v1/chat/completions` chunks -> a `chat.completion`: content deltas joined, tool-call
    deltas merged by index, finish_reason, and usage from the last chunk (stream_options)."""

    def __init__(self) -> None:
        self._head: dict[str, Any] = {}
        self._choices: dict[int, dict[str, Any]] = {}
        self._usage: dict[str, Any] | None = None

    def feed(self, event: str, data: Any) -> None:
        if not isinstance(data, dict):
            return
        for key in ("id", "created", "model", "system_fingerprint", "service_tier"):
            if data.get(key) is not None:
                self._head[key] = data[key]
        if isinstance(data.get("usage"), dict):
            self._usage = data["usage"]
        if isinstance(data.get("error"), dict):
            self._head["error"] = data["error"]
        for choice in data.get("choices") or []:
            if isinstance(choice, dict):
                self._merge_choice(choice)

    def _merge_choice(self, choice: dict[str, Any]) -> None:
        index = choice.get("index", 0)
        into = self._choices.setdefault(index, {"index": index, "message": {"role": "assistant", "content": None},
                                                "finish_reason": None})
        message = into["message"]
        delta = choice.get("delta") or {}
        if delta.get("role"):
            message["role"] = delta["role"]
        for field in ("content", "refusal", "reasoning_content"):
            if isinstance(delta.get(field), str):
                message[field] = (message.get(field) or "") + delta[field]
        for call in delta.get("tool_calls") or []:
            calls = message.setdefault("tool_calls", {})
            slot = calls.setdefault(call.get("index", len(calls)),
                                    {"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
            if call.get("id"):
                slot["id"] = call["id"]
            if call.get("type"):
                slot["type"] = call["type"]
            function = call.get("function") or {}
            slot["function"]["name"] += function.get("name") or ""
            slot["function"]["arguments"] += function.get("arguments") or ""
        if choice.get("finish_reason") is not None:
            into["finish_reason"] = choice["finish_reason"]

    def result(self) -> dict[str, Any]:
        choices = []
        for index in sorted(self._choices):
            choice = self._choices[index]
            message = dict(choice["message"])
            if "tool_calls" in message:
                message["tool_calls"] = [message["tool_calls"][i] for i in sorted(message["tool_calls"])]
            choices.append({**choice, "message": message})
        return {**self._head, "object": "chat.completion", "choices": choices, "usage": self._usage}

    def usage(self) -> dict[str, Any] | None:
        return self._usage

    def model(self) -> str | None:
        model = self._head.get("model")
        return model if isinstance(model, str) else None


class ResponsesAssembler:
    """OpenAI `/v1/responses` events: `response.completed` (or `.incomplete`, `.failed`) carries the
    whole response; until one arrives, the output text deltas seen so far stand in for it."""

    _FINAL = ("response.completed", "response.incomplete", "response.failed")

    def __init__(self) -> None:
        self._response: dict[str, Any] | None = None
        self._final = False
        self._text: list[str] = []
        self._error: Any = None

    def feed(self, event: str, data: Any) -> None:
        if not isinstance(data, dict):
            return
        kind = data.get("type") or event
        if isinstance(data.get("response"), dict) and not self._final:
            self._response = data["response"]
            self._final = kind in self._FINAL
        elif kind == "response.output_text.delta" and isinstance(data.get("delta"), str):
            self._text.append(data["delta"])
        elif kind == "error":
            self._error = data

    def result(self) -> dict[str, Any]:
        response = dict(self._response or {"object": "response"})
        if not self._final:  # cut short: what had been said
            response["output_text"] = "".join(self._text)
        if self._error is not None:
            response["error"] = self._error
        return response

    def usage(self) -> dict[str, Any] | None:
        usage = (self._response or {}).get("usage")
        return usage if isinstance(usage, dict) else None

    def model(self) -> str | None:
        model = (self._response or {}).get("model")
        return model if isinstance(model, str) else None


class MessagesAssembler:
    """Anthropic `/v1/messages` events -> a `message`: message_start, content blocks (text_delta,
    input_json_delta parsed at the block's end, thinking), message_delta's stop_reason and usage."""

    def __init__(self) -> None:
        self._message: dict[str, Any] = {"type": "message", "role": "assistant", "content": []}
        self._blocks: dict[int, dict[str, Any]] = {}
        self._json: dict[int, str] = {}

    def feed(self, event: str, data: Any) -> None:
        if not isinstance(data, dict):
            return
        kind = data.get("type") or event
        if kind == "message_start" and isinstance(data.get("message"), dict):
            self._message.update({k: v for k, v in data["message"].items() if k != "content"})
        elif kind == "content_block_start" and isinstance(data.get("content_block"), dict):
            self._blocks[data.get("index", len(self._blocks))] = dict(data["content_block"])
        elif kind == "content_block_delta":
            self._delta(data.get("index", 0), data.get("delta") or {})
        elif kind == "content_block_stop":
            self._close_json(data.get("index", 0))
        elif kind == "message_delta":
            delta = data.get("delta") or {}
            self._message.update({k: v for k, v in delta.items() if k in ("stop_reason", "stop_sequence")})
            if isinstance(data.get("usage"), dict):
                self._message["usage"] = {**(self._message.get("usage") or {}), **data["usage"]}
        elif kind == "error":
            self._message["error"] = data.get("error", data)

    def _delta(self, index: int, delta: dict[str, Any]) -> None:
        block = self._blocks.setdefault(index, {"type": "text", "text": ""})
        kind = delta.get("type")
        if kind == "text_delta":
            block["text"] = (block.get("text") or "") + str(delta.get("text", ""))
        elif kind == "input_json_delta":
            self._json[index] = self._json.get(index, "") + str(delta.get("partial_json", ""))
        elif kind == "thinking_delta":
            block["thinking"] = (block.get("thinking") or "") + str(delta.get("thinking", ""))
        elif kind == "signature_delta":
            block["signature"] = str(delta.get("signature", ""))
        elif kind == "citations_delta":
            block.setdefault("citations", []).append(delta.get("citation"))

    def _close_json(self, index: int) -> None:
        if index not in self._json:
            return
        text = self._json.pop(index)
        try:
            self._blocks[index]["input"] = json.loads(text) if text else {}
        except ValueError:  # cut short: keep what arrived, as text
            self._blocks[index]["input"] = {"partial_json": text}

    def result(self) -> dict[str, Any]:
        for index in list(self._json):
            self._close_json(index)
        return {**self._message, "content": [self._blocks[i] for i in sorted(self._blocks)]}

    def usage(self) -> dict[str, Any] | None:
        usage = self._message.get("usage")
        return usage if isinstance(usage, dict) else None

    def model(self) -> str | None:
        model = self._message.get("model")
        return model if isinstance(model, str) else None


ASSEMBLERS: dict[str, type[ChatCompletionAssembler | ResponsesAssembler | MessagesAssembler]] = {
    "/v1/chat/completions": ChatCompletionAssembler,
    "/v1/responses": ResponsesAssembler,
    "/v1/messages": MessagesAssembler,
}


class Decoder:
    """The upstream's Content-Encoding undone for the log's copy (the client gets the bytes as sent)."""

    def __init__(self, coding: str | None) -> None:
        coding = (coding or "identity").strip().lower()
        self.readable = coding in READABLE_CODINGS
        wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}.get(coding)
        self._zlib = zlib.decompressobj(wbits) if wbits is not None else None

    def decode(self, chunk: bytes) -> bytes:
        if not self.readable:
            return b""
        try:
            return self._zlib.decompress(chunk) if self._zlib is not None else chunk
        except zlib.error:  # a corrupt body: the client sees it as it is; the log keeps nothing more
            self.readable = False
            return b""


class StreamTap:
    """Server-sent events of one answer, fed chunk by chunk, assembled for the log."""

    def __init__(self, endpoint: str, coding: str | None) -> None:
        self._decoder = Decoder(coding)
        self._events = SseEvents()
        self.assembler: Assembler = ASSEMBLERS.get(endpoint, ChatCompletionAssembler)()
        self.ended = False  # the answer's last event went by: whatever follows, the answer is whole

    def feed(self, chunk: bytes) -> None:
        for event, data in self._events.feed(self._decoder.decode(chunk)):
            self.ended = self.ended or data == "[DONE]" or event in END_EVENTS
            if data == "[DONE]":
                continue
            try:
                parsed = json.loads(data)
            except ValueError:
                continue  # not JSON: nothing to assemble (the client still got it)
            self.assembler.feed(event, parsed)
