"""What the hook client and the hook server share: names, limits, where the server listens, the wire format.

Standard library only, and only the cheap parts of it: the hook client imports this on every hook.

Wire format: one JSON line each way over a Unix socket. The request is
`{"v": 1, "client": str, "event": str, "payload": <the hook's stdin text>, "cwd": str}`, the answer
`{"stdout": str, "error": str | null}`.

One server per configuration: the socket's name carries a key over every environment variable that
configures us and the bytes of the user's settings file, so a hook run with another DATABASE_URL,
user or embedder never talks to a server holding a different one.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import sys
from collections.abc import Mapping
from typing import Any

from mcp_server import __version__

PROTOCOL_VERSION = 1

# The neutral event names of `aletheia-mcp hook EVENT`; each client adapter maps them to its own.
EVENTS = ("session-start", "prompt", "file", "stop")
# The coding agents with adapters (mcp_server/hooks/clients/ADAPTERS: a test keeps both lists equal).
CLIENTS = ("claude-code", "codex", "gemini", "cursor")
DEFAULT_CLIENT = "claude-code"

# The most of a hook's stdin read. Claude Code's PreToolUse payload for a Write carries the whole file.
MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
# A request line holds the payload escaped as a JSON string (at worst 6 bytes per byte, \\uXXXX).
MAX_REQUEST_BYTES = 6 * MAX_PAYLOAD_BYTES + 64 * 1024
# The most of an answer read: context is capped at 10,000 characters (HOOK_CONTEXT_CHARS).
MAX_ANSWER_BYTES = 1024 * 1024
# The longest the server works on one hook's answer before it answers with an error instead: the
# agent waits for prompt and file hooks on every prompt and tool call, so a hung database must not
# cost it more than a moment there; session-start and stop happen once a session / turn and may
# read more (Stop reads a transcript). Claude Code's own hook timeout is 60 s.
ANSWER_DEADLINES_S = {"session-start": 30.0, "prompt": 3.0, "file": 3.0, "stop": 30.0}
# The client waits this much longer than the server's deadline, so that the server's own "too slow"
# answer (which the hooks log keeps) normally arrives first; a hung server is still given up on.
ANSWER_GRACE_S = 2.0
DEFAULT_START_TIMEOUT_S = 10.0  # HOOK_START_TIMEOUT_S's default (settings.py)

ENV_FILE_VARIABLE = "ALETHEIA_ENV_FILE"
# Every environment name a setting is read from (settings.Settings; a test checks this covers them all).
SETTING_VARIABLES = frozenset({
    "ALETHEIA_DATA_DIR", "ALETHEIA_ENV_FILE", "ALETHEIA_HTTP_ALLOWED_HOSTS", "ALETHEIA_HTTP_ALLOWED_ORIGINS",
    "ALETHEIA_HTTP_IDLE_TIMEOUT_S", "ALETHEIA_HTTP_MAX_CONNECTIONS", "ALETHEIA_HTTP_REQUEST_TIMEOUT_S",
    "ALETHEIA_HTTP_TOKENS_FILE", "ALETHEIA_PATTERN_MAINTAINERS", "ALETHEIA_PROJECT", "ALETHEIA_USER_ID",
    "CONVERSATION_RETENTION_DAYS", "DATABASE_URL", "DB_CONNECT_TIMEOUT_S", "DB_POOL_MAX_SIZE",
    "EMBEDDING_API_BASE", "EMBEDDING_BATCH_SIZE", "EMBEDDING_CACHE_DIR", "EMBEDDING_DIM",
    "EMBEDDING_MAX_RETRIES", "EMBEDDING_MODEL", "EMBEDDING_MODEL_PATH", "EMBEDDING_PROVIDER",
    "EMBEDDING_TIMEOUT_S", "FASTEMBED_CACHE_PATH", "GATEWAY_ANTHROPIC_UPSTREAM", "GATEWAY_OPENAI_UPSTREAM",
    "GATEWAY_QUEUE_SIZE", "GATEWAY_UPSTREAM_TIMEOUT_S", "HNSW_EF_SEARCH", "HOOK_CONTEXT_CHARS",
    "HOOK_MIN_SCORE", "HOOK_PROMPT_MEMORIES", "HOOK_SERVER_IDLE_S", "HOOK_START_TIMEOUT_S", "LOG_LEVEL",
    "MAX_CONTENT_CHARS", "MAX_EXCHANGE_BYTES", "MAX_RESPONSE_CHARS", "OPENAI_API_KEY",
    "PGVECTOR_ENABLE_IVFFLAT", "PGVECTOR_IVFFLAT_LISTS", "REDACT_EXTRA_PATTERNS", "REDACT_SECRETS",
})
# Variables that change a setting's default (the data and config directories, the login name behind
# ALETHEIA_USER_ID's default) or the database connection (libpq's PG* variables, which asyncpg reads).
DEFAULT_SHAPING_VARIABLES = frozenset({"HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "LOGNAME", "USER", "LNAME",
                                       "USERNAME"})
# Settings only the hook client reads: a hook that waits longer still talks to the same server.
CLIENT_ONLY_VARIABLES = frozenset({"HOOK_START_TIMEOUT_S"})
_SETTINGS_FILE_PEEK_BYTES = 1024 * 1024


class HookFailure(Exception):
    """A hook that cannot answer: the message is the one line the user sees (stderr, hooks.log)."""


class ServerPaths:
    """The files of the one server for a configuration, all in one private directory. (A plain class:
    `dataclasses` imports `inspect`, ~7 ms of every hook's start.)"""

    def __init__(self, directory: str, key: str) -> None:
        self.directory = directory
        self.key = key

    @property
    def socket(self) -> str:
        return os.path.join(self.directory, f"hooks-{self.key}.sock")

    @property
    def lock(self) -> str:  # held by the hook starting the server, so that only one starts
        return os.path.join(self.directory, f"hooks-{self.key}.lock")

    @property
    def pid(self) -> str:
        return os.path.join(self.directory, f"hooks-{self.key}.pid")

    @property
    def failed(self) -> str:  # when and why the last start failed (client.py), removed by a start that works
        return os.path.join(self.directory, f"hooks-{self.key}.failed")


def configuring_environment(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """The (name, value) pairs of the environment that configure a server, sorted. Settings names are
    matched ignoring case, as pydantic-settings reads them."""
    pairs = [(name, value) for name, value in environ.items()
             if ((upper := name.upper()) in SETTING_VARIABLES and upper not in CLIENT_ONLY_VARIABLES)
             or upper in DEFAULT_SHAPING_VARIABLES or upper.startswith("PG")]
    return sorted(pairs)


def settings_file(environ: Mapping[str, str]) -> str | None:
    """The settings file the server would read (settings.user_env_file, without its checks: the server
    refuses a bad one and the hook reports that)."""
    named = environ.get(ENV_FILE_VARIABLE)
    if named is not None:
        return os.path.expanduser(named) if named.strip() else None
    return os.path.join(_user_config_dir(environ), ".env")


def _user_config_dir(environ: Mapping[str, str]) -> str:
    """platformdirs.user_config_dir("aletheia", appauthor=False) (settings.default_env_file). Spelled out
    for Linux, where it is the XDG rule, to spare every hook importing platformdirs (~20 ms); a test
    checks both agree."""
    system: str = sys.platform  # (a variable: mypy would judge the other branch unreachable)
    if system.startswith("linux"):
        base = environ.get("XDG_CONFIG_HOME", "").strip() or os.path.expanduser("~/.config")
        return os.path.join(base, "aletheia")
    import platformdirs

    return platformdirs.user_config_dir("aletheia", appauthor=False)


def server_key(environ: Mapping[str, str]) -> str:
    """First 16 hex digits of a SHA-256 over what configures the server: the environment's settings,
    the settings file's bytes, and the installation that would run it."""
    digest = hashlib.sha256()
    # The installation (a virtual environment's prefix, the package's folder), not sys.executable, which
    # differs between `.venv/bin/python` and the console script's `.venv/bin/python3`.
    installed = [sys.prefix, os.path.dirname(os.path.abspath(__file__)), __version__]
    digest.update(json.dumps([configuring_environment(environ), installed]).encode())
    path = settings_file(environ)
    if path is not None:
        try:
            with open(path, "rb") as handle:
                digest.update(b"\0file\0" + handle.read(_SETTINGS_FILE_PEEK_BYTES))
        except OSError:
            digest.update(b"\0no file\0")  # (the server says what is wrong with it)
    return digest.hexdigest()[:16]


def answer_deadline_s(event: str) -> float:
    """How long the server may take over an `event` hook (ANSWER_DEADLINES_S)."""
    return ANSWER_DEADLINES_S.get(event, max(ANSWER_DEADLINES_S.values()))


def runtime_directory(environ: Mapping[str, str]) -> str:
    """`$XDG_RUNTIME_DIR/aletheia`, else `/tmp/aletheia-<uid>`: created 0700, and refused when another
    user owns it or can enter it (in /tmp, someone else could have made it first)."""
    runtime = environ.get("XDG_RUNTIME_DIR", "").strip()
    directory = (os.path.join(runtime, "aletheia") if runtime
                 else os.path.join("/tmp", f"aletheia-{os.getuid()}"))
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise HookFailure(f"cannot create the hooks' socket directory {directory}: {exc.strerror}") from None
    check_private_directory(directory)
    return directory


def check_private_directory(directory: str) -> None:
    """HookFailure unless `directory` is a directory (not a link to one) of this user that only this
    user can open: no one else may put a socket of theirs where ours is looked for."""
    import stat

    try:
        info = os.lstat(directory)
    except OSError as exc:
        raise HookFailure(f"cannot use the hooks' socket directory {directory}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise HookFailure(f"refusing the hooks' socket directory {directory}: it must be a directory of yours "
                          f"that only you can open (mode 0700); remove it and run the hook again")


# struct xucred (macOS, <sys/ucred.h>): u_int cr_version, uid_t cr_uid, short cr_ngroups, gid_t cr_groups[16].
_XUCRED_SIZE = 76
_SOL_LOCAL = 0  # (macOS <sys/un.h>)
_LOCAL_PEERCRED = 1


def can_tell_peers() -> bool:
    """Whether peer_uid can tell who is at the other end of a connection on this system."""
    return hasattr(socket, "SO_PEERCRED") or sys.platform == "darwin"


def peer_uid(connection: socket.socket) -> int | None:
    """The user id of the process at the other end of a connected Unix socket (for a client, the one
    that made the listening socket), from the kernel: SO_PEERCRED on Linux, LOCAL_PEERCRED (what
    getpeereid reads) on macOS; None where neither exists."""
    if hasattr(socket, "SO_PEERCRED"):
        credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("iII"))
        return int(struct.unpack("iII", credentials)[1])  # struct ucred: pid, uid, gid
    if sys.platform == "darwin":
        credentials = connection.getsockopt(_SOL_LOCAL, getattr(socket, "LOCAL_PEERCRED", _LOCAL_PEERCRED),
                                            _XUCRED_SIZE)
        return int(struct.unpack_from("I", credentials, 4)[0])
    return None


def server_paths(environ: Mapping[str, str]) -> ServerPaths:
    return ServerPaths(runtime_directory(environ), server_key(environ))


def encode_request(*, client: str, event: str, payload: str, cwd: str) -> bytes:
    message = {"v": PROTOCOL_VERSION, "client": client, "event": event, "payload": payload, "cwd": cwd}
    return json.dumps(message).encode() + b"\n"


def encode_answer(stdout: str, error: str | None) -> bytes:
    return json.dumps({"stdout": stdout, "error": error}).encode() + b"\n"


def decode_line(line: bytes, what: str) -> dict[str, Any]:
    """One JSON object line; HookFailure naming `what` when it is not one."""
    try:
        value = json.loads(line)
    except ValueError:
        raise HookFailure(f"the {what} is not JSON") from None
    if not isinstance(value, dict):
        raise HookFailure(f"the {what} is not a JSON object")
    return value
