"""`python -m bench.globs`: the cost of one glob match, backtracking `re` (the engine before RE2)
against today's `glob_matches`, on the hostile globs of issue 16 and on the worst shapes the limits
allow.

The old engine is pathspec's regex run by Python's `re`; each of its runs is cut off after
`--budget` seconds (in a child process, since a backtracking match cannot be interrupted), so the
table shows "> budget" where it would go on for minutes.
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import time

from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern

from mcp_server.rules.globs import MAX_GLOB_CHARS, MAX_GLOB_WILDCARDS, MAX_PATH_CHARS, canonical, glob_matches

CASES: list[tuple[str, str, str]] = [  # (name, glob, path)
    ("6 stars, 40 chars", "*a" * 6 + "b", "a" * 40),
    ("7 stars, 40 chars", "*a" * 7 + "b", "a" * 40),
    ("8 stars, 40 chars", "*a" * 8 + "b", "a" * 40),
    ("8 stars, 60 chars (the issue's)", "*a" * 8 + "b", "a" * 60),
    ("9 stars, 80 chars (the test's)", "*a" * 9 + "b", "a" * 80),
    (f"{MAX_GLOB_WILDCARDS} stars, {MAX_PATH_CHARS} chars", "*a" * MAX_GLOB_WILDCARDS + "b", "a" * MAX_PATH_CHARS),
    (f"{MAX_GLOB_CHARS}-char literal runs, {MAX_PATH_CHARS} chars",
     ("a" * 60 + "*") * 4 + "b" * (MAX_GLOB_CHARS - 245), "a" * MAX_PATH_CHARS),
    ("**/ chain, deep path", "**/a/" * MAX_GLOB_WILDCARDS + "x.py", "a/" * (MAX_PATH_CHARS // 2 - 3) + "x.py"),
    ("an ordinary glob", "src/**/*.ts", "src/app/components/button/index.ts"),
]


def _old_match(glob: str, path: str) -> None:
    regex, _ = GitIgnoreSpecPattern.pattern_to_regex(glob)
    assert regex is not None
    re.compile(regex).match(path)


def old_seconds(glob: str, path: str, budget: float) -> float | None:
    """Seconds one backtracking match took, or None when it ran past `budget`."""
    started = time.perf_counter()
    child = multiprocessing.Process(target=_old_match, args=(glob, path))
    child.start()
    child.join(budget)
    if child.is_alive():
        child.kill()
        child.join()
        return None
    return time.perf_counter() - started


def new_seconds(glob: str, path: str, repeat: int = 20) -> float:
    glob_matches(glob, path)  # compiled once, as the cache keeps it
    started = time.perf_counter()
    for _ in range(repeat):
        glob_matches(glob, path)
    return (time.perf_counter() - started) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=30.0, help="seconds allowed to one backtracking match")
    args = parser.parse_args()
    print(f"{'case':44} {'re (before)':>14} {'RE2 (now)':>12}")
    for name, glob, path in CASES:
        assert canonical(glob) is not None, f"{name}: the glob is beyond today's limits"
        old = old_seconds(glob, path, args.budget)
        shown = f"> {args.budget:.0f} s" if old is None else f"{old:.3f} s"
        print(f"{name:44} {shown:>14} {new_seconds(glob, path) * 1e6:>9.0f} µs", flush=True)
    print("(re includes ~0.05 s of child-process start-up; RE2: the mean of 20 matches)")


if __name__ == "__main__":
    main()
