"""The embedder as the server sees it: loading in the background, never blocking a tool call.

A model load can take seconds (or ~40 s of download retries offline), so the server starts
without it. A tool call waits at most EMBEDDING_TIMEOUT_S for the load or for one embedding
call; past that, or when the embedder failed, writes are stored without a vector (waiting for
one) and recall falls back to keywords. A failed load is retried with backoff.

Loaded is not the same as working: an API that is down, or a key that was revoked, fails every
call of a loaded embedder. So each call's outcome is recorded, and `status()` says `degraded`
(with the latest error) after DEGRADED_AFTER_FAILURES consecutive failed calls (one timeout under
load is a blip, not an outage; but the first failure already counts when no call has ever
succeeded) until the next one succeeds. While degraded, calls skip the embedder at once (writes
are stored without a vector, recall uses keywords, as on a failure) instead of each waiting up
to EMBEDDING_TIMEOUT_S on an API that hangs: one call per backoff interval (PROBE_FIRST_DELAY_S,
doubling up to PROBE_MAX_DELAY_S) still tries it, and the first that succeeds makes it ready.
An embedder that answers at once but wrongly (invalid vectors) is not skipped: nothing is waited
for, and each call keeps reporting its error to the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import anyio
import numpy as np

from mcp_server.db.vectors import embedding_input
from mcp_server.embeddings import Embedder, create_embedder
from mcp_server.embeddings.base import short_reason
from mcp_server.errors import AletheiaError, EmbeddingUnavailableError, InvalidEmbeddingError
from mcp_server.schemas import EmbedderStatus
from mcp_server.settings import Settings

logger = logging.getLogger(__name__)

RETRY_DELAYS_S = (30.0, 120.0, 600.0)
BACKFILL_INTERVAL_S = 60.0  # how often a ready server looks for rows an outage left without a vector
# Consecutive failed calls that make a working embedder `degraded` (candidates for settings).
DEGRADED_AFTER_FAILURES = 2
# While degraded, one call tries the embedder this long after the last failure, doubling up to the maximum.
PROBE_FIRST_DELAY_S = 5.0
PROBE_MAX_DELAY_S = 60.0
T = TypeVar("T")


class EmbedderRuntime:
    def __init__(self, settings: Settings, embedder: Embedder | None = None, *,
                 clock: Callable[[], float] | None = None) -> None:
        """`clock` (seconds, monotonic) times the probes while degraded: the event loop's clock by default."""
        self.settings = settings
        self._embedder: Embedder = embedder or create_embedder(settings)
        self._loaded = anyio.Event()  # set after every finished load attempt
        self._created = anyio.current_time()  # (constructed inside the event loop, like anyio.Event)
        self._ready = False
        self._attempt: anyio.Event | None = None  # set when the load attempt under way ends
        self._detail: str | None = "loading the model"
        self.on_ready: list[Callable[[], Awaitable[None]]] = []
        self._calls = CallOutcomes(clock or anyio.current_time)

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
        elif calls.degraded:
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
        """The vector of a query's start (db.vectors.embedding_input: an API refuses a longer input), or None
        when the embedder is unavailable."""
        return await self._call(lambda e: e.embed_query(embedding_input(text)))

    async def embed_documents(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Vectors, waiting for the load as long as it takes (for CLI batch work)."""
        await self._loaded.wait()
        if not self._ready:
            raise EmbeddingUnavailableError(self._detail or "the embedder is not available")
        try:
            vectors = await self._embedder.embed_documents(texts)
        except (EmbeddingUnavailableError, InvalidEmbeddingError) as exc:
            self._calls.failed(str(exc), outage=isinstance(exc, EmbeddingUnavailableError))
            raise
        self._calls.succeeded()
        return vectors

    async def _call(self, call: Callable[[Embedder], Awaitable[T]]) -> T | None:
        embedder = await self._available()
        if embedder is None:
            return None
        probe = self._calls.admit()
        if probe is None:  # degraded, and no probe is due: fail fast, the caller falls back as on a failure
            return None
        try:
            return await self._timed_call(embedder, call)
        finally:
            if probe:
                self._calls.probe_ended()

    async def _timed_call(self, embedder: Embedder, call: Callable[[Embedder], Awaitable[T]]) -> T | None:
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
            self._calls.failed(str(exc), outage=False)
            raise
        except Exception as exc:  # a provider bug: the call fails, and status must say so too
            self._calls.failed(f"the embedder failed: {short_reason(exc)}", outage=False)
            raise
        self._calls.succeeded()
        return result

    async def aclose(self) -> None:
        await self._embedder.aclose()


class CallOutcomes:
    """What the latest embedding calls did (failures since the last success, and when), whether that makes
    the embedder degraded, and, while it is, which call may probe it."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.failures = 0
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self.last_success_at: datetime | None = None
        self._clock = clock
        self._threshold = DEGRADED_AFTER_FAILURES  # (read now: tests shorten the module's values)
        self._first_delay, self._max_delay = PROBE_FIRST_DELAY_S, PROBE_MAX_DELAY_S
        self._delay = self._first_delay
        self._next_probe_at = 0.0
        self._probing = False
        self._outage = False  # whether the latest failure was one of reaching the embedder

    @property
    def degraded(self) -> bool:
        """DEGRADED_AFTER_FAILURES failures in a row; or one, when no call ever succeeded (nothing says it works)."""
        if self.last_success_at is None:
            return self.failures >= 1
        return self.failures >= self._threshold

    def admit(self) -> bool | None:
        """May a call use the embedder now? False: yes, as usual; True: yes, as the probe of a degraded
        embedder (call probe_ended() after it); None: no, it is degraded by an outage and no probe is due.

        Only an outage (the API down or hanging, a timeout) is skipped: an embedder that answers at once,
        but wrongly (invalid vectors, a provider bug), keeps being asked, and its calls keep reporting it."""
        if not self.degraded or not self._outage:
            return False
        if self._probing or self._clock() < self._next_probe_at:
            return None
        self._probing = True
        return True

    def probe_ended(self) -> None:
        """After the probe's outcome was recorded: still degraded, the next probe waits twice as long."""
        self._probing = False
        if self.degraded:
            self._delay = min(self._delay * 2, self._max_delay)
            self._next_probe_at = self._clock() + self._delay

    def failed(self, error: str, *, outage: bool = True) -> None:
        """One failed call; `outage`: it could not reach the embedder or timed out (not a wrong answer)."""
        was_degraded = self.degraded
        self.failures += 1
        self.last_error, self.last_error_at, self._outage = error, datetime.now(UTC), outage
        if self.degraded and not was_degraded:  # the first probe comes one delay after the outage began
            self._delay = self._first_delay
            self._next_probe_at = self._clock() + self._delay

    def succeeded(self) -> None:
        self.failures = 0
        self.last_success_at = datetime.now(UTC)
        self._delay = self._first_delay

    def describe(self) -> str:
        """The degraded state in a sentence a person can act on."""
        count = "the latest embedding call" if self.failures == 1 else f"the latest {self.failures} embedding calls"
        when = self.last_error_at.isoformat(timespec="seconds") if self.last_error_at else "?"
        success = (f"the last success was at {self.last_success_at.isoformat(timespec='seconds')}"
                   if self.last_success_at else "no call has succeeded since the server started")
        if self._outage:
            meanwhile = ("Meanwhile writes are stored without a vector and recall uses keywords, without waiting for "
                         f"the embedder: one call tries it again after {self._delay:g} s (the wait doubles up to "
                         f"{self._max_delay:g} s while it fails).")
        else:
            meanwhile = "Meanwhile every call still asks the embedder, and reports its error."
        return (f"{count} failed (last at {when}; {success}): {self.last_error}. {meanwhile} The state returns to "
                "ready with the first call that succeeds, and a background job then embeds the rows stored "
                "without a vector meanwhile.")
