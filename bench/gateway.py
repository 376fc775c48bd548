"""The logging gateway's added latency, measured side by side with calling the upstream directly.

Four processes besides the benchmark's own: the loopback fake upstream
(`bench.fake_llm_upstream`), `aletheia-mcp gateway` in front of it (a real subprocess, logging
every call to its embedded PostgreSQL, LOG_LEVEL=WARNING), that PostgreSQL, and the floor
(`bench.passthrough_floor`). The clients are
httpx2 (the project's HTTP client), `concurrency` of them at once, each calling back to back.

This VM's speed drifts from one minute to the next (see bench/head_to_head.py), so the paths
are measured in rounds: a batch straight to the upstream, a batch through the gateway, a batch
through the floor (bench.passthrough_floor: a bare pass-through on the same HTTP stack, no
logging), the order rotated every round. The gateway's added latency is its percentile minus the
direct one; the floor's, what any pass-through on this stack adds on this machine. Figures:
- non-streaming: the whole call (request sent, JSON answer read);
- streaming: time to the first chunk of the SSE answer (the model's first token); the rest of the
  stream is read and checked too;
- with an upstream that takes a model's time (MODEL_TIME_MS), both latencies are what a call
  took beyond the time the fake was asked to wait, and the clients call independently: each
  starts at its own moment (see `batch`), not all 32 in the same millisecond;
- throughput: calls/s through each path while `concurrency` clients call back to back;
- CPU per call: the gateway process's CPU time (user + system) over the calls it relayed, waited
  for until it is idle, so that the rows it writes after the answers are counted too; the
  PostgreSQL processes' CPU likewise, separately.
At the end the gateway is stopped (SIGTERM: it drains its queue) and its rows are counted: every
call must be stored once, or logging was not really on.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import IO, Any

import anyio
import httpx2
import psutil
from anyio.abc import Process

from bench.fake_llm_upstream import DELAY_HEADER
from bench.harness import summarize
from bench.ours import server_env, settings_for
from bench.report import save_results
from mcp_server.app_context import open_app

REPO_ROOT = str(Path(__file__).resolve().parent.parent)
TARGET_P50_ADDED_MS = 2.0  # the bound, at 1 and at 32 clients
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 120.0
ROUNDS = 10
ENDPOINT = "/v1/chat/completions"
# What a coding agent sends: a system prompt, a few turns, parameters (~2.4 KB of JSON).
SYSTEM = ("You are a senior engineer. Answer briefly, with code when it helps, and follow the project's "
          "conventions: type hints, small functions, comments that say why. ") * 4
TURNS = [
    {"role": "user", "content": "Our retry helper retries immediately and floods the API when it is down. " * 6},
    {"role": "assistant", "content": "Back off exponentially with jitter and cap the wait; log each attempt."},
    {"role": "user", "content": "Show the helper with full jitter, a 30 s cap, and one log line per attempt. " * 4},
]

Call = Callable[[httpx2.AsyncClient, str, int], Awaitable[float]]
# With an upstream that answers at once, 32 clients calling back to back keep the gateway busy
# all the time (throughput), and its added latency is mostly the wait for its CPU. A model takes
# a while to answer: with this delay on average (sent as a header the fake obeys), 32 clients in flight are
# 32 concurrent calls at a load the gateway can carry, which is what a team's agents produce.
MODEL_TIME_MS = 200
FIGURES = (("non_streaming", 1, 0), ("non_streaming", 32, 0), ("non_streaming", 32, MODEL_TIME_MS),
           ("streaming_first_chunk", 1, 0), ("streaming_first_chunk", 32, 0),
           ("streaming_first_chunk", 32, MODEL_TIME_MS))


def chat_request(stream: bool) -> dict[str, Any]:
    request: dict[str, Any] = {"model": "gpt-fake", "messages": [{"role": "system", "content": SYSTEM}, *TURNS],
                               "temperature": 0.2, "max_tokens": 512, "stream": stream}
    if stream:
        request["stream_options"] = {"include_usage": True}
    return request


_jitter = random.Random(20)


def model_time(delay_ms: int) -> tuple[dict[str, str], float]:
    """The header asking the fake for the model's time on one call, and that time in seconds:
    drawn from 0.5x to 1.5x `delay_ms`, since with one fixed delay 32 clients stay in lockstep and
    reach the gateway as one burst every round trip. The calls report their latency beyond it, or
    the spread of the draws (~4 ms on a p50 of 500 calls) would hide a 2 ms difference."""
    if not delay_ms:
        return {}, 0.0
    drawn = round(delay_ms * _jitter.uniform(0.5, 1.5))
    return {DELAY_HEADER.decode(): str(drawn)}, drawn / 1000


PLAIN = chat_request(stream=False)
STREAMED = chat_request(stream=True)


async def plain_call(client: httpx2.AsyncClient, base_url: str, delay_ms: int) -> float:
    """Seconds for one non-streaming call, answer read and checked."""
    headers, model_s = model_time(delay_ms)
    started = time.perf_counter()
    response = await client.post(base_url + ENDPOINT, json=PLAIN, headers=headers)
    elapsed = time.perf_counter() - started - model_s
    if response.status_code != 200 or not response.json()["choices"][0]["message"]["content"]:
        raise RuntimeError(f"{base_url}: {response.status_code} {response.text[:300]}")
    return elapsed


async def first_chunk_call(client: httpx2.AsyncClient, base_url: str, delay_ms: int) -> float:
    """Seconds to the first chunk of a streamed answer; the rest is read and checked."""
    headers, model_s = model_time(delay_ms)
    started = time.perf_counter()
    first: float | None = None
    tail = b""
    async with client.stream("POST", base_url + ENDPOINT, json=STREAMED, headers=headers) as response:
        async for chunk in response.aiter_raw():
            if first is None:
                first = time.perf_counter() - started - model_s
            tail = (tail + chunk)[-64:]
    if response.status_code != 200 or first is None or not tail.endswith(b"data: [DONE]\n\n"):
        raise RuntimeError(f"{base_url}: {response.status_code}, stream ended with {tail!r}")
    return first


async def batch(client: httpx2.AsyncClient, base_url: str, call: Call, calls: int, concurrency: int,
                delay_ms: int = 0) -> tuple[list[float], float]:
    """`calls` calls made by `concurrency` clients calling back to back: the samples and the wall time.

    With a model's time, each client makes its first call at a random moment within the longest
    model time: started together, the 32 first calls of every batch (most of its calls) reach the
    gateway in the same millisecond, and the last waits for the 31 before it (~16 ms at p50 on 2
    cores, for a bare pass-through as for the gateway). Agents do not call in lockstep."""
    samples: list[float] = []
    remaining = calls

    async def client_loop() -> None:
        nonlocal remaining
        if delay_ms:
            await anyio.sleep(_jitter.uniform(0, 1.5 * delay_ms / 1000))
        while remaining > 0:
            remaining -= 1
            samples.append(await call(client, base_url, delay_ms))

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for _ in range(concurrency):
            group.start_soon(client_loop)
    return samples, time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class CpuMeter:
    """CPU seconds (user + system) of a process and, for PostgreSQL, of the postmaster's children."""

    def __init__(self, process: psutil.Process, with_children: bool = False) -> None:
        self._process = process
        self._with_children = with_children

    def seconds(self) -> float:
        processes = [self._process]
        if self._with_children:
            processes += self._process.children(recursive=True)
        total = 0.0
        for process in processes:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:  # a backend that ended: its CPU is not counted
                continue
            total += times.user + times.system
        return total


