"""The keyword ranking's cost stays bounded whatever the query's words (hybrid_query._bm25_keywords,
planner_stats.TableStats.search_terms), without losing the row a long query is about.

- A paragraph-long query asks for every row of at most MAX_ENUMERATED_TERMS of its lexemes, and the
  row holding its rarest words still comes first.
- The newest rows holding any of the words are found through the GIN index: each tsquery is a
  bound parameter the planner can estimate. Written as an SQL expression (the code before issue
  17) its selectivity was a guess, and PostgreSQL walked the primary key backwards through the
  whole table looking for the few matching rows (review REV17, M1).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import asyncpg
import numpy as np
import pytest

from mcp_server.app_context import open_app
from mcp_server.db import memories as repo
from mcp_server.db.hybrid_query import HybridQuery, build_sql
from mcp_server.db.planner_stats import MAX_ENUMERATED_TERMS, TableStats
from mcp_server.settings import Settings

pytestmark = pytest.mark.anyio

# Sixty words: three held by one old row only; more than MAX_ENUMERATED_TERMS the table has never
# seen (a paragraph's other words), spelt two ways: which row is found must not depend on how the
# words it does not hold are spelt; the rest held by the table: five common ones (each in a fifth of
# the rows) and uncommon ones (each in a few dozen rows), every row holding one of each kind.
RARE = ["quokka", "narwhal", "axolotl"]
ABSENT_WORDS = MAX_ENUMERATED_TERMS + 2
PRESENT = [f"topic{j:02d}" for j in range(60 - len(RARE) - ABSENT_WORDS)]
TARGET = "the quokka met a narwhal and an axolotl"


async def analyze(database_url: str) -> None:
    owner = await asyncpg.connect(database_url)  # ANALYZE needs the owner, not the app role
    try:
        await owner.execute("ANALYZE memory_shards")
    finally:
        await owner.close()


@pytest.mark.parametrize("absent", ["unseen"])
async def test_a_sixty_word_query_reads_few_lexemes_whole_and_finds_the_row_of_its_rarest_words(
    settings: Settings, database_url: str, absent: str
) -> None:
    async with open_app(settings, load_in_background=False) as app, app.database.connection() as conn:
        await conn.execute("INSERT INTO memory_shards (user_id, content, content_hash) "
                           "VALUES ('tester', $1, md5($1))", TARGET)
        # newer than the target
        rows = [f"entry {i} {PRESENT[i % 5]} {PRESENT[5 + i % (len(PRESENT) - 5)]}" for i in range(3000)]
        await conn.executemany("INSERT INTO memory_shards (user_id, content, content_hash) "
                               "VALUES ('tester', $1, md5($1))", [(text,) for text in rows])
        await analyze(database_url)

        words = PRESENT + RARE + [f"{absent}{j}" for j in range(ABSENT_WORDS)]
        assert len(words) == 60
        text = " ".join(words)
        # As a keyword-only recall asks (no vector: the user's share of the rows is not looked up).
        terms = await TableStats("memory_shards").search_terms(conn, text)
        assert terms is not None and len(terms.lexemes) == 60
        read_whole = [lexeme for lexeme, whole in zip(terms.lexemes, terms.enumerated, strict=True) if whole]
        assert 0 < len(read_whole) <= MAX_ENUMERATED_TERMS
        assert terms.enumerated_query.count("|") == len(read_whole) - 1

        records, mode = await repo.search_once(conn, "tester", text=text, vector=None, model=None, limit=10,
                                               source=None, metadata=None, min_score=None, terms=terms)
        assert mode == "lexical"
        assert records[0].content == TARGET  # three words no other row holds: first, though the oldest
        # The same through the search entry point (statistics, then the statement).
        found, _ = await repo.search(app.database, "tester", text=text, vector=None, model=None, limit=10)
        assert found[0].content == TARGET



def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


async def keyword_plan(conn: asyncpg.Connection, text: str) -> tuple[list[dict[str, Any]], str]:
    """The plan's nodes of user 'tester''s keyword-only recall of `text` (the statement
    memories.search_once builds, with the terms memories.search asks for), and its any-word tsquery."""
    terms = await TableStats("memory_shards").search_terms(conn, text)
    assert terms is not None
    query = HybridQuery(table="memory_shards", columns="t.id, t.content", text=text, limit=10, terms=terms)
    query.filters.append(f"t.user_id = {query.params.add('tester')}")
    sql, values, mode = build_sql(query)
    assert mode == "lexical"
    explained = json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *values))
    return list(nodes(explained[0]["Plan"])), terms.any_query


@pytest.mark.parametrize("words", [3])
async def test_the_newest_rows_of_any_word_are_found_through_the_text_index(
    settings: Settings, database_url: str, words: int
) -> None:
    """Two old rows hold the query's words, 20,000 newer ones none: the any-word scan (newest
    LEX_ANY_CANDIDATES) must ask the GIN index, not walk the primary key back through every row."""
    async with open_app(settings, load_in_background=False) as app, app.database.connection() as conn:
        await conn.execute("INSERT INTO memory_shards (user_id, content, content_hash) VALUES "
                           "('tester', 'flamingo colony count', md5('a')), ('tester', 'pelican nesting', md5('b'))")
        await conn.execute("INSERT INTO memory_shards (user_id, content, content_hash) SELECT 'tester', "
                           "'routine entry ' || i, md5('r' || i) FROM generate_series(1, 20000) i")
        await analyze(database_url)
        text = " ".join(["flamingo", "pelican", *(f"heron{j}" for j in range(words - 2))])
        plan, _ = await keyword_plan(conn, text)
        # A walk of the primary key without an index condition reads the table newest first until
        # it has 500 matches: with two, that is every row. (The hits' lookup by id is fine.)
        walks = [n for n in plan if n.get("Index Name") == "memory_shards_pkey" and "Index Cond" not in n]
        assert walks == []
        asked = [n["Index Cond"] for n in plan if n.get("Node Type") == "Bitmap Index Scan"
                 and n.get("Index Name") == "ix_memory_shards_content_tsv"]
        # (the rare words' rows are read whole by the enumeration; the any-word scan, when there is
        # one, asks for the others)
        assert any("flamingo" in cond and "pelican" in cond for cond in asked)
        found, _ = await repo.search(app.database, "tester", text=text, vector=None, model=None, limit=10)
        assert {r.content for r in found} == {"flamingo colony count", "pelican nesting"}


async def test_a_hybrid_search_with_a_generic_plan_never_walks_the_primary_key(
    settings: Settings, database_url: str
) -> None:
    """An unfiltered hybrid recall runs with a generic plan, which cannot see its tsqueries: the
    scan for the rows holding every uncommon word must still go through the text index (REV19 H1:
    unfenced, the generic plan walked the primary key back through all 100,000 rows)."""
    async with open_app(settings, load_in_background=False) as app, app.database.connection() as conn:
        await conn.execute("INSERT INTO memory_shards (user_id, content, content_hash, embedding_model) SELECT "
                           "'tester', 'routine entry ' || i || CASE WHEN i % 400 = 0 THEN ' quokka' ELSE '' END "
                           "|| CASE WHEN i % 300 = 0 THEN ' narwhal' ELSE '' END, md5('r' || i), 'm' "
                           "FROM generate_series(1, 100000) i")
        await analyze(database_url)
        stats = TableStats("memory_shards")
        # (the shares of 'quokka' and 'narwhal' are 0.25% and 0.33%: 250 and 333 rows, over a budget of 40;
        # a generic plan guesses 0.5% of 100,000 rows hold them, more than the 200 newest it takes)
        terms = await stats.search_terms(conn, "routine quokka narwhal", population=1.0, budget=40,
                                         generic_plan=True)
        assert terms is not None and terms.generic_plan
        assert set(terms.rare.split(" & ")) == {"'quokka'", "'narwhal'"}  # (neither read whole)
        # every uncommon word read whole: no scan for the rows holding them all (REV19: an empty
        # tsquery there walked the primary key under the generic plan)
        whole = await stats.search_terms(conn, "routine quokka", population=1.0, budget=1000, generic_plan=True)
        assert whole is not None and whole.rare == ""
        whole_query = HybridQuery(table="memory_shards", columns="t.id", text="routine quokka",
                                  vector=np.ones(settings.embedding_dim, dtype=np.float32), model="m", limit=10,
                                  terms=whole)
        assert "ORDER BY t.id DESC" not in build_sql(whole_query)[0]
        assert await conn.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
        vector = [0.0] * settings.embedding_dim
        vector[0] = 1.0
        query = HybridQuery(table="memory_shards", columns="t.id, t.content", text="routine quokka narwhal",
                            vector=np.array(vector, dtype=np.float32), model="m", limit=10, terms=terms)
        query.filters.append(f"t.user_id = {query.params.add('tester')}")
        sql, values, mode = build_sql(query)
        assert mode == "hybrid"
        # A prepared statement executed under force_generic_plan (EXPLAIN with bound parameters would
        # show a custom plan): PREPARE / EXPLAIN EXECUTE, the values written as SQL literals.
        await conn.execute(f"PREPARE hybrid AS {sql}")
        arguments = ", ".join(sql_literal(value) for value in values)
        explained = await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE hybrid({arguments})")
        plan = list(nodes(json.loads(explained)[0]["Plan"]))
        walks = [n for n in plan if n.get("Index Name") == "memory_shards_pkey" and "Index Cond" not in n]
        assert walks == []
        found, _ = await repo.search(app.database, "tester", text="routine quokka narwhal", vector=None,
                                     model=None, limit=10)
        assert found and all("quokka" in r.content and "narwhal" in r.content for r in found[:5])


def sql_literal(value: Any) -> str:
    """`value` (a search statement's parameter) as an SQL literal, for EXECUTE."""
    def quoted(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    if isinstance(value, np.ndarray):
        return quoted("[" + ",".join(str(float(x)) for x in value) + "]")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return quoted(value)
    if isinstance(value, list):
        return "ARRAY[" + ",".join(sql_literal(item) for item in value) + "]" if value else "'{}'"
    raise TypeError(f"no literal for {value!r}")


async def test_a_query_of_common_words_beside_a_vector_reads_nothing_and_still_answers(
    settings: Settings, database_url: str
) -> None:
    """Every word in every row, and the user's rows more than the budget: the keyword side has
    nothing to read (a statement with an unused parameter was refused: SQLSTATE 42P18)."""
    async with open_app(settings, load_in_background=False) as app, app.database.connection() as conn:
        await conn.execute("INSERT INTO memory_shards (user_id, content, content_hash) SELECT 'tester', "
                           "'routine entry ' || i, md5('r' || i) FROM generate_series(1, 1000) i")
        await analyze(database_url)
        terms = await TableStats("memory_shards").search_terms(conn, "routine entry", population=1.0, budget=200)
        assert terms is not None and terms.rare == "" and terms.enumerated_query == ""
        vector = np.ones(settings.embedding_dim, dtype=np.float32)
        found, mode = await repo.search_once(conn, "tester", text="routine entry", vector=vector, model="m",
                                             limit=10, source=None, metadata=None, min_score=None, terms=terms)
        assert mode == "hybrid" and found == []  # (no row has a vector from "m")
        found, mode = await repo.search_once(conn, "tester", text="routine entry", vector=None, model=None,
                                             limit=10, source=None, metadata=None, min_score=None, terms=terms)
        assert mode == "lexical" and len(found) == 10  # alone, the newest rows holding any word
