"""Bearer tokens for the HTTP transport: a file of token hashes mapped to user ids.

File format (JSON, written by `aletheia-mcp tokens add USER`, mode 0600):
    {"tokens": [{"sha256": "<hex of sha256(token)>", "user_id": "alice", "label": "laptop",
                 "created_at": "2026-11-23T22:00:00+00:00"}]}
Only hashes are stored: a leaked file does not leak tokens. Tokens are 256-bit random strings
(`aletheia_` + url-safe base64), so an unsalted fast hash is enough (no dictionary to attack).
The file is re-read when it changes, so adding a token needs no restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mcp.server.auth.provider import AccessToken

from mcp_server.errors import ConfigurationError

TOKEN_PREFIX = "aletheia_"
SCOPE = "aletheia"


@dataclass(frozen=True)
class TokenEntry:
    sha256: str
    user_id: str
    label: str | None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def read_tokens(path: Path) -> list[TokenEntry]:
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
        entries = data.get("tokens", [])
        return [TokenEntry(e["sha256"], e["user_id"], e.get("label")) for e in entries]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigurationError(f"ALETHEIA_HTTP_TOKENS_FILE {path} is not a tokens file ({exc}); "
                                 "recreate it with `aletheia-mcp tokens add USER`.") from None


def add_token(path: Path, user_id: str, label: str | None = None) -> str:
    """Create a token for `user_id`, store its hash, and return the token (shown once)."""
    if not user_id.strip() or "\x00" in user_id:
        raise ConfigurationError("The user id of a token must be a non-empty string.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    data = json.loads(existing) if existing.strip() else {"tokens": []}
    data["tokens"].append({"sha256": token_hash(token), "user_id": user_id.strip(), "label": label,
                           "created_at": datetime.now(UTC).isoformat(timespec="seconds")})
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
    temporary.replace(path)  # atomic: a running server never reads half a file
    return token


class FileTokenVerifier:
    """The SDK's TokenVerifier protocol over a tokens file (re-read when its mtime changes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: float | None = None
        self._entries: list[TokenEntry] = []

    def _load(self) -> list[TokenEntry]:
        try:
            stamp = self.path.stat().st_mtime
        except FileNotFoundError:
            return []
        if stamp != self._stamp:
            self._entries, self._stamp = read_tokens(self.path), stamp
        return self._entries

    async def verify_token(self, token: str) -> AccessToken | None:
        digest = token_hash(token)
        for entry in self._load():
            if hmac.compare_digest(entry.sha256, digest):
                return AccessToken(token=token, client_id=entry.label or entry.user_id, scopes=[SCOPE],
                                   subject=entry.user_id)
        return None

    def has_tokens(self) -> bool:
        return bool(self._load())
