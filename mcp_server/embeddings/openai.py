"""Any OpenAI-compatible `POST {base}/embeddings` endpoint: OpenAI, Ollama, vLLM, LM Studio...

Network calls fail in ordinary ways, so the policy is explicit:
- 429 and 5xx, connection and read errors: retried with exponential backoff and jitter, at most
  `max_retries` times, honouring `Retry-After` (capped: a tool call must not hang on it);
- 401/403: not retried, the key is wrong; other 4xx: not retried, the request is;
- each request is bounded by `timeout_s`.
The key is sent only as a header, and is scrubbed from anything echoed back in a message.
`dimensions` is never sent (many servers reject it): the returned lengths are checked instead.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio
import httpx2
import numpy as np
from pydantic import SecretStr

from mcp_server.embeddings.base import batched, describe, short_reason, validate_vectors
from mcp_server.errors import EmbeddingUnavailableError, InvalidEmbeddingError
from mcp_server.redact import redact_url

if TYPE_CHECKING:
    from mcp_server.settings import Settings

_RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_MAX_BACKOFF_S = 8.0


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible HTTP API, batched, retried, validated."""

    name = "openai"

    def __init__(
        self,
        model: str,
        dimension: int,
        *,
        api_base: str = "https://api.openai.com/v1",
        api_key: SecretStr | str | None = None,
        timeout_s: float = 10.0,
        batch_size: int = 64,
        max_retries: int = 3,
        backoff_base_s: float = 0.5,
        max_retry_after_s: float = 5.0,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.model = model
        self.dimension = dimension
        self._base = api_base.rstrip("/")
        self._url = f"{self._base}/embeddings"
        self._shown_base = redact_url(self._base)  # a base URL may carry user:password
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        self._key = key or None
        self._timeout_s = timeout_s
        self._batch_size = batch_size
        self._max_retries = max_retries
        self._backoff_base_s = backoff_base_s
        self._max_retry_after_s = max_retry_after_s
        self._transport = transport
        self._label = describe(self.name, model)
        self._client: httpx2.AsyncClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> OpenAIEmbedder:
        values: dict[str, Any] = {
            "api_base": settings.embedding_api_base,
            "api_key": settings.openai_api_key,
            "timeout_s": settings.embedding_timeout_s,
            "batch_size": settings.embedding_batch_size,
            "max_retries": settings.embedding_max_retries,
        }
        values.update(overrides)
        return cls(settings.embedding_model, settings.embedding_dim, **values)

    def _http(self) -> httpx2.AsyncClient:
        # Created on first use: an embedder that is configured but never called opens nothing.
        if self._client is None:
            headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
            self._client = httpx2.AsyncClient(
                headers=headers, timeout=httpx2.Timeout(self._timeout_s), transport=self._transport
            )
        return self._client

    def _scrub(self, text: str) -> str:
        """Remove the key from text the server sent back (some APIs echo a part of it)."""
        return text.replace(self._key, "***") if self._key else text

    def _error_detail(self, response: httpx2.Response, limit: int = 300) -> str:
        """The API's own error message (OpenAI style `{"error": {"message": ...}}` or plain text)."""
        try:
            body = response.json()
        except ValueError:
            detail = response.text
        else:
            error = body.get("error", body) if isinstance(body, dict) else body
            detail = error.get("message", json.dumps(error)) if isinstance(error, dict) else str(error)
        detail = self._scrub(" ".join(str(detail).split())).rstrip(". ")
        return detail if len(detail) <= limit else detail[: limit - 1] + "…"

    def _delay(self, attempt: int, response: httpx2.Response | None) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        if response is not None and (retry_after := response.headers.get("Retry-After")) is not None:
            try:
                return min(max(float(retry_after), 0.0), self._max_retry_after_s)
            except ValueError:
                pass  # an HTTP date: rare for this API; use our own backoff
        backoff = self._backoff_base_s * 2 ** (attempt - 1)
        return float(min(backoff + random.uniform(0, self._backoff_base_s), _MAX_BACKOFF_S))

    async def _post(self, batch: Sequence[str]) -> httpx2.Response:
        """POST one batch, retrying what is worth retrying; raise EmbeddingUnavailableError otherwise."""
        payload = {"model": self.model, "input": list(batch)}
        attempts = self._max_retries + 1
        last = ""
        for attempt in range(1, attempts + 1):
            response: httpx2.Response | None = None
            try:
                response = await self._http().post(self._url, json=payload)
            except httpx2.TransportError as exc:  # connect/read/write errors and timeouts
                last = self._scrub(short_reason(exc) if str(exc) else f"{type(exc).__name__} (no response)")
                if isinstance(exc, httpx2.TimeoutException):
                    last += f" after {self._timeout_s:g} s (EMBEDDING_TIMEOUT_S)"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return response
                if status in (401, 403):
                    raise EmbeddingUnavailableError(self._auth_message(status))
                if status not in _RETRYABLE_STATUS:
                    hint = (
                        "Check EMBEDDING_API_BASE (it should end in /v1) and EMBEDDING_MODEL."
                        if status in (404, 405) or 300 <= status < 400  # wrong path, or http:// redirected
                        else "Check EMBEDDING_MODEL and the API's input limits (EMBEDDING_BATCH_SIZE)."
                    )
                    raise EmbeddingUnavailableError(
                        f"The embeddings API at {self._shown_base} refused the request (HTTP {status} "
                        f"{response.reason_phrase}): {self._error_detail(response)}. {hint}"
                    )
                last = f"HTTP {status} {response.reason_phrase}: {self._error_detail(response, 200)}"
            if attempt < attempts:
                await anyio.sleep(self._delay(attempt, response))
        raise EmbeddingUnavailableError(
            f"The embeddings API at {self._shown_base} failed after {attempts} attempt{'s' if attempts > 1 else ''} "
            f"(last: {last}). Check that the service is up and reachable and EMBEDDING_API_BASE is right. "
            "Memories are still saved meanwhile; `aletheia-mcp reembed` embeds the waiting rows later."
        )

    def _auth_message(self, status: int) -> str:
        if self._key:
            return (
                f"The embeddings API at {self._shown_base} rejected the API key (HTTP {status}): "
                "check OPENAI_API_KEY."
            )
        return (
            f"The embeddings API at {self._shown_base} requires an API key (HTTP {status}) and none is set: "
            "set OPENAI_API_KEY."
        )

    def _parse(self, response: httpx2.Response, expected: int) -> list[Any]:
        """The embeddings of one response, in input order (servers may return `data` in any order)."""
        try:
            data = response.json()["data"]
            items = sorted(
                ((int(item.get("index", position)), item["embedding"]) for position, item in enumerate(data)),
                key=lambda pair: pair[0],
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise EmbeddingUnavailableError(
                f"The embeddings API at {self._shown_base} answered HTTP {response.status_code} but not with an "
                f"OpenAI-style embeddings response ({short_reason(exc, 120)}): check EMBEDDING_API_BASE "
                "(it should end in /v1)."
            ) from exc
        indices = [index for index, _ in items]
        if indices != list(range(expected)):
            raise InvalidEmbeddingError(
                f"{self._label} returned {len(items)} embeddings with indices {indices[:10]} for {expected} texts"
            )
        return [embedding for _, embedding in items]

    async def load(self) -> None:
        """Nothing to load, and deliberately no network call: the API is checked on first use."""

    async def embed_documents(self, texts: Sequence[str]) -> list[np.ndarray]:
        vectors: list[np.ndarray] = []
        for batch in batched(texts, self._batch_size):
            raw = self._parse(await self._post(batch), len(batch))
            vectors.extend(validate_vectors(raw, self.dimension, self._label, expected_count=len(batch)))
        return vectors

    async def embed_query(self, text: str) -> np.ndarray:
        return (await self.embed_documents([text]))[0]

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
