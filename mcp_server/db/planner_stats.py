"""What the planner's statistics say about a table, and the search decisions taken from them.

Three decisions, to keep a search cheap without changing what it finds:
- How the keyword ranking reads rows (`search_terms`): every row of the query's rarest lexemes as
  long as the rows expected among those searched (the user's) fit a budget, so a word common in
  the table but rare in one user's rows is counted for that user; the rows holding every uncommon
  lexeme when they are expected to be few; never the rows of a common word alone (a lexeme in
  more than COMMON_TERM_SHARE of the rows: GIN would hand over huge posting lists).
- Whether the HNSW scan needs iterative scans (`hnsw_scan_mode`): they keep a filtered search
  complete but cost ~10% of the scan even when nothing is rejected, so a search turns them off
  when the statistics say a plain scan yields enough eligible rows.
- Whether the statement may run with a generic plan (`search_terms`, `generic_plan`).

The statistics are kept current by ANALYZE after bulk writes (db/upkeep.py) and by autovacuum;
they are read through SECURITY DEFINER functions (migrations 0011 and 0017) because pg_stats
hides tables with row-level security from the app role, and cached for `ttl_s` seconds.
"""

from __future__ import annotations

import math
import re
import time

from mcp_server.db.engine import CUSTOM_PLAN, GENERIC_PLAN, ITERATIVE_SCAN, Connection, note_scan_mode
from mcp_server.db.hybrid_query import TEXT_SEARCH_CONFIG, SearchTerms, has_operators
from mcp_server.db.projects import Scope

# A lexeme in more than this share of rows is "common" (see the module docstring).
COMMON_TERM_SHARE = 0.05
# hnsw.iterative_scan without iterative scans (ITERATIVE_SCAN is the pooled connections' setting).
PLAIN_SCAN = "off"
# A plain HNSW scan yields at most ef_search rows before filters. It is used only when the rows
# expected to pass the filters are at least this many times the candidates the search takes
# (at 128 rows and 40 candidates: a share of 62.5% or more; about 6 standard deviations of margin).
PLAIN_SCAN_MARGIN = 2.0
MAX_CACHED_ROWS_SHARES = 1024
# The keyword ranking reads every row of a query's rarest lexemes (hybrid_query._bm25_keywords), as
# long as the rows the statistics expect for them add up to at most this many, and at most
# MAX_ENUMERATED_TERMS lexemes: what a keyword search costs is bounded by it (each row read and
# scored costs ~8 us at 100k rows), not by how common the query's words are. Beside a vector
# ranking (which carries most of the recall) it reads fewer.
ENUMERATED_ROWS_BUDGET = 500
HYBRID_ENUMERATED_ROWS_BUDGET = 200
MAX_ENUMERATED_TERMS = 32
# The share guessed at most for a lexeme the statistics do not list (see search_terms).
UNLISTED_SHARE = 0.01
_LEXEME = re.compile(r"'((?:[^'\\]|''|\\.)*)'")
_ESCAPED = re.compile(r"''|\\.")  # how tsquery output escapes a quote or a backslash in a lexeme


