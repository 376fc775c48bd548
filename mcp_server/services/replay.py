"""Replay: send logged requests again, to another upstream or model, and compare the answers.

A stored gateway row holds its request (`request` + `messages`, split as the gateway stored them)
and the API it went to (`endpoint`); replay rebuilds the body the client sent, with `model`
replaced and `stream` forced off (a comparison needs whole answers, not events), and sends it
with the credentials of the person replaying (never stored ones: headers are never stored).
Rows logged before the gateway (by `log_exchange` or a hook: no `request`, no `endpoint`) are
sent as chat completions when their messages are OpenAI-style role/content messages; others
are reported as not replayable. Redacted secrets are sent as the placeholders they were stored
as. Each answer is stored as a new exchange (`replay_of` = the original's id, a new
request_id, the original's project) through `ConversationService.log_captured`, so it is
redacted and bounded like every other exchange.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Iterable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import median
from typing import Any, cast

import httpx2

from mcp_server.db import conversations as repo
from mcp_server.db.database import Database
from mcp_server.errors import InvalidInputError
from mcp_server.schemas import CapturedCall, Conversation, GatewayProvider
from mcp_server.services import validation as check
from mcp_server.services.captured_rows import CONVERSATION_KEY, SHORTENED_MARK
from mcp_server.services.conversations import ConversationService, parse_time
from mcp_server.settings import Settings

CHAT_COMPLETIONS = "/v1/chat/completions"
RESPONSES = "/v1/responses"
MESSAGES = "/v1/messages"
# The endpoints whose calls the gateway logs, and the API (provider) each belongs to.
REPLAYABLE_ENDPOINTS: dict[str, GatewayProvider] = {
    CHAT_COMPLETIONS: "openai", RESPONSES: "openai", MESSAGES: "anthropic",
}
ANTHROPIC_VERSION = "2023-06-01"  # the Messages API version every current model accepts
REDACTED_MARK = "[REDACTED:"
# A model may think for minutes; connecting should not take long.
REPLAY_TIMEOUT = httpx2.Timeout(600.0, connect=10.0)
# What an OpenAI chat message may be, for rows logged without their endpoint.
CHAT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
CHAT_PART_TYPES = frozenset({"text", "image_url", "input_audio", "file", "refusal"})
# Options that are only valid on a streamed request (the API rejects them with stream=false).
STREAM_ONLY_OPTIONS = ("stream_options",)
ERROR_DETAIL_CHARS = 200


@dataclass(frozen=True, slots=True)
class ReplayCredentials:
    """The replaying person's keys (OPENAI_API_KEY, ANTHROPIC_API_KEY); None: sent without one
    (a local upstream such as vLLM or Ollama needs none)."""

    openai_api_key: str | None = None
    anthropic_api_key: str | None = None

    def __repr__(self) -> str:  # never print a key, even in a traceback
        return (f"ReplayCredentials(openai_api_key={'set' if self.openai_api_key else None}, "
                f"anthropic_api_key={'set' if self.anthropic_api_key else None})")


@dataclass(frozen=True, slots=True)
class ReplayCriteria:
    """Which logged exchanges to replay; every criterion given must hold (AND)."""

    since: str | datetime | None = None
    until: str | datetime | None = None
    from_model: str | None = None
    provider: str | None = None
    ids: tuple[int, ...] = ()
    limit: int | None = None

    def is_empty(self) -> bool:
        return not (self.since or self.until or self.from_model or self.provider or self.ids or self.limit)


@dataclass(frozen=True, slots=True)
class PlannedReplay:
    """One selected exchange: what would be sent, or why it cannot be."""

    id: int
    model: str | None  # the original's
    endpoint: str | None  # where it goes (None: not replayable)
    message_count: int
    redacted: bool  # the body holds [REDACTED:...] placeholders
    not_replayable: str | None = None  # the reason, when it is not


@dataclass(frozen=True, slots=True)
class Tokens:
    input: int | None
    output: int | None


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """One exchange replayed: the stored answer and how it compares with the original's."""

    original_id: int
    endpoint: str
    replay_id: int | None  # the stored replay (None when no answer came back)
    status_code: int | None
    same_text: bool | None  # None: no answer to compare (an error status, or none at all)
    latency_before_ms: int | None
    latency_after_ms: int | None
    tokens_before: Tokens | None
    tokens_after: Tokens | None
    error: str | None = None  # the upstream's error (status and message), or why nothing came back


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    replayed: int  # answers received and stored (errors included)
    same_text: int
    different_text: int
    failed: int  # an error status, or no answer at all
    not_replayable: int
    latency_before_p50_ms: float | None  # over the calls with both latencies
    latency_after_p50_ms: float | None
    tokens_before: Tokens  # totals over the calls reporting usage before and after
    tokens_after: Tokens


