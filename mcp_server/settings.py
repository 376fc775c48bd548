"""Settings from the environment and a settings file the user owns (pydantic-settings).

Every setting has its documented environment name (README.md, Settings); `.env.example` lists them all.
Secrets are `SecretStr` so that they never appear in a log line or a repr.

Where settings come from, strongest first: the environment, then one file: the one
`ALETHEIA_ENV_FILE` names (empty: none), else `~/.config/aletheia/.env` when it exists. Never a
`.env` in the working directory: clients start the server inside whatever repository is open, and
a repository's file could point the embedder (with the user's API key) or `DATABASE_URL` anywhere,
or turn redaction off. A settings file writable by other users, or owned by another user, is
refused, as ssh refuses such key files.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import stat
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.sources import ENV_FILE_SENTINEL, DotenvType

from mcp_server.errors import ConfigurationError
from mcp_server.schemas import EmbeddingProvider

logger = logging.getLogger(__name__)

ENV_FILE_VARIABLE = "ALETHEIA_ENV_FILE"
# Keys only this application reads: a working-directory `.env` holding one of them was meant for us.
_OUR_KEY_PREFIXES = ("ALETHEIA_", "EMBEDDING_", "REDACT_", "MAX_", "HNSW_", "PGVECTOR_", "CONVERSATION_")


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("aletheia", appauthor=False))


def _default_user_id() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (some containers): fall back to a stable id
        return f"uid-{os.getuid()}" if hasattr(os, "getuid") else "default"


def default_env_file() -> Path:
    return Path(platformdirs.user_config_dir("aletheia", appauthor=False)) / ".env"


def user_env_file() -> Path | None:
    """The settings file to read: the one ALETHEIA_ENV_FILE names ("" for none), else the user's own
    `~/.config/aletheia/.env` when it exists. Raises ConfigurationError for a file that is missing
    (when named) or that someone else could have written."""
    named = os.environ.get(ENV_FILE_VARIABLE)
    if named is not None:
        if not named.strip():
            return None
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigurationError(f"{ENV_FILE_VARIABLE} names {path}, which is not a file: create it, or unset "
                                     f"{ENV_FILE_VARIABLE} to use {default_env_file()}.")
    else:
        path = default_env_file()
        if not path.is_file():
            return None
    _check_owned_by_user(path)
    return path


def _check_owned_by_user(path: Path) -> None:
    info = path.stat()
    if hasattr(os, "getuid") and info.st_uid not in (os.getuid(), 0):
        raise ConfigurationError(f"Refusing the settings file {path}: it belongs to another user (uid "
                                 f"{info.st_uid}). Settings may come only from a file you own.")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigurationError(f"Refusing the settings file {path}: other users can write to it, so they could "
                                 f"redirect your API key or database. Fix it with `chmod go-w {path}`.")


# The most of a working-directory `.env` looked at (to name its keys): a repository's file could be huge.
_ENV_PEEK_BYTES = 64 * 1024


def ignored_working_directory_env(read: Path | None) -> tuple[Path, list[str]] | None:
    """A `.env` in the working directory that was not read, with the names of the settings it holds
    (names only: never a value), or None when there is none or it holds none of ours."""
    candidate = Path(".env")
    try:
        if not candidate.is_file() or (read is not None and candidate.resolve() == read.resolve()):
            return None
        with candidate.open("rb") as handle:
            lines = handle.read(_ENV_PEEK_BYTES).decode("utf-8", errors="replace").splitlines()
    except OSError:
        return None
    keys = (line.split("=", 1)[0].strip().removeprefix("export ").strip().upper() for line in lines if "=" in line)
    ours = sorted({k for k in keys if k in _setting_names()})
    return (candidate.resolve(), ours) if ours else None


def _setting_names() -> set[str]:
    """Every environment name a setting is read from (DATABASE_URL, EMBEDDING_PROVIDER, ...)."""
    names = {ENV_FILE_VARIABLE}
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        names |= {c.upper() for c in choices if isinstance(c, str)}
    return names


def announce_settings_source(settings: Settings) -> None:
    """Say on stderr which settings file was read, and that a working-directory `.env` was not."""
    if settings.env_file is not None:
        logger.info("settings: read %s (the environment wins over it)", settings.env_file)
    ignored = ignored_working_directory_env(settings.env_file)
    if ignored is None:
        return
    path, keys = ignored
    # Keys only we read (ALETHEIA_*, EMBEDDING_*, ...) were surely meant for us: a warning. Shared
    # names (DATABASE_URL, OPENAI_API_KEY) are usually the repository's own application's: a note,
    # for whoever relied on such a file before it stopped being read.
    level = logging.WARNING if any(k.startswith(_OUR_KEY_PREFIXES) for k in keys) else logging.INFO
    logger.log(level, "settings: ignored %s (it sets %s): a working directory's .env is never read, since a "
               "repository could redirect your keys. If they are meant for aletheia, put them in %s or name the "
               "file with %s=%s.", path, ", ".join(keys), default_env_file(), ENV_FILE_VARIABLE, path)


def _env(name: str) -> AliasChoices:
    """Accept the documented environment name; tests may also pass the field name."""
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=None,  # chosen per instance in __init__: see user_env_file
        env_file_encoding="utf-8",
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
    )

    _env_file_read: Path | None = PrivateAttr(default=None)

    def __init__(self, _env_file: DotenvType | None = ENV_FILE_SENTINEL, **values: Any) -> None:
        """`Settings()` reads the environment and the user's settings file; `_env_file=None` only
        the environment and the given values (tests), `_env_file=PATH` that file."""
        if _env_file == ENV_FILE_SENTINEL:
            _env_file = user_env_file()
        super().__init__(_env_file=_env_file, **values)
        self._env_file_read = Path(_env_file) if isinstance(_env_file, str | os.PathLike) else None

    @property
    def env_file(self) -> Path | None:
        """The settings file these settings were read from, if any."""
        return self._env_file_read

    # --- database -------------------------------------------------------------------------
    database_url: SecretStr | None = Field(
        default=None,
        validation_alias=_env("DATABASE_URL"),
        description="PostgreSQL URL (postgresql://, postgresql+psycopg://, postgresql+asyncpg://). "
        "Unset: an embedded PostgreSQL in ALETHEIA_DATA_DIR/pgdata.",
    )
    data_dir: Path = Field(default_factory=_default_data_dir, validation_alias=_env("ALETHEIA_DATA_DIR"))
    db_connect_timeout_s: float = Field(default=10.0, gt=0, validation_alias=_env("DB_CONNECT_TIMEOUT_S"))
    db_pool_max_size: int = Field(default=10, ge=1, le=200, validation_alias=_env("DB_POOL_MAX_SIZE"))

    # --- identity -------------------------------------------------------------------------
    user_id: str = Field(
        default_factory=_default_user_id, min_length=1, validation_alias=_env("ALETHEIA_USER_ID")
    )
    project: str | None = Field(
        default=None, validation_alias=_env("ALETHEIA_PROJECT"),
        description="The project rows belong to. Unset: the git repository of the working directory "
        "(its origin remote, else its root path); outside any repository, no project (global rows only).",
    )

    # --- embeddings -----------------------------------------------------------------------
    embedding_provider: EmbeddingProvider = Field(
        default="fastembed", validation_alias=_env("EMBEDDING_PROVIDER")
    )
    embedding_model: str = Field(default="BAAI/bge-small-en-v1.5", validation_alias=_env("EMBEDDING_MODEL"))
    embedding_dim: int = Field(default=384, ge=1, le=16000, validation_alias=_env("EMBEDDING_DIM"))
    embedding_api_base: str = Field(
        default="https://api.openai.com/v1", validation_alias=_env("EMBEDDING_API_BASE")
    )
    openai_api_key: SecretStr | None = Field(default=None, validation_alias=_env("OPENAI_API_KEY"))
    embedding_model_path: Path | None = Field(
        default=None,
        validation_alias=_env("EMBEDDING_MODEL_PATH"),
        description="A local model directory (fastembed ONNX or sentence-transformers): works offline.",
    )
    embedding_cache_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("FASTEMBED_CACHE_PATH", "EMBEDDING_CACHE_DIR", "embedding_cache_dir"),
        description="fastembed's model cache (Hugging Face layout; default: fastembed/ in the user's cache "
                    "directory, ~/.cache/aletheia/fastembed on Linux); a pre-filled cache works offline.",
    )
    embedding_timeout_s: float = Field(
        default=10.0, gt=0, le=600, validation_alias=_env("EMBEDDING_TIMEOUT_S"),
        description="Longest a tool call waits for the embedder (model load or API call).",
    )
    embedding_batch_size: int = Field(default=64, ge=1, le=2048, validation_alias=_env("EMBEDDING_BATCH_SIZE"))
    embedding_max_retries: int = Field(default=3, ge=0, le=10, validation_alias=_env("EMBEDDING_MAX_RETRIES"))

    # --- vector indexes -------------------------------------------------------------------
    pgvector_enable_ivfflat: bool = Field(default=False, validation_alias=_env("PGVECTOR_ENABLE_IVFFLAT"))
    pgvector_ivfflat_lists: int = Field(
        default=100, ge=1, le=32768, validation_alias=_env("PGVECTOR_IVFFLAT_LISTS")
    )

    # --- limits and search ------------------------------------------------------------------
    max_content_chars: int = Field(
        # Public rule files reach ~30,000 characters; at 50,000 a memory still comes back whole from
        # get_memory under the default MAX_RESPONSE_CHARS. Above ~400,000 PostgreSQL's text index
        # (1 MB a row) could refuse a text of short distinct words.
        default=50_000, ge=100, le=200_000, validation_alias=_env("MAX_CONTENT_CHARS"),
        description="Longest memory, in characters.",
    )
    max_response_chars: int = Field(
        default=60_000, ge=2_000, le=10_000_000, validation_alias=_env("MAX_RESPONSE_CHARS"),
        description="Largest tool result (JSON characters); lists are cut short, long texts shortened.",
    )
    # 120: recall@10 0.956 at 100k memories on half-precision HNSW (m 24) over 300 benchmark queries
    # (112: 0.951, 128: 0.959), for less walk than 128; `make bench` reports it on its own corpus.
    hnsw_ef_search: int = Field(
        default=120, ge=10, le=1000, validation_alias=_env("HNSW_EF_SEARCH"),
        description="HNSW candidate list size per query: higher = better recall, slower.",
    )

    # --- conversations --------------------------------------------------------------------
    redact_secrets: bool = Field(default=True, validation_alias=_env("REDACT_SECRETS"))
    redact_extra_patterns: list[str] = Field(
        default_factory=list, validation_alias=_env("REDACT_EXTRA_PATTERNS"),
        description='Extra regexes to redact, as a JSON list: ["ACME-[0-9]{8}"].',
    )
    max_exchange_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576,
                                    validation_alias=_env("MAX_EXCHANGE_BYTES"))
    conversation_retention_days: int | None = Field(
        default=None, ge=1, validation_alias=_env("CONVERSATION_RETENTION_DAYS"),
        description="When set, exchanges older than this are purged at start-up.",
    )

    # --- patterns -------------------------------------------------------------------------
    pattern_maintainers: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("ALETHEIA_PATTERN_MAINTAINERS"),
        description="User ids allowed to add, change, import, delete and restore patterns, comma-separated "
        "(alice,bob). Empty (the default): every user may.",
    )

    # --- HTTP transport -------------------------------------------------------------------
    http_tokens_file: Path | None = Field(
        default=None, validation_alias=_env("ALETHEIA_HTTP_TOKENS_FILE"),
        description="Bearer tokens (hashes) -> user ids; `aletheia-mcp tokens add USER` writes it.",
    )
    http_allowed_hosts: list[str] = Field(
        default_factory=list, validation_alias=_env("ALETHEIA_HTTP_ALLOWED_HOSTS"),
        description='Extra Host headers accepted (DNS-rebinding protection), JSON list: ["mcp.example.com:*"].',
    )
    http_allowed_origins: list[str] = Field(
        default_factory=list, validation_alias=_env("ALETHEIA_HTTP_ALLOWED_ORIGINS"),
        description='Extra Origin headers accepted, JSON list: ["https://app.example.com"].',
    )
    http_request_timeout_s: float = Field(
        default=30.0, gt=0, le=600, validation_alias=_env("ALETHEIA_HTTP_REQUEST_TIMEOUT_S"),
        description="Seconds a client has to send a whole request (headers and body), counted from the connection "
        "or from the request's first byte; a slower client is disconnected. The answer's time is not limited.",
    )
    http_idle_timeout_s: int = Field(
        default=5, ge=1, le=3600, validation_alias=_env("ALETHEIA_HTTP_IDLE_TIMEOUT_S"),
        description="Seconds a keep-alive connection may stay idle between requests before it is closed.",
    )
    http_max_connections: int = Field(
        default=100, ge=1, le=100_000, validation_alias=_env("ALETHEIA_HTTP_MAX_CONNECTIONS"),
        description="Connections served at once; a request arriving on one more connection gets 503.",
    )

    # --- logging gateway (`aletheia-mcp gateway`) -----------------------------------------
    gateway_openai_upstream: str = Field(
        default="https://api.openai.com", validation_alias=_env("GATEWAY_OPENAI_UPSTREAM"),
        description="Where OpenAI-API calls go (any OpenAI-compatible server: vLLM, Ollama, LM Studio, a proxy); "
        "the gateway appends the request's path (/v1/...).",
    )
    gateway_anthropic_upstream: str = Field(
        default="https://api.anthropic.com", validation_alias=_env("GATEWAY_ANTHROPIC_UPSTREAM"),
        description="Where Anthropic-API calls go; the gateway appends the request's path (/v1/...).",
    )
    gateway_upstream_timeout_s: float = Field(
        default=600.0, gt=0, le=3600, validation_alias=_env("GATEWAY_UPSTREAM_TIMEOUT_S"),
        description="Longest the gateway waits for the upstream to connect, or between two pieces of its answer.",
    )
    gateway_queue_size: int = Field(
        default=1000, ge=1, le=1_000_000, validation_alias=_env("GATEWAY_QUEUE_SIZE"),
        description="Captured calls held in memory while they wait to be stored; more (or any while the database "
        "is away) wait in a file in ALETHEIA_DATA_DIR/gateway-spool until it takes them.",
    )

    # --- hooks (`aletheia-mcp hook EVENT`) ------------------------------------------------
    hook_context_chars: int = Field(
        default=6_000, ge=500, le=10_000, validation_alias=_env("HOOK_CONTEXT_CHARS"),
        description="Most characters one hook adds to the model's context. At most 10,000: Claude Code replaces "
        "longer hook context by a file and a 2 KB preview.",
    )
    hook_prompt_memories: int = Field(
        default=3, ge=0, le=10, validation_alias=_env("HOOK_PROMPT_MEMORIES"),
        description="Most memories added for one prompt (only those above the relevance floor; 0 turns it off).",
    )
    hook_min_score: float | None = Field(
        default=None, ge=0.0, le=1.0, validation_alias=_env("HOOK_MIN_SCORE"),
        description="Relevance floor (cosine similarity) for memories added to a prompt. Unset: calibrated per "
        "embedding provider and model.",
    )
    hook_server_idle_s: float = Field(
        default=900.0, gt=0, le=86_400, validation_alias=_env("HOOK_SERVER_IDLE_S"),
        description="The hooks' background process (it keeps the database pool and the embedder warm) exits "
        "after this many idle seconds; the next hook starts it again.",
    )
    hook_start_timeout_s: float = Field(
        default=10.0, gt=0, le=120, validation_alias=_env("HOOK_START_TIMEOUT_S"),
        description="Longest a hook waits for that background process to start; past it the hook adds nothing.",
    )

    # --- logging --------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", validation_alias=_env("LOG_LEVEL")
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("pattern_maintainers", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):  # a JSON list, as the other list settings take
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("gateway_openai_upstream", "gateway_anthropic_upstream")
    @classmethod
    def _upstream_origin(cls, value: str) -> str:
        """An http(s) URL; a trailing `/v1` (as SDK base URLs are written) is dropped, since the gateway
        appends the request's whole path."""
        text = value.strip().rstrip("/")
        if not text.startswith(("http://", "https://")) or len(text.split("://", 1)[1]) == 0:
            raise ValueError(f"{value!r} is not an http:// or https:// URL (e.g. https://api.openai.com)")
        return text.removesuffix("/v1")

    @field_validator("database_url", mode="before")
    @classmethod
    def _blank_url_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def pgdata_dir(self) -> Path:
        return self.data_dir.expanduser() / "pgdata"
