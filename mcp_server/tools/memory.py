"""Memory tools: each is its schema and one MemoryService call."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from mcp_server.schemas import (
    MAX_SOURCE_CHARS,
    CosineThreshold,
    DeleteResult,
    Memory,
    MemoryPage,
    MemoryPageSize,
    RecallLimit,
    RecallMode,
    RecallResult,
    RememberResult,
    RowId,
)
from mcp_server.tools.parameters import ProjectArgument, ReadScopeArgument, WriteScopeArgument
from mcp_server.tools.runner import ToolContext, app_of, run_tool
from mcp_server.tools.session import session_key

MemoryId = Annotated[RowId, Field(description="A memory id returned by remember, recall or list_memories.")]
Source = Annotated[str | None, Field(description="Where the memory came from, e.g. 'chat', 'code-review', "
                                                 "'docs/adr-12.md'. Filterable.", max_length=MAX_SOURCE_CHARS)]
Metadata = Annotated[dict[str, Any] | None, Field(description="A JSON object of labels, e.g. "
                                                              "{\"project\": \"api\", \"kind\": \"decision\"}.")]


def register(mcp: MCPServer) -> None:
    @mcp.tool(
        title="Remember",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True,
                                    open_world_hint=False),
    )
    async def remember(
        content: Annotated[str, Field(description="The fact, decision or note to keep, in plain words.")],
        ctx: ToolContext,
        source: Source = None,
        metadata: Metadata = None,
        scope: WriteScopeArgument = "project",
        project: ProjectArgument = None,
    ) -> RememberResult:
        """Store a memory for later sessions: a decision, a convention, a fact about this codebase or the
        user's preferences. Use it when something is worth knowing next time. It belongs to this project
        (repository); `scope: "global"` keeps it for every project. Storing the same content again
        returns the existing id (created: false)."""
        return await run_tool(ctx, lambda: app_of(ctx).memories.remember(content, source, metadata, scope, project))

    @mcp.tool(
        title="Recall",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
    )
    async def recall(
        query: Annotated[str, Field(description="What to look for, in natural language or keywords.")],
        ctx: ToolContext,
        limit: Annotated[RecallLimit, Field(description="Most results to return.")] = 5,
        source: Source = None,
        metadata: Annotated[dict[str, Any] | None, Field(
            description="Only memories whose metadata contains this JSON object.")] = None,
        min_score: Annotated[CosineThreshold | None, Field(description=(
            "Relevance floor on each result's `score`: its cosine similarity to the query when the memory "
            "has a vector and the query was embedded (e.g. 0.3), else the share of the query's words it "
            "contains (0..1; 1: all of them; so with a one-word query, 0 or 1). In mode \"keywords\" it is "
            "always that share; in mode \"vector\" always the similarity."))] = None,
        scope: ReadScopeArgument = "project",
        project: ProjectArgument = None,
        cursor: Annotated[str | None, Field(description="`next_cursor` of the previous page, with the same "
                                                        "other arguments; omit for the first page.")] = None,
        mode: Annotated[RecallMode, Field(description=(
            '"hybrid" (default): by meaning and keywords together (keywords alone while the embedder is '
            'unavailable); "vector": by meaning alone (an error when the embedder is unavailable); '
            '"keywords": by keywords alone, without embedding the query (for exact identifiers, error '
            "codes, file names). The result's `mode` says what ran."))] = "hybrid",
    ) -> RecallResult:
        """Search stored memories by meaning and keywords: this project's and the user's global ones. Use
        it before answering questions about past decisions, conventions or context ("what did we decide
        about retries?"). Each result says why it was found (`found_by`). Long memories are shortened
        to fit (`truncated`: read one whole with get_memory); results that still do not fit come in
        pages (`next_cursor`)."""
        return await run_tool(ctx, lambda: app_of(ctx).memories.recall(
            query, limit, source, metadata, min_score, scope, project, session=session_key(ctx), cursor=cursor,
            mode=mode),
            fitted=True)

    @mcp.tool(
        title="Get memory",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
    )
    async def get_memory(id: MemoryId, ctx: ToolContext) -> Memory:
        """Read one memory whole by its id (recall shortens long ones: `truncated`)."""
        return await run_tool(ctx, lambda: app_of(ctx).memories.get(id))

    @mcp.tool(
        title="Update memory",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True,
                                    open_world_hint=False),
    )
    async def update_memory(
        id: MemoryId,
        ctx: ToolContext,
        content: Annotated[str | None, Field(description="New text (replaces the old).")] = None,
        source: Source = None,
        metadata: Annotated[dict[str, Any] | None, Field(description="New metadata (replaces the old).")] = None,
    ) -> Memory:
        """Correct or refine a stored memory (e.g. a decision that changed). Only the fields given change."""
        return await run_tool(ctx, lambda: app_of(ctx).memories.update(id, content, source, metadata))

    @mcp.tool(
        title="Forget",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False,
                                    open_world_hint=False),
    )
    async def forget(id: MemoryId, ctx: ToolContext) -> DeleteResult:
        """Delete a memory that is wrong or no longer wanted. This cannot be undone."""
        return await run_tool(ctx, lambda: app_of(ctx).memories.forget(id))

    @mcp.tool(
        title="List memories",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
    )
    async def list_memories(
        ctx: ToolContext,
        limit: Annotated[MemoryPageSize, Field(description="Page size.")] = 20,
        cursor: Annotated[str | None, Field(description="`next_cursor` of the previous page.")] = None,
        source: Source = None,
        scope: ReadScopeArgument = "project",
        project: ProjectArgument = None,
    ) -> MemoryPage:
        """Browse stored memories (this project's and the global ones), newest first, a page at a time."""
        return await run_tool(ctx, lambda: app_of(ctx).memories.list(limit, cursor, source, scope, project))
