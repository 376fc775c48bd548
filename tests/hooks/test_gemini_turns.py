"""Gemini CLI gives no id for a turn: two turns with the same prompt in one session (a second
"yes") are told apart by the AfterAgent payload's timestamp, and each is logged as its own
exchange with what the hooks gave during it (real adapter, real service, real database)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mcp_server.app_context import open_app
from mcp_server.hooks.clients import adapter_for
from mcp_server.services.hook_events import TurnEnd
from mcp_server.settings import Settings
from tests.helpers import conversation_rows, make_repository

pytestmark = pytest.mark.anyio
FIXTURES = Path(__file__).parent / "fixtures" / "gemini"


def payload(name: str, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    values.update(fields)
    return values


def test_the_after_agent_timestamp_dates_the_turn() -> None:
    adapter = adapter_for("gemini")
    event = adapter.parse("stop", payload("AfterAgent.json"), cwd="/")
    assert isinstance(event, TurnEnd) and event.turn is not None
    assert event.turn.ended_at is not None and event.turn.ended_at.isoformat() == "2026-01-28T10:00:09+00:00"
    bad = adapter.parse("stop", payload("AfterAgent.json", timestamp="yesterday"), cwd="/")
    assert isinstance(bad, TurnEnd) and bad.turn is not None and bad.turn.ended_at is None  # still logged


async def test_the_same_prompt_twice_is_logged_as_two_turns(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    repo = make_repository(tmp_path / "app", "git@github.com:acme/app.git")
    adapter = adapter_for("gemini")
    async with open_app(settings) as app:
        memory = await app.memories.remember("Deploys use the blue-green pipeline.", project="github.com/acme/app")
        first_prompt = await app.hooks.handle(adapter.parse(
            "prompt", payload("BeforeAgent.json", cwd=str(repo), prompt="yes, the blue-green pipeline"), cwd="/"))
        first = await app.hooks.handle(adapter.parse(
            "stop", payload("AfterAgent.json", cwd=str(repo), prompt="yes", prompt_response="Done."), cwd="/"))
        second = await app.hooks.handle(adapter.parse(
            "stop", payload("AfterAgent.json", cwd=str(repo), prompt="yes", prompt_response="Done again.",
                            timestamp="2026-01-28T10:05:00.000Z"), cwd="/"))

    assert first_prompt.memory_ids == [memory.id]
    assert first.logged_exchange_id is not None and second.logged_exchange_id is not None
    assert first.logged_exchange_id != second.logged_exchange_id
    rows = await conversation_rows(database_url)
    assert [(r["response"]["content"][0]["text"], r["memory_ids"]) for r in rows] == [
        ("Done.", [memory.id]), ("Done again.", [])]
