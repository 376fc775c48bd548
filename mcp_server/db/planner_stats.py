"""What the planner's statistics say about a table, and the search decisions taken from them.

Two decisions, both to keep a search cheap without changing what it finds:
- Which of the query's terms the GIN index is asked for (`rare_terms`): a lexeme in more than
  COMMON_TERM_SHARE of the rows makes GIN intersect huge posting lists (tens of ms at 100k rows),
  while checking it on the rows found by the rarer terms is cheap.
- Whether the HNSW scan needs iterative scans (`hnsw_scan_mode`): they keep a filtered search
  complete but cost ~10% of the scan even when nothing is rejected, so a search turns them off
  when the statistics say a plain scan yields enough eligible rows.

The statistics are kept current by ANALYZE after bulk writes (db/upkeep.py) and by autovacuum;
they are read through SECURITY DEFINER functions (migrations 0011 and 0017) because pg_stats
hides tables with row-level security from the app role, and cached for `ttl_s` seconds.
"""

from __future__ import annotations

import re
import time

from mcp_server.db.engine import ITERATIVE_SCAN, Connection
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

    async def hnsw_scan_mode(self, conn: Connection, *, acting_user: str | None, model: str,
                             candidates: int, ef_search: int, filtered: bool, scope: Scope | None = None) -> str:
        """PLAIN_SCAN when a plain HNSW scan is expected to yield enough eligible rows (no filter
        beyond user, model and project, and most rows are eligible), else ITERATIVE_SCAN."""
        if filtered:
            return ITERATIVE_SCAN
        share = await self.rows_share(conn, acting_user, model)
        if scope is not None and share > 0:
            share *= await self.project_share(conn, scope)  # (as if independent of user and model)
        return PLAIN_SCAN if share * ef_search >= PLAIN_SCAN_MARGIN * candidates else ITERATIVE_SCAN

    async def rare_terms(self, conn: Connection, text: str, *, hnsw_scan: str = ITERATIVE_SCAN) -> str | None:
        """A tsquery ANDing the lexemes of `text` in at most COMMON_TERM_SHARE of the rows (else its
        two least common ones), or None when the text has operators or no lexeme.

        The same round trip sets the connection's hnsw.iterative_scan to `hnsw_scan` (PLAIN_SCAN or
        ITERATIVE_SCAN) for the search that follows."""
        terms = await self.search_terms(conn, text, hnsw_scan=hnsw_scan)
        return terms.rare if terms is not None else None

    async def search_terms(self, conn: Connection, text: str, *,
                           hnsw_scan: str = ITERATIVE_SCAN) -> SearchTerms | None:
        """The lexemes of `text` with what the statistics say of them (see SearchTerms), or None
        when the text has operators or no lexeme; sets hnsw.iterative_scan as `rare_terms` does."""
        if has_operators(text):
            await set_hnsw_scan(conn, hnsw_scan)
            return None
        shares = await self.shares(conn)
        query = await conn.fetchval(f"SELECT websearch_to_tsquery('{TEXT_SEARCH_CONFIG}', $1)::text, "
                                    "set_config('hnsw.iterative_scan', $2, false)", text, hnsw_scan)
        lexemes = sorted({_ESCAPED.sub(lambda e: e.group()[0], m) for m in _LEXEME.findall(query or "")},
                         key=lambda lexeme: (shares.get(lexeme, 0.0), lexeme))
        if not lexemes:
            return None
        chosen = [lexeme for lexeme in lexemes if shares.get(lexeme, 0.0) <= COMMON_TERM_SHARE] or lexemes[:2]
        return SearchTerms(lexemes=lexemes, shares=[shares.get(lexeme, 0.0) for lexeme in lexemes],
                           indexed=[lexeme in chosen for lexeme in lexemes], rows=self._rows,
                           rare=" & ".join(tsquery_lexeme(lexeme) for lexeme in chosen))


async def set_hnsw_scan(conn: Connection, mode: str) -> None:
    """Set the connection's hnsw.iterative_scan (PLAIN_SCAN or ITERATIVE_SCAN) for the next search."""
    await conn.execute("SELECT set_config('hnsw.iterative_scan', $1, false)", mode)
