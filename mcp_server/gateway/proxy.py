"""One pass-through: a client's request sent on to its upstream, the answer streamed back untouched,
and (for the exchanges) a `CapturedCall` handed to the spool once the answer has ended.

What the client gets is exactly what the upstream sent: status, headers (minus hop-by-hop ones)
and body bytes, chunk by chunk as they arrive (`aiter_raw`: nothing is decoded or held back). The
log's copy is taken on the side: a streamed answer is assembled as it passes (assemble.py), a
plain one parsed when it has ended. The credentials the client sends (`Authorization`,
`x-api-key`) go to the upstream as they are and are never copied into the log: only the request's
JSON body is. A connection the upstream drops mid-answer is dropped for the client too (its answer
stays incomplete, as it would have been without the gateway).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx2
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from mcp_server.gateway.assemble import READABLE_CODINGS, Decoder, StreamTap
from mcp_server.schemas import CallOutcome, CapturedCall, GatewayProvider

logger = logging.getLogger(__name__)

Provider = GatewayProvider  # (the contract's: schemas.py)

# RFC 9110 7.6.1: meaningful for one connection only, never forwarded (plus those `Connection` names).
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "proxy-connection"})
# The gateway's own request headers: read here, never sent upstream.
GATEWAY_HEADERS = frozenset({"aletheia-project", "aletheia-token"})
REQUEST_ID = "x-request-id"
# The most of a plain (not streamed) answer kept for the log; the client gets all of it regardless.
CAPTURE_LIMIT_BYTES = 64 * 1024 * 1024
# How long an idle upstream connection is kept for the next call. Under the 5 s after which
# uvicorn (vLLM, most Python servers) and Node close an idle connection: with httpx's own 5 s,
# a call sent as the upstream closes that connection failed with a 502 the upstream never saw.
UPSTREAM_IDLE_S = 4.0


@dataclass(frozen=True)
class Route:
    provider: Provider
    endpoint: str  # the path the call was made on, e.g. /v1/messages
    logged: bool  # an exchange (chat completions, responses, messages), rather than models or embeddings


@dataclass(frozen=True)
class Upstreams:
    openai: str
    anthropic: str

    def base(self, provider: Provider) -> str:
        return self.openai if provider == "openai" else self.anthropic


def _dropped(connection_values: list[str]) -> set[str]:
    """Hop-by-hop headers: the standard ones and those the `Connection` header names."""
    return set(HOP_BY_HOP) | {part.strip().lower() for value in connection_values for part in value.split(",")}


def upstream_request_headers(request: Request) -> list[tuple[str, str]]:
    """The client's headers for the upstream: all of them (credentials included, untouched) except
    hop-by-hop ones, the gateway's own, Host and Content-Length (set for the body sent), and
    Accept-Encoding narrowed to what the log can read (the client accepted each of those)."""
    drop = _dropped(request.headers.getlist("connection")) | GATEWAY_HEADERS | {
        "host", "content-length", "accept-encoding"}
    headers = [(name, value) for name, value in request.headers.items() if name.lower() not in drop]
    accepted = [part.strip() for value in request.headers.getlist("accept-encoding") for part in value.split(",")]
    readable = [part for part in accepted if part.split(";")[0].strip().lower() in READABLE_CODINGS]
    headers.append(("accept-encoding", ", ".join(readable) or "identity"))
    return headers


def client_response_headers(upstream: httpx2.Response, request_id: str) -> list[tuple[bytes, bytes]]:
    drop = _dropped(upstream.headers.get_list("connection")) | {REQUEST_ID}
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1"))
               for name, value in upstream.headers.multi_items() if name.lower() not in drop]
    headers.append((REQUEST_ID.encode(), request_id.encode("latin-1")))
    return headers


def parse_json(data: bytes) -> Any:
    """JSON when it is, else the text (an HTML error page from a proxy, say), else None when empty."""
    if not data:
        return None
    text = data.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def error_body(provider: Provider, message: str) -> dict[str, Any]:
    """An error in the API's own shape, so that the client's SDK reports the message."""
    if provider == "anthropic":
        return {"type": "error", "error": {"type": "api_error", "message": message}}
    return {"error": {"message": message, "type": "gateway_error", "param": None, "code": None}}


class Capture:
    """What is known of one call so far, turned into a `CapturedCall` once when it ends."""

    def __init__(self, route: Route, body: bytes, project: str | None, client_request_id: str | None,
                 submit: Callable[[CapturedCall], None]) -> None:
        self.route = route
        self.started = time.monotonic()
        self.created_at = datetime.now(UTC)
        self.project = project
        self.request_id = client_request_id
        self.submit = submit
        self.body = body  # parsed in finish(): no work on the request path
        self.status_code = 502
        self.ttft_ms: int | None = None
        self.tap: StreamTap | None = None
        self._decoder: Decoder | None = None
        self._plain: list[bytes] = []
        self._plain_size = 0
        self._done = False

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    def answer_started(self, upstream: httpx2.Response) -> None:
        self.status_code = upstream.status_code
        coding = upstream.headers.get("content-encoding")
        if upstream.headers.get("content-type", "").startswith("text/event-stream"):
            self.tap = StreamTap(self.route.endpoint, coding)
        else:
            self._decoder = Decoder(coding)

    def chunk(self, data: bytes) -> None:
        if self.ttft_ms is None and self.tap is not None:
            self.ttft_ms = self.elapsed_ms()
        if not self.route.logged:
            return
        if self.tap is not None:
            self.tap.feed(data)
        elif self._decoder is not None and self._plain_size <= CAPTURE_LIMIT_BYTES:
            self._plain.append(self._decoder.decode(data))
            self._plain_size += len(self._plain[-1])

    def response(self) -> Any:
        if self.tap is not None:
            return self.tap.assembler.result()
        if self._plain_size > CAPTURE_LIMIT_BYTES:
            return {"note": f"the answer was over {CAPTURE_LIMIT_BYTES:,} bytes: not kept"}
        if self._decoder is not None and not self._decoder.readable:
            return {"note": "the answer's Content-Encoding could not be read: not kept"}
        return parse_json(b"".join(self._plain))

    def finish(self, outcome: CallOutcome, response: Any = None) -> None:
        """Hand the call to the spool (once; only the exchanges). Never raises: logging must not
        break a call."""
        if self._done or not self.route.logged:
            return
        self._done = True
        try:
            parsed = parse_json(self.body)
            request: dict[str, Any] = parsed if isinstance(parsed, dict) else {"unparsed_body": parsed}
            answer = self.response() if response is None else response
            usage = self.tap.assembler.usage() if self.tap is not None else \
                answer.get("usage") if isinstance(answer, dict) and isinstance(answer.get("usage"), dict) else None
            model = request.get("model")
            if not isinstance(model, str):
                model = self.tap.assembler.model() if self.tap is not None else \
                    answer.get("model") if isinstance(answer, dict) and isinstance(answer.get("model"), str) else None
            self.submit(CapturedCall(
                request_id=self.request_id or uuid.uuid4().hex, provider=self.route.provider,
                endpoint=self.route.endpoint, model=model, request=request, response=answer,
                status_code=self.status_code, latency_ms=self.elapsed_ms(), ttft_ms=self.ttft_ms, usage=usage,
                outcome=outcome, stream=self.tap is not None or request.get("stream") is True,
                project=self.project, created_at=self.created_at,
            ))
        except Exception:  # a bug here must cost the log entry, never the call
            logger.exception("could not capture the call %s on %s", self.request_id, self.route.endpoint)


class UpstreamDropped(Exception):
    """The upstream's connection failed mid-answer."""


