"""The SQL of a hybrid search, shared by memories and patterns: pgvector + full text, fused.

Building only: what a search should do given the planner's statistics (which scan mode, which
terms to ask the index for) is decided in planner_stats.py; each table's search entry point
(memories.search, patterns.search) puts the two together.

- Vector side: cosine distance ordered by the HNSW index (over half-precision copies of the
  vectors, see `vectors.indexed_vector`), restricted to rows whose vector was made by the
  current model. `hnsw.iterative_scan` (ITERATIVE_SCAN on every pooled connection) keeps the
  index scan going when filters reject rows, so filtered queries still return `limit` rows.
- Keyword side (`_bm25_keywords`): BM25 over the query's lexemes, ORed: rare lexemes weigh more
  (idf from the statistics for the common ones, counted in the GIN index under the search's
  filters, so per user, for the others), long texts are normalised (the tsvector's length). It is
  bounded so that common words cannot make it slow: the candidates are the newest
  PER_TERM_CANDIDATES rows of each uncommon lexeme (`SearchTerms.indexed`, planner_stats.py), and
  only they are scored. Keywords alone (no vector) also take the newest LEX_ANY_CANDIDATES rows
  matching any lexeme, so that a query of common words still finds rows. A query written with
  operators (quotes, -word, or) keeps its meaning: rows matching it as written, by ts_rank_cd.
- Fusion: weighted reciprocal rank fusion, score = sum weight/(RRF_K + rank) (VECTOR_WEIGHT,
  KEYWORD_WEIGHT).

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
# Weights of each side's reciprocal rank in the fused score (tuned with `python -m bench quality`).
VECTOR_WEIGHT = 1.0
KEYWORD_WEIGHT = 0.6
# BM25's term-frequency saturation and length normalisation (the usual values).
BM25_K1 = 1.2
BM25_B = 0.75
# A lexeme's document frequency is counted in the index up to this many rows (its weight is then
# already low); lexemes the statistics know as common take their share instead.
DF_CAP = 1000
# Rows taken from the index per indexed (uncommon) query lexeme as keyword candidates, newest first:
# with a query vector (which carries recall), and without one.
PER_TERM_CANDIDATES = 50
PER_TERM_CANDIDATES_ALONE = 200
# Of those lexemes, at most this many (the fewest rows first) are asked: a long query (a paragraph)
# would otherwise fetch and score thousands of rows.
MAX_INDEXED_TERMS = 8
# The table's rows when it was never analyzed: counted, up to this many.
ROWS_CAP = 100_000
# Most keyword matches ranked per query written with operators, newest first.
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


@dataclass(frozen=True)
class SearchTerms:
    """A plain query's lexemes, for the keyword ranking (hybrid_query.py): each one's share of the
    table's rows from the statistics (0 when not among the common ones: it is then counted in the
    index, capped), and whether the index is asked for its rows (the uncommon ones, else the two
    least common)."""

    lexemes: list[str]
    shares: list[float]
    indexed: list[bool]
    rows: float  # the table's estimated rows (0: never analyzed)
    rare: str  # a tsquery ANDing the indexed lexemes (see TableStats.rare_terms)


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
    # The query's lexemes with the statistics' view of them (planner_stats.TableStats.search_terms);
    # None: taken from the text in SQL, each one counted in the index and asked for candidates.
    terms: SearchTerms | None = None


def tsquery_sql(params: Params, text: str, match_any: bool) -> str:
    """SQL for the tsquery of `text`; ORed terms when `match_any` and the text has no operators."""
    query = f"websearch_to_tsquery('{TEXT_SEARCH_CONFIG}', {params.add(text)})"
    if match_any and not has_operators(text):
        return f"replace({query}::text, ' & ', ' | ')::tsquery"
    return query


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
    if use_text and has_operators(q.text or ""):
        ctes.append(_operator_keywords(p, q, where, k, match_any=not use_vector))
    elif use_text:
        ctes.extend(_bm25_keywords(p, q, where, k, match_any=not use_vector))
    if not ctes:
        raise ValueError("a search needs a query text or a query vector")

    if use_vector and use_text:
        source = "vec FULL JOIN lex ON vec.id = lex.id"
        hit_id = "COALESCE(vec.id, lex.id)"
        fused = (f"COALESCE({VECTOR_WEIGHT} / ({RRF_K} + vec.rank), 0) "
                 f"+ COALESCE({KEYWORD_WEIGHT} / ({RRF_K} + lex.rank), 0)")
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


def _operator_keywords(p: Params, q: HybridQuery, where: str, k: int, match_any: bool) -> str:
    """The keyword side of a query written with operators (quotes, -word, or): rows matching it as
    written, the newest LEX_CANDIDATES of them, ranked by ts_rank_cd."""
    tsquery = tsquery_sql(p, q.text or "", match_any=match_any)
    return f"""lex AS (
                SELECT id, score, row_number() OVER (ORDER BY score DESC, id DESC) AS rank FROM (
                    SELECT t.id, ts_rank_cd(t.content_tsv, q.query) AS score
                    FROM (SELECT t.id, t.content_tsv FROM {q.table} t
                          WHERE {where} AND t.content_tsv @@ {tsquery}
                          ORDER BY t.id DESC LIMIT {max(LEX_CANDIDATES, k)}) t,
                         (SELECT {tsquery} AS query) q
                    ORDER BY score DESC, t.id DESC LIMIT {k}) matched)"""


# A lexeme (column x.lexeme) as a tsquery literal: quotes and backslashes escaped as tsquery input reads them.
_LEXEME_QUERY = r"""('''' || replace(replace(x.lexeme, '\', '\\'), '''', '''''') || '''')::tsquery"""


def _bm25_keywords(p: Params, q: HybridQuery, where: str, k: int, match_any: bool) -> list[str]:
    """The keyword side of a plain query: BM25 over the query's lexemes, ORed.

    - Weights: idf = ln(1 + (N - df + 0.5) / (df + 0.5)). A lexeme the statistics know as common
      takes df = share * N; any other is counted in the GIN index under the search's filters (so
      per user, and in scope), at most DF_CAP rows. N is the table's estimated rows.
    - Candidates (what bounds the cost): the newest PER_TERM_CANDIDATES rows (_ALONE without a
      query vector) of each indexed lexeme (the uncommon ones, planner_stats.py; at most
      MAX_INDEXED_TERMS of them, the fewest rows first), and the newest LEX_CANDIDATES rows holding
      every one of them; without a query vector also the newest LEX_ANY_CANDIDATES rows matching
      any lexeme, so that a query of common words still finds rows.
    - Score: the sum over the lexemes a candidate holds of idf * tf * (k1 + 1) / (tf + k1 * (1 - b
      + b * len / avglen)): tf the lexeme's positions in the row, len the row's distinct lexemes
      (the length of its tsvector), avglen their mean over the candidates.
    """
    if q.terms is not None:
        terms = (f"unnest({p.add(q.terms.lexemes)}::text[], {p.add(q.terms.shares)}::float8[], "
                 f"{p.add(q.terms.indexed)}::bool[]) x(lexeme, share, indexed)")
    else:
        terms = (f"(SELECT lexeme, 0::float8 AS share, true AS indexed FROM unnest(tsvector_to_array("
                 f"to_tsvector('{TEXT_SEARCH_CONFIG}', {p.add(q.text)}::text))) lexeme) x")
    rows = q.terms.rows if q.terms is not None else 0.0
    table_rows = (f"{float(rows)}::float8" if rows > 0 else
                  f"(SELECT count(*) FROM (SELECT FROM {q.table} t WHERE {where} LIMIT {ROWS_CAP}) c)::float8")
    # The rows holding every uncommon lexeme (the newest LEX_CANDIDATES): the best BM25 candidates,
    # which the per-lexeme newest-first bounds alone could leave out when each lexeme has many newer rows.
    every_term = ""
    if q.terms is not None and q.terms.rare:
        every_term = (f" UNION (SELECT t.id FROM {q.table} t WHERE {where} AND t.content_tsv @@ "
                      f"{p.add(q.terms.rare)}::tsquery ORDER BY t.id DESC LIMIT {LEX_CANDIDATES})")
    any_term = ""
    if match_any:
        any_term = (f" UNION (SELECT t.id FROM {q.table} t WHERE {where} AND t.content_tsv @@ "
                    f"{tsquery_sql(p, q.text or '', match_any=True)} ORDER BY t.id DESC LIMIT {LEX_ANY_CANDIDATES})")
    return [
        f"""terms AS MATERIALIZED (
                SELECT x.lexeme, x.indexed, {_LEXEME_QUERY} AS query,
                       CASE WHEN x.share > 0 THEN x.share * {table_rows} ELSE (
                           SELECT count(*) FROM (SELECT FROM {q.table} t
                                                 WHERE {where} AND t.content_tsv @@ {_LEXEME_QUERY}
                                                 LIMIT {DF_CAP}) c)::float8 END AS df
                FROM {terms})""",
        f"""weights AS MATERIALIZED (
                SELECT terms.lexeme, terms.query, ln(1 + (n.n - terms.df + 0.5) / (terms.df + 0.5)) AS idf,
                       terms.indexed AND terms.df > 0 AND row_number() OVER (
                           PARTITION BY terms.indexed AND terms.df > 0 ORDER BY terms.df, terms.lexeme
                       ) <= {MAX_INDEXED_TERMS} AS indexed
                FROM terms, (SELECT GREATEST({table_rows}, (SELECT max(df) FROM terms), 1) AS n) n)""",
        f"""candidates AS MATERIALIZED (
                SELECT c.id FROM weights w CROSS JOIN LATERAL (
                    SELECT t.id FROM {q.table} t WHERE {where} AND t.content_tsv @@ w.query
                    ORDER BY t.id DESC LIMIT {PER_TERM_CANDIDATES_ALONE if match_any else PER_TERM_CANDIDATES}) c
                WHERE w.indexed{every_term}{any_term})""",
        f"""docs AS MATERIALIZED (
                SELECT t.id, length(t.content_tsv)::float8 AS len,
                       ts_filter(setweight(setweight(t.content_tsv, 'D'), 'A',
                                           (SELECT array_agg(lexeme) FROM weights)), '{{a}}') AS held
                FROM {q.table} t WHERE t.id = ANY (ARRAY(SELECT id FROM candidates)))""",
        f"""lex AS (
                SELECT id, score, row_number() OVER (ORDER BY score DESC, id DESC) AS rank FROM (
                    SELECT d.id, sum(w.idf * f.tf * ({BM25_K1} + 1)
                                     / (f.tf + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * d.len / d.avglen))) AS score
                    FROM (SELECT docs.*, avg(len) OVER () AS avglen FROM docs) d
                    CROSS JOIN LATERAL (SELECT u.lexeme, COALESCE(cardinality(u.positions), 1) AS tf
                                        FROM unnest(d.held) u) f
                    JOIN weights w ON w.lexeme = f.lexeme
                    GROUP BY d.id ORDER BY score DESC, d.id DESC LIMIT {k}) matched)""",
    ]


async def hybrid_search(conn: Connection, query: HybridQuery) -> tuple[list[asyncpg.Record], SearchMode]:
    sql, values, mode = build_sql(query)
    return await conn.fetch(sql, *values), mode
