"""`python -m bench.versus OTHER_CHECKOUT`: this tree's server against another checkout's, call by
call, on one store: the way to show that a change made nothing slower on a machine whose speed
drifts by a quarter from one minute to the next.

Both servers are started over stdio (the same client, embedder and embedded PostgreSQL) with
`PYTHONPATH` pointing at their own checkout; each call goes to both, in alternating order. The
store (10,000 notes and 10,000 patterns by default) is loaded once by this tree's code, so the
other checkout must read the same schema revision. Prints p50/p95/p99 in ms per operation.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from mcp import Client

from bench.corpus import Corpus, make_corpus
from bench.harness import WARMUP_CALLS, stdio_session
from bench.ours import LIMIT, load_corpus, server_env
from bench.patterns import find_arguments, load_patterns

REPO = Path(__file__).resolve().parents[1]


def operations(corpus: Corpus, calls: int) -> dict[str, Callable[[int, str], tuple[str, dict[str, Any]]]]:
    """Each measured operation: the tool and arguments of its i-th call (by a server named so)."""
    queries = corpus.query_series(calls)
    groups = np.random.default_rng(7).integers(0, 100, size=calls).tolist()
    finds = find_arguments(calls)
    return {
        "recall": lambda i, side: ("recall", {"query": queries[i], "limit": LIMIT}),
        "recall filtered ~1%": lambda i, side: ("recall", {"query": queries[i], "limit": LIMIT,
                                                          "metadata": {"group": groups[i]}}),
        "remember": lambda i, side: ("remember", {"content": f"versus {side} {i}: {queries[i]}"}),
        "find_patterns": lambda i, side: ("find_patterns", finds[i]),
    }


async def side_by_side(other: Path, size: int, calls: int) -> dict[str, dict[str, list[float]]]:
    with tempfile.TemporaryDirectory(prefix="aletheia-versus-") as tmp:
        data_dir = Path(tmp) / "store"
        print(f"[versus] loading {size} notes and {size} patterns ...", file=sys.stderr, flush=True)
        corpus = make_corpus(size)
        await load_corpus(corpus, data_dir)
        await load_patterns(data_dir, size)
        latency: dict[str, dict[str, list[float]]] = {}
        async with AsyncExitStack() as stack:
            clients: dict[str, Client] = {}
            for name, checkout in (("this tree", REPO), ("other", other)):
                env = server_env(data_dir, PYTHONPATH=str(checkout))
                clients[name] = await stack.enter_async_context(
                    stdio_session(sys.executable, ["-m", "mcp_server", "serve"], env, cwd=str(checkout)))
                await clients[name].call_tool("server_status", {})
            for operation, make_call in operations(corpus, calls + WARMUP_CALLS).items():
                print(f"[versus] {operation} ...", file=sys.stderr, flush=True)
                samples: dict[str, list[float]] = {name: [] for name in clients}
                for i in range(calls + WARMUP_CALLS):
                    order = list(clients) if i % 2 == 0 else list(reversed(clients))
                    for name in order:
                        tool, arguments = make_call(i, name)
                        started = time.perf_counter()
                        result = await clients[name].call_tool(tool, arguments)
                        elapsed = time.perf_counter() - started
                        if result.is_error:
                            raise AssertionError(f"{name}: {tool} failed: {result.content}")
                        if i >= WARMUP_CALLS:
                            samples[name].append(elapsed * 1000)
                latency[operation] = samples
    return latency


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.versus", description=__doc__)
    parser.add_argument("other", type=Path, help="the other checkout (e.g. a git worktree of main)")
    parser.add_argument("--size", type=int, default=10_000, help="notes and patterns in the store")
    parser.add_argument("--calls", type=int, default=500, help="measured calls per operation and server")
    args = parser.parse_args()
    latency = anyio.run(side_by_side, args.other.resolve(), args.size, args.calls)
    print(f"{'operation':<22}{'server':<12}{'p50':>8}{'p95':>8}{'p99':>8}   (ms, {args.calls} calls each)")
    for operation, samples in latency.items():
        for name, values in samples.items():
            p50, p95, p99 = (float(np.percentile(values, p)) for p in (50, 95, 99))
            print(f"{operation:<22}{name:<12}{p50:>8.2f}{p95:>8.2f}{p99:>8.2f}")


if __name__ == "__main__":
    main()
