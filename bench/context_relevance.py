"""`python -m bench.context_relevance [--files 100000] [--patterns 500] [--git]`: the cost of ranking
patterns for a context file by how many tracked files each applies to
(services/repository_files.py), on a synthetic tree shaped like a large monorepo and patterns
shaped like imported rule files (extension globs, brace globs, folder globs, globs whose key is
the catch-all, such as `**/tests/**`, that must be checked against every file, and exclusions such as
`!src/api/**`, which a lone `*` import always makes: `src/*` becomes `src/*`, `!src/*/**`).

With `--git`, the tree is also made a real git repository (empty files, one `git add`) and
`git ls-files` is timed through `tracked_files`.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from mcp_server.schemas import Pattern
from mcp_server.services.repository_files import count_applying, relevance_order, tracked_files

TOP = ["src", "lib", "packages", "services", "apps", "tests", "docs", "scripts", "tools", "infra"]
MIDDLE = ["api", "web", "core", "ui", "components", "utils", "models", "handlers", "tests", "internal"]
EXTENSIONS = ["py", "ts", "tsx", "js", "go", "rs", "md", "json", "yaml", "css", "java", "kt", "sql", "sh"]
GLOB_SHAPES = [
    "**/*.{ext}", "*.{ext}", "**/*.{{{ext},{ext2}}}", "{top}/**", "{top}/{mid}/**/*.{ext}", "{top}/**/*.{ext}",
    "**/{mid}/**", "**/{mid}/**/*.{ext}", "**/test_*", "{top}/*/{mid}/*.{ext}",
]
# Exclusions after a pattern's globs (`!` + one of these): folder ones, an extension, a catch-all key.
EXCLUSION_SHAPES = ["{top}/{mid}/**", "{top}/*/**", "**/*.{ext}", "**/{mid}/**"]
EXCLUDING_SHARE = 0.3  # of the patterns scoped by globs


def synthetic_paths(count: int, rng: random.Random) -> list[str]:
    paths = set()
    while len(paths) < count:
        depth = rng.randint(0, 5)
        folders = [rng.choice(TOP)] + [rng.choice(MIDDLE) if rng.random() < 0.5 else f"m{rng.randint(0, 80)}"
                                       for _ in range(depth)]
        name = f"f{rng.randint(0, 10**6)}.{rng.choice(EXTENSIONS)}"
        paths.add("/".join([*folders[:depth], name]) if depth else name)
    return sorted(paths)  # as git lists them


def synthetic_patterns(count: int, rng: random.Random) -> list[Pattern]:
    patterns = []
    for index in range(1, count + 1):
        roll = rng.random()
        if roll < 0.1:
            globs: list[str] = []  # always-apply
        else:
            globs = [rng.choice(GLOB_SHAPES).format(ext=rng.choice(EXTENSIONS), ext2=rng.choice(EXTENSIONS),
                                                     top=rng.choice(TOP), mid=rng.choice(MIDDLE))
                     for _ in range(rng.randint(1, 3))]
            if rng.random() < EXCLUDING_SHARE:
                globs.append("!" + rng.choice(EXCLUSION_SHAPES).format(ext=rng.choice(EXTENSIONS), top=rng.choice(TOP),
                                                                        mid=rng.choice(MIDDLE)))
        patterns.append(Pattern(id=index, title=f"Rule {index}", content="x", tags=[], strategy_type=None,
                                target_contexts=globs, author=None, metadata={}, last_updated=datetime.now(UTC),
                                project="github.com/org/repo" if rng.random() < 0.3 else None))
    return patterns


def make_git_repository(paths: list[str], directory: Path) -> None:
    subprocess.run(["git", "init", "-q", str(directory)], check=True)
    for path in paths:
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
    subprocess.run(["git", "-C", str(directory), "add", "-A"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.context_relevance", description=__doc__)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--patterns", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the count; the best is shown")
    parser.add_argument("--git", action="store_true", help="also time `git ls-files` on a real repository")
    args = parser.parse_args()
    rng = random.Random(19)
    paths = synthetic_paths(args.files, rng)
    patterns = synthetic_patterns(args.patterns, rng)

    best = float("inf")
    for _ in range(args.repeat):
        started = time.perf_counter()
        counted = count_applying(patterns, paths)
        ordered = relevance_order(patterns, counted.counts)
        best = min(best, time.perf_counter() - started)
    distinct = len({g for p in patterns for g in p.target_contexts})
    print(f"{args.patterns} patterns ({distinct} distinct globs) x {len(paths):,} files: "
          f"count + order {best:.3f} s (best of {args.repeat}); every {counted.every} file(s) checked")
    print("most relevant: " + ", ".join(f"#{p.id} {p.target_contexts or 'always'} ({counted.counts[p.id]:,})"
                                        for p in ordered[:5]))

    if args.git:
        with tempfile.TemporaryDirectory(prefix="bench-relevance-") as directory:
            make_git_repository(paths, Path(directory))
            started = time.perf_counter()
            listed = tracked_files(Path(directory))
            print(f"git ls-files of {len(listed.paths):,} tracked files: {time.perf_counter() - started:.3f} s"
                  + (f" ({listed.note})" if listed.note else ""))


if __name__ == "__main__":
    main()
