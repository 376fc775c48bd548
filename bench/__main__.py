"""`python -m bench [--sizes 10000,100000] [--calls 500] [--million] [--no-peers] [--smoke]`.

(`python -m bench quality [...]`: search quality on real rule files instead, see bench/quality.py.)

(The hooks' figures, bench/hooks.py, take 200 invocations per event whatever --calls says.)

Prints a table and writes bench/results/results-<timestamp>.json (+ latency.png).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from bench.baseline import BASELINE_COMMIT, baseline_contender, ensure_baseline
from bench.corpus import make_corpus
from bench.floor import bench_floor, floor_contender
from bench.gateway import bench_gateway, print_gateway_table
from bench.head_to_head import head_to_head
from bench.hooks import bench_hooks, print_hooks_table
from bench.ours import bench_ours, ours_contender
from bench.patterns import bench_find_patterns, bench_patterns_import
from bench.report import print_table, write_chart

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--sizes", default="10000,100000", help="corpus sizes, comma-separated")
    parser.add_argument("--million", action="store_true", help="also run N = 1,000,000 (slow)")
    parser.add_argument("--calls", type=int, default=500, help="measured calls per figure (after warm-up)")
    parser.add_argument("--no-peers", action="store_true", help="measure aletheia-mcp only")
    parser.add_argument("--no-baseline", action="store_true",
                        help=f"leave out the code of {BASELINE_COMMIT} (before the search work) in the head to head")
    parser.add_argument("--recall-only", action="store_true",
                        help="only the recall figures (no patterns, gateway or hooks)")
    parser.add_argument("--smoke", action="store_true",
                        help="N=1000, 60 calls, no peers, no baseline: checks the machinery")
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.million:
        sizes.append(1_000_000)
    calls = args.calls
    if args.smoke:
        sizes, calls, args.no_peers, args.no_baseline = [1000], 60, True, True
    baseline = None if args.no_baseline else await ensure_baseline()
    runs: list[dict[str, Any]] = []
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="aletheia-bench-") as tmp:
        workdir = Path(tmp)
        print("[bench] MCP floor ...", file=sys.stderr, flush=True)
        floor = await bench_floor(make_corpus(1000), calls)
        for n in sizes:
            corpus = make_corpus(n)
            print(f"[bench] N={n}: aletheia-mcp ...", file=sys.stderr, flush=True)
            runs.append(await bench_ours(corpus, workdir, calls))
            contenders = [ours_contender(corpus, workdir)]
            if baseline is not None:
                contenders.append(baseline_contender(corpus, workdir, baseline))
            if not args.no_peers:
                from bench.peers import bench_peers, peer_contenders

                peer_runs = await bench_peers(corpus, workdir, calls)
                runs.extend(peer_runs)
                contenders += peer_contenders(corpus, workdir, peer_runs)
            print(f"[bench] N={n}: recall head to head ...", file=sys.stderr, flush=True)
            rounds.append(await head_to_head(corpus, [*contenders, floor_contender()], calls, "aletheia-mcp"))
        patterns: dict[str, Any] | None = None
        gateway: dict[str, Any] | None = None
        hooks: dict[str, Any] | None = None
        if not args.recall_only:
            print("[bench] patterns ...", file=sys.stderr, flush=True)
            patterns = await bench_find_patterns(workdir, calls, count=500 if args.smoke else 10_000)
            patterns["import"] = bench_patterns_import(workdir, files=50 if args.smoke else 1_000)
            print("[bench] logging gateway ...", file=sys.stderr, flush=True)
            gateway = await bench_gateway(workdir, calls, rounds=2 if args.smoke else 10)
            print("[bench] hooks ...", file=sys.stderr, flush=True)  # (200 per event: the figure)
            hooks = await anyio.to_thread.run_sync(
                lambda: bench_hooks(workdir, 20 if args.smoke else 200, "hashing" if args.smoke else "auto"))
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count(),
                    "platform": platform.platform()},
        "embedder": "hashing (384-d) for every system; embedding cost included in each call's latency",
        "calls_per_figure": calls,
        "mcp_floor": floor,
        "runs": runs,
        "head_to_head": rounds,
        "patterns": patterns,
        "gateway": gateway,
        "hooks": hooks,
    }


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["quality"]:  # search quality, not speed: bench/quality.py
        from bench.quality import main as quality

        return quality(argv[1:])
    args = parse_args(argv)
    results = anyio.run(run, args)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = args.out / f"results-{stamp}.json"
    path.write_text(json.dumps(results, indent=2))
    print_table(results)
    if results["gateway"] is not None:
        print_gateway_table(results["gateway"])
    if results["hooks"] is not None:
        print_hooks_table(results["hooks"])
    chart = write_chart(results, args.out / f"latency-{stamp}.png")
    print(f"\nresults: {path}" + (f"\nchart:   {chart}" if chart else ""))


if __name__ == "__main__":
    main()