def tsquery_lexeme(lexeme: str) -> str:
    """`lexeme` as a tsquery literal ('' and backslashes escaped, as tsquery input reads them)."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


class TableStats:
    """How common each lexeme of a table's `content_tsv` is, and what share of its rows a user
    owns with a model. Each is re-read every `ttl_s` seconds."""

    def __init__(self, table: str, ttl_s: float = 300.0) -> None:
        self.table = table
        self.ttl_s = ttl_s
        self._shares: dict[str, float] = {}
        self._rows = 0.0
        self._read_at = -ttl_s
        self._rows_shares: dict[tuple[str | None, str], tuple[float, float]] = {}
        self._project_shares: dict[int | None, tuple[float, float]] = {}

    async def shares(self, conn: Connection) -> dict[str, float]:
        now = time.monotonic()
        if now - self._read_at >= self.ttl_s:
            rows = await conn.fetch("SELECT lexeme, share FROM aletheia_term_shares($1::regclass)", self.table)
            self._shares = {r["lexeme"]: float(r["share"]) for r in rows}
            # (pg_class is readable by every role: no function needed; -1 when never analyzed)
            self._rows = max(0.0, float(await conn.fetchval(
                "SELECT reltuples FROM pg_class WHERE oid = $1::regclass", self.table) or 0.0))
            self._read_at = now
        return self._shares

    async def rows_share(self, conn: Connection, acting_user: str | None, model: str) -> float:
        """Estimated share of rows of `acting_user` (any user when None) with vectors from `model`;
        0 when unknown (never analyzed, or not among the common values)."""
        now = time.monotonic()
        key = (acting_user, model)
        cached = self._rows_shares.get(key)
        if cached is None or now - cached[1] >= self.ttl_s:
            share = await conn.fetchval("SELECT aletheia_rows_share($1::regclass, $2, $3)",
                                        self.table, acting_user, model)
            cached = (float(share or 0.0), now)
            if len(self._rows_shares) >= MAX_CACHED_ROWS_SHARES:  # one per (user, model): keep it bounded
                self._rows_shares.clear()
            self._rows_shares[key] = cached
        return cached[0]

    async def project_share(self, conn: Connection, scope: Scope) -> float:
        """Estimated share of rows in `scope` (a project's and the global ones, or the global ones);
        0 when unknown (never analyzed, or a project that is not among the common values)."""
        if scope.kind == "all":
            return 1.0
        if scope.kind not in ("project+global", "global"):
            return 0.0  # (only memories and patterns are searched, with these scopes)
        project = scope.project_id if scope.kind == "project+global" else None
        now = time.monotonic()
        cached = self._project_shares.get(project)
        if cached is None or now - cached[1] >= self.ttl_s:
            # SECURITY DEFINER (migration 0018), for the same reason as `shares`.
            share = await conn.fetchval("SELECT aletheia_project_share($1::regclass, $2)", self.table, project)
            cached = (float(share or 0.0), now)
            if len(self._project_shares) >= MAX_CACHED_ROWS_SHARES:
                self._project_shares.clear()
            self._project_shares[project] = cached
        return cached[0]

    async def searched_share(self, conn: Connection, acting_user: str | None, model: str,
                             scope: Scope | None = None) -> float:
        """Estimated share of rows a search of `acting_user` in `scope` looks at (their rows with
        vectors from `model`, times the scope's share, as if independent); 0 when unknown."""
        share = await self.rows_share(conn, acting_user, model)
        if scope is not None and share > 0:
            share *= await self.project_share(conn, scope)
        return share

    async def hnsw_scan_mode(self, conn: Connection, *, acting_user: str | None, model: str,
                             candidates: int, ef_search: int, filtered: bool, scope: Scope | None = None) -> str:
        """PLAIN_SCAN when a plain HNSW scan is expected to yield enough eligible rows (no filter
        beyond user, model and project, and most rows are eligible), else ITERATIVE_SCAN."""
        if filtered:
            return ITERATIVE_SCAN
        share = await self.searched_share(conn, acting_user, model, scope)
        return PLAIN_SCAN if share * ef_search >= PLAIN_SCAN_MARGIN * candidates else ITERATIVE_SCAN

    async def search_terms(self, conn: Connection, text: str, *, hnsw_scan: str = ITERATIVE_SCAN,
                           population: float = 0.0, budget: float = ENUMERATED_ROWS_BUDGET,
                           generic_plan: bool = False) -> SearchTerms | None:
        """The lexemes of `text` with what the statistics say of them (see SearchTerms), or None
        when the text has operators or no lexeme. The same round trip sets the connection's
        hnsw.iterative_scan to `hnsw_scan` (PLAIN_SCAN or ITERATIVE_SCAN) and its plan_cache_mode.

        `population`: the estimated share of the table's rows the search looks at (the acting
        user's, TableStats.rows_share); 0 when unknown (the user's rows are then few enough not to
        be among the statistics' common values, and are counted). `budget`: the rows the keyword
        ranking may read for the enumerated lexemes (ENUMERATED_ROWS_BUDGET, or
        HYBRID_ENUMERATED_ROWS_BUDGET beside a vector ranking). `generic_plan`: the caller's
        statement has no filter whose selectivity a plan should see (no source or metadata); the
        statement is then run with a generic plan when the population is known (every keyword scan
        is bounded by these estimates, so no plan can turn one into a long walk): ~0.8 ms of
        planning saved per search at 100k rows, same results (measured on 100 queries)."""
        if has_operators(text):
            await set_hnsw_scan(conn, hnsw_scan)
            return None
        shares = await self.shares(conn)
        rows = self._rows * population if self._rows > 0 and population > 0 else 0.0
        plan = GENERIC_PLAN if generic_plan and rows > 0 else CUSTOM_PLAN
        # Noted first: a call cancelled during the round trip may have changed them (the next block
        # that is not a search then restores them, at worst needlessly).
        note_scan_mode(conn, hnsw_scan, plan)
        query = await conn.fetchval(f"SELECT websearch_to_tsquery('{TEXT_SEARCH_CONFIG}', $1)::text, "
                                    "set_config('hnsw.iterative_scan', $2, false), "
                                    "set_config('plan_cache_mode', $3, false)", text, hnsw_scan, plan)
        lexemes = sorted({_ESCAPED.sub(lambda e: e.group()[0], m) for m in _LEXEME.findall(query or "")},
                         key=lambda lexeme: (lexeme in shares, shares.get(lexeme, 0.0), lexeme))
        if not lexemes:
            return None
        # A lexeme the statistics do not list is rarer than every one they do (they keep the most
        # common ones): assume the least common listed share, but at most UNLISTED_SHARE (when only
        # words in nearly every row are listed, the others are not that common). Reads stay bounded
        # by hybrid_query.ENUMERATED_CANDIDATES when the guess is low.
        unlisted = min(min(shares.values(), default=UNLISTED_SHARE), UNLISTED_SHARE)
        guessed = [shares.get(lexeme, unlisted) for lexeme in lexemes]
        enumerated: list[bool] = []
        left = budget
        for share in guessed:  # rarest first
            # The rows expected among those searched (a word common in the table may be rare among
            # one user's rows: it is then read and counted for them). Unknown population: the
            # uncommon lexemes (the reads stop at hybrid_query.ENUMERATED_CANDIDATES rows).
            expected = share * rows
            fits = (expected <= left if rows > 0 else share <= COMMON_TERM_SHARE) \
                and sum(enumerated) < MAX_ENUMERATED_TERMS
            enumerated.append(fits)
            left -= expected if fits else 0.0
        read = dict(zip(lexemes, enumerated, strict=True))
        share_of = dict(zip(lexemes, guessed, strict=True))
        chosen = [lexeme for lexeme in lexemes if share_of[lexeme] <= COMMON_TERM_SHARE] or lexemes[:2]
        # Rows holding every chosen lexeme: a scan of its own unless the enumeration reads them all
        # already, or unless more rows than the budget are expected to hold them all (independence).
        expected_all = rows * math.prod(share_of[lexeme] for lexeme in chosen)
        every = not all(read[lexeme] for lexeme in chosen) and not (rows > 0 and expected_all > budget)
        return SearchTerms(
            lexemes=lexemes, shares=guessed, enumerated=enumerated, rows=rows, budget=budget,
            rare=" & ".join(tsquery_lexeme(lexeme) for lexeme in chosen) if every else "",
            enumerated_query=" | ".join(tsquery_lexeme(lexeme) for lexeme in lexemes if read[lexeme]),
            # (the rows of the enumerated lexemes are read whole: the newest rows of the others; fewer
            # ORed words also keep the planner's estimate low enough to use the text index)
            any_query=" | ".join(tsquery_lexeme(lexeme) for lexeme in lexemes if not read[lexeme]),
            generic_plan=plan == GENERIC_PLAN)


async def set_hnsw_scan(conn: Connection, mode: str, plan: str = CUSTOM_PLAN) -> None:
    """Set the connection's hnsw.iterative_scan (PLAIN_SCAN or ITERATIVE_SCAN) and plan_cache_mode
    for the next search."""
    note_scan_mode(conn, mode, plan)  # (first: see search_terms)
    await conn.execute("SELECT set_config('hnsw.iterative_scan', $1, false), set_config('plan_cache_mode', $2, false)",
                       mode, plan)
