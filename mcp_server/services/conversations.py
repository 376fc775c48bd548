"""Logged LLM exchanges: validated, redacted, stored once per request_id, searchable, exportable.

Shapes accepted for `messages`: the OpenAI chat shape (role + content as a string, a list of
content parts, or null for an assistant tool call) and the Anthropic shape (role + content
blocks). `response`: a string or a JSON object. Secrets are redacted (mcp_server.redact) in
everything stored, NUL characters removed, and the size is bounded by MAX_EXCHANGE_BYTES.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from mcp_server.db import conversations as repo
from mcp_server.errors import InvalidInputError, NotFoundError
from mcp_server.identity import current_user_id
from mcp_server.redact import Redactor, redactor_from_settings
from mcp_server.schemas import Conversation, ConversationPage, ConversationSummary, LoggedExchange
from mcp_server.services import validation as check
from mcp_server.settings import Settings

MAX_MESSAGES = 2_000
MAX_PAGE = 200
MAX_QUERY_CHARS = 1_000
PREVIEW_CHARS = 200


def _text_of(content: Any) -> str:
    """The readable text of a message's content (string, content parts or content blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_text_of(part.get("text") if isinstance(part, dict) else part) for part in content).strip()
    return ""


def _answer_text(response: Any) -> str:
    """The readable answer in a response: text, {content|text}, or an OpenAI-style {choices: [...]}."""
    if not isinstance(response, dict):
        return _text_of(response)
    direct = response.get("content") or response.get("text")
    if direct:
        return _text_of(direct)
    choices = response.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    return _text_of(message.get("content")) if isinstance(message, dict) else ""


