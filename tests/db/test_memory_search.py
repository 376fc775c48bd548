"""The keyword side: BM25 over the query's lexemes ORed (rare terms weigh more, long texts are
normalised), its candidates bounded by asking GIN for the uncommon terms only."""

from __future__ import annotations

import asyncpg
import pytest

from mcp_server.app_context import open_app
from mcp_server.db import memories as repo
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
        kafka = await shares.search_terms(conn, "deploy kafka")
        assert kafka is not None and kafka.enumerated_query == "'kafka'" and kafka.rare == ""  # (kafka: read whole)
        # Only common terms: none is read whole; the rows holding the two least common ones are asked.
        common = await shares.search_terms(conn, "deploy note")
        assert common is not None and common.enumerated_query == "" and common.rare == "'deploy' & 'note'"
        # Operators keep the user's query as is.
        assert await shares.search_terms(conn, "deploy -kafka") is None
        assert await shares.search_terms(conn, "the of") is None  # stop words only: no lexeme

        # Every row of the rarest lexemes is read while their expected rows fit the budget: kafka
        # (12 rows) in both budgets; canary (86 rows, 14%: common) never; deploy (all rows) never.
        terms = await shares.search_terms(conn, "deploy kafka canary", population=1.0, budget=50)
        assert terms is not None
        assert dict(zip(terms.lexemes, terms.enumerated, strict=True)) == {
            "kafka": True, "canari": False, "deploy": False}
        vector = HashingEmbedder(settings.embedding_dim).embed_sync(["deploy kafka canary"])[0]
        kafka_rows = {int(i) for i in await conn.fetchval(
            "SELECT array_agg(id) FROM memory_shards WHERE content_tsv @@ 'kafka'::tsquery")}
        records, mode = await repo.search_once(conn, "tester", text="deploy kafka canary", vector=vector,
                                               model=DEFAULT_MODEL, limit=200, source=None, metadata=None,
                                               min_score=None, terms=terms)
        assert mode == "hybrid"
        assert kafka_rows <= {r.id for r in records if r.found_by in ("keywords", "both")}
        # A budget smaller than the rarest lexeme's rows: none is read whole.
        tight = await shares.search_terms(conn, "deploy kafka canary", population=1.0, budget=5)
        assert tight is not None and not any(tight.enumerated)


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
        assert terms is not None and terms.enumerated_query == "'canari' | 'kafka'"  # stemmed; read whole
        records, mode = await repo.search_once(conn, "tester", text=text, vector=None, model=None, limit=10,
                                               source=None, metadata=None, min_score=None, terms=terms)
        assert mode == "lexical"
        contents = [r.content for r in records]
        assert set(contents[:3]) == set(old)  # every term: first, though older than 1,500 partial matches
        assert contents[3:] == [f"deploy note {i}" for i in range(1499, 1492, -1)]  # then the newest partial ones


async def search_lexical(conn: asyncpg.Connection, user: str, text: str, population: float = 0.0) -> list[str]:
    terms = await TableStats("memory_shards").search_terms(conn, text, population=population)
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
        await owner.execute("ANALYZE memory_shards")  # kafka: in 88% of the table's rows
        await owner.close()
        # for this user kafka is in 1 row and retry in 41: the kafka row leads, with the statistics
        # (the user's share of the rows known) and without them
        assert (await search_lexical(conn, "tester", "kafka retry", population=42 / 342))[0] == "kafka consumer lag"
        assert (await search_lexical(conn, "tester", "kafka retry"))[0] == "kafka consumer lag"


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


async def test_a_query_with_operators_is_matched_as_written(settings: Settings) -> None:
    """Quotes and -word keep their meaning, alone and beside a vector."""
    async with open_app(settings, load_in_background=False) as app, app.database.connection() as conn:
        rows = ["kafka consumer lag", "kafka canary deploy", "canary release notes", "lag of the consumer kafka"]
        await conn.executemany(
            "INSERT INTO memory_shards (user_id, content, content_hash) VALUES ('tester', $1, md5($1))",
            [(text,) for text in rows])
        vector = HashingEmbedder(settings.embedding_dim).embed_sync(["kafka"])[0]
        for text, expected in (("kafka -canary", {"kafka consumer lag", "lag of the consumer kafka"}),
                               ('"consumer lag"', {"kafka consumer lag"})):
            assert await TableStats("memory_shards").search_terms(conn, text) is None  # (operators)
            found, mode = await repo.search_once(conn, "tester", text=text, vector=None, model=None, limit=10,
                                                 source=None, metadata=None, min_score=None)
            assert mode == "lexical" and {r.content for r in found} == expected, text
            found, mode = await repo.search_once(conn, "tester", text=text, vector=vector, model=DEFAULT_MODEL,
                                                 limit=10, source=None, metadata=None, min_score=None)
            assert {r.content for r in found if r.found_by != "vector"} == expected, text
