"""Text embeddings: the `Embedder` protocol and its providers.

Providers are fastembed (default, local ONNX), openai (any OpenAI-compatible API),
sentence-transformers (optional extra) and hashing (deterministic, dependency-free).
Heavy libraries (fastembed, torch) are imported only when a model is loaded.
"""

from mcp_server.embeddings.base import Embedder, validate_vectors
from mcp_server.embeddings.factory import create_embedder, load_embedder
from mcp_server.embeddings.hashing import HashingEmbedder

__all__ = ["Embedder", "HashingEmbedder", "create_embedder", "load_embedder", "validate_vectors"]
