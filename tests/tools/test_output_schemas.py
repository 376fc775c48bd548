"""The output schemas the server publishes: cheap for clients to validate, and exactly as strict."""

from __future__ import annotations

import json

import jsonschema
import pytest
from mcp import Client

from mcp_server.schemas import RecallResult
from tests.helpers import call

pytestmark = pytest.mark.anyio


async def test_published_schemas_have_no_refs_or_nullable_any_of(client: Client) -> None:
    tools = (await client.list_tools()).tools
    assert tools
    for tool in tools:
        text = json.dumps(tool.output_schema)
        assert "$ref" not in text and "$defs" not in text, tool.name
        assert '"anyOf": [{"type"' not in text, tool.name


async def test_the_lean_recall_schema_accepts_and_rejects_what_the_model_does(client: Client) -> None:
    await call(client, "remember", {"content": "Retries back off exponentially.", "source": None})
    found = await call(client, "recall", {"query": "retries back off"})
    published = next(t for t in (await client.list_tools()).tools if t.name == "recall").output_schema
    assert published is not None
    pydantic_schema = RecallResult.model_json_schema()
    wrong_source = {**found, "results": [{**found["results"][0], "source": 5}]}
    missing_score = {**found, "results": [{k: v for k, v in found["results"][0].items() if k != "score"}]}
    bad_mode = {**found, "mode": "telepathy"}
    for schema in (published, pydantic_schema):
        jsonschema.validate(found, schema)
        for bad in (wrong_source, missing_score, bad_mode):
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate(bad, schema)
    assert found["results"][0]["source"] is None  # null is still allowed
