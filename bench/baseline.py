"""aletheia-mcp as it was before the search work (issue 17), beside today's code in the same run.

The speed goal of that work is relative ("recall p50 at 100k memories at most 0.85x today's"),
and this machine drifts by a quarter between runs, so the old code is measured in the same
head-to-head series as the new: its commit is exported from this repository (`git archive`) and
installed, with its pinned dependencies from PyPI, into its own venv under bench/.venvs/ (as the
peers are), then started over stdio on the very store bench_ours loaded. No migration was added
since that commit, so both servers share the database (and its page cache) and answer from the
same rows.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from functools import partial
from pathlib import Path

from bench.corpus import Corpus
from bench.harness import stdio_session
from bench.head_to_head import Contender
from bench.ours import LIMIT, full_page, server_env
from bench.peers.venvs import VENVS, PeerError, run_logged

REPO_ROOT = Path(__file__).resolve().parent.parent
# The last commit before issue 17 (search quality) changed the search: d781161, "bench.hook_floors".
BASELINE_COMMIT = "d781161"
BASELINE_SYSTEM = f"aletheia-mcp @{BASELINE_COMMIT} (before)"
_MARKER = "installed-commit"


def _full_sha(commit: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--verify", f"{commit}^{{commit}}"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PeerError(f"commit {commit} is not in {REPO_ROOT} (a shallow clone? `git fetch --unshallow`): "
                        f"{done.stderr.strip()}")
    return done.stdout.strip()


async def ensure_baseline(commit: str = BASELINE_COMMIT) -> Path:
    """The `aletheia-mcp` command of `commit`, installed into bench/.venvs/aletheia-<commit> once."""
    sha = _full_sha(commit)
    directory = VENVS / f"aletheia-{commit}"
    command = directory / "bin" / "aletheia-mcp"
    marker = directory / _MARKER
    if command.exists() and marker.exists() and marker.read_text().strip() == sha:
        return command
    VENVS.mkdir(parents=True, exist_ok=True)
    log = VENVS / f"aletheia-{commit}-install.log"
    log.write_text("")
    source = VENVS / f"aletheia-{commit}-src"
    shutil.rmtree(directory, ignore_errors=True)
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    await run_logged(["bash", "-o", "pipefail", "-c", f"git -C {shlex.quote(str(REPO_ROOT))} archive {sha} | tar -x -C "
                      f"{shlex.quote(str(source))}"], log)
    await run_logged([sys.executable, "-m", "venv", str(directory)], log)
    # Not editable: the venv must not see this checkout's code.
    await run_logged([str(directory / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
                      "--no-input", "--quiet", str(source)], log)
    marker.write_text(sha + "\n")
    return command


def baseline_contender(corpus: Corpus, workdir: Path, command: Path) -> Contender:
    """The old server on the store bench_ours loaded for `corpus` (same rows, same database)."""
    data_dir = workdir / f"ours-{len(corpus)}"
    # Same working directory as ours (it decides the project searched); the console script does not
    # put it on sys.path, so the old code never imports this checkout's.
    return Contender(BASELINE_SYSTEM, partial(stdio_session, str(command), ["serve"], server_env(data_dir)),
                     "recall", lambda query: {"query": query, "limit": LIMIT}, full_page)
