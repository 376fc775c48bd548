"""sentence-transformers is an optional extra (it needs torch): without it, say how to install it."""

from __future__ import annotations

import importlib.util
import time

import pytest

from mcp_server.embeddings import create_embedder, load_embedder
from mcp_server.embeddings.sentence_transformers import SentenceTransformersEmbedder
from mcp_server.errors import EmbeddingUnavailableError
from mcp_server.settings import Settings

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(
        importlib.util.find_spec("sentence_transformers") is not None,
        reason="sentence-transformers is installed; this tests the message given when it is not",
    ),
]


async def test_missing_package_says_how_to_install_it() -> None:
    settings = Settings(_env_file=None, embedding_provider="sentence-transformers", embedding_model="all-MiniLM-L6-v2")
    embedder = create_embedder(settings)  # creating is cheap and never imports torch
    assert isinstance(embedder, SentenceTransformersEmbedder) and not embedder.loaded
    assert (embedder.name, embedder.model) == ("sentence-transformers", "all-MiniLM-L6-v2")
    started = time.monotonic()
    with pytest.raises(EmbeddingUnavailableError) as caught:
        await load_embedder(settings)
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "pip install 'aletheia-memory-mcp[sentence-transformers]'" in message
    assert "EMBEDDING_PROVIDER" in message
    with pytest.raises(EmbeddingUnavailableError, match="not loaded"):
        await embedder.embed_documents(["x"])
