"""One exchange (the last prompt and everything after it) read from a client's JSONL transcript.

A transcript grows with the session and can reach hundreds of MB, so it is read from its end:
a window of the tail, widened (x4) only while the turn's first line is not in it, never more than
MAX_WINDOW bytes. Lines that are not JSON objects are skipped. Nothing here raises or waits for a
bad file: an unreadable transcript, or a path that is not a regular file (a FIFO, a device, a
directory), gives None, and the turn is not logged.

Claude Code (measured with 2.1.328, see tests/hooks/fixtures/claude-code/): the transcript is
`~/.claude/projects/<cwd with / as ->/<session_id>.jsonl`. Each user prompt is a line
`{"type": "user", "promptId": P, "message": {"role": "user", "content": "text" | [blocks]}}`;
tool results are also `type: user` lines (same promptId) whose content holds `tool_result`
blocks; each assistant content block is its own `type: assistant` line (text or tool_use, with
`message.model`, no promptId). Other line types (attachment, system, api-request-*,
last-prompt, ...) are ignored. The Stop and PreToolUse payloads carry the same `prompt_id`.

Codex (documented, https://developers.openai.com/codex/hooks, transcript_path = the session's
rollout JSONL): lines `{"timestamp", "type", "payload"}`; a prompt is an `event_msg` of payload
type `user_message`, the model is in `turn_context`, replies and tool calls are `response_item`s
(`message`, `function_call`, `custom_tool_call`). Not verified against a real Codex run here.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from mcp_server.services.hook_events import ToolCall, Turn

logger = logging.getLogger(__name__)

INITIAL_WINDOW = 256 * 1024
MAX_WINDOW = 64 * 1024 * 1024  # never read (or hold) more of one transcript than this
SYNTHETIC_MODEL = "<synthetic>"  # Claude Code's own messages ("No response requested.", API errors)

Record = dict[str, Any]


def read_tail(path: str, window: int) -> tuple[list[Record], bool] | None:
    """The JSON-object lines of the file's last `window` bytes, and whether that is the whole file;
    None (with one warning) when `path` is not a regular file. A payload names the path: a FIFO
    there would block the open and the read for good, a device could be read without end, so the
    file is opened without waiting (O_NONBLOCK) and checked before a byte is read."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        os.close(fd)
        raise
    if not regular:
        os.close(fd)
        logger.warning("the transcript %s is not a regular file: turn not logged", path)
        return None
    with open(fd, "rb") as handle:
        size = handle.seek(0, 2)
        start = max(0, size - window)
        # One byte more: if it is a newline, the window starts on a whole line that is kept.
        handle.seek(max(0, start - 1))
        data = handle.read(size - max(0, start - 1))
    lines = data.split(b"\n")
    if start > 0:
        lines = lines[1:]  # the part of a line before the window (empty if the window starts a line)
    records: list[Record] = []
    for line in lines:
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            records.append(value)
    return records, start == 0


def tail_from(path: str, find_start: Callable[[list[Record]], int | None],
              max_window: int = MAX_WINDOW) -> list[Record] | None:
    """The records from the turn's first one to the end, widening the window as needed; None if
    the file cannot be read or the start is not within `max_window` bytes of the end."""
    window = min(INITIAL_WINDOW, max_window)
    while True:
        try:
            tail = read_tail(path, window)
        except OSError as exc:
            logger.warning("cannot read the transcript %s: %s", path, exc)
            return None
        if tail is None:
            return None
        records, whole = tail
        index = find_start(records)
        if index is not None:
            return records[index:]
        if whole or window >= max_window:
            if not whole:
                logger.warning("no prompt in the last %d bytes of %s: turn not logged", window, path)
            return None
        window = min(window * 4, max_window)


def _timestamp(record: Record) -> datetime | None:
    value = record.get("timestamp")
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _blocks(message: Any) -> list[dict[str, Any]]:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [block for block in content if isinstance(block, dict)]
    return []


def _texts(blocks: Iterable[dict[str, Any]]) -> list[str]:
    return [block["text"] for block in blocks if block.get("type") == "text" and isinstance(block.get("text"), str)]


# ---- Claude Code -----------------------------------------------------------------------------

def _is_claude_prompt(record: Record) -> bool:
    """A line the user typed: type user, main chain, not meta, and not only tool results."""
    if record.get("type") != "user" or record.get("isSidechain") or record.get("isMeta"):
        return False
    blocks = _blocks(record.get("message"))
    return bool(blocks) and not any(block.get("type") == "tool_result" for block in blocks) and bool(_texts(blocks))


