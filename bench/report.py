"""The results as a table on stdout and a PNG of recall latency against corpus size."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def save_results(results: dict[str, Any], out: Path, name: str) -> Path:
    """The results as JSON in `out`, named after the part and the time: `<name>-YYYYmmdd-HHMMSS.json`."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    return path


def _fmt(latency: dict[str, Any] | None) -> str:
    if not latency:
        return "-"
    return f"{latency['p50_ms']:.2f} / {latency['p95_ms']:.2f} / {latency['p99_ms']:.2f}"


def print_table(results: dict[str, Any]) -> None:
    table = Table(title=f"recall latency p50/p95/p99 ms over {results['calls_per_figure']} calls (stdio, one session)")
    for column in ("system", "N", "recall", "recall filtered 1%", "recall@10", "remember/s", "import rows/s",
                   "cold/warm start s", "peak RSS MB", "note"):
        table.add_column(column)
    for run in results["runs"]:
        load = run.get("load") or {}
        starts = f"{run.get('cold_start_s', '-')} / {run.get('warm_start_s', '-')}"
        remember = run.get("remember") or run.get("store")
        table.add_row(
            run["system"], str(run["n"]), _fmt(run.get("recall")), _fmt(run.get("recall_filtered")),
            str(run.get("recall_at_10", "-")), str(remember["calls_per_s"]) if remember else "-",
            str(load.get("import_rows_per_s", "-")), starts, str(run.get("peak_rss_mb", "-")),
            run.get("error", ""),
        )
    console = Console()
    if not console.is_terminal:  # a log file or CI: do not squeeze the table into 80 columns
        console = Console(width=200)
    console.print(table)
    for series in results.get("head_to_head", []):
        if series.get("error"):
            console.print(f"recall head to head at N={series['n']}: {series['error']}")
            continue
        rounds = Table(title=f"recall head to head at N={series['n']}: {series['calls']} rounds, "
                             "each query to every system in turn (p50/p95/p99 ms)")
        for column in ("system", "recall", "p50 / ours p50", "CPU ms per call: server + PostgreSQL"):
            rounds.add_column(column)
        cpu = series.get("cpu_ms_per_call", {})
        for system, latency in series["recall"].items():
            spent = cpu.get(system)
            rounds.add_row(system, _fmt(latency), f"{series['p50_over_ours'][system]:.2f}",
                           f"{spent['server_ms']} + {spent['postgres_ms']} = {spent['total_ms']}" if spent else "-")
        console.print(rounds)
    floor = results.get("mcp_floor")
    if floor:
        console.print(
            f"MCP floor (same client, SDK and stdio; no work behind the tool), p50/p95/p99 ms: "
            f"a no-op tool {_fmt(floor['nothing'])}; a recall-shaped answer (10 results) {_fmt(floor['recall_shaped'])}"
        )
    patterns = results.get("patterns")
    if patterns:
        imported = patterns.get("import", {})
        console.print(
            f"find_patterns (file_path + query) at {patterns['patterns']} patterns: "
            f"p50/p95/p99 {_fmt(patterns['find_patterns'])} ms; patterns import of {imported.get('files')} files: "
            f"{imported.get('embedding_included', {}).get('files_per_s', '-')} files/s with embeddings, "
            f"{imported.get('embedding_excluded', {}).get('files_per_s', '-')} files/s without"
        )


def write_chart(results: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    systems: dict[str, list[tuple[int, float, float]]] = {}
    for run in results["runs"]:
        if run.get("recall"):
            systems.setdefault(run["system"], []).append((run["n"], run["recall"]["p50_ms"], run["recall"]["p95_ms"]))
    if not systems:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, points in systems.items():
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=f"{name} p50")
        ax.plot([p[0] for p in points], [p[2] for p in points], marker="x", linestyle="--", label=f"{name} p95")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("corpus size (memories)")
    ax.set_ylabel("recall latency over stdio (ms)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
