"""The default provider: a local ONNX model run by fastembed (BAAI/bge-small-en-v1.5, 384-d).

Loading is slow and blocking, so `load()` runs in a worker thread and is explicit (the server
decides when to pay for it). Left to itself fastembed would download a missing model with
retries sleeping 3, 9 and 27 s (~40 s before it gives up offline): instead the cache is probed
without network first (fastembed_cache.py), and a missing model is downloaded in one attempt,
only when nothing says where the model is (EMBEDDING_MODEL_PATH, FASTEMBED_CACHE_PATH) or that
there is no network (HF_HUB_OFFLINE). Offline, it fails in well under a second and says how to
fetch the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mcp_server.embeddings.base import short_reason
from mcp_server.embeddings.fastembed_cache import (
    cache_dir,
    cache_holding,
    download,
    how_to_fetch,
    hub_offline,
    text_embedding_class,
)
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
        """Find the model (cache first, no network), fetch it at most once, build it (worker thread)."""
        text_embedding = text_embedding_class()
        self._check_model(text_embedding)
        kwargs: dict[str, Any] = {"model_name": self.model, "threads": self._threads, "local_files_only": True}
        if self._model_path:
            try:
                return text_embedding(specific_model_path=self._model_path, **kwargs)
            except Exception as exc:  # fastembed raises ValueError, OSError, onnxruntime errors...
                raise EmbeddingUnavailableError(
                    f'The fastembed model "{self.model}" could not be loaded from EMBEDDING_MODEL_PATH='
                    f"{self._model_path}: {short_reason(exc)}. {REMEDY}"
                ) from exc

        cache = cache_dir(self._cache_dir)
        holding = cache_holding(self.model, cache)  # (possibly the old default, in the temporary directory)
        if holding is None:
            if self._cache_dir or hub_offline():
                # The user said where the model is, or that there is no network: never try a download.
                why = "FASTEMBED_CACHE_PATH is set" if self._cache_dir else "HF_HUB_OFFLINE is set"
                raise EmbeddingUnavailableError(
                    f'The fastembed model "{self.model}" is not in the cache at {cache} ({why}, so it is not '
                    f"downloaded). {how_to_fetch(cache)}"
                )
            download(self.model, cache)  # one attempt; raises with the reason and the remedy
        else:
            cache = holding
        try:
            return text_embedding(cache_dir=str(cache), **kwargs)
        except Exception as exc:
            raise EmbeddingUnavailableError(
                f'The fastembed model "{self.model}" is in the cache at {cache} but could not be loaded '
                f"({short_reason(exc)}): the copy may be incomplete or damaged. Delete that directory and run "
                "`aletheia-mcp models download` again."
            ) from exc

    def _check_model(self, text_embedding: Any) -> None:
        """A model fastembed knows, with the configured dimension (before any file is looked for)."""
        try:
            known_dimension = text_embedding.get_embedding_size(self.model)
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

    def _encode(self, engine: Any, texts: list[str], *, query: bool) -> np.ndarray:
        if query:  # query_embed, not embed: some models (e.g. multitask ones) embed queries differently
            return np.asarray(list(engine.query_embed(texts)))
        return np.asarray(list(engine.passage_embed(texts, batch_size=self._batch_size)))
