"""Keep secrets out of everything we print, log or return."""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """Return `url` with any password replaced by `***` (user, host, port and database kept)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable database URL>"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    user = parts.username or ""
    netloc = f"{user}:***@{host}{port}"
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, parts.query, parts.fragment))