def postmaster_of(data_dir: Path) -> psutil.Process | None:
    """The embedded PostgreSQL started for `data_dir` (its command line names the data directory)."""
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if process.info["name"] == "postgres" and str(data_dir) in cmdline:
            return process
    return None


async def wait_until_idle(meter: CpuMeter, timeout_s: float = 30.0) -> None:
    """Until the process used under 2% of a core for 0.3 s: the rows of the calls are written."""
    deadline = time.monotonic() + timeout_s
    before = meter.seconds()
    while time.monotonic() < deadline:
        await anyio.sleep(0.3)
        now = meter.seconds()
        if now - before < 0.006:
            return
        before = now


async def start_gateway(data_dir: Path, upstream: str, port: int, stderr: IO[bytes]) -> Process:
    env = server_env(data_dir, GATEWAY_OPENAI_UPSTREAM=upstream, ALETHEIA_PROJECT="bench/gateway")
    return await anyio.open_process([sys.executable, "-m", "mcp_server", "gateway", "--port", str(port)],
                                    env=env, cwd=str(data_dir.parent), stdin=None, stdout=stderr, stderr=stderr)


async def wait_ready(client: httpx2.AsyncClient, base_url: str, process: Process | None, log: Path | None) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process is not None and process.returncode is not None:
            tail = (await anyio.Path(log).read_text(errors="replace"))[-3000:] if log else ""
            raise RuntimeError(f"the gateway exited with {process.returncode} before serving:\n{tail}")
        try:
            if (await client.get(base_url + "/v1/models")).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{base_url} did not answer within {START_TIMEOUT_S:.0f} s")
        await anyio.sleep(0.1)


