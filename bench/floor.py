"""The MCP floor: what a tool call costs through the same client, SDK and stdio with no work behind it."""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path
from typing import Any

from bench.corpus import Corpus
from bench.harness import WARMUP_CALLS, stdio_session, timed_calls
from bench.head_to_head import Contender

REPO_ROOT = Path(__file__).resolve().parent.parent

floor_session = partial(stdio_session, sys.executable, ["-m", "bench.floor_server"], dict(os.environ),
                        cwd=str(REPO_ROOT))


async def bench_floor(corpus: Corpus, calls: int) -> dict[str, Any]:
    queries = corpus.query_series(calls + WARMUP_CALLS)
    async with floor_session() as client:
        nothing = await timed_calls(client, "nothing", [{}] * len(queries))
        recall = await timed_calls(client, "recall", [{"query": q, "limit": 10} for q in queries])
    return {"nothing": nothing.as_dict(), "recall_shaped": recall.as_dict()}


def floor_contender() -> Contender:
    """The recall-shaped floor in the head-to-head series: what any recall costs before it searches."""
    return Contender("MCP floor (no search)", floor_session, "recall", lambda query: {"query": query, "limit": 10})
