"""A streamed answer rebuilt from its bytes, however the network splits them."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from mcp_server.gateway.assemble import SseEvents, StreamTap
from tests.gateway.fake_upstream import (
    ANSWER,
    anthropic_events,
    chat_events,
    chat_tool_call_events,
    response_events,
    sse,
)


def feed_in_pieces(tap: StreamTap, data: bytes, size: int) -> None:
    for start in range(0, len(data), size):
        tap.feed(data[start:start + size])


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 100_000])
def test_events_split_anywhere_are_the_same_events(size: int) -> None:
    data = b"event: a\r\ndata: {\"x\": 1}\r\n\r\n: comment\n\ndata: line 1\ndata: line 2\r\rdata: [DONE]\n\n"
    parser = SseEvents()
    events = [event for start in range(0, len(data), size) for event in parser.feed(data[start:start + size])]
    assert events == [("a", '{"x": 1}'), ("message", "line 1\nline 2"), ("message", "[DONE]")]


@pytest.mark.parametrize("size", [1, 5, 4096])
def test_chat_completion_chunks_become_one_completion(size: int) -> None:
    tap = StreamTap("/v1/chat/completions", None)
    feed_in_pieces(tap, b"".join(sse(chat_events())), size)
    result = tap.assembler.result()
    assert result["choices"] == [{"index": 0, "message": {"role": "assistant", "content": ANSWER},
                                  "finish_reason": "stop"}]
    assert (result["model"], result["object"]) == ("gpt-fake", "chat.completion")
    assert tap.assembler.usage() == {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}

    tools = StreamTap("/v1/chat/completions", None)
    feed_in_pieces(tools, b"".join(sse(chat_tool_call_events())), size)
    message = tools.assembler.result()["choices"][0]["message"]
    assert message["tool_calls"] == [{"id": "call_1", "type": "function",
                                      "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]


def test_a_gzipped_stream_is_read_for_the_log() -> None:
    tap = StreamTap("/v1/messages", "gzip")
    feed_in_pieces(tap, gzip.compress(b"".join(sse(anthropic_events()))), 9)
    result = tap.assembler.result()
    assert result["content"][0] == {"type": "text", "text": ANSWER}
    assert result["content"][1]["input"] == {"city": "Paris"}
    assert (result["stop_reason"], tap.assembler.usage()) == ("tool_use", {"input_tokens": 7, "output_tokens": 9})


def test_streams_cut_short_keep_what_had_arrived() -> None:
    events = response_events()
    responses = StreamTap("/v1/responses", None)
    responses.feed(b"".join(sse(events[:3])))  # created, two deltas, no response.completed
    assert responses.assembler.result()["output_text"] == "Hello from"
    assert responses.assembler.result()["status"] == "in_progress"

    messages = StreamTap("/v1/messages", None)
    cut: list[tuple[str | None, Any]] = anthropic_events()[:-4]  # in the middle of the tool call's JSON
    messages.feed(b"".join(sse(cut)))
    result = messages.assembler.result()
    assert result["content"][1]["input"] == {"partial_json": '{"city": '}
    assert result["stop_reason"] is None


def test_what_is_not_json_is_skipped_not_fatal() -> None:
    tap = StreamTap("/v1/chat/completions", None)
    tap.feed(b"data: not json\n\ndata: " + json.dumps(chat_events()[1][1]).encode() + b"\n\n")
    assert tap.assembler.result()["choices"][0]["message"]["content"] == "Hello"