async def stop(process: Process) -> int | None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    with anyio.move_on_after(STOP_TIMEOUT_S):
        return await process.wait()
    process.kill()
    return await process.wait()


async def stored_rows(data_dir: Path) -> int:
    async with open_app(settings_for(data_dir), load_in_background=False) as app, \
            app.database.connection() as conn:
        count: int = await conn.fetchval("SELECT count(*) FROM raw_conversations WHERE endpoint = $1", ENDPOINT)
        return count


async def side_by_side(clients: dict[str, httpx2.AsyncClient], urls: dict[str, str], call: Call, calls: int,
                       concurrency: int, delay_ms: int, rounds: int, gateway_cpu: CpuMeter,
                       postgres_cpu: CpuMeter | None) -> dict[str, Any]:
    per_batch = max(calls // rounds, concurrency)
    samples: dict[str, list[float]] = {path: [] for path in urls}
    wall: dict[str, float] = dict.fromkeys(urls, 0.0)
    paths = list(urls)
    await wait_until_idle(gateway_cpu)
    cpu_before = gateway_cpu.seconds()
    pg_before = postgres_cpu.seconds() if postgres_cpu else 0.0
    for round_ in range(rounds):
        turn = round_ % len(paths)
        for path in paths[turn:] + paths[:turn]:
            taken, seconds = await batch(clients[path], urls[path], call, per_batch, concurrency, delay_ms)
            samples[path] += taken
            wall[path] += seconds
    await wait_until_idle(gateway_cpu)
    relayed = len(samples["gateway"])
    direct, gateway = summarize(samples["direct"], wall["direct"]), summarize(samples["gateway"], wall["gateway"])
    floor = summarize(samples["floor"], wall["floor"])
    figure: dict[str, Any] = {
        "concurrency": concurrency, "upstream_delay_ms": delay_ms, "rounds": rounds,
        "direct": direct.as_dict(), "gateway": gateway.as_dict(), "floor": floor.as_dict(),
        "added_p50_ms": round(gateway.p50_ms - direct.p50_ms, 3),
        "added_p95_ms": round(gateway.p95_ms - direct.p95_ms, 3),
        "floor_added_p50_ms": round(floor.p50_ms - direct.p50_ms, 3),
        "floor_added_p95_ms": round(floor.p95_ms - direct.p95_ms, 3),
        "gateway_cpu_ms_per_call": round((gateway_cpu.seconds() - cpu_before) * 1000 / relayed, 3),
    }
    if postgres_cpu is not None:
        figure["postgres_cpu_ms_per_call"] = round((postgres_cpu.seconds() - pg_before) * 1000 / relayed, 3)
    figure["added_p50_within_target"] = figure["added_p50_ms"] <= TARGET_P50_ADDED_MS
    return figure


async def bench_gateway(workdir: Path, calls: int, rounds: int = ROUNDS) -> dict[str, Any]:
    """`calls` measured calls per path and figure at 1 client, four times as many at 32 (each batch
    must keep all 32 busy for a while; `calls` again with the model's delay, where each call takes
    longer), after a warm-up that opens every connection."""
    data_dir = workdir / "gateway"
    data_dir.mkdir(parents=True, exist_ok=True)
    upstream_port, gateway_port, floor_port = free_port(), free_port(), free_port()
    urls = {"direct": f"http://127.0.0.1:{upstream_port}", "gateway": f"http://127.0.0.1:{gateway_port}",
            "floor": f"http://127.0.0.1:{floor_port}"}
    log = workdir / "gateway.log"
    # Idle connections given up after 4 s, before the gateway's server closes them (after 5 s, its
    # default ALETHEIA_HTTP_IDLE_TIMEOUT_S): a path idles while the others are measured.
    limits = httpx2.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=4.0)
    headers = {"authorization": "Bearer sk-bench-not-a-real-key"}  # forwarded by the gateway, never stored
    result: dict[str, Any] = {"endpoint": ENDPOINT, "request_bytes": len(httpx2.Request("POST", "/", json=PLAIN)
                                                                        .content),
                              "target_p50_added_ms": TARGET_P50_ADDED_MS, "figures": {}}
    async with AsyncExitStack() as stack:
        upstream = await anyio.open_process([sys.executable, "-m", "bench.fake_llm_upstream", str(upstream_port)],
                                            cwd=REPO_ROOT, stdin=None,
                                            env=dict(os.environ))
        stack.push_async_callback(stop, upstream)
        floor = await anyio.open_process([sys.executable, "-m", "bench.passthrough_floor", str(floor_port),
                                          urls["direct"]], cwd=REPO_ROOT, stdin=None, env=dict(os.environ))
        stack.push_async_callback(stop, floor)
        output = stack.enter_context(log.open("wb"))
        gateway = await start_gateway(data_dir, urls["direct"], gateway_port, output)
        stack.push_async_callback(stop, gateway)
        clients = {path: await stack.enter_async_context(httpx2.AsyncClient(limits=limits, headers=headers,
                                                                            timeout=60.0))
                   for path in urls}
        await wait_ready(clients["direct"], urls["direct"], None, None)
        await wait_ready(clients["floor"], urls["floor"], floor, None)
        await wait_ready(clients["gateway"], urls["gateway"], gateway, log)
        gateway_cpu = CpuMeter(psutil.Process(gateway.pid))
        postmaster = postmaster_of(data_dir)
        postgres_cpu = CpuMeter(postmaster, with_children=True) if postmaster else None
        relayed = 0
        calls_of = {"non_streaming": plain_call, "streaming_first_chunk": first_chunk_call}
        for name, concurrency, delay_ms in FIGURES:
            call = calls_of[name]
            key = f"{name}@{concurrency}" + (f"_upstream_{delay_ms}ms" if delay_ms else "")
            for path in urls:  # warm-up: every connection opened, both ends' code paths run
                warmed, _ = await batch(clients[path], urls[path], call, 2 * concurrency + 20, concurrency)
                relayed += len(warmed) if path == "gateway" else 0
            print(f"[bench] gateway: {key} ...", file=sys.stderr, flush=True)
            measured = calls if concurrency == 1 else 4 * calls // (4 if delay_ms else 1)
            figure = await side_by_side(clients, urls, call, measured, concurrency, delay_ms, rounds,
                                        gateway_cpu, postgres_cpu)
            relayed += figure["gateway"]["calls"]
            result["figures"][key] = figure
        await stack.aclose()
        result["gateway_exit_status"] = gateway.returncode
    result["calls_through_gateway"] = relayed
    result["rows_stored"] = await stored_rows(data_dir)
    return result