class ReplayService:
    def __init__(self, conversations: ConversationService, database: Database, settings: Settings) -> None:
        self.conversations = conversations
        self.database = database
        self.settings = settings

    async def plan(self, criteria: ReplayCriteria, model: str) -> list[PlannedReplay]:
        """The selected exchanges, oldest first, each with what would be sent as `model`. Replays are left
        out of a selection by time, model or provider (replaying them again compares a copy);
        `ids` selects them too."""
        if criteria.is_empty():
            raise InvalidInputError("Say which exchanges to replay: --id, --since/--until, --from-model, "
                                    "--provider or --limit (replay sends each one again, at a cost).")
        limit = check.int_range(criteria.limit, "limit", 1, 1_000_000) if criteria.limit is not None else None
        model = _model_name(model)
        since, until = parse_time(criteria.since, "since"), parse_time(criteria.until, "until")
        from_model = check.optional_label(criteria.from_model, "from_model")
        provider = check.optional_label(criteria.provider, "provider")

        def wanted(row: Conversation) -> bool:
            return ((since is None or row.created_at >= since) and (until is None or row.created_at < until)
                    and (from_model is None or row.model == from_model)
                    and (provider is None or row.provider == provider))

        if criteria.ids:
            given = [await self.conversations.get(check.row_id(i)) for i in dict.fromkeys(criteria.ids)]
            chosen = sorted(filter(wanted, given), key=lambda r: (r.created_at, r.id))
            return [plan_for(row, model) for row in chosen[:limit]]
        plan: list[PlannedReplay] = []  # (only what is listed is kept: a window can hold many exchanges)
        async with self.database.connection() as conn:
            # Oldest first through a cursor, closed (its transaction ended) as soon as the limit is reached.
            rows = cast(AsyncGenerator[Conversation, None],
                        repo.stream(conn, self.conversations.user_id, since, until, from_model, replays="exclude"))
            async with aclosing(rows):
                async for row in rows:
                    if wanted(row):
                        plan.append(plan_for(row, model))
                        if limit is not None and len(plan) >= limit:
                            break
        return plan

    async def replay(self, plan: Iterable[PlannedReplay], upstream: str, model: str,
                     credentials: ReplayCredentials, on_result: Callable[[ReplayResult], None] | None = None,
                     transport: httpx2.AsyncBaseTransport | None = None) -> ReplaySummary:
        """Send each replayable exchange of `plan` to `upstream` as `model`, one at a time (their
        latencies compare with the originals'), store each answer linked to its original, and
        call `on_result` as each one is done. An upstream that cannot be reached stops the replay
        (the calls already done stay stored)."""
        base = upstream_base(upstream)
        model = _model_name(model)
        planned = list(plan)
        results: list[ReplayResult] = []
        async with httpx2.AsyncClient(timeout=REPLAY_TIMEOUT, transport=transport) as http:
            for item in planned:
                if item.not_replayable is not None:
                    continue
                original = await self.conversations.get(item.id)
                stored = sum(1 for r in results if r.replay_id is not None)
                result = await self._replay_one(http, base, original, model, credentials, stored)
                results.append(result)
                if on_result is not None:
                    on_result(result)
        return summarise(results, sum(1 for item in planned if item.not_replayable is not None))

    async def _replay_one(self, http: httpx2.AsyncClient, base: str, original: Conversation, model: str,
                          credentials: ReplayCredentials, done: int) -> ReplayResult:
        endpoint, body = request_for(original, model)
        provider = REPLAYABLE_ENDPOINTS[endpoint]
        created_at = datetime.now(UTC)
        started = time.perf_counter()
        latency_before, tokens_before = _comparison_before(original)
        try:
            response = await http.post(base + endpoint, json=body, headers=_headers(provider, credentials))
        except httpx2.ConnectError as exc:
            raise InvalidInputError(
                f"Cannot connect to --upstream {base} ({type(exc).__name__}); {done} exchange(s) were replayed "
                "and stored before this one. Check the URL and that the server is up, then run the command "
                f"again (e.g. with --id for the rest).") from None
        except httpx2.HTTPError as exc:  # timed out, or the connection dropped mid-answer: nothing to store
            return ReplayResult(original.id, endpoint, None, None, None, latency_before, None, tokens_before, None,
                                error=f"no answer ({type(exc).__name__})")
        latency_ms = round((time.perf_counter() - started) * 1000)
        answer = _parsed(response)
        ok = response.status_code < 400
        usage = answer.get("usage") if isinstance(answer, dict) and isinstance(answer.get("usage"), dict) else None
        answered_model = answer.get("model") if isinstance(answer, dict) else None
        stored = await self.conversations.log_captured(CapturedCall(
            request_id=uuid.uuid4().hex, provider=provider, endpoint=endpoint,
            model=answered_model if isinstance(answered_model, str) and answered_model else model,
            request=body, response=answer, status_code=response.status_code, latency_ms=latency_ms,
            ttft_ms=None, usage=usage, outcome="completed" if ok else "upstream_error", stream=False,
            project=original.project, replay_of=original.id, created_at=created_at,
        ))
        same = (answer_text(endpoint, answer) == answer_text(endpoint, original.response)) if ok else None
        return ReplayResult(original.id, endpoint, stored.id, response.status_code, same, latency_before, latency_ms,
                            tokens_before, token_counts(usage) if ok else None,
                            error=None if ok else f"{response.status_code}: {_error_detail(answer)}")


