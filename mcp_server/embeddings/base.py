"""The `Embedder` protocol shared by every provider, and the checks every vector goes through.

Whatever a provider returns (a local model, a remote API), callers only ever see float32, 1-D,
finite, non-zero, L2-normalised vectors of the configured dimension: a NaN or a zero vector
stored in pgvector would silently poison cosine search, so it is refused here, loudly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar, runtime_checkable

import anyio.to_thread
import numpy as np
import numpy.typing as npt

from mcp_server.errors import InvalidEmbeddingError

T = TypeVar("T")


@runtime_checkable
class Embedder(Protocol):
    """Turns text into vectors. Every method returns validated, L2-normalised float32 vectors."""

    name: str
    """The provider: "hashing", "fastembed", "openai" or "sentence-transformers"."""
    model: str
    """The model id recorded with every stored vector, e.g. "BAAI/bge-small-en-v1.5"."""
    dimension: int

    async def load(self) -> None:
        """Make the embedder ready (load a model). A no-op where there is nothing to load.

        Raises EmbeddingUnavailableError with the reason and the remedy when it cannot.
        """
        ...

    async def embed_documents(self, texts: Sequence[str]) -> list[np.ndarray]:
        """One vector per text, in input order (texts being stored)."""
        ...

    async def embed_query(self, text: str) -> np.ndarray:
        """The vector of a search query (some models embed queries differently from documents)."""
        ...

    async def aclose(self) -> None:
        """Release what the embedder holds (HTTP connections, the model)."""
        ...


def describe(provider: str, model: str) -> str:
    """How messages name an embedder, e.g. `the openai embedder (model "text-embedding-3-small")`."""
    return f'the {provider} embedder (model "{model}")'


def short_reason(exc: BaseException, limit: int = 300) -> str:
    """One line naming an exception for a message: its type and its text, truncated."""
    text = " ".join(str(exc).split()).rstrip(". ")  # it is embedded in our own sentences
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def validate_vectors(
    vectors: Iterable[npt.ArrayLike],
    dimension: int,
    provider: str,
    *,
    expected_count: int | None = None,
) -> list[np.ndarray]:
    """Check and L2-normalise vectors; raise InvalidEmbeddingError naming `provider` on anything unusable.

    `provider` is the label used in messages (see `describe`). Refused: non-numeric or non-1-D
    values, NaN or infinite components, all-zero vectors, a length other than `dimension`, and
    (when `expected_count` is given) a different number of vectors than texts sent.
    """
    if isinstance(vectors, np.ndarray) and vectors.ndim == 2 and np.issubdtype(vectors.dtype, np.number):
        return _validate_matrix(vectors, dimension, provider, expected_count)
    checked: list[np.ndarray] = []
    for position, raw in enumerate(vectors):
        try:
            # float64 while checking: a float32 cast could turn a large finite value into inf.
            vector = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidEmbeddingError(
                f"{provider} returned a value that is not a numeric vector for input #{position} ({exc})"
            ) from exc
        if vector.ndim != 1:
            raise InvalidEmbeddingError(
                f"{provider} returned an array of shape {vector.shape} for input #{position}, expected a 1-D vector"
            )
        if vector.shape[0] != dimension:
            raise InvalidEmbeddingError(
                f"{provider} returned a {vector.shape[0]}-dimensional vector for input #{position}, but EMBEDDING_DIM "
                f"is {dimension}: set EMBEDDING_DIM={vector.shape[0]} (and run `aletheia-mcp reembed` if vectors are "
                "already stored) or choose a model that produces "
                f"{dimension}-dimensional vectors"
            )
        if not np.all(np.isfinite(vector)):
            raise InvalidEmbeddingError(
                f"{provider} returned a vector containing NaN or infinite values for input #{position}; "
                "the model or the service is faulty, nothing was stored with it"
            )
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:
            raise InvalidEmbeddingError(
                f"{provider} returned an all-zero vector for input #{position}; such a vector has no direction "
                "and cannot be searched by cosine similarity"
            )
        checked.append((vector / norm).astype(np.float32))
    if expected_count is not None and len(checked) != expected_count:
        raise InvalidEmbeddingError(f"{provider} returned {len(checked)} vectors for {expected_count} texts")
    return checked


def _validate_matrix(
    matrix: np.ndarray, dimension: int, provider: str, expected_count: int | None
) -> list[np.ndarray]:
    """The same checks on a (texts x dimension) array, vectorised: large batches stay cheap."""
    if matrix.shape[1] != dimension or not np.isfinite(matrix).all():
        # Rare: let the per-vector path find the first bad row and word the message.
        return validate_vectors(list(matrix), dimension, provider, expected_count=expected_count)
    as64 = matrix.astype(np.float64, copy=False)
    norms = np.sqrt(np.einsum("ij,ij->i", as64, as64))
    if (norms == 0.0).any() or (expected_count is not None and matrix.shape[0] != expected_count):
        return validate_vectors(list(matrix), dimension, provider, expected_count=expected_count)
    return list((as64 / norms[:, None]).astype(np.float32))


def batched(texts: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    """Consecutive slices of at most `size` texts (EMBEDDING_BATCH_SIZE)."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    for start in range(0, len(texts), size):
        yield texts[start : start + size]


async def run_cpu_bound(func: Callable[[], T], limiter: anyio.CapacityLimiter | None = None) -> T:
    """Run CPU-bound `func` in a worker thread so that the event loop keeps serving other requests.

    `abandon_on_cancel=True` lets a caller's timeout (anyio.fail_after) return at once; the
    thread then finishes on its own and its result is dropped.
    """
    return await anyio.to_thread.run_sync(func, abandon_on_cancel=True, limiter=limiter)
