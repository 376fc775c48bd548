"""Recall head to head: each system answers the same query in turn, query after query.

This VM's speed drifts by 25-45% from one minute to the next, for every process alike. Figures
measured one system after another inherit that drift, and so did their ratios: qdrant/ours was
8.6x in one run and 14.5x in the next, with nothing changed. Here all systems (and the MCP
floor: the same client and SDK with no search behind the tool) are open at once, and each
query goes to each of them in a rotating order, so drift reaches them all alike and the ratios
hold. Runs once every store is loaded and measured on its own.

Then each system answers CPU_CALLS more queries alone, and the CPU its server process and every
PostgreSQL process spent over them is divided by the calls: CPU per call bounds throughput on a
machine with two cores (eight concurrent clients of ours were CPU-bound at 169 calls/s).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from typing import Any

import anyio
import psutil
from mcp import Client

from bench.corpus import Corpus
from bench.harness import WARMUP_CALLS, call_tool, summarize

# A whole head-to-head series may take this long (qdrant answers in ~0.1 s at 100k rows).
LIMIT_S = 1800.0
# Queries each system answers alone for its CPU per call.
CPU_CALLS = 200


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
    cpu: dict[str, dict[str, float]] = {}
    try:
        await _rounds(contenders, queries, samples, cpu)
    except Exception as exc:  # a failure is this series' result, never the end of the benchmark
        while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        return {"n": len(corpus), "error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"}
    latency = {system: summarize(times, sum(times)).as_dict() for system, times in samples.items()}
    base = latency[baseline]["p50_ms"]
    return {"n": len(corpus), "calls": calls, "order": "rotating, one query to every system per round",
            "recall": latency,
            "p50_over_ours": {system: round(figures["p50_ms"] / base, 2) for system, figures in latency.items()},
            "cpu_ms_per_call": cpu}


async def _rounds(contenders: list[Contender], queries: list[str], samples: dict[str, list[float]],
                  cpu: dict[str, dict[str, float]]) -> None:
    me = psutil.Process()
    with anyio.fail_after(LIMIT_S):
        async with AsyncExitStack() as stack:
            clients, servers = [], []
            for contender in contenders:
                before = {child.pid for child in me.children()}
                clients.append(await stack.enter_async_context(contender.session()))
                servers.append([child for child in me.children() if child.pid not in before])
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

            for contender, client, server in zip(contenders, clients, servers, strict=True):
                cpu[contender.system] = await _cpu_per_call(contender, client, server, queries[:CPU_CALLS])


async def _cpu_per_call(contender: Contender, client: Client, server: list[psutil.Process],
                        queries: list[str]) -> dict[str, float]:
    """CPU milliseconds per call of the system's server process(es) and of all PostgreSQL processes,
    over `queries` answered by this system alone."""
    server_before, postgres_before = _cpu_by_pid(server)
    for query in queries:
        await call_tool(client, contender.tool, contender.arguments(query))
    server_after, postgres_after = _cpu_by_pid(server)
    server_s = sum(cpu - server_before.get(pid, 0.0) for pid, cpu in server_after.items())
    postgres_s = sum(cpu - postgres_before.get(pid, 0.0) for pid, cpu in postgres_after.items())
    per_call = 1000 / max(1, len(queries))
    return {"server_ms": round(server_s * per_call, 2), "postgres_ms": round(postgres_s * per_call, 2),
            "total_ms": round((server_s + postgres_s) * per_call, 2)}


def _cpu_by_pid(server: list[psutil.Process]) -> tuple[dict[int, float], dict[int, float]]:
    """User + system CPU seconds of the server's processes (and their children) and of every
    PostgreSQL process on the machine, by pid (a postgres the server started counts as postgres)."""
    server_cpu: dict[int, float] = {}
    postgres_cpu: dict[int, float] = {}
    candidates: list[psutil.Process] = []
    for process in server:
        try:
            candidates += [process, *process.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
    for process in [*candidates, *psutil.process_iter()]:
        try:
            is_postgres = process.name().startswith("postgres")
            if not is_postgres and process not in candidates:
                continue
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        (postgres_cpu if is_postgres else server_cpu)[process.pid] = times.user + times.system
    return server_cpu, postgres_cpu
