"""The keyword side: BM25 over the query's lexemes ORed (rare terms weigh more, long texts are
normalised), its candidates bounded by asking GIN for the uncommon terms only."""

from __future__ import annotations

import asyncpg
import pytest

from mcp_server.app_context import open_app
from mcp_server.db import memories as repo
from mcp_server.db.hybrid_query import PER_TERM_CANDIDATES
from mcp_server.db.planner_stats import TableStats
from mcp_server.embeddings import HashingEmbedder
from mcp_server.embeddings.hashing import DEFAULT_MODEL
from mcp_server.settings import Settings

pytestmark = pytest.mark.anyio


async def test_rare_terms_pick_uncommon_lexemes_and_keep_the_matches(settings: Settings, database_url: str) -> None:
    async with open_app(settings, load_in_background=False) as app, app.database.connection() as conn:
        rows = [(f"deploy note {i}" + (" kafka" if i % 50 == 0 else "") + (" canary" if i % 7 == 0 else ""),)
                for i in range(600)]
        await conn.executemany(
            "INSERT INTO memory_shards (user_id, content, content_hash) VALUES ('tester', $1, md5($1))", rows
        )
        owner = await asyncpg.connect(database_url)  # ANALYZE needs the owner, not the app role
        await owner.execute("ANALYZE memory_shards")
        await owner.close()

        shares = TableStats("memory_shards")
        assert (await shares.shares(conn))["deploy"] == pytest.approx(1.0)
        assert await shares.rare_terms(conn, "deploy kafka") == "'kafka'"
        # Only common terms: the two least common ones go to the index.
        assert await shares.rare_terms(conn, "deploy note") == "'deploy' & 'note'"
        # Operators keep the user's query as is.
        assert await shares.rare_terms(conn, "deploy -kafka") is None
        assert await shares.rare_terms(conn, "the of") is None  # stop words only: no lexeme

        vector = HashingEmbedder(settings.embedding_dim).embed_sync(["deploy kafka canary"])[0]
        holding = {lexeme: {int(i) for i in await conn.fetchval(
            "SELECT array_agg(id) FROM memory_shards WHERE content_tsv @@ $1::tsquery", lexeme)}
            for lexeme in ("kafka", "canari")}
        for text, rare in (("deploy kafka", {"kafka"}), ("deploy canary", {"canari"}),
                           ("deploy kafka canary", {"kafka"})):  # (canary: in 14% of rows, common)
            # With the statistics (only the uncommon terms asked of the index) or without them (every
            # term counted, the rarest asked): the newest PER_TERM_CANDIDATES rows holding the rare
            # term are found by keywords (kafka: all 12 of them).
            for terms in (None, await shares.search_terms(conn, text)):
                records, mode = await repo.search_once(conn, "tester", text=text, vector=vector,
                                                       model=DEFAULT_MODEL, limit=200, source=None, metadata=None,
                                                       min_score=None, terms=terms)
                assert mode == "hybrid"
                by_keywords = {r.id for r in records if r.found_by in ("keywords", "both")}
                expected = set().union(*(sorted(holding[lexeme])[-PER_TERM_CANDIDATES:] for lexeme in rare))
                assert expected <= by_keywords, (text, terms)


async def test_keyword_only_search_ranks_old_full_matches_above_many_newer_partial_ones(
    settings: Settings, database_url: str
) -> None:
    """Without a query vector (embedder down) the ranked candidates are bounded to the newest
    matches; rows matching every term must still come first however old they are."""
    async with open_app(settings, load_in_background=False) as app, app.database.connection() as conn:
        old = ["kafka canary deploy for payments", "kafka canary deploy for search", "canary deploy kafka brokers"]
        newer = [f"deploy note {i}" for i in range(1500)]  # newer rows sharing only the common word
        await conn.executemany(
            "INSERT INTO memory_shards (user_id, content, content_hash) VALUES ('tester', $1, md5($1))",
            [(text,) for text in old + newer],
        )
        owner = await asyncpg.connect(database_url)
        await owner.execute("ANALYZE memory_shards")
        await owner.close()

        text = "deploy kafka canary"
        terms = await TableStats("memory_shards").search_terms(conn, text)
        assert terms is not None and terms.rare == "'canari' & 'kafka'"  # stemmed
        records, mode = await repo.search_once(conn, "tester", text=text, vector=None, model=None, limit=10,
                                               source=None, metadata=None, min_score=None, terms=terms)
        assert mode == "lexical"
        contents = [r.content for r in records]
        assert set(contents[:3]) == set(old)  # every term: first, though older than 1,500 partial matches
        assert contents[3:] == [f"deploy note {i}" for i in range(1499, 1492, -1)]  # then the newest partial ones


