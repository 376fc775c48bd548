"""`aletheia-mcp serve --transport http`: streamable HTTP with bearer tokens and Host/Origin checks.

- With ALETHEIA_HTTP_TOKENS_FILE every request needs `Authorization: Bearer <token>` and acts
  for that token's user. Without it the server refuses to bind anything but loopback.
- DNS-rebinding protection (as the MCP spec asks): the Host and Origin headers must be the
  loopback names or ones listed in ALETHEIA_HTTP_ALLOWED_HOSTS / _ORIGINS.
- Stateless: no session state lives in the process between requests, so replicas behind a load
  balancer can share one PostgreSQL.
- Logs (uvicorn's included) go to stderr like everything else.
"""

from __future__ import annotations

import ipaddress

import uvicorn
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings

from mcp_server.errors import ConfigurationError
from mcp_server.http_auth import SCOPE, FileTokenVerifier
from mcp_server.server import create_server
from mcp_server.settings import Settings

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


def build_app(settings: Settings, host: str, port: int):  # type: ignore[no-untyped-def]
    """The ASGI app (also used by tests and by anyone mounting it behind their own server)."""
    verifier = FileTokenVerifier(settings.http_tokens_file) if settings.http_tokens_file else None
    if verifier is None and not is_loopback(host):
        raise ConfigurationError(
            f"Refusing to serve HTTP on {host} without authentication: set ALETHEIA_HTTP_TOKENS_FILE (create "
            "tokens with `aletheia-mcp tokens add USER`) or bind a loopback address such as 127.0.0.1."
        )
    auth = None
    if verifier is not None:
        base = f"http://{host}:{port}"
        auth = AuthSettings(issuer_url=base, resource_server_url=f"{base}{MCP_PATH}", required_scopes=[SCOPE],
                            validate_token_resource=False)
    mcp = create_server(settings, token_verifier=verifier, auth=auth)
    return mcp.streamable_http_app(streamable_http_path=MCP_PATH, stateless_http=True, json_response=True,
                                   transport_security=security_settings(settings, host, port), host=host)


def run_http(settings: Settings, host: str, port: int) -> None:
    app = build_app(settings, host, port)
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=5)
    uvicorn.Server(config).run()
