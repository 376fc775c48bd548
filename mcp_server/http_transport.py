"""`aletheia-mcp serve --transport http`: streamable HTTP with bearer tokens and Host/Origin checks.

- With ALETHEIA_HTTP_TOKENS_FILE every request needs `Authorization: Bearer <token>` and acts
  for that token's user. Without it the server refuses to bind anything but loopback.
- The tokens are static bearer tokens, not OAuth: a 401 names no authorization server and no
  protected-resource metadata is served, so a client asks its user for a token instead of starting
  an OAuth flow that could not finish.
- DNS-rebinding protection (as the MCP spec asks): the Host and Origin headers must be the
  loopback names or ones listed in ALETHEIA_HTTP_ALLOWED_HOSTS / _ORIGINS.
- Slow clients are cut off: a whole request must arrive within ALETHEIA_HTTP_REQUEST_TIMEOUT_S,
  an idle keep-alive connection closes after ALETHEIA_HTTP_IDLE_TIMEOUT_S, and beyond
  ALETHEIA_HTTP_MAX_CONNECTIONS connections requests get 503.
- Stateless: no session state lives in the process between requests, so replicas behind a load
  balancer can share one PostgreSQL.
- SIGTERM shuts down like SIGINT: requests in flight finish, then the embedded PostgreSQL is released.
- Logs (uvicorn's included) go to stderr like everything else.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import threading
from types import FrameType

import h11
import uvicorn
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from uvicorn.protocols.http.h11_impl import H11Protocol

from mcp_server.app_context import release_database
from mcp_server.errors import ConfigurationError
from mcp_server.http_auth import SCOPE, FileTokenVerifier
from mcp_server.server import create_server
from mcp_server.settings import Settings

logger = logging.getLogger(__name__)

MCP_PATH = "/mcp"
LOOPBACK_NAMES = {"localhost"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def security_settings(settings: Settings, host: str, port: int) -> TransportSecuritySettings:
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", *settings.http_allowed_hosts]
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*", *settings.http_allowed_origins]
    if not is_loopback(host) and host not in ("0.0.0.0", "::"):
        hosts.append(f"{host}:*")
        origins += [f"http://{host}:*", f"https://{host}:*"]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                     allowed_origins=origins)


def build_app(settings: Settings, host: str, port: int) -> Starlette:
    """The ASGI app (also used by tests and by anyone mounting it behind their own server)."""
    verifier = FileTokenVerifier(settings.http_tokens_file.expanduser()) if settings.http_tokens_file else None
    if verifier is None and not is_loopback(host):
        raise ConfigurationError(
            f"Refusing to serve HTTP on {host} without authentication: set ALETHEIA_HTTP_TOKENS_FILE (create "
            "tokens with `aletheia-mcp tokens add USER`) or bind a loopback address such as 127.0.0.1."
        )
    auth = None
    if verifier is not None:
        verifier.check()  # an unsafe or broken tokens file stops the start, with the reason
        # No resource_server_url: the SDK would then put `resource_metadata=` in every 401 and serve
        # /.well-known/oauth-protected-resource naming `issuer_url` as the authorization server, and
        # there is none (tokens come from `aletheia-mcp tokens add`). The SDK requires an issuer_url
        # in AuthSettings; without a resource_server_url or an OAuth provider it is published nowhere.
        auth = AuthSettings(issuer_url=f"http://{host}:{port}", resource_server_url=None, required_scopes=[SCOPE])
    mcp = create_server(settings, token_verifier=verifier, auth=auth)
    return mcp.streamable_http_app(streamable_http_path=MCP_PATH, stateless_http=True, json_response=True,
                                   transport_security=security_settings(settings, host, port), host=host)


class RequestDeadlineProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, plus a deadline for receiving each whole request.

    uvicorn has an idle timeout (keep-alive) but no read timeout: its keep-alive timer starts only
    after a response and any byte cancels it, so a client that opens a connection and sends nothing,
    or trickles a request a byte at a time, keeps the connection (and a place under the connection
    limit) for ever. Here a request (headers and body) must be complete within `request_timeout_s`
    of the moment the server starts reading it: the connection opening, the request's first byte,
    or for a pipelined request sent behind another, the end of the answer to the one before (the
    server reads no request while it answers one). Otherwise the connection closes.

    The state is h11's, read after every event that can change it (connection made, data received,
    response complete), so no path (pipelining, an answer sent before the body arrived, a deadline
    passing while the app answers) leaves a partly received request without a deadline. This relies
    on uvicorn's internals (`conn`, `cycle`, `on_response_complete`): pyproject.toml pins the range.
    """

    request_timeout_s: float = 30.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._follow_request()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow_request()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start on a request already buffered behind this one
        self._follow_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _receiving(self) -> bool:
        """Whether the server is reading a request that has not fully arrived.

        Not while the app answers a request that is in (their_state DONE: bytes of a next request
        wait unread), nor on an idle kept-alive connection (the keep-alive timer's business).
        """
        if self.transport.is_closing():
            return False
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            return True
        # IDLE: a request started (bytes buffered), or none yet on a new connection (self.cycle is None).
        return state is h11.IDLE and (self.cycle is None or bool(self.conn.trailing_data[0]))

    def _follow_request(self) -> None:
        if not self._receiving():
            self._cancel_deadline()
        elif self._deadline is None:
            # A request that ends and the next that starts within one read (after an answer sent
            # before the body was in) share a deadline: stricter, never looser.
            self._deadline = self.loop.call_later(self.request_timeout_s, self._on_deadline)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _on_deadline(self) -> None:
        self._deadline = None
        if self._receiving():  # always, as every change of state re-arms or cancels; kept as a guard
            logger.info("closed a connection from %s: no whole request within %ss", self.client,
                        self.request_timeout_s)
            self.transport.close()


def server_config(settings: Settings, app: Starlette, host: str, port: int) -> uvicorn.Config:
    protocol = type("RequestDeadlineProtocol", (RequestDeadlineProtocol,),
                    {"request_timeout_s": settings.http_request_timeout_s})
    return uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=5,
        http=protocol, ws="none",
        timeout_keep_alive=settings.http_idle_timeout_s,
        # uvicorn answers 503 once the open connections, this one included, reach the limit: one
        # more, so that ALETHEIA_HTTP_MAX_CONNECTIONS connections are served.
        limit_concurrency=settings.http_max_connections + 1,
    )


def run_http(settings: Settings, host: str, port: int) -> None:
    app = build_app(settings, host, port)
    serve_until_stopped(settings, uvicorn.Server(server_config(settings, app, host, port)))


def serve_until_stopped(settings: Settings, server: uvicorn.Server) -> None:
    """Run `server` until SIGINT or SIGTERM, then release the embedded database (also used by the gateway)."""
    if threading.current_thread() is threading.main_thread():
        # uvicorn shuts down gracefully on SIGTERM as on SIGINT, then raises the signal again with the
        # handler it found. Python's default for SIGTERM ends the process there and then: no `finally`,
        # no exit hooks, so the embedded PostgreSQL kept this process in its list of users for ever.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        server.run()
    finally:
        release_database(settings)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)  # a requested shutdown that completed
