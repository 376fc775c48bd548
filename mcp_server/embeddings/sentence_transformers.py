"""Optional provider: a sentence-transformers model on the CPU (needs torch, so it is an extra).

`sentence_transformers` is imported inside `load()` only: importing it pulls in torch, which
takes seconds and is not installed by default. A local model directory (EMBEDDING_MODEL_PATH)
works offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import numpy as np

from mcp_server.embeddings.base import describe, run_cpu_bound, short_reason, validate_vectors
from mcp_server.errors import EmbeddingUnavailableError

if TYPE_CHECKING:
    from mcp_server.settings import Settings

INSTALL_HINT = "pip install 'aletheia-mcp[sentence-transformers]'"


class SentenceTransformersEmbedder:
    """`sentence_transformers.SentenceTransformer` on the CPU; `load()` must succeed first."""

    name = "sentence-transformers"

    def __init__(
        self, model: str, dimension: int, *, model_path: str | Path | None = None, batch_size: int = 64
    ) -> None:
        self.model = model
        self.dimension = dimension
        self._model_path = str(model_path) if model_path else None
        self._batch_size = batch_size
        self._label = describe(self.name, model)
        self._engine: Any = None  # SentenceTransformer once loaded
        self._load_lock = anyio.Lock()
        self._limiter = anyio.CapacityLimiter(1)  # torch already uses every core for one batch

    @classmethod
    def from_settings(cls, settings: Settings) -> SentenceTransformersEmbedder:
        return cls(
            settings.embedding_model,
            settings.embedding_dim,
            model_path=settings.embedding_model_path,
            batch_size=settings.embedding_batch_size,
        )

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    def _construct(self) -> Any:
        try:
            from sentence_transformers import SentenceTransformer  # imports torch: slow, optional
        except ImportError as exc:
            raise EmbeddingUnavailableError(
                f"EMBEDDING_PROVIDER=sentence-transformers needs the optional sentence-transformers package, "
                f"which is not installed ({short_reason(exc)}). Install it with `{INSTALL_HINT}`, or choose "
                "another EMBEDDING_PROVIDER (fastembed needs no torch). Memories are still saved meanwhile; "
                "`aletheia-mcp reembed` embeds the waiting rows later."
            ) from exc
        source = self._model_path or self.model
        try:
            engine = SentenceTransformer(source, device="cpu")
        except Exception as exc:  # OSError for a missing model, HTTP errors offline, torch errors...
            raise EmbeddingUnavailableError(
                f'The sentence-transformers model "{source}" could not be loaded: {short_reason(exc)}. '
                "Set EMBEDDING_MODEL_PATH to a local model directory to work offline, or choose another "
                "EMBEDDING_PROVIDER. Memories are still saved meanwhile; `aletheia-mcp reembed` embeds the "
                "waiting rows later."
            ) from exc
        produced = engine.get_sentence_embedding_dimension()
        if produced is not None and produced != self.dimension:
            raise EmbeddingUnavailableError(
                f'The sentence-transformers model "{source}" produces {produced}-dimensional vectors but '
                f"EMBEDDING_DIM is {self.dimension}: set EMBEDDING_DIM={produced} (then run `aletheia-mcp "
                f"reembed` if vectors are already stored) or choose a model with {self.dimension} dimensions."
            )
        return engine

    async def load(self) -> None:
        """Import sentence-transformers and load the model in a worker thread."""
        async with self._load_lock:
            if self._engine is None:
                self._engine = await run_cpu_bound(self._construct)

    def _require_engine(self) -> Any:
        if self._engine is None:
            raise EmbeddingUnavailableError(
                f"{self._label} is not loaded yet (loading failed or has not finished); "
                "`aletheia-mcp reembed` embeds the waiting rows later."
            )
        return self._engine

    def _encode(self, texts: list[str], *, query: bool) -> np.ndarray:
        engine = self._require_engine()
        # sentence-transformers >= 5 applies the model's query/document prompts in these methods.
        method = getattr(engine, "encode_query" if query else "encode_document", None) or engine.encode
        return np.asarray(
            method(texts, batch_size=self._batch_size, convert_to_numpy=True, show_progress_bar=False)
        )

    async def embed_documents(self, texts: Sequence[str]) -> list[np.ndarray]:
        if not texts:
            return []
        batch = list(texts)
        matrix = await run_cpu_bound(lambda: self._encode(batch, query=False), self._limiter)
        return validate_vectors(matrix, self.dimension, self._label, expected_count=len(batch))

    async def embed_query(self, text: str) -> np.ndarray:
        matrix = await run_cpu_bound(lambda: self._encode([text], query=True), self._limiter)
        return validate_vectors(matrix, self.dimension, self._label, expected_count=1)[0]

    async def aclose(self) -> None:
        self._engine = None
