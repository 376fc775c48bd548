"""bench/hooks.py at a few calls, so that its part of `make bench` cannot rot (figures are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO_ROOT, clean_env


def test_the_hooks_bench_writes_its_figures(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bench.hooks", "--calls", "3", "--embedder", "hashing", "--out",
                           str(tmp_path)], cwd=REPO_ROOT, env=clean_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    [path] = list(tmp_path.glob("hooks-*.json"))
    results = json.loads(path.read_text())
    for event in ("session-start", "prompt", "file", "stop"):
        assert results["warm"][event]["calls"] == 3, event
    assert results["floor"]["python_c_pass"]["calls"] == 3
    assert results["floor"]["client_vs_trivial_server"]["calls"] == 3
    assert results["cold_first_call_s"] > 0 and results["server_imports_s"]["imports_s"] > 0
    assert results["answers_with_output"]["session-start"] == 3  # the always-apply pattern, every session
    assert "hook session-start" in done.stdout
