"""Settings from the environment and `.env` (pydantic-settings).

Every setting has its documented environment name (README.md, Settings); `.env.example` lists them all.
Secrets are `SecretStr` so that they never appear in a log line or a repr.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mcp_server.schemas import EmbeddingProvider


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("aletheia", appauthor=False))


def _default_user_id() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (some containers): fall back to a stable id
        return f"uid-{os.getuid()}" if hasattr(os, "getuid") else "default"


def _env(name: str) -> AliasChoices:
    """Accept the documented environment name; tests may also pass the field name."""
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
    )

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
        description="fastembed's model cache (Hugging Face layout); a pre-filled cache works offline.",
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
    max_content_chars: int = Field(default=20_000, ge=100, le=1_000_000, validation_alias=_env("MAX_CONTENT_CHARS"))
    max_response_chars: int = Field(
        default=60_000, ge=2_000, le=10_000_000, validation_alias=_env("MAX_RESPONSE_CHARS"),
        description="Largest tool result (JSON characters); lists are cut short, long texts shortened.",
    )
    hnsw_ef_search: int = Field(
        default=128, ge=10, le=1000, validation_alias=_env("HNSW_EF_SEARCH"),
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

    # --- logging --------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", validation_alias=_env("LOG_LEVEL")
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url", mode="before")
    @classmethod
    def _blank_url_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def pgdata_dir(self) -> Path:
        return self.data_dir.expanduser() / "pgdata"