def read_claude_turn(path: str, prompt_id: str | None = None, *, max_window: int = MAX_WINDOW) -> Turn | None:
    """The turn of `prompt_id` (else the last prompt) and what the assistant did until the next one."""

    def find_start(records: list[Record]) -> int | None:
        for index in range(len(records) - 1, -1, -1):
            record = records[index]
            # A prompt line without promptId (older versions) matches any prompt_id.
            if _is_claude_prompt(record) and (prompt_id is None or record.get("promptId") in (None, prompt_id)):
                return index
        return None

    records = tail_from(path, find_start, max_window)
    if not records:
        return None
    first = records[0]
    texts: list[str] = []
    calls: list[ToolCall] = []
    seen_calls: set[str] = set()
    model: str | None = None
    ended_at = _timestamp(first)
    for record in records[1:]:
        if _is_claude_prompt(record):
            break  # the next turn
        ended_at = _timestamp(record) or ended_at
        message = record.get("message")
        if record.get("type") != "assistant" or record.get("isSidechain") or not isinstance(message, dict):
            continue
        if message.get("model") == SYNTHETIC_MODEL:
            continue
        if isinstance(message.get("model"), str):
            model = message["model"]
        for block in _blocks(message):
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                texts.append(block["text"])
            elif block.get("type") == "tool_use" and isinstance(block.get("name"), str):
                call_id = str(block.get("id") or len(calls))
                if call_id not in seen_calls:
                    seen_calls.add(call_id)
                    tool_input = block.get("input")
                    calls.append(ToolCall(block["name"], tool_input if isinstance(tool_input, dict) else {}))
    found_id = first.get("promptId")
    return Turn(prompt="\n\n".join(_texts(_blocks(first.get("message")))), assistant_text="\n\n".join(texts),
                tool_calls=calls, model=model, prompt_id=found_id if isinstance(found_id, str) else prompt_id,
                started_at=_timestamp(first), ended_at=ended_at)


# ---- Codex -----------------------------------------------------------------------------------

def _payload(record: Record) -> dict[str, Any]:
    payload = record.get("payload")
    return payload if isinstance(payload, dict) else {}


def _is_codex_prompt(record: Record) -> bool:
    payload = _payload(record)
    return (record.get("type") == "event_msg" and payload.get("type") == "user_message"
            and isinstance(payload.get("message"), str))


def _codex_call(payload: dict[str, Any]) -> ToolCall | None:
    name = payload.get("name")
    if not isinstance(name, str):
        return None
    if payload.get("type") == "function_call":
        try:
            arguments = json.loads(payload.get("arguments") or "{}")
        except (TypeError, ValueError):
            arguments = {"arguments": payload.get("arguments")}
        return ToolCall(name, arguments if isinstance(arguments, dict) else {"arguments": arguments})
    if payload.get("type") == "custom_tool_call":
        return ToolCall(name, {"input": payload.get("input")})
    return None


def read_codex_turn(path: str, turn_id: str | None = None, *, max_window: int = MAX_WINDOW) -> Turn | None:
    """The last prompt of a Codex rollout and what followed it (Codex marks no prompt id on lines)."""

    def find_start(records: list[Record]) -> int | None:
        return next((i for i in range(len(records) - 1, -1, -1) if _is_codex_prompt(records[i])), None)

    records = tail_from(path, find_start, max_window)
    if not records:
        return None
    texts: list[str] = []
    agent_messages: list[str] = []
    calls: list[ToolCall] = []
    model: str | None = None
    # The model of the turn is set by the turn_context line just before or after the prompt.
    ended_at = _timestamp(records[0])
    for record in records[1:]:
        payload = _payload(record)
        ended_at = _timestamp(record) or ended_at
        if record.get("type") == "turn_context" and isinstance(payload.get("model"), str):
            model = payload["model"]
        elif record.get("type") == "event_msg" and payload.get("type") == "agent_message":
            if isinstance(payload.get("message"), str):
                agent_messages.append(payload["message"])
        elif record.get("type") == "response_item":
            if payload.get("type") == "message" and payload.get("role") == "assistant":
                texts += [b["text"] for b in _blocks(payload)
                          if b.get("type") == "output_text" and isinstance(b.get("text"), str)]
            elif (call := _codex_call(payload)) is not None:
                calls.append(call)
    return Turn(prompt=_payload(records[0])["message"], assistant_text="\n\n".join(texts or agent_messages),
                tool_calls=calls, model=model, prompt_id=turn_id, started_at=_timestamp(records[0]),
                ended_at=ended_at)
