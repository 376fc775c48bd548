"""The schema as SQLAlchemy tables: the reference the migrations are checked against.

Alembic owns the schema (migrations/versions); these declarations must describe exactly what
the migrations build at head with default settings (a test compares the two). The hot paths do
not build ORM objects: repositories run SQL through asyncpg and read plain records.
"""

from __future__ import annotations

from pgvector.sqlalchemy import HALFVEC, Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Computed,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    cast,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR

from mcp_server.db.vectors import HNSW_EF_CONSTRUCTION, HNSW_M

DEFAULT_EMBEDDING_DIM = 384

metadata = MetaData()

MEMORY_TSV_EXPRESSION = "to_tsvector('english'::regconfig, content)"
PATTERN_TSV_EXPRESSION = (
    "setweight(to_tsvector('english'::regconfig, COALESCE(title, ''::text)), 'A'::\"char\") || "
    "setweight(to_tsvector('english'::regconfig, content), 'B'::\"char\")"
)
CONVERSATION_TSV_EXPRESSION = (
    "(jsonb_to_tsvector('english'::regconfig, messages, '[\"string\"]'::jsonb) || "
    "jsonb_to_tsvector('english'::regconfig, COALESCE(response, '{}'::jsonb), '[\"string\"]'::jsonb))"
)
HNSW_OPTIONS = {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION}

projects = Table(
    "projects",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("key", Text, nullable=False),
    Column("display_name", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("uq_projects_key", "key", unique=True),
)

memory_shards = Table(
    "memory_shards",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("user_id", Text, nullable=False),
    Column("content", Text, nullable=False),
    Column("embedding", Vector(DEFAULT_EMBEDDING_DIM), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("source", Text, nullable=True),
    Column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # 0007: full-text search, embedding provenance, de-duplication
    Column("content_tsv", TSVECTOR, Computed(MEMORY_TSV_EXPRESSION, persisted=True)),
    Column("embedding_model", Text, nullable=True),
    Column("content_hash", Text, nullable=True),
    # 0018
    Column("project_id", BigInteger, nullable=True),
    Index("ix_memory_shards_user_id_id", "user_id", "id"),
    Index("ix_memory_shards_metadata", "metadata", postgresql_using="gin",
          postgresql_ops={"metadata": "jsonb_path_ops"}),
    Index("ix_memory_shards_content_tsv", "content_tsv", postgresql_using="gin"),
    Index("uq_memory_shards_user_project_content_hash", "user_id", text("(COALESCE(project_id, 0::bigint))"),
          "content_hash", unique=True),
    Index("ix_memory_shards_awaiting_embedding", "id", postgresql_where=text("embedding IS NULL")),
)

raw_conversations = Table(
    "raw_conversations",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("request_id", Text, nullable=True),
    Column("user_id", Text, nullable=True),
    Column("provider", Text, nullable=True),
    Column("model", Text, nullable=True),
    Column("messages", JSONB, nullable=False),
    Column("response", JSONB, nullable=True),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=True),
    # 0009
    Column("content_tsv", TSVECTOR, Computed(CONVERSATION_TSV_EXPRESSION, persisted=True)),
    Column("memory_ids", ARRAY(BigInteger), nullable=False, server_default=text("'{}'::bigint[]")),
    Column("pattern_ids", ARRAY(BigInteger), nullable=False, server_default=text("'{}'::bigint[]")),
    Column("redactions", Integer, nullable=False, server_default=text("0")),
    # 0018
    Column("project_id", BigInteger, nullable=True),
    # 0021: calls captured by the gateway, and replays
    Column("endpoint", Text, nullable=True),
    Column("request", JSONB, nullable=True),
    Column("stream", Boolean, nullable=True),
    Column("outcome", Text, nullable=True),
    Column("ttft_ms", Integer, nullable=True),
    Column("usage", JSONB, nullable=True),
    Column("replay_of", BigInteger, nullable=True),
    Index("ix_raw_conversations_replay_of", "replay_of", postgresql_where=text("replay_of IS NOT NULL")),
    Index("ix_raw_conversations_content_tsv", "content_tsv", postgresql_using="gin"),
    Index("ix_raw_conversations_user_request", "user_id", "request_id"),
    Index("ix_raw_conversations_user_created", "user_id", text("created_at DESC")),
    Index("ix_raw_conversations_created_at", "created_at"),
    Index("ix_raw_conversations_user_id", "user_id"),
    Index("ix_raw_conversations_request_id", "request_id"),
)

eng_patterns = Table(
    "eng_patterns",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("content", Text, nullable=False),
    Column("tags", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("strategy_type", Text, nullable=True),
    Column("target_contexts", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("last_updated", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("author", Text, nullable=True),
    Column("embedding", Vector(DEFAULT_EMBEDDING_DIM), nullable=True),
    Column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # 0007
    Column("title", Text, nullable=True),
    Column("embedding_model", Text, nullable=True),
    Column("content_tsv", TSVECTOR, Computed(PATTERN_TSV_EXPRESSION, persisted=True)),
    # 0008
    Column("context_keys", ARRAY(Text), nullable=False, server_default=text("'{*}'::text[]")),
    Column("source_path", Text, nullable=True),
    # 0018
    Column("project_id", BigInteger, nullable=True),
    # 0019: set by a trigger from the acting user (aletheia.user_id), never by the application
    Column("created_by", Text, nullable=True),
    Column("updated_by", Text, nullable=True),
    Index("ix_eng_patterns_tags", "tags", postgresql_using="gin"),
    Index("ix_eng_patterns_context_keys", "context_keys", postgresql_using="gin"),
    Index("uq_eng_patterns_source", text("(COALESCE(project_id, 0::bigint))"), "source_path",
          text("(COALESCE(title, ''::text))"), unique=True, postgresql_where=text("source_path IS NOT NULL")),
    Index("ix_eng_patterns_strategy_type", "strategy_type"),
    Index("ix_eng_patterns_last_updated", text("last_updated DESC")),
    Index("ix_eng_patterns_content_tsv", "content_tsv", postgresql_using="gin"),
)

# 0019: every change of a pattern (written by a trigger on eng_patterns; the application only reads)
eng_pattern_versions = Table(
    "eng_pattern_versions",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("pattern_id", BigInteger, nullable=False),
    Column("version", Integer, nullable=False),
    Column("action", Text, nullable=False),
    Column("changed_by", Text, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("note", Text, nullable=True),
    Column("snapshot", JSONB, nullable=False),
    Index("uq_eng_pattern_versions_pattern_version", "pattern_id", "version", unique=True),
)


# 0022: what the coding agents' hooks gave each session (services/hooks.py)
hook_injections = Table(
    "hook_injections",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("user_id", Text, nullable=False),
    Column("client", Text, nullable=False),
    Column("session_id", Text, nullable=False),
    Column("event", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("item_id", BigInteger, nullable=True),
    Column("file_path", Text, nullable=True),
    Column("prompt_id", Text, nullable=True),
    Column("exchange_id", BigInteger, nullable=True),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_hook_injections_session", "user_id", "client", "session_id", "id"),
)

# HNSW over half-precision copies of the vectors (migration 0014, vectors.indexed_vector). An
# index on an expression over a table's column attaches itself to that table.
for _table in (memory_shards, eng_patterns):
    Index(f"ix_{_table.name}_embedding_hnsw",
          cast(_table.c.embedding, HALFVEC(DEFAULT_EMBEDDING_DIM)).label("embedding_halfvec"),
          postgresql_using="hnsw", postgresql_ops={"embedding_halfvec": "halfvec_cosine_ops"},
          postgresql_with=HNSW_OPTIONS)
