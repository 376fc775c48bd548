"""Loading a peer's store and measuring its tools over stdio, with the client side being ours."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from mcp import Client
from mcp.client.stdio import StdioServerParameters, get_default_environment

from bench.corpus import Corpus
from bench.harness import RssSampler, timed_calls
from bench.peers.specs import COLLECTION, LIMIT, Peer
from bench.peers.venvs import HANG_LIMIT_S, PeerError, last_line, run_logged
from mcp_server.embeddings import HashingEmbedder
from mcp_server.embeddings.hashing import DEFAULT_MODEL

RECALL_QUERIES = 100
WARMUP = 50
# A whole stage (the bulk load, one measured series) may take this long. Slow is a result, but the
# run must end: chroma-mcp's store tool reads every id of the collection on each call, so at
# 100k rows its ~550 calls take minutes, and at 1M they would take hours.
STAGE_LIMIT_S = 1800.0


@dataclass(frozen=True)
class SharedCorpus:
    """The corpus as files both loaders read, and its vectors (computed once, by our embedder)."""

    texts_file: Path
    vectors_file: Path
    vectors: np.ndarray
    embed_s: float


def write_corpus(corpus: Corpus, directory: Path) -> SharedCorpus:
    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    vectors = np.stack(HashingEmbedder(384, model=DEFAULT_MODEL).embed_sync(corpus.texts))
    embed_s = round(time.perf_counter() - started, 2)
    texts_file, vectors_file = directory / "corpus.json", directory / "vectors.npy"
    texts_file.write_text(json.dumps({"texts": corpus.texts, "groups": corpus.groups}))
    np.save(vectors_file, vectors)
    return SharedCorpus(texts_file, vectors_file, vectors, embed_s)


@dataclass(frozen=True)
class Exact:
    """Exact cosine scores of one query against every row (vectors are L2-normalised: cosine = dot)."""

    scores: np.ndarray
    tenth: float  # the 10th best score

    def hits(self, rows: list[int]) -> int:
        """Returned rows that belong in an exact top-10. A row tied with the 10th best counts: with
        hashing vectors, equal scores at the boundary are common and either row is a right answer."""
        valid = [r for r in set(rows) if 0 <= r < self.scores.size]
        return min(LIMIT, int((self.scores[valid] >= self.tenth - 1e-6).sum()))


def exact_top10(vectors: np.ndarray, queries: list[str]) -> list[Exact]:
    query_vectors = np.stack(HashingEmbedder(384, model=DEFAULT_MODEL).embed_sync(queries))
    scores = query_vectors @ vectors.T
    tenth = np.partition(scores, -LIMIT, axis=1)[:, -LIMIT]
    return [Exact(row, float(t)) for row, t in zip(scores, tenth, strict=True)]


class Stages:
    """One cancel scope over a whole MCP session, its deadline moved at each stage.

    A hang anywhere ends the session, which stops the server: the handshake included, which the
    client's read timeout does not cover (a server that never answers `initialize` blocks forever).
    """

    def __init__(self, first: str, limit: float) -> None:
        self.scope = anyio.CancelScope()
        self.begin(first, limit)

    def begin(self, name: str, limit: float = STAGE_LIMIT_S) -> None:
        self.name, self.limit = name, limit
        self.scope.deadline = anyio.current_time() + limit

    def check(self) -> None:
        """After the scope: raise if it was cut short by a deadline."""
        if self.scope.cancelled_caught:
            raise PeerError(f"{self.name}: no result within {self.limit:.0f} s, server stopped")


async def load(peer: Peer, python: Path, data_dir: Path, shared: SharedCorpus, log: Path) -> dict[str, Any]:
    """Bulk-load through the peer's own library (its loader script), then report rows and timings."""
    shutil.rmtree(data_dir, ignore_errors=True)
    started = time.perf_counter()
    out = await run_logged([str(python), str(peer.script_path), "load", "--path", str(data_dir), "--collection",
                            COLLECTION, "--corpus", str(shared.texts_file), "--vectors", str(shared.vectors_file)],
                           log, capture=True, env={**get_default_environment(), **peer.env(data_dir, log)},
                           timeout=STAGE_LIMIT_S)
    report: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    report["wall_s"] = round(time.perf_counter() - started, 2)  # with interpreter start and reading the files
    report["import_rows_per_s"] = round(report["rows"] / report["seconds"]) if report["seconds"] else None
    report["embed_s"] = shared.embed_s  # our embedder, once, outside the peer; not in `seconds`
    return report


