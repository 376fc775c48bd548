"""aletheia-mcp measured over stdio: start-up, import, recall (plain and filtered), remember,
and recall@10 of the vector ranking against exact search."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector

from bench.corpus import Corpus
from bench.harness import WARMUP_CALLS, RssSampler, stdio_session, timed_calls
from bench.head_to_head import Contender
from mcp_server.app_context import open_app
from mcp_server.db.vectors import MEMORIES, build_index, indexed_vector
from mcp_server.embeddings import HashingEmbedder
from mcp_server.embeddings.hashing import DEFAULT_MODEL
from mcp_server.settings import Settings

MODEL = DEFAULT_MODEL
USER = "bench"
LIMIT = 10


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "EMBEDDING_MODEL_PATH"}}
    env.update(ALETHEIA_DATA_DIR=str(data_dir), EMBEDDING_PROVIDER="hashing", EMBEDDING_MODEL=MODEL,
               ALETHEIA_USER_ID=USER, LOG_LEVEL="WARNING")
    env.update(extra)
    return env


def settings_for(data_dir: Path) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, embedding_provider="hashing", embedding_model=MODEL,
                    user_id=USER, log_level="WARNING")


async def time_to_first_response(data_dir: Path) -> float:
    started = time.perf_counter()
    async with stdio_session(sys.executable, ["-m", "mcp_server", "serve"], server_env(data_dir)) as client:
        result = await client.call_tool("server_status", {})
        assert not result.is_error
        return round(time.perf_counter() - started, 3)


async def load_corpus(corpus: Corpus, data_dir: Path) -> dict[str, Any]:
    """`memories import` (COPY path, embeddings excluded), then vectors and one HNSW build."""
    settings = settings_for(data_dir)
    lines = [json.dumps({"content": t, "source": "bench", "metadata": {"group": g}})
             for t, g in zip(corpus.texts, corpus.groups, strict=True)]
    async with open_app(settings, load_in_background=False) as app:
        started = time.perf_counter()
        report = await app.memories.import_jsonl(lines)
        import_s = time.perf_counter() - started
        assert report.inserted == len(corpus), report
        dsn = app.database.target.dsn
        async with app.database.connection() as conn:
            rows = await conn.fetch("SELECT id, content FROM memory_shards WHERE user_id = $1 ORDER BY id", USER)
        started = time.perf_counter()
        vectors = HashingEmbedder(settings.embedding_dim, model=MODEL).embed_sync([r["content"] for r in rows])
        embed_s = time.perf_counter() - started
    # Rebuilding the index needs the owner (the login role), not the app role the pool works as.
    conn = await asyncpg.connect(dsn)
    try:
        await register_vector(conn)
        started = time.perf_counter()
        async with conn.transaction():
            await conn.execute(f"DROP INDEX IF EXISTS {MEMORIES.hnsw_index}")
            await conn.execute("CREATE TEMP TABLE bench_vectors (id bigint, embedding vector) ON COMMIT DROP")
            await conn.copy_records_to_table("bench_vectors", records=[(r["id"], v) for r, v in zip(rows, vectors,
                                                                                                strict=True)])
            await conn.execute("UPDATE memory_shards m SET embedding = v.embedding, embedding_model = $1 "
                               "FROM bench_vectors v WHERE m.id = v.id", MODEL)
            await conn.execute("SET LOCAL maintenance_work_mem = '2GB'")
            await build_index(conn, MEMORIES, ivfflat_lists=None)
        await conn.execute("VACUUM ANALYZE memory_shards")
        index_s = time.perf_counter() - started
    finally:
        await conn.close()
    return {"import_rows": report.inserted, "import_s": round(import_s, 3),
            "import_rows_per_s": round(report.inserted / import_s), "embed_s": round(embed_s, 2),
            "vectors_and_index_build_s": round(index_s, 2)}


async def vector_recall_at_10(corpus: Corpus, data_dir: Path, n_queries: int = 300) -> float:
    """Share of the HNSW top-10 (server settings) that belongs to the exact top-10 (sequential scan).

    The approximate side orders by the indexed expression, as the server's search does (and the
    plan is checked: ordering by anything else would silently measure an exact scan). Distances
    are full precision on both sides. Tie-aware, like the peers' figure: a returned row as close
    as the exact 10th counts as a hit.
    """
    settings = settings_for(data_dir)
    embedder = HashingEmbedder(settings.embedding_dim, model=MODEL)
    dim = settings.embedding_dim
    async with open_app(settings, load_in_background=False) as app, app.database.connection() as conn:
        select = ("SELECT id, embedding <=> $1 AS distance FROM memory_shards WHERE user_id = $2 "
                  "AND embedding_model = $3 ORDER BY {} LIMIT 10")
        sql = select.format(f"{indexed_vector('embedding', dim)} <=> {indexed_vector('$1::vector', dim)}")
        exact_sql = select.format("embedding <=> $1")
        # A small table may be cheaper to scan than to search: the index is what is measured here.
        await conn.execute("SET enable_seqscan = off; SET enable_bitmapscan = off")
        vector = embedder.embed_sync(corpus.queries[:1])[0]
        plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}", vector, USER, MODEL))
        if MEMORIES.hnsw_index not in plan:
            raise AssertionError(f"the recall@10 query does not use {MEMORIES.hnsw_index}:\n{plan}")
        total = 0.0
        for query in corpus.queries[:n_queries]:
            vector = embedder.embed_sync([query])[0]
            approximate = await conn.fetch(sql, vector, USER, MODEL)
            async with conn.transaction():
                await conn.execute("SET LOCAL enable_seqscan = on; SET LOCAL enable_indexscan = off")
                exact = await conn.fetch(exact_sql, vector, USER, MODEL)
            if not exact:
                continue
            tenth = max(r["distance"] for r in exact)
            hits = sum(1 for r in approximate if r["distance"] <= tenth + 1e-9)
            total += min(hits, len(exact)) / len(exact)
    return round(total / n_queries, 4)


async def bench_ours(corpus: Corpus, workdir: Path, calls: int) -> dict[str, Any]:
    data_dir = workdir / f"ours-{len(corpus)}"
    shutil.rmtree(data_dir, ignore_errors=True)
    result: dict[str, Any] = {"system": "aletheia-mcp", "n": len(corpus)}
    result["cold_start_s"] = await time_to_first_response(data_dir)
    result["load"] = await load_corpus(corpus, data_dir)
    result["warm_start_s"] = await time_to_first_response(data_dir)
    result["recall_at_10"] = await vector_recall_at_10(corpus, data_dir)

    queries = corpus.query_series(calls + WARMUP_CALLS)
    rng = np.random.default_rng(7)
    groups = rng.integers(0, 100, size=len(queries)).tolist()

    with RssSampler() as rss:
        async with stdio_session(sys.executable, ["-m", "mcp_server", "serve"], server_env(data_dir)) as client:
            await client.call_tool("server_status", {})
            result["recall"] = (await timed_calls(client, "recall", [{"query": q, "limit": LIMIT} for q in queries]))\
                .as_dict()
            result["recall_filtered"] = (await timed_calls(
                client, "recall",
                [{"query": q, "limit": LIMIT, "metadata": {"group": g}} for q, g in zip(queries, groups, strict=True)],
                check=full_page,
            )).as_dict()
            notes = [f"benchmark remember {i}: {q}" for i, q in enumerate(queries)]
            result["remember"] = (await timed_calls(client, "remember", [{"content": n} for n in notes])).as_dict()
            result["log_exchange_4kb"] = (await timed_calls(client, "log_exchange", exchanges(len(queries))))\
                .as_dict()
    result["peak_rss_mb"] = rss.peak_mb
    return result


def full_page(found: dict[str, Any]) -> None:
    if len(found["results"]) != LIMIT:
        raise AssertionError(f"recall returned {len(found['results'])} results, wanted {LIMIT}")


def ours_contender(corpus: Corpus, workdir: Path) -> Contender:
    """Our server again on the store bench_ours loaded, for the head-to-head series."""
    data_dir = workdir / f"ours-{len(corpus)}"
    return Contender("aletheia-mcp", partial(stdio_session, sys.executable, ["-m", "mcp_server", "serve"],
                                             server_env(data_dir)),
                     "recall", lambda query: {"query": query, "limit": LIMIT}, full_page)


def exchanges(count: int) -> list[dict[str, Any]]:
    """~4 KB exchanges (OpenAI shape) with a secret in one of every ten, each with its own request_id."""
    body = ("Refactor the retry helper so that it backs off exponentially with jitter and logs each attempt. "
            * 10)[:1800]
    calls = []
    for i in range(count):
        secret = f" token ghp_{i:04d}{'a1B2' * 8}" if i % 10 == 0 else ""
        calls.append({"messages": [{"role": "system", "content": "You are a senior engineer."},
                                   {"role": "user", "content": body + secret}],
                      "response": {"content": body}, "model": "gpt-4o", "provider": "openai",
                      "request_id": f"bench-{i}", "status_code": 200, "latency_ms": 900})
    return calls


async def connect(data_dir: Path) -> asyncpg.Connection:  # for ad-hoc inspection while tuning
    from mcp_server.db.engine import resolve_target

    target = await resolve_target(settings_for(data_dir))
    return await asyncpg.connect(target.dsn)
