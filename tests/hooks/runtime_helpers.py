"""Running the real `aletheia-mcp hook` executable, and finding and stopping the hook servers it starts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.helpers import clean_env

# The console script pip installed (entry point mcp_server.entry:main), as a client runs it.
EXECUTABLE = Path(sys.executable).parent / "aletheia-mcp"
SESSION = "0b7c-hook-runtime"


def payload(event: str, cwd: Path, **fields: Any) -> str:
    """A Claude Code payload for one of our events (the shape of tests/hooks/fixtures/claude-code)."""
    base: dict[str, Any] = {"session_id": SESSION, "cwd": str(cwd),
                            "transcript_path": str(cwd / "missing-transcript.jsonl")}
    if event == "session-start":
        base |= {"hook_event_name": "SessionStart", "source": "startup"}
    elif event == "prompt":
        base |= {"hook_event_name": "UserPromptSubmit", "prompt": "how do we pin dependencies?",
                 "prompt_id": "p-1"}
    elif event == "file":
        base |= {"hook_event_name": "PreToolUse", "tool_name": "Read", "tool_use_id": "toolu_1",
                 "tool_input": {"file_path": str(cwd / "src" / "app.py")}, "prompt_id": "p-1"}
    elif event == "stop":
        base |= {"hook_event_name": "Stop", "stop_hook_active": False, "prompt_id": "p-1"}
    return json.dumps(base | fields)


class HookRuntime:
    """One configuration's environment (its database, data dir and socket directory)."""

    def __init__(self, database_url: str, data_dir: Path, runtime_dir: Path, **env: str) -> None:
        self.data_dir = data_dir
        self.runtime_dir = runtime_dir
        self.env = clean_env(DATABASE_URL=database_url, EMBEDDING_PROVIDER="hashing", ALETHEIA_DATA_DIR=str(data_dir),
                             XDG_RUNTIME_DIR=str(runtime_dir), HOOK_SERVER_IDLE_S="120", **env)

    def with_env(self, **env: str) -> HookRuntime:
        other = HookRuntime.__new__(HookRuntime)
        other.data_dir, other.runtime_dir, other.env = self.data_dir, self.runtime_dir, self.env | env
        return other

    def start(self, event: str, stdin: str | bytes, cwd: Path, *args: str,
              **env: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([str(EXECUTABLE), "hook", event, *args], cwd=cwd, env=self.env | env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run(self, event: str | None, stdin: str | bytes, cwd: Path, *args: str,
            **env: str) -> subprocess.CompletedProcess[str]:
        """`aletheia-mcp hook EVENT ARGS` (no EVENT when None), stdin given, output decoded."""
        data = stdin.encode() if isinstance(stdin, str) else stdin
        words = [event] if event is not None else []
        done = subprocess.run([str(EXECUTABLE), "hook", *words, *args], cwd=cwd, env=self.env | env, input=data,
                              capture_output=True, timeout=120)
        return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())

    @property
    def sockets_dir(self) -> Path:
        return self.runtime_dir / "aletheia"

    def pid_files(self) -> list[Path]:
        return sorted(self.sockets_dir.glob("hooks-*.pid"))

    def server_pids(self) -> list[int]:
        return [int(p.read_text()) for p in self.pid_files()]

    @property
    def hooks_log(self) -> Path:
        return self.data_dir / "logs" / "hooks.log"

    @property
    def server_log(self) -> Path:
        return self.data_dir / "logs" / "hook-server.log"


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting for a parent that never reaps it (a container's pid 1)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def hook_server_pids(socket_dir: Path) -> list[int]:
    """Every process whose command line is a hook server listening in `socket_dir` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"hook-server" in words and any(w.startswith(str(socket_dir).encode()) for w in words) \
                and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def wait_until(condition: Any, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll `condition` (a guard against a hang, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def stop_servers(socket_dir: Path) -> None:
    """SIGTERM every hook server of `socket_dir` (found by command line: the pid file may be gone), then
    SIGKILL what is left."""
    pids = hook_server_pids(socket_dir)
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


@contextmanager
def runtime_dir() -> Iterator[Path]:
    """A short XDG_RUNTIME_DIR (a Unix socket path must stay under ~100 bytes), its servers stopped after."""
    path = Path(tempfile.mkdtemp(prefix="ah-"))
    try:
        yield path
    finally:
        stop_servers(path / "aletheia")
        import shutil

        shutil.rmtree(path, ignore_errors=True)