@asynccontextmanager
async def peer_session(python: Path, args: list[str], env: dict[str, str]) -> AsyncIterator[Client]:
    """harness.stdio_session, but with the `initialize` handshake: the peers' mcp 1.x servers do not
    know `server/discover` (the 2.x client's first probe), and mcp 1.6 (chroma-mcp) dies on it."""
    params = StdioServerParameters(command=str(python), args=args, env=env)
    async with Client(params, read_timeout_seconds=HANG_LIMIT_S, mode="legacy") as client:
        yield client


async def recall_at_10(client: Client, peer: Peer, queries: list[str], exact: list[Exact]) -> float:
    total = 0.0
    for query, expected in zip(queries, exact, strict=True):
        result = await client.call_tool(peer.find_tool, peer.find_arguments(query))
        if result.is_error:
            raise PeerError(f"{peer.find_tool} failed: {result.content[0].text if result.content else ''}")
        payload = result.structured_content if result.structured_content is not None else result.content
        total += expected.hits(peer.returned_ids(payload)) / LIMIT
    return round(total / len(queries), 4)


def full_page(peer: Peer) -> Callable[[Any], None]:
    def check(payload: Any) -> None:
        if len(peer.returned_ids(payload)) != LIMIT:
            raise PeerError(f"{peer.find_tool} returned {len(peer.returned_ids(payload))} corpus rows, wanted {LIMIT}")

    return check


async def measure_peer(peer: Peer, python: Path, data_dir: Path, corpus: Corpus, shared: SharedCorpus, calls: int,
                  log: Path) -> dict[str, Any]:
    """One session: start-up, recall@10, the find tool, then the store tool (which adds rows, so last)."""
    queries = corpus.query_series(calls + WARMUP)
    recall_queries = corpus.queries[:RECALL_QUERIES]
    exact = exact_top10(shared.vectors, recall_queries)
    notes = [f"benchmark remember {i}: {q}" for i, q in enumerate(queries)]
    result: dict[str, Any] = {}
    stages = Stages("start", HANG_LIMIT_S)
    with RssSampler() as rss, stages.scope:
        started = time.perf_counter()
        async with peer_session(python, peer.serve_args(data_dir), peer.env(data_dir, log)) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            result["warm_start_s"] = round(time.perf_counter() - started, 3)  # spawn to first answer, store loaded
            if missing := {peer.find_tool, peer.store_tool} - tools:
                raise PeerError(f"tools missing: {sorted(missing)} (has {sorted(tools)})")
            stages.begin("recall@10")
            result["recall_at_10"] = await recall_at_10(client, peer, recall_queries, exact)
            stages.begin("find")
            result["recall"] = (await timed_calls(client, peer.find_tool, [peer.find_arguments(q) for q in queries],
                                                  check=full_page(peer), warmup=WARMUP)).as_dict()
            stages.begin("store")
            result["store"] = (await timed_calls(
                client, peer.store_tool, [peer.store_arguments(i, n, i % 100) for i, n in enumerate(notes)],
                warmup=WARMUP)).as_dict()
    stages.check()
    result["peak_rss_mb"] = rss.peak_mb
    return result


def server_log_hint(log: Path) -> str:
    line = last_line(log)
    return f" [peer log: {log}" + (f"; last line: {line}" if line else "") + "]"