class RelayResponse(StreamingResponse):
    """The upstream's answer, relayed chunk by chunk; the capture is finished whatever happens:
    the answer ends, the upstream drops it, or the client goes away (Starlette cancels the relay)."""

    def __init__(self, upstream: httpx2.Response, capture: Capture, request_id: str) -> None:
        super().__init__(self._relay())
        self.status_code = upstream.status_code
        self.raw_headers = client_response_headers(upstream, request_id)
        self.upstream = upstream
        self.capture = capture
        self.outcome: CallOutcome | None = None

    async def _relay(self) -> AsyncIterator[bytes]:
        try:
            async for data in self.upstream.aiter_raw():
                self.capture.chunk(data)
                yield data
        except httpx2.TransportError as exc:
            logger.warning("the upstream dropped the answer to %s on %s (%s)", self.capture.request_id,
                           self.capture.route.endpoint, type(exc).__name__)
            self.outcome = "upstream_dropped"
            raise UpstreamDropped from exc
        self.outcome = "completed" if self.upstream.status_code < 400 else "upstream_error"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except UpstreamDropped:
            pass  # the client's answer stays incomplete: uvicorn closes its connection
        except (ClientDisconnect, OSError):
            pass  # the client went away (finish() below records it)
        finally:
            with anyio.CancelScope(shield=True):
                await self.upstream.aclose()
            if self.outcome is None and self.capture.tap is not None and self.capture.tap.ended:
                # The client left after the answer's last event (the openai SDK closes at [DONE]),
                # before the upstream's final empty chunk came: it got the whole answer.
                self.outcome = "completed" if self.upstream.status_code < 400 else "upstream_error"
            self.capture.finish(self.outcome or "client_disconnected")


