"""server_status tells the truth about the embedder: `degraded` with the latest error while its calls fail,
`ready` again once one succeeds. The embedder is the real `openai` provider, against a closed port and
against the tests' own loopback embeddings API made to fail and then recover."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from mcp_server.server import create_server
from mcp_server.services import embedding_runtime
from mcp_server.settings import Settings
from tests.fake_embeddings_api import Reply, running_api
from tests.helpers import call, free_port, make_settings

pytestmark = pytest.mark.anyio
DIM = 16


def api_settings(database_url: str, tmp_path: Path, base_url: str) -> Settings:
    return make_settings(database_url, tmp_path, embedding_provider="openai", embedding_model="fake-embed",
                         embedding_dim=DIM, embedding_api_base=base_url, embedding_max_retries=0,
                         embedding_timeout_s=2.0)


async def test_an_api_at_a_closed_port_is_not_reported_ready(database_url: str, tmp_path: Path) -> None:
    settings = api_settings(database_url, tmp_path, f"http://127.0.0.1:{free_port()}/v1")
    async with Client(create_server(settings)) as client:
        stored = await call(client, "remember", {"content": "Deploys go out on Tuesdays."})
        assert stored["embedded"] is False
        embedder = (await call(client, "server_status"))["embedder"]
    assert embedder["state"] == "degraded"
    assert embedder["consecutive_failures"] >= 1 and embedder["last_error_at"] is not None
    assert embedder["last_success_at"] is None
    assert "The embeddings API at http://127.0.0.1:" in embedder["detail"]
    assert "no call has succeeded since the server started" in embedder["detail"]


async def test_degraded_while_calls_fail_then_ready_again(database_url: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # Every call probes the degraded embedder at once (no backoff: tests/services/test_embedding_runtime.py).
    monkeypatch.setattr(embedding_runtime, "PROBE_FIRST_DELAY_S", 0.0)
    with running_api(DIM) as api:
        settings = api_settings(database_url, tmp_path, api.base_url)
        async with Client(create_server(settings)) as client:
            assert (await call(client, "remember", {"content": "first, while the API works"}))["embedded"] is True
            assert (await call(client, "server_status"))["embedder"]["state"] == "ready"

            api.reply(*[Reply(status=503, body={"error": {"message": "overloaded"}})] * 2)
            await call(client, "remember", {"content": "second, during the outage"})
            await call(client, "recall", {"query": "outage"})
            embedder = (await call(client, "server_status"))["embedder"]
            assert embedder["state"] == "degraded" and embedder["consecutive_failures"] == 2
            assert "the latest 2 embedding calls failed" in embedder["detail"]
            assert "HTTP 503" in embedder["detail"] and "overloaded" in embedder["detail"]
            assert embedder["last_success_at"] is not None

            assert (await call(client, "remember", {"content": "third, the API is back"}))["embedded"] is True
            embedder = (await call(client, "server_status"))["embedder"]
    assert embedder["state"] == "ready" and embedder["detail"] is None
    assert embedder["consecutive_failures"] == 0 and embedder["last_error_at"] is not None
