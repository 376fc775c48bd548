"""Which patterns matter most in a repository: the files git tracks there, how many of them each
pattern applies to, and the relevance order `context generate` fills a context file in.

Relevance order (most relevant first):
1. by attach mode (rules/render.attach_mode): "always" (every task); then "requested" (the agent
   picks it by the description the context file shows: no file ever brings it up, since hooks and
   `find_patterns(file_path)` never return it, so a context file is where it is found); then "auto"
   (scoped by globs; also delivered file by file by hooks and `find_patterns` when left out); then
   "manual" (only when a person names it: the least use in a file loaded for every task);
2. the project's own patterns before global ones;
3. more tracked files the pattern applies to first ("always" ones apply to all, on-request ones to
   none: the count only orders within a mode);
4. id (older first), so the order is stable.

Counting is bounded: at most MAX_TRACKED_FILES paths are read from `git ls-files`, and at most about
MAX_GLOB_CHECKS (glob, file) matches are run, exclusions (`!glob`) included. Each distinct glob is
checked once, however many patterns share it, and only against the files sharing one of its
candidate keys (rules/globs.py: its first folder, extension or name; a glob whose key is the
catch-all is checked against every file). When even that is more than the bound, every
n-th file (of the sorted list git gives) is checked and the counts are scaled by n: estimates that
still order a rule for most of the repository before one for a single folder.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from math import ceil
from pathlib import Path
from typing import IO

from mcp_server.rules.globs import (
    CATCH_ALL_KEY,
    MAX_PATH_CHARS,
    context_keys,
    glob_matches,
    ignores_case,
    path_keys,
)
from mcp_server.rules.render import attach_mode
from mcp_server.schemas import Pattern

MAX_TRACKED_FILES = 200_000  # read from `git ls-files`; the largest monorepos track millions
# One check costs ~1.5 us (RE2 through Python): this bound keeps the matching under ~0.3 s.
MAX_GLOB_CHECKS = 150_000
# Files whose keys are read first to plan how many of them to check (every n-th of a larger list).
PROBE_FILES = 10_000
GIT_TIMEOUT_SECONDS = 20.0  # `git ls-files` lists 100,000 files in ~0.1 s from a warm index
_READ_CHUNK = 1 << 16
# Attach modes, most relevant first (see the module docstring).
_MODE_RANK = {"always": 0, "requested": 1, "auto": 2, "manual": 3}


@dataclass(frozen=True)
class TrackedFiles:
    paths: list[str]  # relative to the repository's root, POSIX separators, as git sorts them
    note: str | None = None  # why there are none, or that not all were read


@dataclass(frozen=True)
class FileCounts:
    counts: dict[int, int]  # pattern id -> how many of the files it applies to (scaled when sampled)
    files: int  # the files counted over
    every: int = 1  # 1: every file checked; n: every n-th file, counts scaled by n

    @property
    def note(self) -> str | None:
        if self.every == 1:
            return None
        return (f"The counts of files each pattern applies to are estimates: its globs were checked against one "
                f"in every {self.every} of the {self.files:,} tracked files.")


def tracked_files(root: Path, limit: int = MAX_TRACKED_FILES, timeout: float = GIT_TIMEOUT_SECONDS) -> TrackedFiles:
    """The files git tracks in the repository whose top directory is `root` (`git ls-files -z`), at
    most `limit` of them. Never raises: when git is missing, fails or takes longer than `timeout`
    seconds, there are no paths and `note` says why."""
    # No shell; `core.fsmonitor=false`: a repository's own config may name a command for git to run
    # (`core.fsmonitor`), and listing its files must not run it.
    command = ["git", "-c", "core.fsmonitor=false", "ls-files", "-z"]
    timed_out = threading.Event()
    try:
        with tempfile.TemporaryFile() as errors, subprocess.Popen(
                command, cwd=root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors) as proc:

            def stop() -> None:
                timed_out.set()
                proc.kill()

            timer = threading.Timer(timeout, stop)
            timer.start()
            try:
                assert proc.stdout is not None
                paths, complete = _read_paths(proc.stdout, limit)
                if not complete:
                    proc.kill()  # the rest is not read
                status = proc.wait()
            finally:
                timer.cancel()
            errors.seek(0)
            said = errors.read(2000).decode("utf-8", errors="replace").strip().splitlines()
    except FileNotFoundError as exc:
        if exc.filename != command[0]:
            return TrackedFiles([], f"{root} does not exist, so the patterns were not ranked by the files they "
                                    "apply to.")
        return TrackedFiles([], "git is not installed (not on PATH), so the patterns were not ranked by the "
                                "files they apply to.")
    except OSError as exc:
        return TrackedFiles([], f"`git ls-files` could not run ({exc.strerror or exc}), so the patterns were not "
                                "ranked by the files they apply to.")
    if timed_out.is_set():
        return TrackedFiles([], f"`git ls-files` took more than {timeout:g} s, so the patterns were not ranked "
                                "by the files they apply to.")
    if not complete:
        return TrackedFiles(paths, f"Only the first {limit:,} tracked files were counted.")
    if status != 0:
        reason = said[0] if said else f"exit status {status}"
        return TrackedFiles([], f"`git ls-files` failed in {root} ({reason}), so the patterns were not ranked by "
                                "the files they apply to.")
    return TrackedFiles(paths)


def _read_paths(stream: IO[bytes], limit: int) -> tuple[list[str], bool]:
    """NUL-separated paths from `stream`, at most `limit`; and whether that was all of them."""
    paths: list[str] = []
    pending = b""
    while chunk := stream.read(_READ_CHUNK):
        pieces = (pending + chunk).split(b"\0")
        pending = pieces.pop()
        for raw in pieces:
            if len(paths) == limit:
                return paths, False
            # (git keeps bytes; a name that is no UTF-8 gets U+FFFD: globs never needed those bytes)
            path = raw.decode("utf-8", errors="replace")
            if path and len(path) <= MAX_PATH_CHARS:
                paths.append(path)
    if pending and len(paths) == limit:
        return paths, False
    if pending:  # (git ends every path with NUL; a last one without is still a path)
        paths.append(pending.decode("utf-8", errors="replace"))
    return paths, True


def count_applying(patterns: Iterable[Pattern], paths: Sequence[str],
                   max_checks: int = MAX_GLOB_CHECKS) -> FileCounts:
    """How many of `paths` each pattern applies to: all for an always-apply pattern, none for one
    attached only on request, else those its globs match (as match_contexts says: a later `!glob`
    excludes what it matches; ignoring case when the pattern's globs came from Copilot), checking
    each glob only against the files that share its keys."""
    patterns = list(patterns)
    # Every distinct glob once, exclusions too (keyed with their `!`): patterns sharing one share its
    # matches, and its checks count in the bound like any other glob's.
    keys_of = {(g, ignore_case): set(context_keys([g.removeprefix("!")], ignore_case))
               for p in patterns if attach_mode(p.target_contexts, p.metadata) == "auto"
               for ignore_case in [ignores_case(p.metadata)] for g in p.target_contexts}
    probe_step = max(1, ceil(len(paths) / PROBE_FILES))
    probe = _candidates(paths, range(0, len(paths), probe_step), keys_of)
    every = max(1, ceil(sum(map(len, probe.values())) * probe_step / max_checks))
    # (the same files for every glob, so that a pattern's globs still combine)
    candidates = probe if every == probe_step else _candidates(paths, range(0, len(paths), every), keys_of)
    matching = {(g, ignore_case): {i for i in c if glob_matches(g, paths[i], ignore_case)}
                for (g, ignore_case), c in candidates.items()}

    counts: dict[int, int] = {}
    for pattern in patterns:
        mode = attach_mode(pattern.target_contexts, pattern.metadata)
        if mode != "auto":
            counts[pattern.id] = len(paths) if mode == "always" else 0
            continue
        ignore_case = ignores_case(pattern.metadata)
        included: set[int] = set()
        for glob in pattern.target_contexts:  # in order: an exclusion narrows the globs before it
            if glob.startswith("!"):
                included -= matching[glob, ignore_case]
            else:
                included |= matching[glob, ignore_case]
        counts[pattern.id] = len(included) * every
    return FileCounts(counts, len(paths), every)


_GlobKey = tuple[str, bool]  # (glob, ignoring case)


def _candidates(paths: Sequence[str], sample: range,
                keys_of: Mapping[_GlobKey, set[str]]) -> dict[_GlobKey, Sequence[int]]:
    """For each glob, the indices (among `sample`) of the files sharing one of its keys: the files
    it is checked against (every one of `sample` for a glob whose key is the catch-all)."""
    wanted = {k for keys in keys_of.values() for k in keys} - {CATCH_ALL_KEY}
    by_key: dict[str, list[int]] = defaultdict(list)
    if wanted:
        for index in sample:
            for key in path_keys(paths[index]):
                if key in wanted:
                    by_key[key].append(index)
    candidates: dict[_GlobKey, Sequence[int]] = {}
    for glob, keys in keys_of.items():
        if CATCH_ALL_KEY in keys:
            candidates[glob] = sample
        elif len(keys) == 1:
            candidates[glob] = by_key.get(next(iter(keys)), [])
        else:
            candidates[glob] = sorted({i for k in keys for i in by_key.get(k, [])})
    return candidates


def relevance_order(patterns: Iterable[Pattern], counts: Mapping[int, int]) -> list[Pattern]:
    """`patterns`, most relevant first (see the module docstring); a pattern missing from `counts`
    (no repository to count in) counts as applying to no file."""
    return sorted(patterns, key=lambda p: (_MODE_RANK[attach_mode(p.target_contexts, p.metadata)],
                                           p.project is None, -counts.get(p.id, 0), p.id))
