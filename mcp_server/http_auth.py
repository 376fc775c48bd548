"""Bearer tokens for the HTTP transport: a file of token hashes mapped to user ids.

File format (JSON, written by `aletheia-mcp tokens add USER`, mode 0600):
    {"tokens": [{"sha256": "<hex of sha256(token)>", "user_id": "alice", "label": "laptop",
                 "created_at": "2026-11-23T22:00:00+00:00", "expires_at": "2026-12-23T22:00:00+00:00"}]}
`label`, `created_at` and `expires_at` are optional (files written before expiry existed keep working).
Only hashes are stored: a leaked file does not leak tokens. Tokens are 256-bit random strings
(`aletheia_` + url-safe base64), so an unsalted fast hash is enough (no dictionary to attack).
A token's id is the start of its hash: enough to name it in `tokens list`/`revoke`, useless to guess it.
The file is re-read when it changes, so adding or revoking a token needs no restart.

Whoever can write the file can mint a token for any user, so, like ssh with authorized_keys, a file
(or a directory holding it) that other users can write is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from mcp.server.auth.provider import AccessToken

from mcp_server.errors import ConfigurationError

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "aletheia_"
SCOPE = "aletheia"
TOKEN_ID_CHARS = 12
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
LOCK_WAIT_S = 30


@dataclass(frozen=True)
class TokenEntry:
    sha256: str
    user_id: str
    label: str | None
    created_at: datetime | None = None
    expires_at: datetime | None = None

    @property
    def token_id(self) -> str:
        return self.sha256[:TOKEN_ID_CHARS]

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_user_id(user_id: str) -> str:
    """A token's user: not blank (a blank subject would act as the server's own ALETHEIA_USER_ID)."""
    if not isinstance(user_id, str) or not user_id.strip() or any(ord(c) < 32 for c in user_id):
        raise ConfigurationError(f"The user id of a token must be a non-empty string without control characters "
                                 f"(got {user_id!r}).")
    return user_id.strip()


def check_private(path: Path) -> None:
    """Refuse a tokens file that another user could write, directly or by replacing it in its directory."""
    for target, what in ((path, "file"), (path.parent, "directory")):
        try:
            info = target.stat()
        except FileNotFoundError:
            continue
        sticky = stat.S_ISDIR(info.st_mode) and bool(info.st_mode & stat.S_ISVTX)  # /tmp: others cannot replace it
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky:
            raise ConfigurationError(
                f"ALETHEIA_HTTP_TOKENS_FILE {path}: its {what} {target} is writable by other users "
                f"(mode {stat.S_IMODE(info.st_mode):04o}), so anyone could add a token for any user. "
                f"Run `chmod go-w {target}` (ssh refuses such files too)."
            )
        if what == "file" and hasattr(os, "geteuid") and info.st_uid not in (os.geteuid(), 0):
            raise ConfigurationError(
                f"ALETHEIA_HTTP_TOKENS_FILE {path} belongs to another user (uid {info.st_uid}); "
                "it must belong to the user running the server (or root)."
            )


def _timestamp(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"{name} {value!r} has no time zone")
    return parsed


def _entry(raw: dict[str, Any]) -> TokenEntry:
    digest = raw["sha256"]
    if not isinstance(digest, str) or not SHA256_HEX.fullmatch(digest):
        raise ValueError(f"sha256 {digest!r} is not a SHA-256 in hexadecimal")
    label = raw.get("label")
    if label is not None and not isinstance(label, str):
        raise ValueError(f"label {label!r} is not a string")
    return TokenEntry(sha256=digest, user_id=check_user_id(raw["user_id"]), label=label,
                      created_at=_timestamp(raw.get("created_at"), "created_at"),
                      expires_at=_timestamp(raw.get("expires_at"), "expires_at"))


def _read_raw(path: Path) -> dict[str, Any]:
    try:
        if not path.exists():
            return {"tokens": []}
        check_private(path)
        text = path.read_text(encoding="utf-8")
    except OSError as exc:  # a directory in its place, no permission to read it or its directory...
        raise ConfigurationError(f"ALETHEIA_HTTP_TOKENS_FILE {path} cannot be read ({exc.strerror or exc}); "
                                 "it must be a file the server's user can read.") from None
    try:
        data = json.loads(text or "{}")
        if not isinstance(data, dict) or not isinstance(data.setdefault("tokens", []), list):
            raise ValueError("expected {\"tokens\": [...]}")
        for raw in data["tokens"]:
            _entry(raw)
        return data
    except (ConfigurationError, ValueError, KeyError, TypeError, AttributeError) as exc:
        reason = f"an entry has no {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ConfigurationError(f"ALETHEIA_HTTP_TOKENS_FILE {path} is not a valid tokens file ({reason}); correct "
                                 "it, or move it away and create tokens again with `aletheia-mcp tokens add USER`."
                                 ) from None


def read_tokens(path: Path) -> list[TokenEntry]:
    return [_entry(raw) for raw in _read_raw(path)["tokens"]]


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    check_private(path)
    # A fresh, private temporary file, then an atomic rename: a running server never reads half a file.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold the file's lock for a read-modify-write: two `tokens add` at once would otherwise each
    write back what they read, and one token would be lost. (The server only reads, and the atomic
    rename in _write means it needs no lock.)"""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    check_private(path)  # before creating anything in a directory others could tamper with
    lock = FileLock(path.with_name(f".{path.name}.lock"), timeout=LOCK_WAIT_S, mode=0o600)
    try:
        with lock:
            yield
    except Timeout:
        raise ConfigurationError(f"ALETHEIA_HTTP_TOKENS_FILE {path} stayed locked for {LOCK_WAIT_S}s by another "
                                 f"`aletheia-mcp tokens` command; try again once it has finished.") from None


