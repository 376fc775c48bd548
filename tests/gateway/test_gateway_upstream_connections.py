"""The gateway's connections to its upstream: reused while busy, given up before the upstream
closes them.

The upstream here is uvicorn with its default keep-alive (an idle connection is closed after
5 s), as vLLM and most Python servers run (Node closes after 5 s too). A connection the gateway
kept longer could be reused just as the upstream closes it: the call then fails with a 502 that
the upstream never saw. That race cannot be produced on demand, so what is checked is the rule
that prevents it: a connection idle for 4.5 s is not reused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import uvicorn

from tests.gateway.test_gateway_sdk import running_gateway
from tests.helpers import free_port, make_settings

pytestmark = pytest.mark.anyio

UVICORN_KEEP_ALIVE_S = 5  # uvicorn's default timeout_keep_alive
COMPLETION = (b'{"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-fake", "choices": '
              b'[{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}')


class CountingUpstream:
    """An ASGI chat completions upstream that notes the client address (one per TCP connection)."""

    def __init__(self) -> None:
        self.peers: list[tuple[str, int]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        self.peers.append(tuple(scope["client"]))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": COMPLETION})


@asynccontextmanager
async def running_counting_upstream() -> AsyncIterator[tuple[str, CountingUpstream]]:
    upstream = CountingUpstream()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(upstream, host="127.0.0.1", port=port, lifespan="off", log_config=None,
                                           timeout_keep_alive=UVICORN_KEEP_ALIVE_S))
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(server.serve)
        with anyio.fail_after(30):
            while not server.started:
                assert not server.should_exit, "the upstream did not start"
                await anyio.sleep(0.02)
        try:
            yield f"http://127.0.0.1:{port}", upstream
        finally:
            server.should_exit = True


async def test_busy_connections_are_reused_and_idle_ones_given_up_before_the_upstream_closes_them(
        database_url: str, tmp_path: Path) -> None:
    async with running_counting_upstream() as (url, upstream):
        settings = make_settings(database_url, tmp_path, gateway_openai_upstream=url, gateway_anthropic_upstream=url)
        async with running_gateway(settings) as gateway, httpx2.AsyncClient(base_url=gateway.url) as client:
            async def call() -> None:
                response = await client.post("/v1/chat/completions", json={
                    "model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]})
                assert response.status_code == 200, response.text

            await call()
            await call()
            assert len(set(upstream.peers)) == 1  # back to back: one connection, reused
            await anyio.sleep(UVICORN_KEEP_ALIVE_S - 0.5)  # idle, but not yet closed by the upstream
            await call()
    assert len(upstream.peers) == 3
    assert upstream.peers[2] != upstream.peers[1]  # a new connection, not one the upstream is about to close
