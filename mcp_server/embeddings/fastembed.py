"""The default provider: a local ONNX model run by fastembed (BAAI/bge-small-en-v1.5, 384-d).

Loading is slow and blocking, and left to itself fastembed downloads the model, retrying with
sleeps of 3, 9 and 27 s (~40 s before it gives up offline). So: `load()` runs in a worker
thread and is explicit (the server decides when to pay for it), and whenever the user points us
at local files (EMBEDDING_MODEL_PATH or FASTEMBED_CACHE_PATH) we pass `local_files_only=True`
so that a missing model fails in milliseconds instead of after the retries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mcp_server.embeddings.base import short_reason
from mcp_server.embeddings.local_model import LocalModelEmbedder
from mcp_server.errors import EmbeddingUnavailableError

if TYPE_CHECKING:
    from mcp_server.settings import Settings

REMEDY = (
    "To work offline set FASTEMBED_CACHE_PATH to a pre-filled fastembed cache or EMBEDDING_MODEL_PATH to a local "
    "ONNX model directory, or choose another EMBEDDING_PROVIDER (openai, sentence-transformers, hashing). "
    "Memories are still saved meanwhile; `aletheia-mcp reembed` embeds the waiting rows later."
)


class FastEmbedEmbedder(LocalModelEmbedder):
    """fastembed's `TextEmbedding`; `load()` must succeed before anything is embedded."""

    name = "fastembed"
    not_loaded_advice = f". {REMEDY}"

    def __init__(
        self,
        model: str,
        dimension: int,
        *,
        model_path: str | None = None,
        cache_dir: str | None = None,
        batch_size: int = 64,
        threads: int | None = None,
    ) -> None:
        super().__init__(model, dimension, batch_size)
        self._model_path = model_path
        self._cache_dir = cache_dir
        self._threads = threads

    @classmethod
    def from_settings(cls, settings: Settings) -> FastEmbedEmbedder:
        return cls(
            settings.embedding_model,
            settings.embedding_dim,
            model_path=str(settings.embedding_model_path) if settings.embedding_model_path else None,
            cache_dir=str(settings.embedding_cache_dir) if settings.embedding_cache_dir else None,
            batch_size=settings.embedding_batch_size,
        )

    def _construct(self) -> Any:
        """Import fastembed and build the model (blocking: runs in a worker thread)."""
        try:
            from fastembed import TextEmbedding  # heavy import (onnxruntime): only when asked for
        except ImportError as exc:
            raise EmbeddingUnavailableError(
                f"{self._label} cannot be used because fastembed is not installed ({short_reason(exc)}). "
                f"Install it with `pip install fastembed`. {REMEDY}"
            ) from exc

        try:
            known_dimension = TextEmbedding.get_embedding_size(self.model)
        except ValueError as exc:
            raise EmbeddingUnavailableError(
                f'fastembed does not know the model "{self.model}" (EMBEDDING_MODEL): choose one of '
                "`TextEmbedding.list_supported_models()`, e.g. BAAI/bge-small-en-v1.5 (384 dimensions), "
                "or another EMBEDDING_PROVIDER."
            ) from exc
        if known_dimension != self.dimension:
            raise EmbeddingUnavailableError(
                f'The fastembed model "{self.model}" produces {known_dimension}-dimensional vectors but '
                f"EMBEDDING_DIM is {self.dimension}: set EMBEDDING_DIM={known_dimension} (then run "
                "`aletheia-mcp reembed` if vectors are already stored) or choose a model with "
                f"{self.dimension} dimensions."
            )

        kwargs: dict[str, Any] = {"model_name": self.model, "threads": self._threads}
        if self._model_path:
            kwargs["specific_model_path"] = self._model_path
        if self._cache_dir:
            kwargs["cache_dir"] = self._cache_dir
        if self._model_path or self._cache_dir:
            # The user said where the model is: never fall back to a slow, retried download.
            kwargs["local_files_only"] = True
        try:
            return TextEmbedding(**kwargs)
        except Exception as exc:  # fastembed raises ValueError, OSError, onnxruntime errors...
            where = (
                f"from EMBEDDING_MODEL_PATH={self._model_path}"
                if self._model_path
                else f"from the cache FASTEMBED_CACHE_PATH={self._cache_dir}"
                if self._cache_dir
                else "(download from Hugging Face failed; is the machine offline?)"
            )
            raise EmbeddingUnavailableError(
                f'The fastembed model "{self.model}" could not be loaded {where}: {short_reason(exc)}. {REMEDY}'
            ) from exc

    def _encode(self, engine: Any, texts: list[str], *, query: bool) -> np.ndarray:
        if query:  # query_embed, not embed: some models (e.g. multitask ones) embed queries differently
            return np.asarray(list(engine.query_embed(texts)))
        return np.asarray(list(engine.passage_embed(texts, batch_size=self._batch_size)))
