"""The benchmark machinery at N=1,000, so that `make bench` cannot rot (figures are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO_ROOT, clean_env


def test_bench_smoke_writes_a_complete_result_file(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)], cwd=REPO_ROOT,
                            env=clean_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    [path] = list(tmp_path.glob("results-*.json"))
    results = json.loads(path.read_text())
    [run] = results["runs"]
    assert run["system"] == "aletheia-mcp" and run["n"] == 1000
    for figure in ("recall", "recall_filtered", "remember", "log_exchange_4kb"):
        assert set(run[figure]) == {"calls", "p50_ms", "p95_ms", "p99_ms", "mean_ms", "calls_per_s"}, figure
        assert run[figure]["calls"] == 60
    assert 0 <= run["recall_at_10"] <= 1
    assert run["load"]["import_rows"] == 1000
    assert run["cold_start_s"] > 0 and run["warm_start_s"] > 0 and run["peak_rss_mb"] > 0
    assert "aletheia-mcp" in result.stdout  # the table was printed
    for figure in ("nothing", "recall_shaped"):
        assert results["mcp_floor"][figure]["calls"] == 60, figure
    assert "MCP floor" in result.stdout
    [series] = results["head_to_head"]
    assert set(series["recall"]) == {"aletheia-mcp", "MCP floor (no search)"}, series
    assert all(latency["calls"] == 60 for latency in series["recall"].values())
    assert series["p50_over_ours"]["aletheia-mcp"] == 1.0
    patterns = results["patterns"]
    assert patterns["find_patterns"]["calls"] == 60 and patterns["patterns"] == 500
    assert patterns["import"]["embedding_included"]["files_per_s"] > 0
    assert patterns["import"]["embedding_excluded"]["files_per_s"] > 0
    gateway = results["gateway"]
    assert set(gateway["figures"]) == {
        f"{mode}@{clients}" for mode in ("non_streaming", "streaming_first_chunk") for clients in ("1", "32",
                                                                                               "32_upstream_200ms")}
    for key, figure in gateway["figures"].items():
        assert figure["direct"]["calls"] == figure["gateway"]["calls"] >= 32, key  # side by side, as many each
        assert figure["gateway"]["calls_per_s"] > 0 and figure["gateway_cpu_ms_per_call"] > 0, key
        assert figure["added_p50_ms"] == round(figure["gateway"]["p50_ms"] - figure["direct"]["p50_ms"], 3), key
    # Logging was on: every call relayed (warm-ups too) is one stored row, and SIGTERM drained cleanly.
    assert gateway["rows_stored"] == gateway["calls_through_gateway"] > 0
    assert gateway["gateway_exit_status"] == 0
    assert "logging gateway vs calling the upstream directly" in result.stdout


def test_versus_compares_two_checkouts_call_by_call() -> None:
    # This tree against itself: the machinery, not the figures.
    result = subprocess.run([sys.executable, "-m", "bench.versus", str(REPO_ROOT), "--size", "300", "--calls", "5"],
                            cwd=REPO_ROOT, env=clean_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = result.stdout.splitlines()[1:]
    for operation in ("recall", "recall filtered ~1%", "remember", "find_patterns"):
        servers = [row[22:34].strip() for row in rows if row[:22].strip() == operation]
        assert servers == ["this tree", "other"], (operation, rows)
