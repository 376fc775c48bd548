"""Recall head to head: each system answers the same query in turn, query after query.

This VM's speed drifts by 25-45% from one minute to the next, for every process alike. Figures
measured one system after another inherit that drift, and so did their ratios: qdrant/ours was
8.6x in one run and 14.5x in the next, with nothing changed. Here all systems (and the MCP
floor: the same client and SDK with no search behind the tool) are open at once, and each
query goes to each of them in a rotating order, so drift reaches them all alike and the ratios
hold. Runs once every store is loaded and measured on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from typing import Any

import anyio
from mcp import Client

from bench.corpus import Corpus
from bench.harness import WARMUP_CALLS, call_tool, summarize

# A whole head-to-head series may take this long (qdrant answers in ~0.1 s at 100k rows).
LIMIT_S = 1800.0


@dataclass(frozen=True)
class Contender:
    system: str
    session: Callable[[], AbstractAsyncContextManager[Client]]
    tool: str
    arguments: Callable[[str], dict[str, Any]]
    check: Callable[[Any], None] | None = None


async def head_to_head(corpus: Corpus, contenders: list[Contender], calls: int, baseline: str) -> dict[str, Any]:
    """p50/p95/p99 per system over `calls` rotating rounds (after warm-up), and each p50 over `baseline`'s;
    or `error` when any system failed."""
    queries = corpus.query_series(calls + WARMUP_CALLS)
    samples: dict[str, list[float]] = {c.system: [] for c in contenders}
    try:
        await _rounds(contenders, queries, samples)
    except Exception as exc:  # a failure is this series' result, never the end of the benchmark
        while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        return {"n": len(corpus), "error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"}
    latency = {system: summarize(times, sum(times)).as_dict() for system, times in samples.items()}
    base = latency[baseline]["p50_ms"]
    return {"n": len(corpus), "calls": calls, "order": "rotating, one query to every system per round",
            "recall": latency,
            "p50_over_ours": {system: round(figures["p50_ms"] / base, 2) for system, figures in latency.items()}}


async def _rounds(contenders: list[Contender], queries: list[str], samples: dict[str, list[float]]) -> None:
    with anyio.fail_after(LIMIT_S):
        async with AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(c.session()) for c in contenders]
            for round_number, query in enumerate(queries):
                first = round_number % len(contenders)  # who goes first rotates
                for index in [*range(first, len(contenders)), *range(first)]:
                    contender, client = contenders[index], clients[index]
                    started = time.perf_counter()
                    payload = await call_tool(client, contender.tool, contender.arguments(query))
                    elapsed = time.perf_counter() - started
                    if contender.check is not None:
                        contender.check(payload)
                    if round_number >= WARMUP_CALLS:
                        samples[contender.system].append(elapsed)