def print_gateway_table(gateway: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"logging gateway vs calling the upstream directly ({gateway['endpoint']}, side by side in "
                        "rounds; ms; non-streaming: whole call, streaming: first chunk)")
    for column in ("figure", "clients", "upstream delay", "direct p50/p95", "gateway p50/p95", "added p50/p95",
                   f"p50 added <= {gateway['target_p50_added_ms']:g}", "floor added p50/p95 (bare pass-through)",
                   "gateway calls/s", "direct calls/s",
                   "gateway CPU ms/call", "PostgreSQL CPU ms/call"):
        table.add_column(column)
    for key, figure in gateway["figures"].items():
        direct, relayed = figure["direct"], figure["gateway"]
        delay = figure["upstream_delay_ms"]
        table.add_row(key.split("@")[0], str(figure["concurrency"]),
                      f"{delay} ms +-50% (subtracted)" if delay else "none",
                      f"{direct['p50_ms']:.2f} / {direct['p95_ms']:.2f}",
                      f"{relayed['p50_ms']:.2f} / {relayed['p95_ms']:.2f}",
                      f"{figure['added_p50_ms']:.2f} / {figure['added_p95_ms']:.2f}",
                      "yes" if figure["added_p50_within_target"] else "NO",
                      f"{figure['floor_added_p50_ms']:.2f} / {figure['floor_added_p95_ms']:.2f}",
                      str(relayed["calls_per_s"]), str(direct["calls_per_s"]),
                      str(figure["gateway_cpu_ms_per_call"]), str(figure.get("postgres_cpu_ms_per_call", "-")))
    console = Console() if Console().is_terminal else Console(width=200)
    console.print(table)
    console.print(f"gateway rows stored: {gateway['rows_stored']} of {gateway['calls_through_gateway']} calls "
                  f"relayed (request {gateway['request_bytes']} bytes)")


def main() -> None:
    """`python -m bench.gateway [--calls 500]`: this part of `make bench` alone."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=500, help="measured calls per path and figure at 1 client")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--out", type=Path, default=Path(REPO_ROOT) / "bench" / "results")
    args = parser.parse_args()

    async def measure() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="aletheia-bench-gateway-") as tmp:
            return await bench_gateway(Path(tmp), args.calls, args.rounds)

    results = anyio.run(measure)
    path = save_results(results, args.out, "gateway")
    print_gateway_table(results)
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
