"""`aletheia-mcp gateway`: the Starlette app, its lifespan (application, spool, upstream client) and
the server that runs it.

Routes (anything else gets 404): OpenAI `/v1/chat/completions`, `/v1/responses`, `/v1/embeddings`,
`/v1/models`; Anthropic `/v1/messages`, `/v1/messages/count_tokens`, and `/v1/models` when the
request carries `anthropic-version`. Only the exchanges (chat completions, responses, messages)
are logged; embeddings, models and token counts pass through unlogged.

Binding beyond loopback needs the HTTP transport's tokens (ALETHEIA_HTTP_TOKENS_FILE,
`aletheia-mcp tokens add USER`), sent in the `Aletheia-Token` header: the client's
`Authorization` (and `x-api-key`) belong to the upstream and go there untouched, so the gateway's
own credential needs a header of its own, like `Aletheia-Project`. Both are removed before the
request goes on.

Shutdown (SIGTERM or SIGINT): uvicorn stops accepting, lets calls in flight finish (up to
SHUTDOWN_GRACE_S), then the lifespan drains the spool (whatever the database cannot take now is
in the spill file, stored at the next start) and releases the database.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import uvicorn
from mcp.server.transport_security import TransportSecurityMiddleware
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as StarletteRoute

from mcp_server.app_context import open_app
from mcp_server.errors import ConfigurationError, InvalidInputError
from mcp_server.gateway.proxy import GATEWAY_HEADERS, Provider, Proxy, Route, Upstreams, error_body
from mcp_server.http_auth import FileTokenVerifier
from mcp_server.http_transport import is_loopback, security_settings, serve_until_stopped, server_config
from mcp_server.repository import check_project_name
from mcp_server.services.exchange_spool import ExchangeSpool
from mcp_server.settings import Settings

logger = logging.getLogger(__name__)

TOKEN_HEADER = "aletheia-token"
PROJECT_HEADER = "aletheia-project"
SHUTDOWN_GRACE_S = 60  # calls in flight at SIGTERM may stream for a while
DRAIN_TIMEOUT_S = 30.0
assert {TOKEN_HEADER, PROJECT_HEADER} <= GATEWAY_HEADERS  # never forwarded upstream

OPENAI_ROUTES = {"/v1/chat/completions": True, "/v1/responses": True, "/v1/embeddings": False}
ANTHROPIC_ROUTES = {"/v1/messages": True, "/v1/messages/count_tokens": False}


def route_of(request: Request) -> Route | None:
    path = request.url.path
    if path in OPENAI_ROUTES:
        return Route("openai", path, OPENAI_ROUTES[path])
    if path in ANTHROPIC_ROUTES:
        return Route("anthropic", path, ANTHROPIC_ROUTES[path])
    if path == "/v1/models" or path.startswith("/v1/models/"):
        return Route(_provider_of(request), path, False)
    return None


def _provider_of(request: Request) -> Provider:
    """For the paths both APIs have: Anthropic's clients send `anthropic-version`, OpenAI's do not."""
    return "anthropic" if "anthropic-version" in request.headers else "openai"


def not_served(request: Request) -> Response:
    provider = _provider_of(request)
    paths = ", ".join([*OPENAI_ROUTES, *ANTHROPIC_ROUTES, "/v1/models"])
    return JSONResponse(error_body(provider, f"aletheia gateway: {request.url.path} is not passed through; the "
                                             f"gateway serves {paths}."), status_code=404)


class Gateway:
    """The request handler: checks the gateway's own headers, then hands the call to the proxy."""

    def __init__(self, settings: Settings, verifier: FileTokenVerifier | None, host: str) -> None:
        self.settings = settings
        self.verifier = verifier
        # As the MCP HTTP transport: a JSON body, and the Host / Origin of this machine (or those
        # allowed), so that a web page can neither send a "simple" text/plain POST through the
        # gateway nor reach it by DNS rebinding (API clients send JSON and no Origin).
        self.security = TransportSecurityMiddleware(security_settings(settings, host, 0))
        self.proxy: Proxy | None = None  # set by the lifespan
        self.default_project: str | None = None
        self.startup_error: BaseException | None = None

    async def handle(self, request: Request) -> Response:
        route = route_of(request)
        if route is None:
            return not_served(request)
        refused = await self.security.validate_request(request, is_post=request.method == "POST")
        if refused is not None:
            return refused
        if self.verifier is not None:
            token = request.headers.get(TOKEN_HEADER, "").removeprefix("Bearer ").strip()
            if not token or await self.verifier.verify_token(token) is None:
                return JSONResponse(error_body(route.provider, (
                    "aletheia gateway: this gateway needs a token in the Aletheia-Token header (create one with "
                    "`aletheia-mcp tokens add USER`); your API key stays in Authorization / x-api-key.")),
                    status_code=401)
        project = self.default_project
        header = request.headers.get(PROJECT_HEADER)
        if header is not None:
            try:
                project = check_project_name(header, "Aletheia-Project header")
            except InvalidInputError as exc:
                return JSONResponse(error_body(route.provider, f"aletheia gateway: {exc}"), status_code=400)
        assert self.proxy is not None, "the gateway's lifespan has not started"
        return await self.proxy.forward(request, route, project)


