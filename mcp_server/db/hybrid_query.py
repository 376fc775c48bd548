"""The SQL of a hybrid search, shared by memories and patterns: pgvector + full text, fused.

Building only: what a search should do given the planner's statistics (which scan mode, which
terms to ask the index for) is decided in planner_stats.py; each table's search entry point
(memories.search, patterns.search) puts the two together.

- Vector side: cosine distance ordered by the HNSW index (over half-precision copies of the
  vectors, see `vectors.indexed_vector`), restricted to rows whose vector was made by the
  current model. `hnsw.iterative_scan` (ITERATIVE_SCAN on every pooled connection) keeps the
  index scan going when filters reject rows, so filtered queries still return `limit` rows.
- Keyword side (`_bm25_keywords`): BM25 over the query's lexemes, ORed: rare lexemes weigh more,
  long texts are normalised, title words count more. Its cost is bounded whatever the words: the
  rows it reads are those of the query's rarest lexemes up to a budget the statistics check
  (planner_stats.py), the newest rows holding every uncommon lexeme, and without a vector the
  newest rows holding any. A query written with operators (quotes, -word, or) keeps its meaning:
  rows matching it as written, by ts_rank_cd.
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
# A title's words (weight A: pattern titles, migration 0007) count this many extra occurrences.
TITLE_BOOST = 2
# At most this many rows of the enumerated lexemes (planner_stats.ENUMERATED_ROWS_BUDGET, which
# the statistics' estimates keep to; this bounds it when they are stale).
ENUMERATED_CANDIDATES = 1000
# The rows searched when the statistics cannot estimate them: counted, up to this many.
ROWS_CAP = 20_000
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
    """A plain query's lexemes as the statistics see them (planner_stats.TableStats.search_terms),
    rarest first: for the keyword ranking (`_bm25_keywords`)."""

    lexemes: list[str]
    shares: list[float]  # each one's share of the rows (a lexeme the statistics do not list: a guess)
    enumerated: list[bool]  # whether all its rows are read (and its document frequency counted)
    rows: float  # the rows searched (the user's), estimated; 0: unknown, counted (up to ROWS_CAP)
    budget: float  # rows the keyword ranking may read for its enumerated lexemes
    rare: str  # tsquery: every uncommon lexeme (else the two least common), ANDed
    enumerated_query: str  # tsquery: the enumerated lexemes ORed ("" when none)
    any_query: str  # tsquery: the lexemes not enumerated, ORed ("" when none)
    generic_plan: bool = False  # whether the statement runs with a generic plan (it cannot see the tsqueries)


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
    # None: no keyword ranking (the text has no lexeme).
    terms: SearchTerms | None = None
    titles: bool = False  # whether rows have titles (weight A) that the keyword ranking counts more
    keyword_weight: float = KEYWORD_WEIGHT  # the keyword ranking's weight in the fusion (services.fusion_weights)


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
        ctes.append(_operator_keywords(p, q, where, k))
    elif use_text:
        ctes.extend(_bm25_keywords(p, q, where, k, match_any=not use_vector))
    if not ctes:
        raise ValueError("a search needs a query text or a query vector")

    if use_vector and use_text:
        source = "vec FULL JOIN lex ON vec.id = lex.id"
        hit_id = "COALESCE(vec.id, lex.id)"
        fused = (f"COALESCE({VECTOR_WEIGHT} / ({RRF_K} + vec.rank), 0) "
                 f"+ COALESCE({float(q.keyword_weight)} / ({RRF_K} + lex.rank), 0)")
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
        # row contains. Computed on the hits only (at most a few hundred rows). The query's lexemes
        # once per statement (a scalar subquery; inline, to_tsvector parsed the query for every row
        # twice: ~1 ms of a recall at 100k notes).
        lexemes = f"(SELECT tsvector_to_array(to_tsvector('{TEXT_SEARCH_CONFIG}', {p.add(q.text)}::text)))"
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


def _operator_keywords(p: Params, q: HybridQuery, where: str, k: int) -> str:
    """The keyword side of a query written with operators (quotes, -word, or): rows matching it as
    written, the newest LEX_CANDIDATES of them, ranked by ts_rank_cd."""
    tsquery = f"websearch_to_tsquery('{TEXT_SEARCH_CONFIG}', {p.add(q.text or '')})"
    return f"""lex AS (
                SELECT id, score, row_number() OVER (ORDER BY score DESC, id DESC) AS rank FROM (
                    SELECT t.id, ts_rank_cd(t.content_tsv, q.query) AS score
                    FROM (SELECT t.id, t.content_tsv FROM {q.table} t
                          WHERE {where} AND t.content_tsv @@ {tsquery}
                          ORDER BY t.id DESC LIMIT {max(LEX_CANDIDATES, k)}) t,
                         (SELECT {tsquery} AS query) q
                    ORDER BY score DESC, t.id DESC LIMIT {k}) matched)"""


def _bm25_keywords(p: Params, q: HybridQuery, where: str, k: int, match_any: bool) -> list[str]:
    """The keyword side of a plain query: BM25 over the query's lexemes, ORed.

    - Candidates (what bounds the cost, see planner_stats.ENUMERATED_ROWS_BUDGET): every row of the
      enumerated lexemes (the rarest ones, as long as their expected rows fit the budget; at most
      ENUMERATED_CANDIDATES rows in all), the newest LEX_CANDIDATES rows holding every uncommon
      lexeme, and without a query vector also the newest LEX_ANY_CANDIDATES rows holding any lexeme,
      so that a query of common words still finds rows. Each tsquery is a parameter, so the planner
      sees how common its words are (an expression would be guessed: a backward walk of the primary
      key through the whole table when few rows match).
    - Weights: idf = ln(1 + (N - df + 0.5) / (df + 0.5)) over the rows searched (the user's, in
      scope): N estimated from the statistics (else counted, up to ROWS_CAP); df counted among the
      candidates for an enumerated lexeme (they hold all its rows), else share * N.
    - Score: the sum over the lexemes a candidate holds of idf * tf * (k1 + 1) / (tf + k1 * (1 - b
      + b * len / avglen)): tf the lexeme's positions in the row, those in a title (weight A, patterns)
      counting TITLE_BOOST more; len the row's distinct lexemes, avglen their mean over the candidates.
    """
    terms = q.terms
    few_rows = terms is not None and (terms.rows <= 0 or terms.rows <= terms.budget)
    if terms is None or not (terms.rare or terms.enumerated_query or (terms.any_query and (match_any or few_rows))):
        # No lexeme (stop words only), or every one common and none expected to be rare together:
        # nothing to read (decided before any parameter is added: an unused one has no type).
        return ["lex AS (SELECT NULL::bigint AS id, NULL::float8 AS score, NULL::bigint AS rank WHERE false)"]
    table_rows = (f"{float(terms.rows)}::float8" if terms.rows > 0 else
                  f"(SELECT count(*) FROM (SELECT FROM {q.table} t WHERE {where} LIMIT {ROWS_CAP}) c)::float8")
    lexemes = p.add(terms.lexemes)
    if q.titles:  # keeps the weights: the row's tsvector less (the row's tsvector less the query's lexemes)
        held = f"ts_delete(t.content_tsv, tsvector_to_array(ts_delete(t.content_tsv, {lexemes}::text[])))"
    else:  # cheaper (a third less per row), loses the weights: the query's lexemes marked A, kept
        held = f"ts_filter(setweight(setweight(t.content_tsv, 'D'), 'A', {lexemes}::text[]), '{{a}}')"
    columns = f"t.id, length(t.content_tsv)::float8 AS len, {held} AS held"
    # A lexeme's occurrences in the row; with titles, those in the title (weight A) count extra.
    # (Without, `held` marks every kept position A: it carries no weights.)
    tf = "COALESCE(cardinality(u.positions), 1)"
    if q.titles:
        tf += f" + {TITLE_BOOST} * COALESCE(cardinality(array_positions(u.weights, 'A')), 0)"
    # Newest first: the rows' ids, then their columns (computed on the chosen rows only). The rows
    # holding every uncommon lexeme are expected to be few (planner_stats.search_terms): they are
    # taken through the text index behind a fence (OFFSET 0), so that no plan, not even a generic
    # one that cannot see the tsquery, walks the primary key back through every row instead.
    newest = []
    if terms.rare and terms.generic_plan:
        newest.append(f"(SELECT id FROM (SELECT t.id FROM {q.table} t WHERE {where} AND t.content_tsv @@ "
                      f"{p.add(terms.rare)}::tsquery OFFSET 0) holding ORDER BY id DESC LIMIT {LEX_CANDIDATES})")
    elif terms.rare:  # a custom plan sees how many rows hold them, and walks the primary key if most do
        newest.append(f"(SELECT t.id FROM {q.table} t WHERE {where} AND t.content_tsv @@ {p.add(terms.rare)}::tsquery "
                      f"ORDER BY t.id DESC LIMIT {LEX_CANDIDATES})")
    if match_any and terms.any_query:  # (custom plans only: they see how many rows match, and walk
        # the primary key when most rows do)
        newest.append(f"(SELECT t.id FROM {q.table} t WHERE {where} AND t.content_tsv @@ "
                      f"{p.add(terms.any_query)}::tsquery ORDER BY t.id DESC LIMIT {LEX_ANY_CANDIDATES})")
    candidates = []
    if newest:
        candidates.append(f"SELECT {columns} FROM {q.table} t WHERE t.id = ANY (ARRAY({' UNION '.join(newest)}))")
    if terms.enumerated_query:  # every row of the enumerated lexemes, read once
        candidates.append(f"SELECT {columns} FROM {q.table} t WHERE {where} AND t.content_tsv @@ "
                          f"{p.add(terms.enumerated_query)}::tsquery LIMIT {ENUMERATED_CANDIDATES}")
    # When the rows searched are few (at most the budget), every row holding any lexeme is read and
    # every df counted exactly: the statistics' shares are estimates from a sample, and a word
    # common in the table may be rare among this user's rows. Unestimated (a user too rare for the
    # statistics' common values): decided on the count.
    small = "false"
    if few_rows:
        small = "true" if terms.rows > 0 else f"(SELECT n FROM population) <= {float(terms.budget)}"
    if small != "false" and terms.any_query:  # (the enumerated lexemes' rows are read above)
        candidates.append(f"SELECT {columns} FROM {q.table} t WHERE {where} AND {small} AND t.content_tsv @@ "
                          f"{p.add(terms.any_query)}::tsquery LIMIT {int(terms.budget)}")
    return [
        f"population AS MATERIALIZED (SELECT {table_rows} AS n)",
        f"""docs AS MATERIALIZED (
                SELECT DISTINCT ON (id) * FROM ({" UNION ALL ".join(f"({c})" for c in candidates)}) c ORDER BY id)""",
        f"""weights AS MATERIALIZED (
                SELECT x.lexeme, ln(1 + (n.n - df.df + 0.5) / (df.df + 0.5)) AS idf
                FROM unnest({lexemes}::text[], {p.add(terms.shares)}::float8[], {p.add(terms.enumerated)}::bool[])
                     x(lexeme, share, enumerated)
                LEFT JOIN (SELECT h.lexeme, count(*)::float8 AS rows FROM docs
                           CROSS JOIN LATERAL unnest(tsvector_to_array(docs.held)) h(lexeme) GROUP BY h.lexeme) c
                       ON c.lexeme = x.lexeme
                CROSS JOIN (SELECT GREATEST((SELECT n FROM population), (SELECT count(*) FROM docs), 1) AS n) n
                CROSS JOIN LATERAL (SELECT CASE WHEN x.enumerated OR {small} THEN COALESCE(c.rows, 0)
                                                ELSE x.share * n.n END AS df) df)""",
        f"""lex AS (
                SELECT id, score, row_number() OVER (ORDER BY score DESC, id DESC) AS rank FROM (
                    SELECT d.id, sum(w.idf * f.tf * ({BM25_K1} + 1)
                                     / (f.tf + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * d.len / d.avglen))) AS score
                    FROM (SELECT docs.*, avg(len) OVER () AS avglen FROM docs) d
                    CROSS JOIN LATERAL (
                        SELECT u.lexeme, {tf} AS tf FROM unnest(d.held) u) f
                    JOIN weights w ON w.lexeme = f.lexeme
                    GROUP BY d.id ORDER BY score DESC, d.id DESC LIMIT {k}) matched)""",
    ]


async def hybrid_search(conn: Connection, query: HybridQuery) -> tuple[list[asyncpg.Record], SearchMode]:
    sql, values, mode = build_sql(query)
    return await conn.fetch(sql, *values), mode
