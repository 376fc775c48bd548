"""Publish output schemas without `$ref`s.

Pydantic puts nested models under `$defs` and points at them with `$ref`. Clients that validate
structured output (the official SDKs do, on every call) resolve each `$ref` for every list entry:
for `recall` with 10 results that resolution was most of the client's cost (~6 ms a call in the
Python SDK). The same schema with the definitions written in place validates the same data.

Optional fields get the same treatment: pydantic writes `str | None` as
`anyOf: [{type: string}, {type: null}]`, which a validator checks branch by branch; the
equivalent `type: [string, null]` is one check (recall's 10 results validate in 0.8 ms instead
of 1.3 ms in the Python SDK).
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


def merge_nullable_types(node: Any) -> Any:
    """`anyOf` of bare `{type: ...}` branches (pydantic's `X | None`) as one `type` list."""
    if isinstance(node, list):
        return [merge_nullable_types(v) for v in node]
    if not isinstance(node, dict):
        return node
    merged = {k: merge_nullable_types(v) for k, v in node.items()}
    branches = merged.get("anyOf")
    if (isinstance(branches, list) and branches and "type" not in merged
            and all(isinstance(b, dict) and set(b) == {"type"} and isinstance(b["type"], str) for b in branches)):
        del merged["anyOf"]
        merged["type"] = [b["type"] for b in branches]
    return merged


def inline_output_schemas(mcp: MCPServer) -> None:
    # The SDK offers no public hook for a tool's published schema; FuncMetadata holds it.
    for tool in mcp._tool_manager.list_tools():
        schema = tool.fn_metadata.output_schema
        if schema:
            tool.fn_metadata.output_schema = merge_nullable_types(inline_refs(schema) if "$defs" in schema else schema)
