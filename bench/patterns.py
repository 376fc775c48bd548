"""Patterns at scale: find_patterns by file_path + query over stdio at 10,000 patterns, and
`patterns import` of 1,000 rule files (embedding included, and excluded)."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.harness import stdio_session, timed_calls
from bench.ours import server_env, settings_for
from mcp_server.app_context import open_app
from mcp_server.services.patterns import PatternInput

AREAS = ["api", "web", "services", "jobs", "db", "infra", "docs", "tests", "cli", "sdk"]
EXTENSIONS = ["py", "ts", "tsx", "go", "sql", "md", "yaml", "rs"]
TOPICS = ["validation", "error handling", "logging", "retries", "naming", "testing", "security", "caching",
          "pagination", "migrations", "accessibility", "performance", "configuration", "observability"]


def _globs(rng: np.random.Generator, i: int) -> list[str]:
    """A realistic mix: folder-scoped, extension-wide, nested, exact files, and unscoped patterns."""
    area, ext = AREAS[i % len(AREAS)], EXTENSIONS[int(rng.integers(len(EXTENSIONS)))]
    sub = f"{area}{int(rng.integers(0, 40))}"
    kind = int(rng.integers(0, 10))
    if kind == 0:
        return []
    if kind <= 2:
        return [f"*.{ext}"]
    if kind <= 5:
        return [f"{area}/{sub}/**/*.{ext}"]
    if kind <= 7:
        return [f"{area}/*.{ext}", f"{area}/{sub}/"]
    return [f"{area}/{sub}/handlers/*.{ext}"]


def pattern_inputs(count: int, settings: Any) -> list[PatternInput]:
    rng = np.random.default_rng(11)
    items = []
    for i in range(count):
        topic = TOPICS[i % len(TOPICS)]
        content = (f"Convention {i} on {topic}: " + " ".join(rng.choice(TOPICS, size=12)) +
                   f". Apply it in every change that touches {topic}; reviewers check it.")
        items.append(PatternInput.build(settings, content=content, title=f"{topic.title()} rule {i}",
                                        tags=[topic.split()[0]], strategy_type="convention",
                                        target_contexts=_globs(rng, i)))
    return items


async def load_patterns(data_dir: Path, count: int) -> float:
    """`count` patterns stored in batches as `patterns import` does; returns the seconds it took."""
    settings = settings_for(data_dir)
    items = pattern_inputs(count, settings)
    started = time.perf_counter()
    async with open_app(settings, load_in_background=False) as app:
        await app.embedder.load_once()
        for offset in range(0, len(items), 500):
            await app.patterns.upsert_many([replace(item, source_path=f"bench/{offset + n}.md")
                                            for n, item in enumerate(items[offset:offset + 500])])
        await app.patterns.after_bulk_write(len(items))  # as `patterns import` does when it finishes
    return time.perf_counter() - started


def find_arguments(count: int) -> list[dict[str, Any]]:
    """find_patterns calls: a file under one of the areas, and a topic."""
    rng = np.random.default_rng(5)
    arguments = []
    for i in range(count):
        area = AREAS[int(rng.integers(len(AREAS)))]
        path = f"{area}/{area}{int(rng.integers(0, 40))}/handlers/file{i}.{EXTENSIONS[int(rng.integers(8))]}"
        arguments.append({"file_path": path, "query": TOPICS[i % len(TOPICS)], "limit": 10})
    return arguments


async def bench_find_patterns(workdir: Path, calls: int, count: int = 10_000) -> dict[str, Any]:
    data_dir = workdir / "patterns"
    load_s = await load_patterns(data_dir, count)
    arguments = find_arguments(calls + 50)
    async with stdio_session(sys.executable, ["-m", "mcp_server", "serve"], server_env(data_dir)) as client:
        await client.call_tool("server_status", {})
        latency = await timed_calls(client, "find_patterns", arguments)
    return {"patterns": count, "load_s": round(load_s, 2), "find_patterns": latency.as_dict()}


def bench_patterns_import(workdir: Path, files: int = 1_000) -> dict[str, Any]:
    """Wall time of `aletheia-mcp patterns import` (whole process) for `files` markdown rule files."""
    folder = workdir / "rules"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (folder / f"rule-{i}.md").write_text(
            f"---\ntitle: Rule {i}\ntags: [bench]\ntarget_contexts: ['src/m{i % 50}/**']\n---\n"
            f"Rule {i}: keep modules small, name things plainly, test behaviour.\n")
    results: dict[str, Any] = {"files": files}
    variants = {
        "embedding_included": {},
        # An embeddings API that refuses at once: rows are stored waiting for vectors.
        "embedding_excluded": {"EMBEDDING_PROVIDER": "openai", "EMBEDDING_API_BASE": "http://127.0.0.1:9/v1",
                               "EMBEDDING_MAX_RETRIES": "0"},
    }
    for name, extra in variants.items():
        data_dir = workdir / f"import-{name}"
        env = server_env(data_dir, **extra)
        subprocess.run([sys.executable, "-m", "mcp_server", "db", "upgrade"], env=env, capture_output=True,
                       check=True, cwd=workdir)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "mcp_server", "patterns", "import", str(folder)], env=env,
                              capture_output=True, text=True, cwd=workdir)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            results[name] = {"error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
            continue
        results[name] = {"seconds": round(seconds, 2), "files_per_s": round(files / seconds, 1)}
    return results