class Proxy:
    """Sends calls to the upstreams over one pooled HTTP client (open it with `async with`)."""

    def __init__(self, upstreams: Upstreams, timeout_s: float, submit: Callable[[CapturedCall], None]) -> None:
        self.upstreams = upstreams
        self.submit = submit
        self._client = httpx2.AsyncClient(timeout=httpx2.Timeout(timeout_s, connect=min(timeout_s, 30.0)),
                                          limits=httpx2.Limits(max_connections=None, max_keepalive_connections=100,
                                                               keepalive_expiry=UPSTREAM_IDLE_S),
                                          follow_redirects=False)

    async def __aenter__(self) -> Proxy:
        await self._client.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def forward(self, request: Request, route: Route, project: str | None) -> Response:
        try:
            body = await request.body()
        except ClientDisconnect:  # gone before its request was in: nothing was sent, nothing to log
            return Response(status_code=400)
        client_request_id = request.headers.get(REQUEST_ID) or None
        capture = Capture(route, body, project, client_request_id, self.submit)
        url = self.upstreams.base(route.provider) + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        outgoing = self._client.build_request(request.method, url, headers=upstream_request_headers(request),
                                              content=body)
        try:
            upstream = await self._client.send(outgoing, stream=True)
        except httpx2.TransportError as exc:
            return self._unreachable(capture, route, exc)
        # The id the client sent, else the upstream's own (what the client's SDK shows), else a new one.
        capture.request_id = client_request_id or upstream.headers.get(REQUEST_ID) or uuid.uuid4().hex
        capture.answer_started(upstream)
        return RelayResponse(upstream, capture, capture.request_id)

    def _unreachable(self, capture: Capture, route: Route, exc: httpx2.TransportError) -> Response:
        timed_out = isinstance(exc, httpx2.TimeoutException)
        status = 504 if timed_out else 502
        base = self.upstreams.base(route.provider)
        message = (f"aletheia gateway: the upstream {base} " + ("did not answer in time" if timed_out else
                   f"could not be reached ({type(exc).__name__})") + f". Check GATEWAY_{route.provider.upper()}"
                   "_UPSTREAM and that the server is running.")
        logger.warning("%s", message)
        capture.request_id = capture.request_id or uuid.uuid4().hex
        capture.status_code = status
        body = error_body(route.provider, message)
        capture.finish("unreachable", body)
        return JSONResponse(body, status_code=status, headers={REQUEST_ID: capture.request_id})
