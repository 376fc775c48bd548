"""Logged LLM exchanges: validated, redacted, stored once per request_id, searchable, exportable.

Shapes accepted for `messages`: the OpenAI chat shape (role + content as a string, a list of
content parts, or null for an assistant tool call) and the Anthropic shape (role + content
blocks). `response`: a string or a JSON object. Secrets are redacted (mcp_server.redact) in
everything stored, the request_id included (a digest of the original keeps two ids that differ only
in a secret apart), NUL characters removed, and the size is bounded by MAX_EXCHANGE_BYTES. A model
reads an exchange through `read`, fitted to MAX_RESPONSE_CHARS (services/response_fit.py).

Calls captured by the gateway (`log_captured`) are a faithful record rather than a client's
submission: whatever the client sent is stored (the upstream judged it), never refused. Their
body is split into `messages` (what the full-text index reads) and `request` (the rest), and a
call over MAX_EXCHANGE_BYTES is stored with its longest texts shortened, each ending with a
marker (captured_rows.SHORTENED_MARK) that says how much was cut and why.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import IO, Any, get_args

import anyio

from mcp_server.db import conversations as repo
from mcp_server.db.database import Database
from mcp_server.db.projects import ALL_ROWS
from mcp_server.errors import InvalidInputError, NotFoundError
from mcp_server.identity import current_user_id
from mcp_server.redact import Redactor
from mcp_server.repository import check_project_name
from mcp_server.schemas import (
    MAX_CONVERSATION_PAGE,
    MAX_CONVERSATION_QUERY_CHARS,
    MAX_LATENCY_MS,
    MAX_MESSAGES,
    MAX_SOURCE_CHARS,
    STATUS_CODES,
    CapturedCall,
    Conversation,
    ConversationPage,
    ConversationScope,
    ConversationSummary,
    LoggedExchange,
    ReplaySelection,
    ShortenedText,
)
from mcp_server.services import validation as check
from mcp_server.services.captured_rows import bounded_label, fit_to_bytes, split_request, valid_text
from mcp_server.services.paging import call_arguments, cursor_pin
from mcp_server.services.projects import Project, ProjectService
from mcp_server.services.provenance import ProvenanceTracker
from mcp_server.services.response_fit import (
    MAX_LISTED_CUTS,
    TEXT_FIELDS,
    Path,
    fit_exchange,
    parse_pointer,
    pointer,
)
from mcp_server.services.result_pages import conversations_page
from mcp_server.settings import Settings

logger = logging.getLogger(__name__)

PREVIEW_CHARS = 200
MAX_INT4 = 2**31 - 1  # an integer column's largest value: a larger one would fail every attempt to store the row


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


def parse_time(value: Any, field: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        parsed = datetime.fromisoformat(str(value))
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidInputError(f"`{field}` must be an ISO-8601 time such as 2026-01-31T12:00:00Z "
                                "(between years 1 and 9999 in UTC).") from None


class ConversationService:
    def __init__(self, database: Database, settings: Settings, provenance: ProvenanceTracker,
                 projects: ProjectService, redactor: Redactor) -> None:
        self.database = database
        self.settings = settings
        self.provenance = provenance
        self.projects = projects
        self.redactor = redactor

    @property
    def user_id(self) -> str:
        """ALETHEIA_USER_ID, or the HTTP token's user for the call in progress."""
        return current_user_id(self.settings.user_id)

    async def log(self, messages: Any, response: Any, provider: str | None = None, model: str | None = None,
                  request_id: str | None = None, status_code: int | None = None, latency_ms: int | None = None,
                  project: str | None = None, *, session: str | None = None) -> LoggedExchange:
        """Store one exchange in the current project, redacted, once per request_id. With a `session`,
        the memories and patterns this server showed that session since its previous logged exchange
        are recorded with it."""
        target = self.projects.current(project)
        memory_ids, pattern_ids = self.provenance.take(session) if session is not None else ([], [])
        try:
            return await self._log(messages, response, provider, model, request_id, status_code, latency_ms,
                                   memory_ids, pattern_ids, await self.projects.id_to_write(target))
        except BaseException:
            if session is not None:  # not logged: keep them for the next exchange
                self.provenance.record(session, memory_ids=memory_ids, pattern_ids=pattern_ids)
            raise

    async def _log(self, messages: Any, response: Any, provider: str | None, model: str | None,
                   request_id: str | None, status_code: int | None, latency_ms: int | None,
                   memory_ids: list[int], pattern_ids: list[int], project_id: int | None) -> LoggedExchange:
        messages = validate_messages(valid_text(messages))  # (a lone surrogate: U+FFFD, as the gateway stores it)
        response = valid_text(response)
        if response is not None and not isinstance(response, str | dict):
            raise InvalidInputError("`response` must be a string or a JSON object.")
        if status_code is not None:
            check.int_range(status_code, "status_code", *STATUS_CODES)
        if latency_ms is not None:
            check.int_range(latency_ms, "latency_ms", 0, MAX_LATENCY_MS)
        size = len(json.dumps({"messages": messages, "response": response}, ensure_ascii=False).encode())
        if size > self.settings.max_exchange_bytes:
            raise InvalidInputError(
                f"The exchange is {size:,} bytes of JSON; the limit is MAX_EXCHANGE_BYTES="
                f"{self.settings.max_exchange_bytes:,}. Log a shorter exchange (e.g. without large attachments)."
            )
        labels = [check.optional_label(v, name, max_chars=MAX_SOURCE_CHARS) for v, name in
                  ((provider, "provider"), (model, "model"))]
        redacted, count = self.redactor.redact_json({"messages": messages, "response": response,
                                                     "labels": labels})
        provider, model = redacted["labels"]
        rid, rid_count = self._stored_request_id(check.optional_label(request_id, "request_id",
                                                                      max_chars=MAX_SOURCE_CHARS))
        count += rid_count
        row = {
            "user_id": self.user_id, "request_id": rid or str(uuid.uuid4()), "provider": provider, "model": model,
            "messages": redacted["messages"], "response": redacted["response"], "status_code": status_code,
            "latency_ms": latency_ms, "memory_ids": memory_ids, "pattern_ids": pattern_ids,
            "redactions": count, "project_id": project_id,
        }
        async with self.database.connection() as conn:
            stored, created = await repo.insert_once(conn, row)
        return LoggedExchange(id=stored.id, request_id=stored.request_id or row["request_id"],
                              redactions=stored.redactions, created=created)

    async def log_captured(self, call: CapturedCall) -> LoggedExchange:
        """Store one call captured by the gateway, as ALETHEIA_USER_ID's, in the project of its key
        (created when new), redacted and within MAX_EXCHANGE_BYTES (see the module docstring); once
        per request_id: storing the same call again changes nothing (`created` false). Raises only
        when the database does not take the row (DatabaseUnavailableError, DatabaseRefusedError)."""
        user_id = self.user_id
        project_id = await self.projects.id_to_write(self._captured_project(call.project))
        # Redaction and fitting are CPU work on bodies of up to megabytes: off the event loop, which
        # the gateway's proxied calls share.
        row = await anyio.to_thread.run_sync(self._captured_row, call, user_id, project_id)
        async with self.database.connection() as conn:
            stored, created = await repo.insert_once(conn, row)
        return LoggedExchange(id=stored.id, request_id=stored.request_id or row["request_id"],
                              redactions=stored.redactions, created=created)

    async def store_prepared(self, messages: list[Any], response: dict[str, Any], *, redactions: int,
                             provider: str | None, model: str | None, request_id: str, project: Project | None,
                             memory_ids: list[int], pattern_ids: list[int],
                             latency_ms: int | None = None) -> LoggedExchange:
        """Store an exchange its caller already redacted (`redactions` secrets) and fitted to
        MAX_EXCHANGE_BYTES (an agent's turn logged by a hook: services/hooks.py), in `project`
        (None: global), once per request_id, with the ids injected into it as its provenance."""
        rid, rid_count = self._stored_request_id(bounded_label(valid_text(request_id)))
        row = {
            "user_id": self.user_id, "request_id": rid, "provider": bounded_label(provider),
            "model": bounded_label(self.redactor.redact_text(model)[0] if model else None),
            "messages": valid_text(messages), "response": valid_text(response), "latency_ms": _milliseconds(latency_ms),
            "memory_ids": memory_ids, "pattern_ids": pattern_ids, "redactions": redactions + rid_count,
            "project_id": await self.projects.id_to_write(project),
        }
        async with self.database.connection() as conn:
            stored, created = await repo.insert_once(conn, row)
        return LoggedExchange(id=stored.id, request_id=stored.request_id or rid or request_id,
                              redactions=stored.redactions, created=created)

    def _captured_project(self, key: str | None) -> str | None:
        """The key a captured call is stored under: its own (the Aletheia-Project header or the
        gateway's default), or the application's project when that key is not a valid name."""
        if key is None:
            return None
        try:
            return check_project_name(key, "Aletheia-Project header")
        except InvalidInputError as exc:
            fallback = self.projects.default.key if self.projects.default is not None else None
            logger.warning("a gateway call's project is not valid (%s): stored in %s", exc,
                           fallback or "no project (global)")
            return fallback

    def _captured_row(self, call: CapturedCall, user_id: str, project_id: int | None) -> dict[str, Any]:
        messages, request = split_request(call.endpoint, call.request)
        # Repaired first: the redactor (RE2) reads UTF-8 too. Redacted before shortening: a cut
        # through a secret would leave a start that no longer looks like one.
        redacted, count = self.redactor.redact_json(valid_text({
            "messages": messages, "request": request, "response": call.response, "usage": call.usage,
            "labels": [call.model, call.endpoint],
        }))
        model, endpoint = (bounded_label(label) for label in redacted["labels"])
        texts = {key: redacted[key] for key in ("messages", "request", "response")}
        texts, shortened = fit_to_bytes(texts, self.settings.max_exchange_bytes)
        rid, rid_count = self._stored_request_id(valid_text(call.request_id).strip() or None)
        if rid is None:  # (the gateway always sends one) the same call must get the same id again
            whole = json.dumps(call.model_dump(mode="json"), sort_keys=True)
            rid = "gateway-" + hashlib.sha256(whole.encode()).hexdigest()[:32]
        request_id = bounded_label(rid)
        if shortened:
            logger.warning("gateway call %s is over MAX_EXCHANGE_BYTES=%d: its %d longest text(s) were shortened",
                           request_id, self.settings.max_exchange_bytes, shortened)
        created_at = call.created_at if call.created_at.tzinfo else call.created_at.replace(tzinfo=UTC)
        return {
            "user_id": user_id, "request_id": request_id, "provider": call.provider, "model": model,
            "endpoint": endpoint, "messages": texts["messages"], "request": texts["request"],
            "response": texts["response"], "status_code": min(max(call.status_code, 0), MAX_INT4),
            "latency_ms": _milliseconds(call.latency_ms), "ttft_ms": _milliseconds(call.ttft_ms),
            "usage": redacted["usage"], "outcome": call.outcome, "stream": call.stream,
            "replay_of": call.replay_of, "redactions": count + rid_count, "project_id": project_id,
            "created_at": created_at,
        }

    def _stored_request_id(self, request_id: str | None) -> tuple[str | None, int]:
        """`request_id` as stored: redacted, and when that changed it, followed by a digest of the
        original, so that two exchanges whose ids differ only in a secret stay two exchanges (and
        logging the same one again still finds it). The digest is a slow, salted hash: it cannot be
        turned back into the secret."""
        if request_id is None:
            return None, 0
        redacted, count = self.redactor.redact_text(request_id)
        if not count:
            return redacted, 0
        digest = hashlib.pbkdf2_hmac("sha256", request_id.encode(), f"aletheia-request-id\x1f{self.user_id}".encode(),
                                     20_000, dklen=8).hex()
        return f"{redacted}#{digest}", count

    async def search(self, query: str | None = None, provider: str | None = None, model: str | None = None,
                     since: Any = None, until: Any = None, limit: int = 20, scope: ConversationScope = "project",
                     project: str | None = None, replays: ReplaySelection = "include",
                     cursor: str | None = None) -> ConversationPage:
        """The user's exchanges, newest first: the current project's, or every project's (`scope="all"`);
        replays (`conversations replay`) too, only them, or only the originals (`replays`). Within
        MAX_RESPONSE_CHARS, in pages (`cursor`) when the `limit` items do not fit in one: none is dropped."""
        arguments = call_arguments(cursor, "search_conversations", {
            "query": query, "provider": provider, "model": model, "since": since, "until": until, "limit": limit,
            "scope": scope, "project": project, "replays": replays})
        # The newest exchange the first page listed: later pages list none newer (exchanges logged
        # meanwhile, e.g. by the gateway, would shift the list and void the cursor).
        newest = cursor_pin(cursor, "search_conversations", arguments)
        count = check.int_range(limit, "limit", 1, MAX_CONVERSATION_PAGE)
        _check_replays(replays)
        text = (check.content(query, MAX_CONVERSATION_QUERY_CHARS, field="query", setting=None)
                if query is not None else None)
        in_scope = await self.projects.only_scope(scope, project)
        async with self.database.connection() as conn:
            rows = await repo.search(
                conn, self.user_id, query=text, provider=check.optional_label(provider, "provider"),
                model=check.optional_label(model, "model"), since=parse_time(since, "since"),
                until=parse_time(until, "until"), limit=count, scope=in_scope, replays=replays,
                before_id=newest + 1 if newest is not None else None)
        listed = [
            ConversationSummary(id=r.id, request_id=r.request_id, created_at=r.created_at, provider=r.provider,
                                model=r.model, status_code=r.status_code, latency_ms=r.latency_ms,
                                preview=preview(r.messages, r.response), project=r.project, endpoint=r.endpoint,
                                stream=r.stream, outcome=r.outcome, ttft_ms=r.ttft_ms, usage=r.usage,
                                replay_of=r.replay_of)
            for r in rows
        ]
        return conversations_page(listed, cursor, arguments, self.settings.max_response_chars)

    async def get(self, row_id: int | None = None, request_id: str | None = None) -> Conversation:
        if (row_id is None) == (request_id is None):
            raise InvalidInputError("Pass exactly one of `id` or `request_id`.")
        if row_id is not None:
            check.row_id(row_id)
        given = check.optional_label(request_id, "request_id")
        request_id, redactions = self._stored_request_id(given)
        async with self.database.connection() as conn:
            conversation = await repo.get(conn, self.user_id, row_id=row_id, request_id=request_id)
            if conversation is None and redactions and given is not None:
                # Logged before ids kept a digest of what redaction removed: stored redacted only.
                conversation = await repo.get(conn, self.user_id, row_id=None,
                                              request_id=self.redactor.redact_text(given)[0])
        if conversation is None:
            which = f"id {row_id}" if row_id is not None else f"request_id {request_id!r}"
            raise NotFoundError(f"No logged exchange with {which} for this user. Use `search_conversations`.")
        return conversation

    async def read(self, row_id: int | None = None, request_id: str | None = None, field: str | None = None,
                   offset: int = 0) -> Conversation:
        """One exchange as a model reads it: fitted to MAX_RESPONSE_CHARS, longest texts shortened
        first, saying which were and how to read them whole (`field`, a JSON Pointer such as
        /messages/3/content, shows that text from `offset`)."""
        conversation = await self.get(row_id, request_id)
        data = conversation.model_dump(mode="json")
        asked = None
        field = field.strip() or None if isinstance(field, str) else field  # "" is no field, as for labels
        if field is not None:
            asked = parse_pointer(field, {key: data[key] for key in TEXT_FIELDS})
            if asked is None:
                raise InvalidInputError(f"`field` {field!r} is not a text of exchange {conversation.id}: pass a "
                                        "JSON Pointer such as /messages/0/content or /response (those listed "
                                        "in `shortened` are).")
        length = len(_get_text(data, asked)) if asked is not None else 0
        if not 0 <= offset <= length:
            raise InvalidInputError(f"`offset` must be between 0 and {length} (the length of `field`)."
                                    if asked is not None else "`offset` needs `field`: the text to read from it.")
        limit = self.settings.max_response_chars
        budget = limit
        for _ in range(4):  # the room reserved for the notes is an estimate: tighten if it was short
            fitted, cuts, omitted = fit_exchange(data, budget, asked, offset)
            if not cuts and not omitted:
                return Conversation.model_validate(fitted)
            result = Conversation.model_validate({
                **fitted,
                "shortened": [ShortenedText(field=pointer(cut.path), total_chars=cut.total_chars,
                                            shown_from=cut.shown_from, shown_chars=cut.shown_chars)
                              for cut in cuts[:MAX_LISTED_CUTS]],
                "omitted_messages": omitted,
                "note": _shortened_note(conversation.id, limit, len(cuts), len(omitted)),
            })
            over = len(result.model_dump_json()) - limit
            if over <= 0:
                return result
            budget -= over + 200
        return result

    async def export_jsonl(self, out: IO[str], since: Any = None, until: Any = None, model: str | None = None,
                           project: str | None = None, replays: ReplaySelection = "include") -> int:
        """Write exchanges (every project's, or only `project`'s; replays too, only them, or only the
        originals) to `out` as JSONL a person can replay (messages, response, model, provider,
        request_id, created_at, status_code, latency_ms, project, and for gateway calls endpoint,
        request, stream, outcome, ttft_ms, usage, replay_of), oldest first; returns how many."""
        _check_replays(replays)
        in_scope = ALL_ROWS if project is None else await self.projects.only_scope("project", project)
        written = 0
        async with self.database.connection() as conn:
            exchanges = repo.stream(conn, self.user_id, parse_time(since, "since"), parse_time(until, "until"),
                                    model, in_scope, replays)
            async for row in exchanges:
                out.write(json.dumps({
                    "request_id": row.request_id, "created_at": row.created_at.isoformat(),
                    "provider": row.provider, "model": row.model, "messages": row.messages,
                    "response": row.response, "status_code": row.status_code, "latency_ms": row.latency_ms,
                    "project": row.project, "endpoint": row.endpoint, "request": row.request,
                    "stream": row.stream, "outcome": row.outcome, "ttft_ms": row.ttft_ms, "usage": row.usage,
                    "replay_of": row.replay_of,
                }, ensure_ascii=False) + "\n")
                written += 1
        return written

    async def purge(self, older_than_days: int, project: str | None = None) -> int:
        """Delete the user's exchanges older than N days (every project's, or only `project`'s)."""
        days = check.int_range(older_than_days, "older_than_days", 1, 365_000)
        in_scope = ALL_ROWS if project is None else await self.projects.only_scope("project", project)
        async with self.database.connection() as conn:
            return await repo.purge_older_than(conn, self.user_id, datetime.now(UTC) - timedelta(days=days),
                                               in_scope)

    async def purge_expired(self) -> None:
        """The start-up job: with CONVERSATION_RETENTION_DAYS set, purge the user's older exchanges."""
        days = self.settings.conversation_retention_days
        if days:
            purged = await self.purge(days)
            if purged:
                logger.info("purged %d logged exchange(s) older than %d days", purged, days)


