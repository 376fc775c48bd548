"""Every payload fixture (tests/hooks/fixtures/, every client, valid and malformed) piped into the real
`aletheia-mcp hook EVENT --client CLIENT` process, against a real hook server, the embedded PostgreSQL and
the hashing embedder: a hook always exits 0 and never prints a traceback; its stdout is empty or the JSON
its client reads; a payload it cannot use leaves stdout empty and one line in hooks.log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mcp_server.hooks.protocol import EVENTS
from tests.helpers import make_repository
from tests.hooks.runtime_helpers import HookRuntime

FIXTURES = Path(__file__).parent / "fixtures"
# The keys each client reads in a hook's stdout (its adapter's render; see the adapters' cited docs).
OUTPUT_KEYS = {"claude-code": {"hookSpecificOutput"}, "codex": {"hookSpecificOutput"},
               "gemini": {"hookSpecificOutput", "decision", "reason"}, "cursor": {"additional_context"}}
# The event each fixture's native hook is registered for (connect/); the others (PostToolUse, SessionEnd,
# AfterTool) are not registered, but a misconfigured agent could still send them.
REGISTERED = {"SessionStart": "session-start", "sessionStart": "session-start", "UserPromptSubmit": "prompt",
              "BeforeAgent": "prompt", "PreToolUse": "file", "BeforeTool": "file", "Stop": "stop",
              "AfterAgent": "stop"}
# Registered fixtures refused on purpose: Cursor's prompt hook cannot add context, and Codex's file hook
# is registered for apply_patch only, not Bash (their adapters say so).
REFUSED = {("cursor", "beforeSubmitPrompt.json"), ("codex", "PreToolUse.bash.json")}
# Malformed payloads and the event they are sent as (tests/hooks/test_clients.py, for the adapters alone).
MALFORMED = {"not-json.txt": "prompt", "array.json": "prompt", "wrong-types.json": "prompt",
             "missing-fields.json": "prompt", "file-without-path.json": "file", "not-a-file-tool.json": "file"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = make_repository(tmp_path / "repo")
    (repo / "notes.txt").write_text("Remember: use snake_case.\n")
    (repo / "src").mkdir()
    (repo / "src" / "uploader.py").write_text("def upload() -> None: ...\n")
    return repo


def placed(client: str, name: str, repo: Path) -> str:
    """The fixture's payload moved into `repo`: its cwd (and the paths under the captured one), the
    workspace roots, and the transcript the test directory holds."""
    text = (FIXTURES / client / name).read_text()
    captured = json.loads(text).get("cwd")
    if isinstance(captured, str) and captured != "/repo":  # (a captured temporary directory: paths under it)
        text = text.replace(captured, str(repo))
    payload: dict[str, Any] = json.loads(text)
    payload["cwd"] = str(repo)
    if "workspace_roots" in payload:
        payload["workspace_roots"] = [str(repo)]
    transcripts = {"claude-code": FIXTURES / "claude-code" / "transcript.jsonl",
                   "codex": FIXTURES / "codex" / "rollout.jsonl"}
    if payload.get("transcript_path") and client in transcripts:
        payload["transcript_path"] = str(transcripts[client])
    return json.dumps(payload)


def log_lines(hooks: HookRuntime) -> int:
    return len(hooks.hooks_log.read_text().splitlines()) if hooks.hooks_log.exists() else 0


def run_hook(hooks: HookRuntime, client: str, event: str, stdin: str, repo: Path) -> tuple[str, str, bool]:
    """Run one hook; check what every hook must do; return (stdout, stderr, whether it failed)."""
    before = log_lines(hooks)
    done = hooks.run(event, stdin, repo, "--client", client)
    where = f"{client} {event}: stdout={done.stdout!r} stderr={done.stderr!r}"
    assert done.returncode == 0, where
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, where
    if done.stdout:
        output = json.loads(done.stdout)
        assert isinstance(output, dict) and output and set(output) <= OUTPUT_KEYS[client], where
    if done.stderr:  # failed: quietly, with one line here and one in hooks.log
        assert done.stdout == "", where
        assert len(done.stderr.splitlines()) == 1, where
        assert log_lines(hooks) == before + 1, where
    else:
        assert log_lines(hooks) == before, where
    return done.stdout, done.stderr, bool(done.stderr)


@pytest.mark.parametrize("client", ["claude-code", "codex", "gemini", "cursor"])
def test_every_fixture_of_a_client_through_the_real_hook(hooks: HookRuntime, repo: Path, client: str) -> None:
    names = sorted(path.name for path in (FIXTURES / client).glob("*.json"))
    assert names  # (the fixtures are there)
    for name in names:
        stdin = placed(client, name, repo)
        registered = REGISTERED.get(name.split(".", 1)[0])
        for event in EVENTS:  # each payload as every event: a wrong registration must not break the agent
            _, stderr, failed = run_hook(hooks, client, event, stdin, repo)
            if event == registered:
                assert failed == ((client, name) in REFUSED), f"{client} {name}: {stderr}"


@pytest.mark.parametrize("client", ["claude-code", "codex", "gemini", "cursor"])
def test_every_malformed_fixture_fails_quietly(hooks: HookRuntime, repo: Path, client: str) -> None:
    assert set(MALFORMED) == {path.name for path in (FIXTURES / "malformed").iterdir()}
    for name, event in MALFORMED.items():
        stdout, _, failed = run_hook(hooks, client, event, (FIXTURES / "malformed" / name).read_text(), repo)
        assert failed and stdout == "", f"{client} {name}"