async def search_lexical(conn: asyncpg.Connection, user: str, text: str) -> list[str]:
    terms = await TableStats("memory_shards").search_terms(conn, text)
    records, mode = await repo.search_once(conn, user, text=text, vector=None, model=None, limit=10, source=None,
                                           metadata=None, min_score=None, terms=terms)
    assert mode == "lexical"
    return [r.content for r in records]


async def test_a_rare_term_outweighs_a_common_one_and_short_texts_lead(settings: Settings) -> None:
    """BM25: a row holding the query's rare word ranks above newer rows holding its common word
    (ts_rank_cd weighed every word alike, newest first on ties), and of two rows holding the same
    words once the shorter ranks first (ts_rank_cd did not normalise by length)."""
    async with open_app(settings, load_in_background=False) as app, app.database.connection() as conn:
        rows = ["zookeeper quorum lost", "zookeeper leader election " + " ".join(f"filler{i}" for i in range(60))]
        rows += [f"deploy step {i}" for i in range(300)]  # newer, each holding the common word
        await conn.executemany(
            "INSERT INTO memory_shards (user_id, content, content_hash) VALUES ('tester', $1, md5($1))",
            [(text,) for text in rows])
        found = await search_lexical(conn, "tester", "deploy zookeeper")
        assert found[:2] == rows[:2]  # the rare word first, the short row before the long one
        assert found[2] == "deploy step 299"  # then the common word's rows, newest first


async def test_term_weights_are_per_user(settings: Settings, database_url: str) -> None:
    """A word common in another user's rows but rare in this user's still weighs as rare for this
    user (documents counted under row-level security and the user filter)."""
    async with open_app(settings, load_in_background=False) as app, app.database.connection() as conn:
        rows = [("other", f"kafka topic {i}") for i in range(300)]
        rows += [("tester", "kafka consumer lag"), ("tester", "retry policy budget")]
        rows += [("tester", f"retry note {i}") for i in range(40)]
        owner = await asyncpg.connect(database_url)  # (another user's rows: the app role may not write them)
        await owner.executemany(
            "INSERT INTO memory_shards (user_id, content, content_hash) VALUES ($1, $2, md5($1 || $2))", rows)
        await owner.close()
        found = await search_lexical(conn, "tester", "kafka retry")
        # for this user kafka is in 1 row and retry in 41: the kafka row leads
        assert found[0] == "kafka consumer lag"


async def test_an_old_row_holding_every_uncommon_word_is_found_under_many_newer_rows_of_each(
    settings: Settings, database_url: str
) -> None:
    """Each word's candidates are its newest rows only: a row holding both, older than hundreds of
    newer rows of each word (both still uncommon), must still be a candidate, and lead."""
    async with open_app(settings, load_in_background=False) as app, app.database.connection() as conn:
        await conn.execute("INSERT INTO memory_shards (user_id, content, content_hash) SELECT 'tester', "
                           "'filler word ' || i, md5('f' || i) FROM generate_series(1, 14000) i")
        await conn.execute("INSERT INTO memory_shards (user_id, content, content_hash) "
                           "VALUES ('tester', 'alpha beta', md5('alpha beta'))")
        for word in ("alpha", "beta"):
            await conn.execute("INSERT INTO memory_shards (user_id, content, content_hash) SELECT 'tester', "
                               f"'{word} note ' || i, md5('{word}' || i) FROM generate_series(1, 350) i")
        owner = await asyncpg.connect(database_url)
        await owner.execute("ANALYZE memory_shards")
        await owner.close()
        assert (await search_lexical(conn, "tester", "alpha beta"))[0] == "alpha beta"
