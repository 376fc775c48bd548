"""An MCP server that does no work: the floor under every latency the benchmark reports.

Same SDK, transport and client as our server. `nothing` returns a short text without an output
schema (the least a tool call can cost); `recall` answers like our `recall` (same signature,
same published output schema, ten memories of benchmark-sized text) without any search, so our
recall's p50 minus this one's is what the search costs. Run as `python -m bench.floor_server`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from mcp_server.schemas import RecalledMemory, RecallResult
from mcp_server.tools.schema_inline import inline_output_schemas

NOTE = ("Note 7: retry the snapshot job with backoff when the cache times out; the api client logs each attempt "
        "and the incident review checks the query plan. ")

mcp = MCPServer("aletheia-floor")


@mcp.tool()
async def nothing() -> str:
    return "ok"


@mcp.tool()
async def recall(query: Annotated[str, Field(description="ignored")], limit: int = 5,
                 source: str | None = None, metadata: dict[str, Any] | None = None,
                 min_score: float | None = None) -> RecallResult:
    hits = [RecalledMemory(id=i + 1, content=NOTE, source="bench", metadata={"group": i},
                           created_at=datetime(2026, 1, 1, tzinfo=UTC), score=0.5, found_by="both", similarity=0.5,
                           keyword_score=1.0) for i in range(limit)]
    return RecallResult(results=hits, mode="hybrid")


inline_output_schemas(mcp)

if __name__ == "__main__":
    mcp.run()
