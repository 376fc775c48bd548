"""An agent's turn (read by a Stop hook) as a conversation exchange to log: its shape, its size
and its request id."""

from __future__ import annotations

import hashlib
from typing import Any

from mcp_server.redact import Redactor
from mcp_server.services.captured_rows import fit_to_bytes, json_bytes
from mcp_server.services.hook_events import Turn


def turn_exchange(turn: Turn, redactor: Redactor, limit: int) -> tuple[list[Any], dict[str, Any], int]:
    """The turn as an exchange (Anthropic's shape: the prompt, then the answer's text and tool
    calls), redacted, within `limit` bytes (MAX_EXCHANGE_BYTES): the tool calls' inputs are
    shortened first (the prompt and the answer are what a person searches for), then the longest
    texts; the answer says what was shortened. Returns (messages, response, redactions)."""
    content: list[dict[str, Any]] = [{"type": "text", "text": turn.assistant_text}] if turn.assistant_text else []
    content += [{"type": "tool_use", "name": call.name, "input": call.input} for call in turn.tool_calls]
    exchange, redactions = redactor.redact_json({
        "messages": [{"role": "user", "content": turn.prompt}],
        "response": {"role": "assistant", "content": content},
    })
    margin = 512  # the note below
    if json_bytes(exchange) <= limit:
        return exchange["messages"], exchange["response"], redactions
    blocks = exchange["response"]["content"]
    inputs = [block["input"] for block in blocks if block.get("type") == "tool_use"]
    rest = json_bytes(exchange) - json_bytes(inputs)
    inputs, tool_cuts = fit_to_bytes(inputs, max(limit - margin - rest, 0))
    fitted = iter(inputs)
    for block in blocks:
        if block.get("type") == "tool_use":
            block["input"] = next(fitted)
    exchange, text_cuts = fit_to_bytes(exchange, limit - margin)
    exchange["response"]["shortened"] = (
        f"over MAX_EXCHANGE_BYTES={limit:,}: {tool_cuts} tool call input text(s) shortened first, then "
        f"{text_cuts} other text(s); each cut is marked where it was made")
    return exchange["messages"], exchange["response"], redactions


def turn_request_id(client: str, session_id: str, prompt_id: str | None, turn: Turn) -> str:
    """`hook:<client>:<session>:<prompt id>`, the same for every Stop of the same turn. Without a
    prompt id, a digest of the prompt and its time (start, else end: the same prompt twice is two
    turns)."""
    if prompt_id is None:
        moment = turn.started_at or turn.ended_at
        stamp = moment.isoformat() if moment else ""
        prompt_id = hashlib.sha256(f"{stamp}\x1f{turn.prompt}".encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"hook:{client}:{session_id}:{prompt_id}"


def latency_ms(turn: Turn) -> int | None:
    if turn.started_at is None or turn.ended_at is None:
        return None
    return int((turn.ended_at - turn.started_at).total_seconds() * 1000)
