"""Optional provider: a sentence-transformers model on the CPU (needs torch, so it is an extra).

`sentence_transformers` is imported inside `load()` only: importing it pulls in torch, which
takes seconds and is not installed by default. A local model directory (EMBEDDING_MODEL_PATH)
works offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mcp_server.embeddings.base import short_reason
from mcp_server.embeddings.local_model import LocalModelEmbedder
from mcp_server.errors import EmbeddingUnavailableError

if TYPE_CHECKING:
    from mcp_server.settings import Settings

INSTALL_HINT = "pip install 'aletheia-memory-mcp[sentence-transformers]'"


class SentenceTransformersEmbedder(LocalModelEmbedder):
    """`sentence_transformers.SentenceTransformer` on the CPU; `load()` must succeed first."""

    name = "sentence-transformers"
    not_loaded_advice = "; `aletheia-mcp reembed` embeds the waiting rows later."

    def __init__(
        self, model: str, dimension: int, *, model_path: str | Path | None = None, batch_size: int = 64
    ) -> None:
        super().__init__(model, dimension, batch_size)
        self._model_path = str(model_path) if model_path else None

    @classmethod
    def from_settings(cls, settings: Settings) -> SentenceTransformersEmbedder:
        return cls(
            settings.embedding_model,
            settings.embedding_dim,
            model_path=settings.embedding_model_path,
            batch_size=settings.embedding_batch_size,
        )

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

    def _encode(self, engine: Any, texts: list[str], *, query: bool) -> np.ndarray:
        # sentence-transformers >= 5 applies the model's query/document prompts in these methods.
        method = getattr(engine, "encode_query" if query else "encode_document", None) or engine.encode
        return np.asarray(
            method(texts, batch_size=self._batch_size, convert_to_numpy=True, show_progress_bar=False)
        )
