"""The SQL of a hybrid search, shared by memories and patterns: pgvector + full text, fused.

Building only: what a search should do given the planner's statistics (which scan mode, which
terms to ask the index for) is decided in planner_stats.py; each table's search entry point
(memories.search, patterns.search) puts the two together.

- Vector side: cosine distance ordered by the HNSW index (over half-precision copies of the
  vectors, see `vectors.indexed_vector`), restricted to rows whose vector was made by the
  current model. `hnsw.iterative_scan` (ITERATIVE_SCAN on every pooled connection) keeps the
  index scan going when filters reject rows, so filtered queries still return `limit` rows.
- Lexical side: `websearch_to_tsquery` over the generated `content_tsv` column, ranked by
  `ts_rank_cd`. In hybrid mode its terms are ANDed (precise; the vector side covers recall).
  Without vectors (embedder down) a plain query's terms are ORed so that a question still
  finds the rows sharing its important words.
  In hybrid mode the lexical side is bounded so that common words cannot make it slow: only
  the newest LEX_CANDIDATES matches are ranked (ranking is ~10 us a row), and the GIN index is
  asked for the query's uncommon terms only (`rare_terms`, from planner_stats.py); the whole
  query is then checked on those rows. Matching rows are the same; only which of very many
  matches get ranked differs. Keywords alone (no vector) are bounded the same way: the newest
  rows matching every term and the newest LEX_ANY_CANDIDATES matching any term are ranked.
- Fusion: reciprocal rank fusion, score = sum 1/(RRF_K + rank).

Each hit carries which side found it (`by_vector`, `by_keywords`), the cosine similarity when
the row has a vector from the current model, the keyword rank score, and `keyword_score`: the
share (0..1) of the query's search terms (stemmed words, stop words left out) the row contains,
a scale of its own that does not depend on how the keyword side ranks. `min_score` is a floor on
the similarity when the row has one, else on `keyword_score`; a table's module turns them into a
result's score (memories._recalled).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import numpy as np

from mcp_server.db.engine import Connection
from mcp_server.db.vectors import indexed_vector
from mcp_server.schemas import SearchMode

RRF_K = 60
# Most keyword matches ranked per hybrid query, newest first (see the module docstring).
LEX_CANDIDATES = 200
# Keywords alone (no query vector): also this many of the newest rows matching any term.
LEX_ANY_CANDIDATES = 500
TEXT_SEARCH_CONFIG = "english"

# Query syntax that `websearch_to_tsquery` gives meaning to: keep the user's operators then.
_OPERATOR_SYNTAX = re.compile(r'"|(^|\s)-\w|\bor\b', re.IGNORECASE)


def has_operators(text: str) -> bool:
    """Whether `text` uses web-search syntax (quotes, -word, or): it is then searched as written."""
    return _OPERATOR_SYNTAX.search(text) is not None


class Params:
    """Collects positional parameters and hands out `$n` placeholders (after `first`, already $1...)."""

    def __init__(self, *first: Any) -> None:
        self.values: list[Any] = list(first)

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


@dataclass
class HybridQuery:
    table: str
    columns: str  # select list over alias `t`
    filters: list[str] = field(default_factory=list)  # predicates over alias `t` using `params`
    params: Params = field(default_factory=Params)
    text: str | None = None
    vector: np.ndarray | None = None
    model: str | None = None
    limit: int = 10
    min_score: float | None = None
    candidates: int = 0  # rows taken from each side before fusion; 0 = vector_candidates(limit)
    # tsquery text ANDing some of the query's lexemes (the uncommon ones): the GIN index is asked
    # for these, the whole query is checked on the rows found. Hybrid, operator-free text only.
    rare_terms: str | None = None


def tsquery_sql(params: Params, text: str, match_any: bool) -> str:
    """SQL for the tsquery of `text`; ORed terms when `match_any` and the text has no operators."""
    query = f"websearch_to_tsquery('{TEXT_SEARCH_CONFIG}', {params.add(text)})"
    if match_any and not has_operators(text):
        return f"replace({query}::text, ' & ', ' | ')::tsquery"
    return query


def _match_every_term(p: Params, q: HybridQuery, tsquery: str) -> str:
    """Rows whose `content_tsv` matches `tsquery` (all of the query's terms)."""
    if q.rare_terms and not has_operators(q.text or ""):
        # Index lookup on the uncommon terms; `ts_match_vq` (the function behind @@) keeps
        # the planner from intersecting the common terms' huge posting lists in GIN.
        return f"t.content_tsv @@ {p.add(q.rare_terms)}::tsquery AND ts_match_vq(t.content_tsv, {tsquery})"
    return f"t.content_tsv @@ {tsquery}"


def vector_candidates(limit: int) -> int:
    """Rows each side of a hybrid search ranks before fusion, for `limit` results."""
    return max(limit * 4, 40)


def build_sql(q: HybridQuery) -> tuple[str, list[Any], SearchMode]:
    p = q.params
    where = " AND ".join(q.filters) if q.filters else "TRUE"
    k = q.candidates or vector_candidates(q.limit)
    use_vector = q.vector is not None and q.model is not None
    use_text = bool(q.text and q.text.strip())
    mode: SearchMode = "hybrid" if use_vector and use_text else "vector" if use_vector else "lexical"

    ctes: list[str] = []
    if use_vector:
        vec = p.add(q.vector)
        model = p.add(q.model)
        # Ordered by the indexed half-precision copy (see vectors.indexed_vector), so the index is used.
        dimension = len(q.vector) if q.vector is not None else 0
        distance = f"{indexed_vector('t.embedding', dimension)} <=> {indexed_vector(f'{vec}::vector', dimension)}"
        ctes.append(
            f"""vec AS (
                SELECT id, distance, row_number() OVER (ORDER BY distance, id) AS rank FROM (
                    SELECT t.id, {distance} AS distance FROM {q.table} t
                    WHERE {where} AND t.embedding_model = {model}
                    ORDER BY {distance} LIMIT {int(k)}) nearest)"""
        )
        similarity = f"CASE WHEN t.embedding_model = {model} THEN 1 - (t.embedding <=> {vec}) END"
    else:
        similarity = "NULL::float8"
    if use_text:
        tsquery = tsquery_sql(p, q.text or "", match_any=not use_vector)
        if use_vector:
            # Rank only the newest matches: a query made of common words matches most rows, and
            # ranking them all reads the whole table (~150 ms at 100k rows). The ANDed match is
            # already precise and the vector side carries recall, so newest-first is a sound bound.
            match = _match_every_term(p, q, "q.query")
            matches = f"""(
                    SELECT t.id, t.content_tsv, q.query
                    FROM {q.table} t, (SELECT {tsquery} AS query) q
                    WHERE {where} AND {match}
                    ORDER BY t.id DESC LIMIT {max(LEX_CANDIDATES, int(k))}) t"""
        else:
            # Keywords are the only signal here (terms ORed, so rows sharing any important word are
            # found). Common words would make every row a match (~150 ms to rank 100k rows), so the
            # ranked candidates are bounded, newest first: rows matching every term (found through
            # the uncommon ones, as above), and rows matching any term. ts_rank_cd then ranks the
            # rows matching more of the terms first.
            candidates = [
                f"{_match_every_term(p, q, tsquery_sql(p, q.text or '', match_any=False))} "
                f"ORDER BY t.id DESC LIMIT {max(LEX_CANDIDATES, int(k))}",
                f"t.content_tsv @@ {tsquery} ORDER BY t.id DESC LIMIT {LEX_ANY_CANDIDATES}",
            ]
            union = " UNION ".join(f"(SELECT t.id FROM {q.table} t WHERE {where} AND {c})" for c in candidates)
            matches = f"""(
                    SELECT t.id, t.content_tsv, q.query
                    FROM {q.table} t, (SELECT {tsquery} AS query) q
                    WHERE t.id IN ({union})) t"""
        ctes.append(
            f"""lex AS (
                SELECT id, score, row_number() OVER (ORDER BY score DESC, id DESC) AS rank FROM (
                    SELECT t.id, ts_rank_cd(t.content_tsv, t.query) AS score
                    FROM {matches}
                    ORDER BY score DESC, t.id DESC LIMIT {int(k)}) matched)"""
        )
    if not ctes:
        raise ValueError("a search needs a query text or a query vector")

    if use_vector and use_text:
        source = "vec FULL JOIN lex ON vec.id = lex.id"
        hit_id = "COALESCE(vec.id, lex.id)"
        fused = f"COALESCE(1.0 / ({RRF_K} + vec.rank), 0) + COALESCE(1.0 / ({RRF_K} + lex.rank), 0)"
        lexical, found = "lex.score", "vec.id IS NOT NULL AS by_vector, lex.id IS NOT NULL AS by_keywords"
    elif use_vector:
        source, hit_id, fused, lexical = "vec", "vec.id", f"1.0 / ({RRF_K} + vec.rank)", "NULL::float4"
        found = "true AS by_vector, false AS by_keywords"
    else:
        source, hit_id, fused, lexical = "lex", "lex.id", f"1.0 / ({RRF_K} + lex.rank)", "lex.score"
        found = "false AS by_vector, true AS by_keywords"
    keyword_score = "NULL::float8"
    if use_text:
        # ts_delete drops the query's lexemes from the row's tsvector: the ones it loses are those the
        # row contains. Computed on the hits only (at most a few hundred rows).
        lexemes = f"tsvector_to_array(to_tsvector('{TEXT_SEARCH_CONFIG}', {p.add(q.text)}::text))"
        keyword_score = (f"(length(t.content_tsv) - length(ts_delete(t.content_tsv, {lexemes})))::float8"
                         f" / NULLIF(cardinality({lexemes}), 0)")

    score_filter = ""
    if q.min_score is not None:
        # One floor across modes: the similarity when the row has a vector from the query's model,
        # else (found by keywords only, or no query vector) the share of the query's terms it contains.
        score_filter = f"WHERE COALESCE(similarity, keyword_score, 0) >= {p.add(float(q.min_score))}"
    # The hits' rows are fetched by `id = ANY(<the hit ids>)`: a primary-key lookup that the
    # planner keeps under row-level security (a plain join on the fused ids made it hash or scan
    # the whole table: 40 ms instead of 0.5 ms at 30k rows).
    # Without a score threshold only the best `limit` hits can be returned: fetch just those rows.
    top_hits = "" if score_filter else f"ORDER BY fused DESC, hit_id DESC LIMIT {p.add(q.limit)}"
    sql = f"""
        WITH {", ".join(ctes)},
        hits AS MATERIALIZED (
            SELECT {hit_id} AS hit_id, {lexical} AS lexical, {fused} AS fused, {found} FROM {source}
            {top_hits}
        )
        SELECT * FROM (
            SELECT {q.columns}, {similarity} AS similarity, hits.lexical, hits.fused, hits.by_vector,
                   hits.by_keywords, {keyword_score} AS keyword_score
            FROM {q.table} t JOIN hits ON hits.hit_id = t.id
            WHERE t.id = ANY (ARRAY(SELECT hit_id FROM hits))
        ) found
        {score_filter}
        ORDER BY fused DESC, id DESC
        LIMIT {p.add(q.limit)}
    """
    return sql, p.values, mode


async def hybrid_search(conn: Connection, query: HybridQuery) -> tuple[list[asyncpg.Record], SearchMode]:
    sql, values, mode = build_sql(query)
    return await conn.fetch(sql, *values), mode
