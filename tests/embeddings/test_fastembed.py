"""FastEmbedEmbedder offline: fails fast with a remedy, and loads a local model directory.

No model is ever downloaded: the success path uses a tiny ONNX model built by tiny_model.py
and loaded through EMBEDDING_MODEL_PATH exactly as a real bge-small export would be.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import numpy as np
import pytest

from mcp_server.embeddings import create_embedder, load_embedder
from mcp_server.embeddings.fastembed import FastEmbedEmbedder
from mcp_server.errors import EmbeddingUnavailableError
from mcp_server.settings import Settings
from tests.embeddings.tiny_model import build_cached_model, build_tiny_model, expected_vector
from tests.helpers import clean_env

pytestmark = pytest.mark.anyio

MODEL = "BAAI/bge-small-en-v1.5"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("FASTEMBED_CACHE_PATH", "EMBEDDING_MODEL_PATH", "EMBEDDING_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)


def fastembed_settings(**values: Any) -> Settings:
    return Settings(_env_file=None, embedding_provider="fastembed", embedding_model=MODEL, **values)


async def test_empty_cache_fails_fast_with_the_remedy(tmp_path: Path) -> None:
    cache = tmp_path / "empty-cache"
    cache.mkdir()
    embedder = create_embedder(fastembed_settings(embedding_cache_dir=cache))
    with pytest.raises(EmbeddingUnavailableError) as caught:
        await embedder.load()
    message = str(caught.value)
    assert f'"{MODEL}" is not in the cache at {cache} (FASTEMBED_CACHE_PATH is set' in message
    assert "aletheia-mcp models download" in message and "EMBEDDING_MODEL_PATH" in message
    assert "EMBEDDING_PROVIDER" in message and "aletheia-mcp reembed" in message
    assert list(cache.rglob("*")) == []  # nothing was fetched
    # Not loaded: embedding says so instead of crashing.
    with pytest.raises(EmbeddingUnavailableError, match="not loaded"):
        await embedder.embed_query("hello")


OFFLINE_LOAD = """
import anyio
from mcp_server.embeddings import load_embedder
from mcp_server.errors import EmbeddingUnavailableError
from mcp_server.settings import Settings
try:
    anyio.run(load_embedder, Settings(_env_file=None, embedding_provider="fastembed"))
except EmbeddingUnavailableError as exc:
    print(exc)
"""


def offline_environment(tmp_path: Path) -> dict[str, str]:
    """The default settings on a machine without network: Hugging Face unreachable (a closed local
    port), no HF_HUB_OFFLINE, no cache configured (the default cache, in XDG_CACHE_HOME, is empty, and
    so is the old one in TMPDIR)."""
    environment = clean_env(TMPDIR=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "xdg"),
                            HF_ENDPOINT="http://127.0.0.1:1")
    for name in ("HF_HUB_OFFLINE", "FASTEMBED_CACHE_PATH", "EMBEDDING_MODEL_PATH", "EMBEDDING_CACHE_DIR"):
        environment.pop(name, None)
    return environment


def test_default_model_offline_fails_at_once_quietly_and_says_how_to_fetch_it(tmp_path: Path) -> None:
    """Before: three download attempts sleeping 3, 9 and 27 s, with fastembed's ERROR lines on stderr."""
    result = subprocess.run([sys.executable, "-c", OFFLINE_LOAD], env=offline_environment(tmp_path),
                            capture_output=True, text=True, timeout=30)  # (a guard: the retries took ~40 s)
    cache = tmp_path / "xdg" / "aletheia" / "fastembed"
    assert f'"{MODEL}" is not in the cache at {cache} and could not be downloaded' in result.stdout
    assert "Hugging Face is unreachable: ConnectError" in result.stdout
    assert "aletheia-mcp models download" in result.stdout and "FASTEMBED_CACHE_PATH" in result.stdout
    assert "ERROR" not in result.stderr and "sleeping" not in result.stderr, result.stderr


async def test_a_cached_model_loads_without_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache copied from another machine (Hugging Face's layout) is used as it is."""
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:1")  # (read by huggingface_hub at import: belt and braces)
    table = build_cached_model(tmp_path / "cache")
    embedder = await load_embedder(fastembed_settings(embedding_cache_dir=tmp_path / "cache"))
    np.testing.assert_allclose(await embedder.embed_query("vector search"), expected_vector(table, "vector"),
                               atol=1e-5)
    await embedder.aclose()


async def test_model_path_without_a_model_fails_fast(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(EmbeddingUnavailableError) as caught:
        await load_embedder(fastembed_settings(embedding_model_path=tmp_path))
    assert time.monotonic() - started < 15
    assert f"EMBEDDING_MODEL_PATH={tmp_path}" in str(caught.value)


async def test_dimension_mismatch_names_both() -> None:
    with pytest.raises(EmbeddingUnavailableError) as caught:
        await load_embedder(fastembed_settings(embedding_dim=768))
    message = str(caught.value)
    assert "384" in message and "768" in message and "EMBEDDING_DIM" in message


async def test_unknown_model_is_explained() -> None:
    with pytest.raises(EmbeddingUnavailableError, match='does not know the model "acme/nope"'):
        await load_embedder(Settings(_env_file=None, embedding_provider="fastembed", embedding_model="acme/nope"))


async def test_local_model_directory_loads_and_embeds_offline(tmp_path: Path) -> None:
    table = build_tiny_model(tmp_path / "bge-small")
    embedder = await load_embedder(
        fastembed_settings(embedding_model_path=tmp_path / "bge-small", embedding_batch_size=2)
    )
    assert isinstance(embedder, FastEmbedEmbedder) and embedder.loaded
    assert (embedder.name, embedder.model, embedder.dimension) == ("fastembed", MODEL, 384)
    texts = ["alpha is first", "Postgres holds memory", "vector search", "unknownword here", "delta"]
    vectors = await embedder.embed_documents(texts)
    assert len(vectors) == len(texts)
    for text, vector in zip(texts, vectors, strict=True):
        assert vector.dtype == np.float32 and vector.shape == (384,)
        np.testing.assert_allclose(vector, expected_vector(table, text), atol=1e-5)
    query = await embedder.embed_query("memory of gamma")
    np.testing.assert_allclose(query, expected_vector(table, "memory"), atol=1e-5)
    assert await embedder.embed_documents([]) == []
    await embedder.aclose()
    assert not embedder.loaded


async def test_embedding_does_not_block_the_event_loop(tmp_path: Path) -> None:
    """While a batch is embedded in its worker thread, other tasks keep running."""
    build_tiny_model(tmp_path / "m")
    embedder = await load_embedder(fastembed_settings(embedding_model_path=tmp_path / "m"))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(ticker)
        await embedder.embed_documents(["alpha beta gamma " * 30] * 2000)
        tasks.cancel_scope.cancel()
    assert ticks > 10
