"""The schema is Alembic's, on a real PostgreSQL with pgvector: upgrade, downgrade, adoption,
concurrency, the dimension guard, and no drift between the models and the migrations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pgvector.asyncpg import register_vector
from sqlalchemy.engine import Connection

from mcp_server.db import migrate
from mcp_server.db.engine import DatabaseTarget, engine_over
from mcp_server.db.models import metadata
from mcp_server.db.schema_check import shipped_head
from mcp_server.db.vectors import HNSW_EF_CONSTRUCTION, HNSW_M
from mcp_server.embeddings import HashingEmbedder
from mcp_server.errors import EmbeddingDimensionMismatchError
from mcp_server.services.reembed import reembed_with_new_dimension
from mcp_server.settings import Settings
from tests.helpers import HEAD, clean_env, make_settings

pytestmark = pytest.mark.anyio

SEED_SQL = (Path(__file__).parent / "seed_schema.sql").read_text()
TABLES = ("memory_shards", "raw_conversations", "eng_patterns")


def target(url: str) -> DatabaseTarget:
    return DatabaseTarget(url, embedded=False)


async def table_names(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


async def schema_snapshot(url: str) -> list[tuple[object, ...]]:
    """Columns, types and indexes of our tables plus alembic_version: what a migration changes."""
    conn = await asyncpg.connect(url)
    try:
        columns = await conn.fetch(
            "SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY 1, 2"
        )
        dims = await conn.fetch(
            "SELECT c.relname, a.attname, a.atttypmod FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE c.relname = ANY($1::text[]) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2",
            list(TABLES),
        )
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1"
        )
        version: list[asyncpg.Record] = []
        if "alembic_version" in await table_names(url):
            version = await conn.fetch("SELECT version_num FROM alembic_version")
        return [tuple(r) for r in [*columns, *dims, *indexes, *version]]
    finally:
        await conn.close()


async def fetch_all(url: str, sql: str) -> list[dict[str, object]]:
    conn = await asyncpg.connect(url)
    try:
        return [dict(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


async def test_empty_database_upgrades_to_head(database_url: str, settings: Settings) -> None:
    report = await migrate.upgrade(target(database_url), settings)

    assert report.from_revision is None
    assert report.to_revision == shipped_head()
    assert set(TABLES) <= await table_names(database_url)
    indexes = {r["indexname"] for r in await fetch_all(database_url, "SELECT indexname FROM pg_indexes")}
    assert {"ix_memory_shards_embedding_hnsw", "ix_eng_patterns_embedding_hnsw",
            "ix_memory_shards_content_tsv", "uq_memory_shards_user_project_content_hash"} <= indexes
    # The dense HNSW graphs of migration 0013 over half-precision copies (0014), as `build_index`
    # makes them after a reembed.
    options = await fetch_all(database_url, "SELECT relname, reloptions FROM pg_class WHERE relname LIKE '%_hnsw'")
    assert {r["relname"]: sorted(r["reloptions"]) for r in options} == {
        name: sorted([f"m={HNSW_M}", f"ef_construction={HNSW_EF_CONSTRUCTION}"])
        for name in ("ix_memory_shards_embedding_hnsw", "ix_eng_patterns_embedding_hnsw")
    }
    definitions = await fetch_all(database_url, "SELECT indexdef FROM pg_indexes WHERE indexname LIKE '%_hnsw'")
    assert len(definitions) == 2
    for row in definitions:
        assert f"((embedding)::halfvec({settings.embedding_dim})) halfvec_cosine_ops" in row["indexdef"]
    assert await vector_storage(database_url) == {"memory_shards": "m", "eng_patterns": "m"}  # inline (0016)


async def test_new_dimension_keeps_vectors_inline(database_url: str, settings: Settings) -> None:
    # ALTER COLUMN TYPE brings back the type's default storage (EXTENDED): resize sets MAIN again.
    await migrate.upgrade(target(database_url), settings)
    embedder = HashingEmbedder(256)
    conn = await asyncpg.connect(database_url)
    try:
        await register_vector(conn)
        await reembed_with_new_dimension(conn, embedder.embed_documents, embedder.model, 256, 64, None)
    finally:
        await conn.close()
    assert await vector_storage(database_url) == {"memory_shards": "m", "eng_patterns": "m"}


async def vector_storage(database_url: str) -> dict[str, str]:
    rows = await fetch_all(database_url, "SELECT attrelid::regclass::text AS tbl, attstorage FROM pg_attribute "
                                         "WHERE attname = 'embedding' AND attrelid IN "
                                         "('memory_shards'::regclass, 'eng_patterns'::regclass)")
    return {r["tbl"]: r["attstorage"].decode() if isinstance(r["attstorage"], bytes) else r["attstorage"]
            for r in rows}


async def test_round_trip_upgrade_downgrade_upgrade(database_url: str, settings: Settings) -> None:
    first = await migrate.upgrade(target(database_url), settings)
    snapshot = await schema_snapshot(database_url)

    down = await migrate.downgrade(target(database_url), settings, "base")
    assert down.to_revision is None
    assert not set(TABLES) & await table_names(database_url)

    again = await migrate.upgrade(target(database_url), settings)
    assert again.to_revision == first.to_revision
    assert await schema_snapshot(database_url) == snapshot


async def test_each_revision_downgrades_one_step(database_url: str, settings: Settings) -> None:
    await migrate.upgrade(target(database_url), settings)
    script = ScriptDirectory.from_config(migrate.alembic_config(settings))
    revisions = [r.revision for r in script.walk_revisions()]  # head first
    for expected_after in [*revisions[1:], None]:
        report = await migrate.downgrade(target(database_url), settings, "-1")
        assert report.to_revision == expected_after


def test_exactly_one_head(tmp_path: Path) -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config(make_settings(None, tmp_path)))
    assert len(script.get_heads()) == 1
    assert script.get_current_head() == shipped_head()  # the start-up fast path agrees with Alembic
    assert [r.revision for r in script.walk_revisions()] == [f"{i:04d}" for i in range(int(HEAD), 0, -1)]


async def test_models_do_not_drift_from_migrations(database_url: str, settings: Settings) -> None:
    await migrate.upgrade(target(database_url), settings)

    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return [d for d in compare_metadata(context, metadata) if "alembic_version" not in repr(d)]

    conn = await asyncpg.connect(database_url)
    engine = engine_over(conn)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(diff)
    finally:
        await engine.dispose()
    assert differences == []


async def test_unversioned_seed_schema_is_adopted_with_rows_intact(database_url: str, settings: Settings) -> None:
    conn = await asyncpg.connect(database_url)
    await conn.execute(SEED_SQL)
    await conn.close()
    before = await fetch_all(
        database_url, "SELECT id, user_id, content, source, metadata FROM memory_shards ORDER BY id"
    )

    report = await migrate.upgrade(target(database_url), settings)

    assert report.adopted_at == "0006"
    assert report.to_revision == shipped_head()
    after = await fetch_all(database_url, "SELECT id, user_id, content, source, metadata, content_hash, "
                                          "embedding_model FROM memory_shards ORDER BY id")
    assert [{k: r[k] for k in ("id", "user_id", "content", "source", "metadata")} for r in after] == before
    # The first copy of duplicated content owns the hash; the later copy keeps NULL (not deleted).
    hashes = [r["content_hash"] for r in after]
    assert hashes[0] is not None and hashes[2] is None and hashes[3] is not None
    assert after[0]["embedding_model"] == settings.embedding_model
    assert after[1]["embedding_model"] is None
    assert len(await fetch_all(database_url, "SELECT * FROM raw_conversations")) == 1
    patterns = await fetch_all(database_url, "SELECT target_contexts, title FROM eng_patterns")
    assert patterns == [{"target_contexts": ["api/*.py"], "title": None}]


async def test_schema_made_by_create_all_is_adopted_at_head(database_url: str, settings: Settings) -> None:
    conn = await asyncpg.connect(database_url)
    await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    engine = engine_over(conn)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
    finally:
        await engine.dispose()

    report = await migrate.upgrade(target(database_url), settings)
    # create_all makes every table, column and index (0001-0009) but no row-level-security policy (0010).
    assert report.adopted_at == "0009"
    assert report.to_revision == shipped_head()


async def test_partial_seed_schema_is_adopted_at_its_revision(database_url: str, settings: Settings) -> None:
    conn = await asyncpg.connect(database_url)
    await conn.execute(
        "CREATE EXTENSION IF NOT EXISTS vector; "
        "CREATE TABLE memory_shards (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, user_id TEXT NOT NULL, "
        "content TEXT NOT NULL, embedding vector(384), created_at TIMESTAMPTZ NOT NULL DEFAULT now()); "
        "INSERT INTO memory_shards (user_id, content) VALUES ('alice', 'kept')"
    )
    await conn.close()

    report = await migrate.upgrade(target(database_url), settings)

    assert report.adopted_at == "0001"
    rows = await fetch_all(database_url, "SELECT content, metadata FROM memory_shards")
    assert rows == [{"content": "kept", "metadata": "{}"}]


async def test_wrong_embedding_dimension_refuses_and_changes_nothing(
    database_url: str, settings: Settings, tmp_path: Path
) -> None:
    await migrate.upgrade(target(database_url), settings)
    conn = await asyncpg.connect(database_url)
    await conn.execute("INSERT INTO memory_shards (user_id, content) VALUES ('tester', 'keep me')")
    await conn.close()
    before = await schema_snapshot(database_url)
    wrong = make_settings(database_url, tmp_path, embedding_dim=768)

    with pytest.raises(EmbeddingDimensionMismatchError) as caught:
        await migrate.upgrade(target(database_url), wrong)

    message = str(caught.value)
    assert "768" in message and "384" in message and "aletheia-mcp reembed" in message
    assert await schema_snapshot(database_url) == before
    assert await fetch_all(database_url, "SELECT content FROM memory_shards") == [{"content": "keep me"}]


async def test_wrong_dimension_on_older_revision_does_not_migrate(
    database_url: str, settings: Settings, tmp_path: Path
) -> None:
    await migrate.upgrade(target(database_url), settings, "0004")
    with pytest.raises(EmbeddingDimensionMismatchError):
        await migrate.upgrade(target(database_url), make_settings(database_url, tmp_path, embedding_dim=1536))
    assert await migrate.read_revision(target(database_url), settings) == "0004"


def test_four_processes_at_once_migrate_exactly_once(database_url: str, cli_cwd: Path) -> None:
    env = clean_env(DATABASE_URL=database_url, EMBEDDING_PROVIDER="hashing", LOG_LEVEL="INFO")
    procs = [
        subprocess.Popen([sys.executable, "-m", "mcp_server", "db", "upgrade"], cwd=cli_cwd, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]

    assert [rc for rc, _, _ in results] == [0, 0, 0, 0], results
    outputs = [out for _, out, _ in results]
    assert sum(f"Upgraded empty database -> {HEAD}" in o for o in outputs) == 1, outputs
    assert sum(f"Already at {HEAD}" in o for o in outputs) == 3, outputs


async def test_projects_keep_every_row_of_the_previous_release_and_downgrade(
    database_url: str, settings: Settings
) -> None:
    await migrate.upgrade(target(database_url), settings, "0017")
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO memory_shards (user_id, content, content_hash) VALUES ('u', 'old note', md5('old note'));"
            "INSERT INTO eng_patterns (content, title, source_path) VALUES ('Run tests.', 'Testing', 'AGENTS.md');"
            "INSERT INTO raw_conversations (user_id, request_id, messages) VALUES ('u', 'r1', '[]')"
        )
        await migrate.upgrade(target(database_url), settings)
        for table in TABLES:  # every row kept, as a global one
            assert await conn.fetchval(f"SELECT count(*) FILTER (WHERE project_id IS NULL) FROM {table}") == 1

        # Rows that the old identities cannot tell apart: the same memory and the same imported
        # section in a project and globally.
        await conn.execute(
            "INSERT INTO projects (key) VALUES ('github.com/org/a');"
            "INSERT INTO memory_shards (user_id, content, content_hash, project_id) "
            "  SELECT 'u', 'old note', md5('old note'), id FROM projects;"
            "INSERT INTO eng_patterns (content, title, source_path, project_id) "
            "  SELECT 'Run A tests.', 'Testing', 'AGENTS.md', id FROM projects"
        )
        await migrate.downgrade(target(database_url), settings, "0017")
        assert await conn.fetchval("SELECT count(*) FROM memory_shards") == 1  # the same content: kept once
        assert [tuple(r) for r in await conn.fetch("SELECT source_path, content FROM eng_patterns ORDER BY id")] == [
            ("AGENTS.md", "Run tests."), ("github.com/org/a:AGENTS.md", "Run A tests.")]
        assert await conn.fetchval("SELECT to_regclass('projects')") is None
        await migrate.upgrade(target(database_url), settings)  # and up again
    finally:
        await conn.close()


async def test_patterns_of_the_previous_release_start_their_history_and_keep_it_across_a_downgrade(
    database_url: str, settings: Settings
) -> None:
    await migrate.upgrade(target(database_url), settings, "0018")
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("INSERT INTO eng_patterns (content, title, author) VALUES ('Run tests.', 'Testing', 'x')")
        await migrate.upgrade(target(database_url), settings)
        # Who made it is unknown (author is free text); its text today is version 1, to go back to.
        version = await conn.fetchrow("SELECT version, action, changed_by, snapshot FROM eng_pattern_versions")
        assert (version["version"], version["action"], version["changed_by"]) == (1, "baseline", "unknown")
        assert '"content": "Run tests."' in version["snapshot"]
        assert await conn.fetchval("SELECT created_by FROM eng_patterns") is None
        await migrate.downgrade(target(database_url), settings, "0018")
        assert await conn.fetchval("SELECT content FROM eng_patterns") == "Run tests."
        await conn.execute("UPDATE eng_patterns SET content = 'Run all tests.'")  # no trigger left behind
        await migrate.upgrade(target(database_url), settings)
        assert await conn.fetchval("SELECT count(*) FROM eng_pattern_versions") == 1
    finally:
        await conn.close()


async def test_brace_globs_stored_before_get_the_keys_of_their_alternatives(
    database_url: str, settings: Settings
) -> None:
    await migrate.upgrade(target(database_url), settings, "0019")
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("INSERT INTO eng_patterns (content, target_contexts, context_keys) VALUES "
                           "('x', ARRAY['**/*.{ts,tsx}'], ARRAY['e:{ts,tsx}']), "
                           "('y', ARRAY['api/*.py'], ARRAY['d:api'])")
        await migrate.upgrade(target(database_url), settings)
        keys = [r["context_keys"] for r in await conn.fetch("SELECT context_keys FROM eng_patterns ORDER BY id")]
        assert keys == [["e:ts", "e:tsx"], ["d:api"]]
        assert await conn.fetchval("SELECT count(*) FROM eng_pattern_versions WHERE version > 1") == 0
    finally:
        await conn.close()


async def test_exchanges_of_the_previous_release_get_empty_gateway_columns_and_survive_a_downgrade(
    database_url: str, settings: Settings
) -> None:
    await migrate.upgrade(target(database_url), settings, "0020")
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("INSERT INTO raw_conversations (user_id, request_id, messages, response) "
                           "VALUES ('u', 'old', '[{\"role\": \"user\", \"content\": \"hi\"}]', '\"hello\"')")
        await migrate.upgrade(target(database_url), settings)
        old = await conn.fetchrow("SELECT endpoint, request, stream, outcome, ttft_ms, usage, replay_of, messages "
                                  "FROM raw_conversations")
        assert old is not None and [old[k] for k in list(old.keys())[:-1]] == [None] * 7
        assert old["messages"] == '[{"role": "user", "content": "hi"}]'
        index = await conn.fetchval("SELECT indexdef FROM pg_indexes "
                                    "WHERE indexname = 'ix_raw_conversations_replay_of'")
        assert index.endswith("(replay_of) WHERE (replay_of IS NOT NULL)")
        await conn.execute("INSERT INTO raw_conversations (user_id, request_id, messages, endpoint, replay_of) "
                           "SELECT 'u', 'again', messages, '/v1/messages', id FROM raw_conversations")
        await migrate.downgrade(target(database_url), settings, "0020")
        assert await conn.fetchval("SELECT count(*) FROM raw_conversations") == 2  # a replay stays, unlinked
        assert await conn.fetchval("SELECT to_regclass('ix_raw_conversations_replay_of')") is None
        await migrate.upgrade(target(database_url), settings)
    finally:
        await conn.close()
