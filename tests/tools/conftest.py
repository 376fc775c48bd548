"""Fixtures for driving the real server through the official in-memory MCP client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from mcp import Client

from mcp_server.server import create_server
from mcp_server.settings import Settings


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with Client(create_server(settings)) as connected:
        yield connected