# --- what is sent ---------------------------------------------------------------------------------


def upstream_base(upstream: str) -> str:
    """The upstream's origin (and path prefix), to which the API paths (/v1/...) are added. A base
    URL given with its `/v1` (as SDKs take it) is accepted too."""
    text = (upstream or "").strip()
    try:
        url = httpx2.URL(text)
    except (httpx2.InvalidURL, TypeError):
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host or url.query or url.fragment:
        raise InvalidInputError(f"--upstream {text!r} is not an http(s) URL such as https://api.openai.com or "
                                "http://127.0.0.1:8000 (no query string).")
    base = text.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def _model_name(model: str) -> str:
    name = check.optional_label(model, "model")
    if name is None:
        raise InvalidInputError("--model is empty: name the model to replay with (e.g. gpt-4.1-mini).")
    return name


def plan_for(row: Conversation, model: str) -> PlannedReplay:
    """What replaying `row` would send (its endpoint, message count, placeholders), or why it cannot."""
    try:
        endpoint, body = request_for(row, model)
    except NotReplayableError as exc:
        count = len(row.messages) if isinstance(row.messages, list) else 0
        return PlannedReplay(row.id, row.model, None, count, False, not_replayable=str(exc))
    sent = json.dumps(body, ensure_ascii=False)
    if SHORTENED_MARK in sent:
        return PlannedReplay(row.id, row.model, None, len(row.messages), False, not_replayable=(
            "it was stored with texts shortened (over MAX_EXCHANGE_BYTES), so its request is not the one sent"))
    return PlannedReplay(row.id, row.model, endpoint, len(row.messages), REDACTED_MARK in sent)


class NotReplayableError(Exception):
    """A stored exchange that cannot be sent again (the reason is the message)."""


def request_for(row: Conversation, model: str) -> tuple[str, dict[str, Any]]:
    """(endpoint, body): the stored request rebuilt as the client sent it, with `model` replaced and
    `stream` off; raises NotReplayableError saying why when the row cannot be sent."""
    endpoint, stored, messages = row.endpoint, row.request, row.messages
    if endpoint is None and stored is None:  # logged before the gateway: messages only
        _require_chat_messages(messages)
        return CHAT_COMPLETIONS, {"model": model, "messages": messages, "stream": False}
    if endpoint not in REPLAYABLE_ENDPOINTS:
        raise NotReplayableError(f"its endpoint {endpoint!r} is not one replay sends to "
                                 f"({', '.join(REPLAYABLE_ENDPOINTS)})")
    body = {k: v for k, v in (stored or {}).items() if k not in STREAM_ONLY_OPTIONS}
    if isinstance(messages, list) and messages:  # else the body kept what the client sent in their place
        body[CONVERSATION_KEY.get(endpoint, "messages")] = messages
    body.update({"model": model, "stream": False})
    return endpoint, body


def _require_chat_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise NotReplayableError("it has no messages")
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in CHAT_ROLES:
            raise NotReplayableError(f"messages[{index}] is not a chat message (role {role!r})")
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind not in CHAT_PART_TYPES:
                    raise NotReplayableError(f"messages[{index}] holds a {kind!r} block, which chat completions "
                                             "do not take (it was logged without its API)")
        elif content is not None and not isinstance(content, str):
            raise NotReplayableError(f"messages[{index}].content is neither text nor content parts")


