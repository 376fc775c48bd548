"""Timing through a real MCP client over stdio: one session reused, warm-up, then percentiles."""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

import psutil
from mcp import Client
from mcp.client.stdio import StdioServerParameters

WARMUP_CALLS = 50


@dataclass
class Latency:
    calls: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    calls_per_s: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(samples_s: Sequence[float], wall_s: float) -> Latency:
    ordered = sorted(samples_s)

    def pct(p: float) -> float:
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index] * 1000

    return Latency(len(ordered), round(pct(50), 3), round(pct(95), 3), round(pct(99), 3),
                   round(statistics.fmean(ordered) * 1000, 3), round(len(ordered) / wall_s, 1))


class RssSampler:
    """Peak resident memory of the server process (the client's child), sampled every 50 ms."""

    def __init__(self) -> None:
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._me = psutil.Process(os.getpid())

    def _run(self) -> None:
        while not self._stop.is_set():
            for child in self._me.children(recursive=True):
                try:
                    name = " ".join(child.cmdline())
                    if "postgres" in child.name():
                        continue
                    if "python" in name or "mcp" in name or "chroma" in name or "qdrant" in name:
                        self.peak_bytes = max(self.peak_bytes, child.memory_info().rss)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    @property
    def peak_mb(self) -> float:
        return round(self.peak_bytes / 2**20, 1)


@asynccontextmanager
async def stdio_session(command: str, args: list[str], env: dict[str, str],
                        cwd: str | None = None) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=command, args=args, env=env, cwd=cwd)
    async with Client(params, read_timeout_seconds=600) as client:
        yield client


async def timed_calls(client: Client, tool: str, argument_sets: Sequence[dict[str, Any]],
                      check: Callable[[Any], None] | None = None, warmup: int = WARMUP_CALLS) -> Latency:
    """Warm up, then call `tool` once per argument set; every call must succeed."""
    for arguments in argument_sets[:warmup]:
        await call_tool(client, tool, arguments)
    samples: list[float] = []
    started = time.perf_counter()
    for arguments in argument_sets[warmup:]:
        t0 = time.perf_counter()
        result = await call_tool(client, tool, arguments)
        samples.append(time.perf_counter() - t0)
        if check is not None:
            check(result)
    return summarize(samples, time.perf_counter() - started)


async def call_tool(client: Client, tool: str, arguments: dict[str, Any]) -> Any:
    """The structured result (else the content) of one call; a tool error raises."""
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        text = result.content[0].text if result.content else ""
        raise RuntimeError(f"{tool} failed: {text}")
    return result.structured_content if result.structured_content is not None else result.content
