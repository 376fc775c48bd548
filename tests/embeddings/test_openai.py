"""OpenAIEmbedder against a real local HTTP server (tests/embeddings/fake_api.py)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from mcp_server.embeddings.openai import OpenAIEmbedder
from mcp_server.errors import EmbeddingUnavailableError, InvalidEmbeddingError
from mcp_server.settings import Settings
from tests.fake_embeddings_api import FakeEmbeddingsAPI, Reply, reference_vector, running_api

pytestmark = pytest.mark.anyio

DIM = 16
KEY = "sk-test-SECRET-0123456789abcdef"


@pytest.fixture
def api() -> Iterator[FakeEmbeddingsAPI]:
    with running_api(DIM) as server:
        yield server


@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own OPENAI_API_KEY must not leak into the tests' settings.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def make(api: FakeEmbeddingsAPI, **settings: Any) -> OpenAIEmbedder:
    values: dict[str, Any] = {
        "embedding_provider": "openai",
        "embedding_model": "text-embedding-3-small",
        "embedding_dim": DIM,
        "embedding_api_base": api.base_url + "/",  # trailing slash: must be stripped
        "embedding_timeout_s": 5.0,
    }
    values.update(settings)
    return OpenAIEmbedder.from_settings(Settings(_env_file=None, **values), backoff_base_s=0.01)  # fast retries


async def test_batches_in_order_even_when_server_shuffles() -> None:
    with running_api(DIM, shuffle=True) as api:
        embedder = make(api, embedding_batch_size=64, openai_api_key=KEY)
        texts = [f"note number {i} about topic {i % 7}" for i in range(150)]
        try:
            vectors = await embedder.embed_documents(texts)
        finally:
            await embedder.aclose()

    assert [len(r.body["input"]) for r in api.received] == [64, 64, 22]
    assert [r.path for r in api.received] == ["/v1/embeddings"] * 3
    assert api.received[0].body["input"] == texts[:64]
    assert api.received[2].body["input"] == texts[128:]
    for request in api.received:
        assert request.body["model"] == "text-embedding-3-small"
        assert "dimensions" not in request.body  # many compatible servers reject it
        assert request.headers["authorization"] == f"Bearer {KEY}"
    # The server shuffled `data`; the client must have used `index`.
    assert len(vectors) == 150
    for text, vector in zip(texts, vectors, strict=True):
        assert vector.dtype == np.float32 and vector.shape == (DIM,)
        np.testing.assert_allclose(vector, reference_vector(text, DIM), atol=1e-6)


async def test_query_is_one_request(api: FakeEmbeddingsAPI) -> None:
    embedder = make(api)
    vector = await embedder.embed_query("what did we decide about retries?")
    await embedder.aclose()
    assert [r.body["input"] for r in api.received] == [["what did we decide about retries?"]]
    np.testing.assert_allclose(vector, reference_vector("what did we decide about retries?", DIM), atol=1e-6)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


async def test_empty_input_sends_nothing(api: FakeEmbeddingsAPI) -> None:
    embedder = make(api)
    assert await embedder.embed_documents([]) == []
    await embedder.load()  # no network at load either
    assert api.received == []


async def test_retries_429_then_succeeds(api: FakeEmbeddingsAPI) -> None:
    api.reply(
        Reply(429, {"error": {"message": "Rate limit reached"}}, headers={"Retry-After": "0"}),
        Reply(429, {"error": {"message": "Rate limit reached"}}),
    )
    embedder = make(api, embedding_max_retries=3)
    started = time.monotonic()
    vectors = await embedder.embed_documents(["alpha", "beta"])
    await embedder.aclose()
    assert len(api.received) == 3
    assert len(vectors) == 2
    np.testing.assert_allclose(vectors[1], reference_vector("beta", DIM), atol=1e-6)
    assert time.monotonic() - started < 2.0


async def test_retry_after_is_honoured_but_capped(api: FakeEmbeddingsAPI) -> None:
    api.reply(Reply(503, {"error": {"message": "busy"}}, headers={"Retry-After": "3600"}))
    embedder = OpenAIEmbedder(
        "m", DIM, api_base=api.base_url, max_retries=1, backoff_base_s=0.01, max_retry_after_s=0.3
    )
    started = time.monotonic()
    await embedder.embed_documents(["x"])
    elapsed = time.monotonic() - started
    await embedder.aclose()
    assert len(api.received) == 2
    assert 0.25 <= elapsed < 3.0


async def test_401_is_not_retried_and_never_shows_the_key(api: FakeEmbeddingsAPI) -> None:
    api.reply(Reply(401, {"error": {"message": f"Incorrect API key provided: {KEY}"}}))
    embedder = make(api, openai_api_key=KEY, embedding_max_retries=3)
    with pytest.raises(EmbeddingUnavailableError) as caught:
        await embedder.embed_documents(["hello"])
    await embedder.aclose()
    message = str(caught.value)
    assert "401" in message and "OPENAI_API_KEY" in message and api.base_url in message
    assert KEY not in message and KEY[-8:] not in message
    assert len(api.received) == 1


async def test_401_without_a_key_says_to_set_one(api: FakeEmbeddingsAPI) -> None:
    api.reply(Reply(401, {"error": {"message": "You didn't provide an API key."}}))
    embedder = make(api)
    with pytest.raises(EmbeddingUnavailableError, match=r"HTTP 401.*set OPENAI_API_KEY"):
        await embedder.embed_query("hello")
    await embedder.aclose()


async def test_other_4xx_shows_the_api_message_without_the_key(api: FakeEmbeddingsAPI) -> None:
    api.reply(Reply(400, {"error": {"message": f"model 'nope' not found (key {KEY})" + " x" * 500}}))
    embedder = make(api, openai_api_key=KEY)
    with pytest.raises(EmbeddingUnavailableError) as caught:
        await embedder.embed_query("hello")
    await embedder.aclose()
    message = str(caught.value)
    assert "HTTP 400" in message and "model 'nope' not found" in message
    assert KEY not in message
    assert len(message) < 800  # the API's text is truncated
    assert len(api.received) == 1


async def test_404_points_at_the_base_url(api: FakeEmbeddingsAPI) -> None:
    api.reply(Reply(404, raw=b"<html>Not Found</html>"))
    embedder = make(api)
    with pytest.raises(EmbeddingUnavailableError, match=r"HTTP 404.*EMBEDDING_API_BASE"):
        await embedder.embed_query("hello")
    await embedder.aclose()


async def test_500_forever_gives_up_after_max_retries(api: FakeEmbeddingsAPI) -> None:
    api.reply(*[Reply(500, {"error": {"message": "boom"}}) for _ in range(10)])
    embedder = make(api, embedding_max_retries=2)
    with pytest.raises(EmbeddingUnavailableError) as caught:
        await embedder.embed_documents(["a", "b"])
    await embedder.aclose()
    message = str(caught.value)
    assert len(api.received) == 3
    assert "3 attempts" in message and "HTTP 500" in message and "boom" in message
    assert api.base_url in message


async def test_no_retries_configured_means_one_attempt(api: FakeEmbeddingsAPI) -> None:
    api.reply(Reply(502, {"error": {"message": "bad gateway"}}))
    embedder = make(api, embedding_max_retries=0)
    with pytest.raises(EmbeddingUnavailableError, match="after 1 attempt "):
        await embedder.embed_query("a")
    await embedder.aclose()
    assert len(api.received) == 1


@pytest.mark.parametrize(
    ("bad", "reason"),
    [(float("nan"), "NaN"), (0.0, "all-zero")],
)
async def test_nan_or_zero_vector_is_refused(api: FakeEmbeddingsAPI, bad: float, reason: str) -> None:
    def corrupt(embedding: list[float], index: int) -> list[float]:
        if index == 1:
            if reason == "NaN":
                return [bad, *embedding[1:]]
            return [0.0] * len(embedding)
        return embedding

    api.vector_hook = corrupt
    embedder = make(api)
    with pytest.raises(InvalidEmbeddingError) as caught:
        await embedder.embed_documents(["fine", "broken"])
    await embedder.aclose()
    message = str(caught.value)
    assert reason in message and "openai" in message and "text-embedding-3-small" in message


async def test_wrong_length_names_both_sizes(api: FakeEmbeddingsAPI) -> None:
    api.vector_hook = lambda embedding, index: embedding + [0.5] * 8  # 24 instead of 16
    embedder = make(api)
    with pytest.raises(InvalidEmbeddingError) as caught:
        await embedder.embed_query("hello")
    await embedder.aclose()
    message = str(caught.value)
    assert "24" in message and "16" in message and "EMBEDDING_DIM" in message


async def test_missing_embeddings_are_refused(api: FakeEmbeddingsAPI) -> None:
    api.reply(Reply(200, {"data": [{"index": 0, "embedding": [1.0] * DIM}]}))
    embedder = make(api)
    with pytest.raises(InvalidEmbeddingError, match="for 2 texts"):
        await embedder.embed_documents(["a", "b"])
    await embedder.aclose()


async def test_non_json_success_is_a_configuration_problem(api: FakeEmbeddingsAPI) -> None:
    api.reply(Reply(200, raw=b"<html>a web page, not an API</html>"))
    embedder = make(api)
    with pytest.raises(EmbeddingUnavailableError, match="EMBEDDING_API_BASE"):
        await embedder.embed_query("a")
    await embedder.aclose()


async def test_no_key_means_no_authorization_header(api: FakeEmbeddingsAPI) -> None:
    embedder = make(api)  # e.g. Ollama or LM Studio
    await embedder.embed_query("hello")
    await embedder.aclose()
    assert "authorization" not in api.received[0].headers


async def test_timeout_is_retried_then_reported(api: FakeEmbeddingsAPI) -> None:
    api.reply(Reply(delay_s=1.0), Reply(delay_s=1.0))
    embedder = make(api, embedding_timeout_s=0.2, embedding_max_retries=1)
    started = time.monotonic()
    with pytest.raises(EmbeddingUnavailableError) as caught:
        await embedder.embed_query("slow")
    await embedder.aclose()
    assert time.monotonic() - started < 1.5
    assert "2 attempts" in str(caught.value) and "EMBEDDING_TIMEOUT_S" in str(caught.value)


async def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}/v1"
    embedder = OpenAIEmbedder("m", DIM, api_base=base, max_retries=2, backoff_base_s=0.01)
    with pytest.raises(EmbeddingUnavailableError) as caught:
        await embedder.embed_query("x")
    await embedder.aclose()
    message = str(caught.value)
    assert base in message and "3 attempts" in message and "ConnectError" in message


async def test_credentials_in_the_base_url_are_redacted() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    embedder = OpenAIEmbedder("m", DIM, api_base=f"http://user:hunter2@127.0.0.1:{port}/v1", max_retries=0)
    with pytest.raises(EmbeddingUnavailableError) as caught:
        await embedder.embed_query("x")
    await embedder.aclose()
    assert "hunter2" not in str(caught.value) and "user:***@" in str(caught.value)
