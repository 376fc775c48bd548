"""Pattern tools, the `aletheia://patterns/{id}` resource and the `conventions_for` prompt."""

from __future__ import annotations

from typing import Annotated, Any

from mcp import MCPError
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp.types import INVALID_PARAMS, ToolAnnotations
from pydantic import Field

from mcp_server.errors import AletheiaError, NotFoundError
from mcp_server.schemas import (
    MAX_FILE_CHARS,
    MIN_FILE_CHARS,
    ContextFileChars,
    ContextFiles,
    ContextFormat,
    ContextPatternCount,
    DeleteResult,
    FindLimit,
    FindPatternsResult,
    Pattern,
    PatternCreated,
    RowId,
)
from mcp_server.tools.parameters import ProjectArgument, WriteScopeArgument
from mcp_server.tools.runner import ToolContext, acting_for, app_of, run_tool
from mcp_server.tools.session import session_key

PatternId = Annotated[RowId, Field(description="A pattern id returned by add_pattern or find_patterns.")]
Globs = Annotated[list[str], Field(description="Gitignore-style globs relative to the repository root where the "
                                               "pattern applies, e.g. [\"api/*.py\", \"tests/**\"]; "
                                               "empty = everywhere.")]
Tags = Annotated[list[str], Field(description="Labels such as [\"api\", \"testing\"].")]
Author = Annotated[str | None, Field(description="Free-text credit for whoever formulated the convention. Not "
                                     "checked: the database itself records the acting user as created_by and "
                                     "updated_by.")]
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
Cursor = Annotated[str | None, Field(description="`next_cursor` of the previous page (the other arguments "
                                                 "unchanged); leave out for the first page.")]
READ = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)


