"""What the in-process model providers (fastembed, sentence-transformers) share: the model is
built once, in a worker thread, by an explicit `load()`; inference runs one batch at a time in a
worker thread (the runtime already uses every core for one batch, parallel batches would only
fight over them); every vector goes through `validate_vectors`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import numpy as np

from mcp_server.embeddings.base import describe, run_cpu_bound, validate_vectors
from mcp_server.errors import EmbeddingUnavailableError


class LocalModelEmbedder:
    name: str
    not_loaded_advice: str  # the end of the message when embedding is asked of an unloaded model

    def __init__(self, model: str, dimension: int, batch_size: int) -> None:
        self.model = model
        self.dimension = dimension
        self._batch_size = batch_size
        self._label = describe(self.name, model)
        self._engine: Any = None  # the provider's model object once loaded
        self._load_lock = anyio.Lock()
        self._limiter = anyio.CapacityLimiter(1)

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    def _construct(self) -> Any:
        """Import the library and build the model (blocking: runs in a worker thread)."""
        raise NotImplementedError

    def _encode(self, engine: Any, texts: list[str], *, query: bool) -> np.ndarray:
        """One matrix of vectors for `texts` (blocking: runs in a worker thread)."""
        raise NotImplementedError

    async def load(self) -> None:
        """Load the model in a worker thread; EmbeddingUnavailableError says why not and what to do.

        Cancelling (e.g. a caller's `anyio.fail_after`) returns at once; the abandoned load
        finishes in its thread and is discarded, and a later `load()` starts again.
        """
        async with self._load_lock:
            if self._engine is None:
                self._engine = await run_cpu_bound(self._construct)

    def _require_engine(self) -> Any:
        if self._engine is None:
            raise EmbeddingUnavailableError(
                f"{self._label} is not loaded yet (loading failed or has not finished){self.not_loaded_advice}"
            )
        return self._engine

    async def embed_documents(self, texts: Sequence[str]) -> list[np.ndarray]:
        if not texts:
            return []
        engine = self._require_engine()
        batch = list(texts)
        matrix = await run_cpu_bound(lambda: self._encode(engine, batch, query=False), self._limiter)
        return validate_vectors(matrix, self.dimension, self._label, expected_count=len(batch))

    async def embed_query(self, text: str) -> np.ndarray:
        engine = self._require_engine()
        matrix = await run_cpu_bound(lambda: self._encode(engine, [text], query=True), self._limiter)
        return validate_vectors(matrix, self.dimension, self._label, expected_count=1)[0]

    async def aclose(self) -> None:
        self._engine = None
