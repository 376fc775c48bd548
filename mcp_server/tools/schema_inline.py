"""Publish output schemas without `$ref`s.

Pydantic puts nested models under `$defs` and points at them with `$ref`. Clients that validate
structured output (the official SDKs do, on every call) resolve each `$ref` for every list entry:
for `recall` with 10 results that resolution was most of the client's cost (~6 ms a call in the
Python SDK). The same schema with the definitions written in place validates the same data.
"""

from __future__ import annotations

import copy
from typing import Any

from mcp.server.mcpserver import MCPServer

_PREFIX = "#/$defs/"


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    definitions = schema.get("$defs", {})

    def resolve(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(_PREFIX) and ref[len(_PREFIX):] not in seen:
                name = ref[len(_PREFIX):]
                target = resolve(copy.deepcopy(definitions[name]), (*seen, name))
                extra = {k: resolve(v, seen) for k, v in node.items() if k != "$ref"}
                return {**target, **extra}
            return {k: resolve(v, seen) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [resolve(v, seen) for v in node]
        return node

    inlined = resolve(schema, ())
    return inlined if "$ref" not in str(inlined) else schema  # recursive models keep their refs


def inline_output_schemas(mcp: MCPServer) -> None:
    # The SDK offers no public hook for a tool's published schema; FuncMetadata holds it.
    for tool in mcp._tool_manager.list_tools():
        schema = tool.fn_metadata.output_schema
        if schema and "$defs" in schema:
            tool.fn_metadata.output_schema = inline_refs(schema)