def _check_replays(replays: Any) -> None:
    if replays not in get_args(ReplaySelection):
        raise InvalidInputError('`replays` must be "include" (originals and replays), "only" (replays) or '
                                '"exclude" (originals only).')


def _milliseconds(value: int | None) -> int | None:
    """A duration as the integer column holds it (a clock stepping back gives no negative)."""
    return None if value is None else min(max(value, 0), MAX_LATENCY_MS)


def _get_text(data: dict[str, Any], path: Path) -> str:
    node: Any = data
    for key in path:
        node = node[key]
    return str(node)


def _shortened_note(row_id: int, limit: int, cuts: int, omitted: int) -> str:
    parts = []
    if cuts:
        listed = f" (the first {MAX_LISTED_CUTS} are listed)" if cuts > MAX_LISTED_CUTS else ""
        parts.append(f"{cuts} text(s) were shortened, longest first{listed}: see `shortened`")
    if omitted:
        parts.append(f"{omitted} message(s) from the middle were left out: see `omitted_messages`")
    return (f"This exchange is longer than MAX_RESPONSE_CHARS={limit:,}: " + "; ".join(parts) + ". To read a "
            f"text whole, call get_conversation(id={row_id}, field=<its JSON Pointer>, offset=<shown_from + "
            f"shown_chars>) again, page by page; or run `aletheia-mcp conversations show {row_id}` for the "
            "whole exchange.")