def add_token(path: Path, user_id: str, label: str | None = None, expires_at: datetime | None = None) -> str:
    """Create a token for `user_id`, store its hash, and return the token (shown once)."""
    user_id = check_user_id(user_id)
    now = datetime.now(UTC)
    if expires_at is not None and expires_at <= now:
        raise ConfigurationError(f"The expiry {expires_at.isoformat(timespec='seconds')} is in the past.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    entry: dict[str, Any] = {"sha256": token_hash(token), "user_id": user_id, "label": label,
                             "created_at": now.isoformat(timespec="seconds")}
    if expires_at is not None:
        entry["expires_at"] = expires_at.astimezone(UTC).isoformat(timespec="seconds")
    with _locked(path):
        data = _read_raw(path)
        data["tokens"].append(entry)
        _write(path, data)
    return token


def revoke_tokens(path: Path, id_or_user: str) -> list[TokenEntry]:
    """Remove the token with this id, else every token of this user; return what was removed."""
    no_such = ConfigurationError(f"No token has the id or user {id_or_user!r} in {path}; "
                                 "`aletheia-mcp tokens list` shows them.")
    if not path.exists():
        raise no_such  # (and leave no directory or lock file behind)
    with _locked(path):
        data = _read_raw(path)
        entries = [_entry(raw) for raw in data["tokens"]]
        by_id = [e for e in entries if e.token_id == id_or_user.lower()]
        removed = by_id or [e for e in entries if e.user_id == id_or_user.strip()]
        if not removed:
            raise no_such
        gone = {e.sha256 for e in removed}
        data["tokens"] = [raw for raw in data["tokens"] if raw["sha256"] not in gone]
        _write(path, data)
    return removed


class FileTokenVerifier:
    """The SDK's TokenVerifier protocol over a tokens file (re-read when it changes).

    A file that turns unsafe or unreadable while the server runs refuses every token (fail closed)
    and says why in the log; the server checks it once at start-up too, so it cannot start that way.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, ...] | None = None
        self._entries: list[TokenEntry] = []

    def _load(self) -> list[TokenEntry]:
        try:
            info, folder = self.path.stat(), self.path.parent.stat()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ConfigurationError(f"ALETHEIA_HTTP_TOKENS_FILE {self.path} cannot be read "
                                     f"({exc.strerror or exc}).") from None
        # Content (a rename-over changes the inode), and what makes it safe: a chmod or chown of the
        # file (its ctime) or of its directory is checked again at the next request.
        stamp = (info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_size, folder.st_mode, folder.st_uid)
        if stamp != self._stamp:
            self._entries, self._stamp = read_tokens(self.path), stamp
        return self._entries

    def check(self) -> None:
        """Raise ConfigurationError now if the file is unsafe or not a tokens file."""
        self._stamp = None
        if not self._load():
            logger.warning("no token in %s yet: every request gets 401 until `aletheia-mcp tokens add USER` "
                           "adds one (no restart needed)", self.path)

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            entries = self._load()
        except (ConfigurationError, OSError) as exc:  # fail closed: a 401, never a 500
            self._stamp = None
            logger.error("refusing every token: %s", exc)
            return None
        digest = token_hash(token)
        for entry in entries:
            if hmac.compare_digest(entry.sha256, digest):
                if entry.expired():
                    return None
                expires = int(entry.expires_at.timestamp()) if entry.expires_at else None
                return AccessToken(token=token, client_id=entry.label or entry.user_id, scopes=[SCOPE],
                                   subject=entry.user_id, expires_at=expires)
        return None
