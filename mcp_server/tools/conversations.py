"""Conversation tools: log an exchange (redacted), search the log, read one exchange back."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from mcp_server.schemas import (
    Conversation,
    ConversationPage,
    ConversationPageSize,
    LatencyMs,
    LoggedExchange,
    ReplaySelection,
    RowId,
    StatusCode,
)
from mcp_server.tools.parameters import ConversationScopeArgument, ProjectArgument
from mcp_server.tools.runner import ToolContext, app_of, run_tool
from mcp_server.tools.session import session_key

CursorArgument = Annotated[str | None, Field(description="`next_cursor` of the previous page, with the same "
                                                        "other arguments; omit for the first page.")]
READ = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
ReplaysArgument = Annotated[ReplaySelection, Field(
    description='Replays are exchanges `aletheia-mcp conversations replay` re-sent (replay_of = the original\'s '
                'id): "include" (default) lists them with the originals, "only" lists only replays, "exclude" '
                'only originals.')]


def register(mcp: MCPServer) -> None:
    @mcp.tool(title="Log exchange", annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False,
                                                                idempotent_hint=True, open_world_hint=False))
    async def log_exchange(
        messages: Annotated[list[Any], Field(description="The prompt messages: OpenAI shape [{role, content}] "
                                                         "(content a string or content parts) or Anthropic "
                                                         "shape (content blocks).")],
        response: Annotated[str | dict[str, Any] | None, Field(description="The model's answer: text or the "
                                                                           "provider's JSON response.")],
        ctx: ToolContext,
        provider: Annotated[str | None, Field(description="e.g. 'openai', 'anthropic'.")] = None,
        model: Annotated[str | None, Field(description="e.g. 'gpt-4o', 'claude-sonnet-4'.")] = None,
        request_id: Annotated[str | None, Field(description="Your id for this exchange; logging the same id "
                                                            "again changes nothing. Default: a new UUID.")] = None,
        status_code: StatusCode | None = None,
        latency_ms: LatencyMs | None = None,
        project: ProjectArgument = None,
    ) -> LoggedExchange:
        """Record one LLM exchange for observability and replay, after each answer. Secrets (API keys,
        tokens, passwords, private keys) are redacted before storing. The memories and patterns this
        server returned in this session since the last logged exchange are recorded with it."""
        return await run_tool(ctx, lambda: app_of(ctx).conversations.log(
            messages, response, provider, model, request_id, status_code, latency_ms, project,
            session=session_key(ctx)))

    @mcp.tool(title="Search conversations", annotations=READ)
    async def search_conversations(
        ctx: ToolContext,
        query: Annotated[str | None, Field(description="Words to find in the messages or the response.")] = None,
        provider: str | None = None,
        model: str | None = None,
        since: Annotated[str | None, Field(description="ISO-8601 time, inclusive.")] = None,
        until: Annotated[str | None, Field(description="ISO-8601 time, exclusive.")] = None,
        limit: ConversationPageSize = 20,
        scope: ConversationScopeArgument = "project",
        project: ProjectArgument = None,
        replays: ReplaysArgument = "include",
        cursor: CursorArgument = None,
    ) -> ConversationPage:
        """Find logged exchanges of this project, newest first; each item is a short preview (use
        get_conversation for all). Items that do not fit in one response come in pages (`next_cursor`)."""
        return await run_tool(ctx, lambda: app_of(ctx).conversations.search(
            query, provider, model, since, until, limit, scope, project, replays, cursor), fitted=True)

    @mcp.tool(title="Get conversation", annotations=READ)
    async def get_conversation(
        ctx: ToolContext,
        id: RowId | None = None,
        request_id: str | None = None,
        field: Annotated[str | None, Field(description="Read this text of the exchange (a JSON Pointer listed in "
                                                       "`shortened`, e.g. /messages/3/content) from `offset`.")] = None,
        offset: Annotated[int, Field(ge=0, description="Where to start reading `field` (shown_from + "
                                                       "shown_chars of the previous part).")] = 0,
    ) -> Conversation:
        """Read one logged exchange, with the memory and pattern ids that were in context. An exchange
        longer than MAX_RESPONSE_CHARS comes back with its longest texts shortened, listed in `shortened`
        with how to read each whole (`field` and `offset`)."""
        return await run_tool(ctx, lambda: app_of(ctx).conversations.read(id, request_id, field, offset), fitted=True)
