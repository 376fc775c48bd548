"""Hybrid retrieval shared by memories and patterns: pgvector + PostgreSQL full text, fused.

- Vector side: cosine distance ordered by the HNSW index (over half-precision copies of the
  vectors, see `vectors.indexed_vector`), restricted to rows whose vector was made by the
  current model. `hnsw.iterative_scan` (ITERATIVE_SCAN on every pooled connection) keeps the
  index scan going when filters reject rows, so filtered queries still return `limit` rows.
  It costs ~10% of the scan even when nothing is rejected, so recall turns it off when the
  statistics say a plain scan yields enough eligible rows (`TableStats.hnsw_scan_mode`).
- Lexical side: `websearch_to_tsquery` over the generated `content_tsv` column, ranked by
  `ts_rank_cd`. In hybrid mode its terms are ANDed (precise; the vector side covers recall).
  Without vectors (embedder down) a plain query's terms are ORed so that a question still
  finds the rows sharing its important words.
  In hybrid mode the lexical side is bounded so that common words cannot make it slow: only
  the newest LEX_CANDIDATES matches are ranked (ranking is ~10 us a row), and the GIN index is
  asked for the query's uncommon terms only (see `rare_terms`); the whole query is then checked
  on those rows. Matching rows are the same; only which of very many matches get ranked differs.
  Keywords alone (no vector) are bounded the same way: the newest rows matching every term and
  the newest LEX_ANY_CANDIDATES matching any term are ranked.
- Fusion: reciprocal rank fusion, score = sum 1/(RRF_K + rank).

`score` in results is the cosine similarity when the row has a vector from the current model
(that is what `min_score` filters on), else a lexical relevance in [0, 1).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg
import numpy as np

from mcp_server.db.engine import ITERATIVE_SCAN
from mcp_server.db.vectors import indexed_vector

RRF_K = 60
# Most keyword matches ranked per hybrid query, newest first (see the module docstring).
LEX_CANDIDATES = 200
# Keywords alone (no query vector): also this many of the newest rows matching any term.
LEX_ANY_CANDIDATES = 500
# A lexeme in more than this share of rows is "common": GIN intersections with such posting
# lists cost tens of ms at 100k rows, while checking it on rows found by rarer terms is cheap.
COMMON_TERM_SHARE = 0.05
# hnsw.iterative_scan without iterative scans (ITERATIVE_SCAN is the pooled connections' setting).
PLAIN_SCAN = "off"
# A plain HNSW scan yields at most ef_search rows before filters. It is used only when the rows
# expected to pass the filters are at least this many times the candidates the search takes
# (at 128 rows and 40 candidates: a share of 62.5% or more; about 6 standard deviations of margin).
PLAIN_SCAN_MARGIN = 2.0
MAX_CACHED_ROWS_SHARES = 1024
TEXT_SEARCH_CONFIG = "english"
SearchMode = Literal["hybrid", "vector", "lexical"]

# Query syntax that `websearch_to_tsquery` gives meaning to: keep the user's operators then.
_OPERATOR_SYNTAX = re.compile(r'"|(^|\s)-\w|\bor\b', re.IGNORECASE)


class Params:
    """Collects positional parameters and hands out `$n` placeholders."""

    def __init__(self) -> None:
        self.values: list[Any] = []

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
    if match_any and not _OPERATOR_SYNTAX.search(text):
        return f"replace({query}::text, ' & ', ' | ')::tsquery"
    return query


def _match_every_term(p: Params, q: HybridQuery, tsquery: str) -> str:
    """Rows whose `content_tsv` matches `tsquery` (all of the query's terms)."""
    if q.rare_terms and not _OPERATOR_SYNTAX.search(q.text or ""):
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
        lexical = "lex.score"
    elif use_vector:
        source, hit_id, fused, lexical = "vec", "vec.id", f"1.0 / ({RRF_K} + vec.rank)", "NULL::float4"
    else:
        source, hit_id, fused, lexical = "lex", "lex.id", f"1.0 / ({RRF_K} + lex.rank)", "lex.score"

    score_filter = ""
    if q.min_score is not None and use_vector:
        threshold = p.add(float(q.min_score))
        # Rows found only lexically and without a current vector have no cosine to compare: kept.
        score_filter = f"WHERE similarity >= {threshold}" if not use_text else (
            f"WHERE similarity IS NULL OR similarity >= {threshold}"
        )
    # The hits' rows are fetched by `id = ANY(<the hit ids>)`: a primary-key lookup that the
    # planner keeps under row-level security (a plain join on the fused ids made it hash or scan
    # the whole table: 40 ms instead of 0.5 ms at 30k rows).
    # Without a score threshold only the best `limit` hits can be returned: fetch just those rows.
    top_hits = "" if score_filter else f"ORDER BY fused DESC, hit_id DESC LIMIT {p.add(q.limit)}"
    sql = f"""
        WITH {", ".join(ctes)},
        hits AS MATERIALIZED (
            SELECT {hit_id} AS hit_id, {lexical} AS lexical, {fused} AS fused FROM {source}
            {top_hits}
        )
        SELECT * FROM (
            SELECT {q.columns}, {similarity} AS similarity, hits.lexical, hits.fused
            FROM {q.table} t JOIN hits ON hits.hit_id = t.id
            WHERE t.id = ANY (ARRAY(SELECT hit_id FROM hits))
        ) found
        {score_filter}
        ORDER BY fused DESC, id DESC
        LIMIT {p.add(q.limit)}
    """
    return sql, p.values, mode


_LEXEME = re.compile(r"'((?:[^']|'')*)'")


class TableStats:
    """What the planner's statistics say about a table (kept current by ANALYZE after bulk writes
    and by autovacuum): how common each lexeme of `content_tsv` is, and what share of the rows a
    user owns with a model. Each is re-read every `ttl_s` seconds."""

    def __init__(self, table: str, ttl_s: float = 300.0) -> None:
        self.table = table
        self.ttl_s = ttl_s
        self._shares: dict[str, float] = {}
        self._read_at = -ttl_s
        self._rows_shares: dict[tuple[str | None, str], tuple[float, float]] = {}

    async def shares(self, conn: asyncpg.Connection) -> dict[str, float]:
        now = time.monotonic()
        if now - self._read_at >= self.ttl_s:
            # Through a SECURITY DEFINER function (migration 0011): pg_stats hides tables with
            # row-level security from the app role.
            rows = await conn.fetch("SELECT lexeme, share FROM aletheia_term_shares($1::regclass)", self.table)
            self._shares = {r["lexeme"]: float(r["share"]) for r in rows}
            self._read_at = now
        return self._shares

    async def rows_share(self, conn: asyncpg.Connection, acting_user: str | None, model: str) -> float:
        """Estimated share of rows of `acting_user` (any user when None) with vectors from `model`;
        0 when unknown (never analyzed, or not among the common values)."""
        now = time.monotonic()
        key = (acting_user, model)
        cached = self._rows_shares.get(key)
        if cached is None or now - cached[1] >= self.ttl_s:
            # SECURITY DEFINER (migration 0017), for the same reason as above.
            share = await conn.fetchval("SELECT aletheia_rows_share($1::regclass, $2, $3)",
                                        self.table, acting_user, model)
            cached = (float(share or 0.0), now)
            if len(self._rows_shares) >= MAX_CACHED_ROWS_SHARES:  # one per (user, model): keep it bounded
                self._rows_shares.clear()
            self._rows_shares[key] = cached
        return cached[0]

    async def hnsw_scan_mode(self, conn: asyncpg.Connection, *, acting_user: str | None, model: str,
                             candidates: int, ef_search: int, filtered: bool) -> str:
        """PLAIN_SCAN when a plain HNSW scan is expected to yield enough eligible rows (no filter
        beyond user and model, and most rows are eligible), else ITERATIVE_SCAN."""
        if filtered:
            return ITERATIVE_SCAN
        share = await self.rows_share(conn, acting_user, model)
        return PLAIN_SCAN if share * ef_search >= PLAIN_SCAN_MARGIN * candidates else ITERATIVE_SCAN

    async def rare_terms(self, conn: asyncpg.Connection, text: str, *,
                         hnsw_scan: str = ITERATIVE_SCAN) -> str | None:
        """A tsquery ANDing the lexemes of `text` in at most COMMON_TERM_SHARE of the rows (else its
        two least common ones), or None when the text has operators or no lexeme.

        The same round trip sets the connection's hnsw.iterative_scan to `hnsw_scan` (PLAIN_SCAN or
        ITERATIVE_SCAN) for the search that follows."""
        if _OPERATOR_SYNTAX.search(text):
            await set_hnsw_scan(conn, hnsw_scan)
            return None
        shares = await self.shares(conn)
        query = await conn.fetchval(f"SELECT websearch_to_tsquery('{TEXT_SEARCH_CONFIG}', $1)::text, "
                                    "set_config('hnsw.iterative_scan', $2, false)", text, hnsw_scan)
        lexemes = sorted({m.replace("''", "'") for m in _LEXEME.findall(query or "")},
                         key=lambda lexeme: (shares.get(lexeme, 0.0), lexeme))
        if not lexemes:
            return None
        chosen = [lexeme for lexeme in lexemes if shares.get(lexeme, 0.0) <= COMMON_TERM_SHARE] or lexemes[:2]
        return " & ".join("'" + lexeme.replace("'", "''") + "'" for lexeme in chosen)


async def set_hnsw_scan(conn: asyncpg.Connection, mode: str) -> None:
    """Set the connection's hnsw.iterative_scan (PLAIN_SCAN or ITERATIVE_SCAN) for the next search."""
    await conn.execute("SELECT set_config('hnsw.iterative_scan', $1, false)", mode)


def result_score(record: asyncpg.Record) -> float:
    """Cosine similarity when known, else lexical relevance squashed into [0, 1)."""
    similarity = record["similarity"]
    if similarity is not None:
        return round(float(similarity), 6)
    lexical = record["lexical"] or 0.0
    return round(float(lexical) / (1.0 + float(lexical)), 6)


async def hybrid_search(conn: asyncpg.Connection, query: HybridQuery) -> tuple[list[asyncpg.Record], SearchMode]:
    sql, values, mode = build_sql(query)
    return await conn.fetch(sql, *values), mode