def build_gateway_app(settings: Settings, host: str) -> Starlette:
    """The gateway's ASGI app; its lifespan opens the application and runs the spool."""
    verifier = FileTokenVerifier(settings.http_tokens_file.expanduser()) if settings.http_tokens_file else None
    if verifier is None and not is_loopback(host):
        raise ConfigurationError(
            f"Refusing to run the gateway on {host} without authentication: set ALETHEIA_HTTP_TOKENS_FILE (create "
            "tokens with `aletheia-mcp tokens add USER`; clients send one in the Aletheia-Token header) or bind a "
            "loopback address such as 127.0.0.1."
        )
    if verifier is not None:
        verifier.check()  # an unsafe or broken tokens file stops the start, with the reason
    gateway = Gateway(settings, verifier, host)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        started = False
        try:
            async with open_app(settings) as app, anyio.create_task_group() as tasks:
                spool = ExchangeSpool(app.conversations, settings)
                await tasks.start(spool.run)
                gateway.default_project = app.projects.default.key if app.projects.default else None
                upstreams = Upstreams(settings.gateway_openai_upstream, settings.gateway_anthropic_upstream)
                async with Proxy(upstreams, settings.gateway_upstream_timeout_s, spool.submit) as proxy:
                    gateway.proxy = proxy
                    logger.info("gateway: OpenAI API -> %s, Anthropic API -> %s; project %s", upstreams.openai,
                                upstreams.anthropic, gateway.default_project or "(none)")
                    started = True
                    try:
                        yield
                    finally:
                        with anyio.CancelScope(shield=True):
                            await spool.drain(DRAIN_TIMEOUT_S)
                        tasks.cancel_scope.cancel()
        except Exception as exc:
            if not started:  # uvicorn only logs a failed start-up: run_gateway raises it once uvicorn is done
                gateway.startup_error = exc
            raise

    methods = ["GET", "POST"]
    app = Starlette(routes=[StarletteRoute("/{path:path}", gateway.handle, methods=methods)], lifespan=lifespan)
    app.state.gateway = gateway
    return app


def run_gateway(settings: Settings, host: str, port: int) -> None:
    # httpx2 logs one INFO line per upstream request: every call would print one (with its URL).
    logging.getLogger("httpx2").setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
    app = build_gateway_app(settings, host)
    config = server_config(settings, app, host, port)
    config.timeout_graceful_shutdown = SHUTDOWN_GRACE_S
    serve_until_stopped(settings, uvicorn.Server(config))
    error = app.state.gateway.startup_error
    if error is not None:
        raise error

