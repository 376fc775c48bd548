"""The embedder as the server sees it: loading in the background, never blocking a tool call.

A model load can take seconds (or ~40 s of download retries offline), so the server starts
without it. A tool call waits at most EMBEDDING_TIMEOUT_S for the load or for one embedding
call; past that, or when the embedder failed, writes are stored without a vector (waiting for
one) and recall falls back to keywords. A failed load is retried with backoff.

Loaded is not the same as working: an API that is down, or a key that was revoked, fails every
call of a loaded embedder. So each call's outcome is recorded, and `status()` says `degraded`
(with the latest error) from the first failed call until the next one succeeds.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import anyio
import numpy as np

from mcp_server.embeddings import Embedder, create_embedder
from mcp_server.embeddings.base import short_reason
from mcp_server.errors import AletheiaError, EmbeddingUnavailableError, InvalidEmbeddingError
from mcp_server.schemas import EmbedderStatus
from mcp_server.settings import Settings

logger = logging.getLogger(__name__)

RETRY_DELAYS_S = (30.0, 120.0, 600.0)
BACKFILL_INTERVAL_S = 60.0  # how often a ready server looks for rows an outage left without a vector
T = TypeVar("T")


class EmbedderRuntime:
    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self._embedder: Embedder = embedder or create_embedder(settings)
        self._loaded = anyio.Event()  # set after every finished load attempt
        self._created = anyio.current_time()  # (constructed inside the event loop, like anyio.Event)
        self._ready = False
        self._attempt: anyio.Event | None = None  # set when the load attempt under way ends
        self._detail: str | None = "loading the model"
        self.on_ready: list[Callable[[], Awaitable[None]]] = []
        self._calls = CallOutcomes()

    @property
    def model(self) -> str:
        return self._embedder.model

    @property
    def ready(self) -> bool:
        return self._ready

    def status(self) -> EmbedderStatus:
        calls = self._calls
        detail = None if self._ready else self._detail
        if not self._ready:
            state = "loading" if not self._loaded.is_set() else "failed"
        elif calls.failures:
            state, detail = "degraded", calls.describe()
        else:
            state = "ready"
        return EmbedderStatus(provider=self._embedder.name, model=self._embedder.model,
                              dimension=self._embedder.dimension, state=state, detail=detail,
                              consecutive_failures=calls.failures, last_error_at=calls.last_error_at,
                              last_success_at=calls.last_success_at)

    async def load_once(self) -> bool:
        """One load attempt; records the outcome for status() and waiting callers."""
        attempt = self._attempt = anyio.Event()
        try:
            await self._embedder.load()
        except AletheiaError as exc:
            self._detail = str(exc)
        except Exception as exc:  # a provider bug must not take the server down
            logger.exception("embedder failed to load")
            self._detail = f"the embedder failed to load: {type(exc).__name__}: {exc}"
        else:
            self._ready, self._detail = True, None
            logger.info("embedder ready: %s %s (%d-d)", self._embedder.name, self._embedder.model,
                        self._embedder.dimension)
        finally:
            self._attempt = None
            attempt.set()
        self._loaded.set()
        return self._ready

    async def ensure_loaded(self) -> bool:
        """Whether the embedder is ready, loading it first when no load is under way (batch work)."""
        if self._ready:
            return True
        if self._attempt is not None:
            await self._attempt.wait()
            return self._ready
        return await self.load_once()

    async def run(self) -> None:
        """Load the embedder (retrying with backoff), then run the on-ready hooks now and every
        BACKFILL_INTERVAL_S (an API outage after start-up also leaves rows waiting). Background task."""
        attempt = 0
        while not await self.load_once():
            delay = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
            logger.warning("embedder unavailable (%s); retrying in %.0f s", self._detail, delay)
            attempt += 1
            await anyio.sleep(delay)
        while True:
            for hook in self.on_ready:
                await hook()
            await anyio.sleep(BACKFILL_INTERVAL_S)

    async def _available(self) -> Embedder | None:
        # Calls wait for a slow first load, but never past EMBEDDING_TIMEOUT_S after start-up:
        # once that has passed, every call proceeds at once without the embedder.
        remaining = self._created + self.settings.embedding_timeout_s - anyio.current_time()
        with anyio.move_on_after(max(0.0, remaining)):
            await self._loaded.wait()
        return self._embedder if self._ready else None

    async def try_embed_documents(self, texts: Sequence[str]) -> list[np.ndarray] | None:
        """Vectors, or None when the embedder is unavailable (InvalidEmbeddingError propagates)."""
        return await self._call(lambda e: e.embed_documents(texts))

    async def try_embed_query(self, text: str) -> np.ndarray | None:
        return await self._call(lambda e: e.embed_query(text))

    async def embed_documents(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Vectors, waiting for the load as long as it takes (for CLI batch work)."""
        await self._loaded.wait()
        if not self._ready:
            raise EmbeddingUnavailableError(self._detail or "the embedder is not available")
        try:
            vectors = await self._embedder.embed_documents(texts)
        except (EmbeddingUnavailableError, InvalidEmbeddingError) as exc:
            self._calls.failed(str(exc))
            raise
        self._calls.succeeded()
        return vectors

    async def _call(self, call: Callable[[Embedder], Awaitable[T]]) -> T | None:
        embedder = await self._available()
        if embedder is None:
            return None
        try:
            with anyio.fail_after(self.settings.embedding_timeout_s):
                result = await call(embedder)
        except TimeoutError:
            message = f"an embedding call took longer than EMBEDDING_TIMEOUT_S={self.settings.embedding_timeout_s:g} s"
            logger.warning("%s", message)
            self._calls.failed(message)
            return None
        except EmbeddingUnavailableError as exc:
            logger.warning("embedding failed: %s", exc)
            self._calls.failed(str(exc))
            return None
        except InvalidEmbeddingError as exc:  # the caller reports it; the embedder is no less broken
            self._calls.failed(str(exc))
            raise
        except Exception as exc:  # a provider bug: the call fails, and status must say so too
            self._calls.failed(f"the embedder failed: {short_reason(exc)}")
            raise
        self._calls.succeeded()
        return result

    async def aclose(self) -> None:
        await self._embedder.aclose()


class CallOutcomes:
    """What the latest embedding calls did: failures since the last success, and when."""

    def __init__(self) -> None:
        self.failures = 0
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self.last_success_at: datetime | None = None

    def failed(self, error: str) -> None:
        self.failures += 1
        self.last_error, self.last_error_at = error, datetime.now(UTC)

    def succeeded(self) -> None:
        self.failures = 0
        self.last_success_at = datetime.now(UTC)

    def describe(self) -> str:
        """The degraded state in a sentence a person can act on."""
        count = "the latest embedding call" if self.failures == 1 else f"the latest {self.failures} embedding calls"
        when = self.last_error_at.isoformat(timespec="seconds") if self.last_error_at else "?"
        success = (f"the last success was at {self.last_success_at.isoformat(timespec='seconds')}"
                   if self.last_success_at else "no call has succeeded since the server started")
        return (f"{count} failed (last at {when}; {success}): {self.last_error}. Meanwhile writes are stored "
                "without a vector and recall uses keywords; the state returns to ready with the next call that "
                "succeeds, and a background job then embeds the rows stored meanwhile.")