def preview(messages: list[Any], response: Any) -> str:
    """Never fails, whatever shape a stored exchange has: a preview must not break a search."""
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"] if isinstance(
        messages, list) else []
    asked = _text_of(users[-1].get("content")) if users else ""
    text = " ".join(f"Q: {asked} A: {_answer_text(response)}".split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def validate_messages(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list):
        raise InvalidInputError("`messages` must be a list of messages such as "
                                "[{\"role\": \"user\", \"content\": \"...\"}].")
    if not messages:
        raise InvalidInputError("`messages` is empty: log at least the prompt.")
    if len(messages) > MAX_MESSAGES:
        raise InvalidInputError(f"`messages` has {len(messages)} entries; the limit is {MAX_MESSAGES}.")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidInputError(f"messages[{index}] must be an object with `role` and `content`.")
        role = message.get("role")
        if not isinstance(role, str) or not role.strip():
            raise InvalidInputError(f"messages[{index}] has no `role` (e.g. \"user\", \"assistant\", \"system\").")
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise InvalidInputError(f"messages[{index}].content must be a string, a list of content parts or "
                                    "blocks, or null.")
        if isinstance(content, list) and not all(isinstance(part, dict | str) for part in content):
            raise InvalidInputError(f"messages[{index}].content parts must be objects (e.g. "
                                    "{\"type\": \"text\", \"text\": \"...\"}).")
    return messages


def _parse_time(value: Any, field: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        parsed = datetime.fromisoformat(str(value))
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidInputError(f"`{field}` must be an ISO-8601 time such as 2026-01-31T12:00:00Z "
                                "(between years 1 and 9999 in UTC).") from None


def to_conversation(record: asyncpg.Record) -> Conversation:
    return Conversation(
        id=record["id"], request_id=record["request_id"], created_at=record["created_at"],
        provider=record["provider"], model=record["model"], messages=record["messages"],
        response=record["response"], status_code=record["status_code"], latency_ms=record["latency_ms"],
        redactions=record["redactions"], memory_ids=list(record["memory_ids"]),
        pattern_ids=list(record["pattern_ids"]),
    )


@dataclass
class ConversationService:
    pool: asyncpg.Pool
    settings: Settings

    def __post_init__(self) -> None:
        # Built once: an invalid REDACT_EXTRA_PATTERNS stops start-up with a clear message.
        self.redactor: Redactor = redactor_from_settings(self.settings.redact_secrets,
                                                         self.settings.redact_extra_patterns)

    @property
    def user_id(self) -> str:
        """ALETHEIA_USER_ID, or the HTTP token's user for the call in progress."""
        return current_user_id(self.settings.user_id)

    async def log(self, messages: Any, response: Any, provider: str | None = None, model: str | None = None,
                  request_id: str | None = None, status_code: int | None = None, latency_ms: int | None = None,
                  memory_ids: list[int] | None = None, pattern_ids: list[int] | None = None) -> LoggedExchange:
        messages = validate_messages(messages)
        if response is not None and not isinstance(response, str | dict):
            raise InvalidInputError("`response` must be a string or a JSON object.")
        if status_code is not None:
            check.int_range(status_code, "status_code", 100, 599)
        if latency_ms is not None:
            check.int_range(latency_ms, "latency_ms", 0, 86_400_000)
        size = len(json.dumps({"messages": messages, "response": response}, ensure_ascii=False).encode())
        if size > self.settings.max_exchange_bytes:
            raise InvalidInputError(
                f"The exchange is {size:,} bytes of JSON; the limit is MAX_EXCHANGE_BYTES="
                f"{self.settings.max_exchange_bytes:,}. Log a shorter exchange (e.g. without large attachments)."
            )
        labels = [check.optional_label(v, name, max_chars=200) for v, name in
                  ((provider, "provider"), (model, "model"), (request_id, "request_id"))]
        redacted, count = self.redactor.redact_json({"messages": messages, "response": response,
                                                     "labels": labels})
        provider, model, rid = redacted["labels"]
        row = {
            "user_id": self.user_id, "request_id": rid or str(uuid.uuid4()), "provider": provider, "model": model,
            "messages": redacted["messages"], "response": redacted["response"], "status_code": status_code,
            "latency_ms": latency_ms, "memory_ids": memory_ids or [], "pattern_ids": pattern_ids or [],
            "redactions": count,
        }
        async with self.pool.acquire() as conn:
            stored, created = await repo.insert_once(conn, row)
        return LoggedExchange(id=stored["id"], request_id=stored["request_id"], redactions=stored["redactions"],
                              created=created)

    async def search(self, query: str | None = None, provider: str | None = None, model: str | None = None,
                     since: Any = None, until: Any = None, limit: int = 20) -> ConversationPage:
        count = check.int_range(limit, "limit", 1, MAX_PAGE)
        text = check.content(query, MAX_QUERY_CHARS, field="query", setting=None) if query is not None else None
        async with self.pool.acquire() as conn:
            records = await repo.search(
                conn, self.user_id, query=text, provider=check.optional_label(provider, "provider"),
                model=check.optional_label(model, "model"), since=_parse_time(since, "since"),
                until=_parse_time(until, "until"), limit=count)
        return ConversationPage(items=[
            ConversationSummary(id=r["id"], request_id=r["request_id"], created_at=r["created_at"],
                                provider=r["provider"], model=r["model"], status_code=r["status_code"],
                                latency_ms=r["latency_ms"], preview=preview(r["messages"], r["response"]))
            for r in records
        ])

    async def get(self, row_id: int | None = None, request_id: str | None = None) -> Conversation:
        if (row_id is None) == (request_id is None):
            raise InvalidInputError("Pass exactly one of `id` or `request_id`.")
        if row_id is not None:
            check.row_id(row_id)
        request_id = check.optional_label(request_id, "request_id")
        async with self.pool.acquire() as conn:
            record = await repo.get(conn, self.user_id, row_id=row_id, request_id=request_id)
        if record is None:
            which = f"id {row_id}" if row_id is not None else f"request_id {request_id!r}"
            raise NotFoundError(f"No logged exchange with {which} for this user. Use `search_conversations`.")
        return to_conversation(record)

    async def export(self, since: Any = None, until: Any = None, model: str | None = None) -> AsyncIterator[str]:
        """JSONL lines a person can replay: messages, response, model, provider, request_id, created_at."""
        async with self.pool.acquire() as conn, conn.transaction():
            cursor = await repo.stream(conn, self.user_id, _parse_time(since, "since"), _parse_time(until, "until"),
                                       model)
            async for record in cursor:
                yield json.dumps({
                    "request_id": record["request_id"], "created_at": record["created_at"].isoformat(),
                    "provider": record["provider"], "model": record["model"], "messages": record["messages"],
                    "response": record["response"], "status_code": record["status_code"],
                    "latency_ms": record["latency_ms"],
                }, ensure_ascii=False) + "\n"

    async def purge(self, older_than_days: int) -> int:
        days = check.int_range(older_than_days, "older_than_days", 1, 365_000)
        async with self.pool.acquire() as conn:
            return await repo.purge_older_than(conn, self.user_id, datetime.now(UTC) - timedelta(days=days))