def register(mcp: MCPServer) -> None:
    @mcp.tool(title="Add pattern", annotations=WRITE)
    async def add_pattern(
        content: Annotated[str, Field(description="The convention, in words a developer or model can follow.")],
        ctx: ToolContext,
        title: Annotated[str | None, Field(description="A short name, e.g. 'Validate request bodies'.")] = None,
        tags: Tags | None = None,
        strategy_type: Annotated[str | None, Field(description="A kind such as 'convention', 'testing', "
                                                               "'security', 'architecture'.")] = None,
        target_contexts: Globs | None = None,
        author: Author = None,
        metadata: Annotated[dict[str, Any] | None, Field(description="Extra JSON labels.")] = None,
        scope: WriteScopeArgument = "project",
        project: ProjectArgument = None,
    ) -> PatternCreated:
        """Record a team engineering pattern (a convention, rule or practice) for this project, scoped to
        files by globs; `scope: "global"` makes it an organisation-wide rule. Adding the same title and
        content again returns the existing id (created: false)."""
        return await run_tool(ctx, lambda: app_of(ctx).patterns.add(content, title, tags, strategy_type,
                                                                     target_contexts, author, metadata, scope,
                                                                     project))

    @mcp.tool(title="Update pattern", annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True,
                                                                  idempotent_hint=True, open_world_hint=False))
    async def update_pattern(
        id: PatternId,
        ctx: ToolContext,
        content: str | None = None,
        title: str | None = None,
        tags: Tags | None = None,
        strategy_type: str | None = None,
        target_contexts: Globs | None = None,
        author: Author = None,
        metadata: dict[str, Any] | None = None,
    ) -> Pattern:
        """Change a pattern; only the fields given change (a list given replaces the old list)."""
        return await run_tool(ctx, lambda: app_of(ctx).patterns.update(
            id, content=content, title=title, tags=tags, strategy_type=strategy_type,
            target_contexts=target_contexts, author=author, metadata=metadata))

    @mcp.tool(title="Get pattern", annotations=READ)
    async def get_pattern(id: PatternId, ctx: ToolContext) -> Pattern:
        """Read one pattern in full."""
        return await run_tool(ctx, lambda: app_of(ctx).patterns.get(id))

    @mcp.tool(title="Delete pattern", annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True,
                                                                  idempotent_hint=False, open_world_hint=False))
    async def delete_pattern(id: PatternId, ctx: ToolContext) -> DeleteResult:
        """Delete a pattern for everyone using this database. Its history is kept: a maintainer can bring it
        back with `aletheia-mcp patterns restore ID --version N`."""
        return await run_tool(ctx, lambda: app_of(ctx).patterns.delete(id))

    @mcp.tool(title="Find patterns", annotations=READ)
    async def find_patterns(
        ctx: ToolContext,
        file_path: Annotated[str | None, Field(description="A file you are about to read or change, relative to "
                                                           "the repository root (e.g. 'api/routes/users.py') or "
                                                           "absolute inside it.")] = None,
        query: Annotated[str | None, Field(description="What you are doing, e.g. 'add input validation'.")] = None,
        tags: Annotated[list[str] | None, Field(description="Only patterns with all of these tags.")] = None,
        strategy_type: str | None = None,
        limit: FindLimit = 10,
        project: ProjectArgument = None,
        cursor: Cursor = None,
    ) -> FindPatternsResult:
        """Find the team's conventions (this project's and the global ones) for a file and/or a task. Call
        it before writing or reviewing code: patterns whose globs match `file_path` come first (more
        specific globs first, this project's before global ones), ranked by `query`. Results that do not
        fit in one response come in pages: call again with `cursor` = `next_cursor` (same arguments)
        until it is null. A pattern too long for a response on its own is `truncated`: read it whole
        with the aletheia://patterns/{id} resource."""
        return await run_tool(ctx, lambda: app_of(ctx).patterns.find_page(
            file_path, query, tags, strategy_type, limit, project, cursor, session=session_key(ctx)), fitted=True)

    @mcp.tool(title="Generate context file", annotations=READ)
    async def generate_context_file(
        format: Annotated[ContextFormat, Field(description="agents_md (AGENTS.md), claude_md (CLAUDE.md + "
                                                           ".claude/rules), cursor_mdc (.cursor/rules/*.mdc), "
                                                           "copilot (.github/copilot-instructions.md + "
                                                           "instructions), windsurf (.windsurf/rules), cline "
                                                           "(.clinerules) or gemini_md (GEMINI.md).")],
        ctx: ToolContext,
        paths: Annotated[list[str] | None, Field(description="Only patterns that apply to these files.")] = None,
        query: Annotated[str | None, Field(description="Only patterns relevant to this topic.")] = None,
        tags: Annotated[list[str] | None, Field(description="Only patterns with all of these tags.")] = None,
        max_patterns: Annotated[ContextPatternCount | None, Field(
            description="At most this many patterns, the most relevant (default: as many as the budget "
                        "holds).")] = None,
        max_chars: Annotated[ContextFileChars | None, Field(
            description=f"Characters one generated file may hold, {MIN_FILE_CHARS:,} to {MAX_FILE_CHARS:,} "
                        "(default: the format's own budget).")] = None,
        project: ProjectArgument = None,
        cursor: Cursor = None,
    ) -> ContextFiles:
        """Render the team's patterns as AI context files (path + content). The files' shared parts go
        between <!-- aletheia:begin --> and <!-- aletheia:end --> markers; `aletheia-mcp context generate`
        writes them into a repository keeping the rest of each file. Files come whole, in pages: call
        again with `cursor` = `next_cursor` (same arguments) until it is null; a file too large for a
        response on its own is described in `summarised` instead."""
        return await run_tool(ctx, lambda: app_of(ctx).rule_files.generate_page(
            format, paths, query, tags, max_patterns, project, cursor, max_chars=max_chars,
            session=session_key(ctx)), fitted=True)

    @mcp.resource("aletheia://patterns/{id}", name="pattern", title="Engineering pattern",
                  description="One engineering pattern as JSON.", mime_type="application/json")
    async def pattern_resource(id: str, ctx: ToolContext) -> str:
        if not id.isdigit():
            raise ResourceNotFoundError(f"Pattern ids are integers, not {id!r}.")
        try:
            pattern = await app_of(ctx).patterns.get(int(id))
        except NotFoundError as exc:
            raise ResourceNotFoundError(str(exc)) from None
        return pattern.model_dump_json(indent=2)

    @mcp.prompt(name="conventions_for", title="Conventions for a file",
                description="The team's patterns (this project's and the global ones) that apply to a file, "
                            "as a ready-to-use message.")
    async def conventions_for(file_path: str, ctx: ToolContext) -> list[UserMessage]:
        # Within MAX_RESPONSE_CHARS like a tool result: the patterns that do not fit whole are summarised.
        try:
            with acting_for(ctx):
                message = await app_of(ctx).patterns.conventions_for(file_path, session=session_key(ctx))
        except AletheiaError as exc:
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None
        return [UserMessage(message)]
