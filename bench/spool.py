"""`python -m bench.spool [--calls 2000]`: what logging a gateway call costs, and where.

- `submit()`: the whole cost a proxied call pays (an append to the in-memory queue), and the
  cost when the queue is full (the call is written to the spill file instead, not synced);
- preparing a row off the event loop (split, redaction, size bound) for a small chat call and for
  a Claude-Code-sized one (a long system prompt, tool definitions, a conversation);
- the writer's rate: calls stored per second from the queue, and from a spill file.

Runs on an embedded PostgreSQL in a temporary folder; prints a table and the JSON of the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from mcp_server.app_context import open_app, release_database
from mcp_server.schemas import CapturedCall
from mcp_server.services.exchange_spool import ExchangeSpool
from mcp_server.settings import Settings


def chat_call(index: int, big: bool = False) -> CapturedCall:
    messages: list[dict[str, Any]] = [{"role": "user", "content": f"How do we retry call {index}? " * 4}]
    request: dict[str, Any] = {"model": "claude-x", "max_tokens": 1024, "stream": True}
    if big:  # about what Claude Code sends: ~150 KB
        request["system"] = "Follow the repository's conventions; prefer small diffs. " * 600
        request["tools"] = [{"name": f"tool_{t}", "description": "Reads or edits files in the workspace. " * 40,
                             "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}
                            for t in range(30)]
        messages = [{"role": "user" if turn % 2 == 0 else "assistant",
                     "content": [{"type": "text", "text": f"turn {turn}: " + "some code and talk " * 150}]}
                    for turn in range(20)]
    return CapturedCall(
        request_id=f"bench-{'big' if big else 'small'}-{index}", provider="anthropic", endpoint="/v1/messages",
        model="claude-x", request={**request, "messages": messages},
        response={"role": "assistant", "content": [{"type": "text", "text": "Use the retry helper. " * 20}],
                  "stop_reason": "end_turn", "usage": {"input_tokens": 900, "output_tokens": 60}},
        status_code=200, latency_ms=420, ttft_ms=35, usage={"input_tokens": 900, "output_tokens": 60},
        outcome="completed", stream=True, project="github.com/org/bench", created_at=datetime.now(UTC))


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    return {"p50_us": ordered[len(ordered) // 2] / 1000, "p99_us": ordered[int(len(ordered) * 0.99)] / 1000,
            "mean_us": statistics.fmean(ordered) / 1000}


async def until(condition: Callable[[], bool]) -> None:
    while True:
        if condition():
            return
        await anyio.sleep(0.01)


async def measure(calls: int, workdir: Path) -> dict[str, Any]:
    settings = Settings(_env_file=None, data_dir=workdir / "data", embedding_provider="hashing",  # type: ignore[call-arg]
                        log_level="WARNING", gateway_queue_size=calls)
    small = [chat_call(i) for i in range(calls)]
    big = [chat_call(i, big=True) for i in range(max(calls // 10, 20))]
    results: dict[str, Any] = {"calls": calls, "big_call_bytes": len(big[0].model_dump_json())}
    try:
        async with open_app(settings, load_in_background=False) as app:
            spool = ExchangeSpool(app.conversations, settings)
            await anyio.to_thread.run_sync(spool._prepare_directory)
            # submit(): into the queue (no writer running, so nothing else runs meanwhile)
            samples = []
            for call in small:
                start = time.perf_counter_ns()
                spool.submit(call)
                samples.append(time.perf_counter_ns() - start)
            results["submit_queued"] = percentiles(samples)
            # submit() with the queue full: to the spill file
            samples = []
            for call in small[: min(calls, 1000)]:
                start = time.perf_counter_ns()
                spool.submit(call.model_copy(update={"request_id": call.request_id + "-spilled"}))
                samples.append(time.perf_counter_ns() - start)
            results["submit_spilled"] = percentiles(samples)
            # preparing a row (what runs in a worker thread for each call)
            for name, sample in (("small", small[:200]), ("big", big)):
                start = time.perf_counter_ns()
                for call in sample:
                    app.conversations._captured_row(call, "bench", None)
                results[f"prepare_{name}_ms"] = (time.perf_counter_ns() - start) / len(sample) / 1e6
            # the writer: the queue, then the spill file, stored
            async with anyio.create_task_group() as tasks:
                started = time.perf_counter()
                await tasks.start(spool.run)
                await until(lambda: not (spool._queue or spool._in_flight))
                queued_s = time.perf_counter() - started
                await until(lambda: not spool.pending())
                total_s = time.perf_counter() - started
                results["stored_per_s_from_queue"] = calls / queued_s
                results["stored_per_s_from_file"] = min(calls, 1000) / max(total_s - queued_s, 1e-9)
                for call in big:
                    spool.submit(call)
                started = time.perf_counter()
                await until(lambda: not spool.pending())
                results["stored_per_s_big"] = len(big) / (time.perf_counter() - started)
                await spool.drain(5)
                tasks.cancel_scope.cancel()
    finally:
        release_database(settings)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.spool", description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="aletheia-bench-spool-") as tmp:
        results = anyio.run(measure, args.calls, Path(tmp))
    print(f"{'figure':<44} {'value':>12}")
    for name in ("submit_queued", "submit_spilled"):
        figures = results[name]
        print(f"{name + ' p50 / p99 (µs)':<44} {figures['p50_us']:>5.2f} / {figures['p99_us']:.2f}")
    print(f"{'prepare a small call (ms, worker thread)':<44} {results['prepare_small_ms']:>12.3f}")
    print(f"{'prepare a ' + str(results['big_call_bytes'] // 1000) + ' KB call (ms, worker thread)':<44} "
          f"{results['prepare_big_ms']:>12.3f}")
    for name in ("stored_per_s_from_queue", "stored_per_s_from_file", "stored_per_s_big"):
        print(f"{name:<44} {results[name]:>12.0f}")
    json.dump(results, sys.stdout)
    print()


if __name__ == "__main__":
    main()