def _headers(provider: str, credentials: ReplayCredentials) -> dict[str, str]:
    if provider == "anthropic":
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if credentials.anthropic_api_key:
            headers["x-api-key"] = credentials.anthropic_api_key
        return headers
    return {"authorization": f"Bearer {credentials.openai_api_key}"} if credentials.openai_api_key else {}


def _parsed(response: httpx2.Response) -> Any:
    try:
        return response.json()
    except ValueError:  # an error page, or a server that is not the API it claims
        return response.text


# --- how it compares -------------------------------------------------------------------------------


def answer_text(endpoint: str, response: Any) -> str:
    """The answer a response carries (text, then tool calls as name + arguments), whitespace
    normalised: what "same text" compares. Also reads the shapes `log_exchange` accepted (a string,
    {content} or {text})."""
    if isinstance(response, str):
        return " ".join(response.split())
    if not isinstance(response, dict):
        return ""
    pieces: list[str] = []
    if endpoint == MESSAGES or isinstance(response.get("content"), list):
        pieces += _blocks_text(response.get("content"))
    if endpoint == RESPONSES or isinstance(response.get("output"), list):
        for item in response.get("output") or []:
            if isinstance(item, dict) and item.get("type") == "message":
                pieces += _blocks_text(item.get("content"))
            elif isinstance(item, dict) and item.get("type") == "function_call":
                pieces.append(f"{item.get('name')}({item.get('arguments')})")
    for choice in response.get("choices") or []:
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            pieces += _blocks_text(message.get("content"))
            for call in message.get("tool_calls") or []:
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    pieces.append(f"{function.get('name')}({function.get('arguments')})")
    if not pieces:
        for key in ("content", "text"):
            if isinstance(response.get(key), str):
                pieces.append(response[key])
    return " ".join(" ".join(pieces).split())


def _blocks_text(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    pieces = []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):  # text, output_text, a chat text part
            pieces.append(block["text"])
        elif block.get("type") == "tool_use":
            pieces.append(f"{block.get('name')}({json.dumps(block.get('input'), sort_keys=True)})")
    return pieces


def token_counts(usage: Any) -> Tokens | None:
    """Input and output tokens as any of the three APIs reports them (Anthropic's cache reads and
    writes are input tokens it counts apart)."""
    if not isinstance(usage, dict):
        return None

    def count(*keys: str) -> int | None:
        values = [usage[k] for k in keys if isinstance(usage.get(k), int)]
        return sum(values) if values else None

    tokens = Tokens(count("prompt_tokens", "input_tokens", "cache_creation_input_tokens",
                          "cache_read_input_tokens"), count("completion_tokens", "output_tokens"))
    return tokens if tokens.input is not None or tokens.output is not None else None


def _comparison_before(original: Conversation) -> tuple[int | None, Tokens | None]:
    usage: Any = original.usage
    if usage is None and isinstance(original.response, dict):
        usage = original.response.get("usage")
    return original.latency_ms, token_counts(usage)


def _error_detail(answer: Any) -> str:
    """The upstream's error message ({error: {message}} in both APIs), else the start of its body."""
    error = answer.get("error") if isinstance(answer, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    text = message if isinstance(message, str) else answer if isinstance(answer, str) else json.dumps(answer)
    text = " ".join(text.split())
    return text if len(text) <= ERROR_DETAIL_CHARS else text[: ERROR_DETAIL_CHARS - 1] + "…"


def summarise(results: list[ReplayResult], not_replayable: int) -> ReplaySummary:
    both = [(r.latency_before_ms, r.latency_after_ms) for r in results
            if r.latency_before_ms is not None and r.latency_after_ms is not None]
    usage = [(r.tokens_before, r.tokens_after) for r in results if r.tokens_before and r.tokens_after]

    def total(tokens: list[Tokens]) -> Tokens:
        inputs = [t.input for t in tokens if t.input is not None]
        outputs = [t.output for t in tokens if t.output is not None]
        return Tokens(sum(inputs) if inputs else None, sum(outputs) if outputs else None)

    return ReplaySummary(
        replayed=sum(1 for r in results if r.replay_id is not None),
        same_text=sum(1 for r in results if r.same_text is True),
        different_text=sum(1 for r in results if r.same_text is False),
        failed=sum(1 for r in results if r.error is not None),
        not_replayable=not_replayable,
        latency_before_p50_ms=median(before for before, _ in both) if both else None,
        latency_after_p50_ms=median(after for _, after in both) if both else None,
        tokens_before=total([b for b, _ in usage]), tokens_after=total([a for _, a in usage]),
    )
