"""create_embedder / load_embedder pick the configured provider and load nothing over the network."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mcp_server.embeddings import Embedder, HashingEmbedder, create_embedder, load_embedder
from mcp_server.embeddings.fastembed import FastEmbedEmbedder
from mcp_server.embeddings.openai import OpenAIEmbedder
from mcp_server.errors import ConfigurationError
from mcp_server.settings import Settings

pytestmark = pytest.mark.anyio


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


@pytest.mark.parametrize(
    ("provider", "cls"),
    [("hashing", HashingEmbedder), ("fastembed", FastEmbedEmbedder), ("openai", OpenAIEmbedder)],
)
def test_create_embedder_picks_the_provider(provider: str, cls: type) -> None:
    embedder = create_embedder(settings(embedding_provider=provider, embedding_dim=384))
    assert isinstance(embedder, cls) and isinstance(embedder, Embedder)
    assert embedder.name == provider and embedder.dimension == 384


def test_fastembed_and_openai_record_the_configured_model() -> None:
    assert create_embedder(settings(embedding_provider="fastembed")).model == "BAAI/bge-small-en-v1.5"
    embedder = create_embedder(settings(embedding_provider="openai", embedding_model="nomic-embed-text"))
    assert embedder.model == "nomic-embed-text"


@pytest.mark.parametrize(
    ("configured", "recorded"),
    [("hashing-v1", "hashing-v1"), ("hashing-test", "hashing-test"), ("BAAI/bge-small-en-v1.5", "hashing-v2")],
)
def test_hashing_never_records_another_model_name(configured: str, recorded: str) -> None:
    embedder = create_embedder(settings(embedding_provider="hashing", embedding_model=configured, embedding_dim=64))
    assert embedder.model == recorded and embedder.dimension == 64


async def test_load_embedder_hashing_is_ready_at_once() -> None:
    embedder = await load_embedder(settings(embedding_provider="hashing", embedding_dim=32))
    vector = await embedder.embed_query("ready")
    assert vector.shape == (32,) and vector.dtype == np.float32
    await embedder.aclose()


async def test_load_embedder_openai_makes_no_request() -> None:
    # Port 9 (discard) on localhost: any request would fail; load must not make one.
    embedder = await load_embedder(
        settings(embedding_provider="openai", embedding_api_base="http://127.0.0.1:9/v1", openai_api_key="sk-x")
    )
    assert isinstance(embedder, OpenAIEmbedder)
    await embedder.aclose()


def test_unknown_provider_is_a_configuration_error() -> None:
    bogus = settings().model_copy(update={"embedding_provider": "word2vec"})
    with pytest.raises(ConfigurationError, match=r"EMBEDDING_PROVIDER='word2vec'.*hashing"):
        create_embedder(bogus)
