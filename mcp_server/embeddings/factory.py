"""Build the embedder the settings ask for; `load_embedder` also makes it ready."""

from __future__ import annotations

from mcp_server.embeddings.base import Embedder
from mcp_server.embeddings.fastembed import FastEmbedEmbedder
from mcp_server.embeddings.hashing import DEFAULT_MODEL as HASHING_DEFAULT_MODEL
from mcp_server.embeddings.hashing import HashingEmbedder
from mcp_server.embeddings.openai import OpenAIEmbedder
from mcp_server.embeddings.sentence_transformers import SentenceTransformersEmbedder
from mcp_server.errors import ConfigurationError
from mcp_server.schemas import EMBEDDING_PROVIDERS
from mcp_server.settings import Settings


def hashing_model_name(configured: str) -> str:
    """The model id recorded for hashing vectors.

    EMBEDDING_MODEL defaults to a fastembed model; recording "BAAI/bge-small-en-v1.5" for hashed
    vectors would make them look interchangeable with real ones, so only a name that says
    "hashing" is kept (and keeps making the vectors it made before: see embeddings/hashing.py).
    """
    return configured if configured.lower().startswith("hashing") else HASHING_DEFAULT_MODEL


def create_embedder(settings: Settings) -> Embedder:
    """The configured embedder, not loaded yet (cheap: no model read, no network)."""
    provider = settings.embedding_provider
    if provider == "hashing":
        return HashingEmbedder(settings.embedding_dim, model=hashing_model_name(settings.embedding_model))
    if provider == "fastembed":
        return FastEmbedEmbedder.from_settings(settings)
    if provider == "openai":
        return OpenAIEmbedder.from_settings(settings)
    if provider == "sentence-transformers":
        return SentenceTransformersEmbedder.from_settings(settings)
    raise ConfigurationError(
        f"EMBEDDING_PROVIDER={provider!r} is not a known provider: use one of {', '.join(EMBEDDING_PROVIDERS)}."
    )


async def load_embedder(settings: Settings) -> Embedder:
    """Create the configured embedder and load it; EmbeddingUnavailableError says why not.

    Loading a local model can take seconds (and, without a local model, a download attempt):
    callers that must answer quickly run this in the background or under `anyio.fail_after`.
    """
    embedder = create_embedder(settings)
    await embedder.load()
    return embedder
