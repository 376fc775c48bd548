"""The hooks end to end, in the real Claude Code (tests/claude_code.py runs it offline).

A git repository is connected with `aletheia-mcp connect claude-code` (the project's .mcp.json,
and .claude/settings.local.json where the hooks are: these runs prove Claude Code runs them from
there), its conventions imported with `patterns import` and memories with `memories import`, and
configured the way a user does: the settings file in HOME (~/.config/aletheia/.env, which the hooks
and the MCP server both read). Claude Code then runs
`-p` at the repository's root against a fake model that follows a script (read a file, edit it,
write a new one, answer). What the hooks gave is asserted in what the fake model received, which
is what a real model would have seen, and the logged turn in `raw_conversations`.

Two Claude Code sessions are shared by the tests of this module ("hi", then the real task), so
each test asserts one property of the same runs. Every hook server they start is stopped at the
end (their sockets and pid files are in a runtime directory of the tests' own).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_server.db.embedded import with_database
from mcp_server.hooks.client import is_hook_server
from mcp_server.services.hooks import DATA_NOTICE
from tests.claude_code import (
    FakeClaudeModel,
    Step,
    claude_environment,
    hook_contexts,
    installed_claude,
    run_claude,
    tool_results,
    transcript_path,
)
from tests.gateway.fake_upstream import Received
from tests.helpers import (
    REPO_ROOT,
    admin_execute,
    clean_env,
    conversation_rows,
    free_port,
    make_repository,
    run_cli,
    sql,
    write_tree,
)

pytestmark = pytest.mark.anyio

# The console command connect writes into the hooks (the one this checkout's venv installs).
ALETHEIA = REPO_ROOT / ".venv" / "bin" / "aletheia-mcp"
USER = "tester"

RULES = {
    ".cursor/rules/house-style.mdc": "---\ndescription: House style\nglobs:\nalwaysApply: true\n---\n"
                                     "# House style\n\nEvery module opens with a docstring saying why it exists.\n",
    ".cursor/rules/money.mdc": "---\ndescription: Money\nglobs: src/**/*.py\nalwaysApply: false\n---\n"
                              "# Money\n\nAmounts of money are integer cents, never floats.\n",
    ".cursor/rules/tests.mdc": "---\ndescription: Tests\nglobs: tests/**/*.py\nalwaysApply: false\n---\n"
                              "# Tests\n\nA test module is named after its subject and uses plain asserts.\n",
}
ALWAYS, SOURCE_RULE, TEST_RULE = ("Every module opens with a docstring saying why it exists.",
                                  "Amounts of money are integer cents, never floats.",
                                  "A test module is named after its subject and uses plain asserts.")
RELEVANT = "Invoice totals are summed in integer cents and rounded once at the end (the March rounding bug)."
# Newer memories, enough that session start (newest first, HOOK_CONTEXT_CHARS 6,000) has no room
# left for RELEVANT: it must come with the prompt that is about it. No word in common with the prompt.
FILLERS = [f"Greenhouse log {i}: " + "; ".join(f"bed {i}-{k} takes {k} litres at dawn" for k in range(40))
           for i in range(6)]

BILLING = ("def total(amounts):\n    result = 0.0\n    for amount in amounts:\n        result += amount\n"
           "    return result\n")
TEST_FILE = "from src.billing import total\n\n\ndef test_total():\n    assert total([1, 2]) == 3\n"
FINAL = "Totals are now integer cents, with a test."
SECRET = "AKIA2E0A8F3B244C9986"  # an AWS access key id, a format the redactor knows
# About RELEVANT in its words: with the hashing embedder their cosine similarity is 0.44, above its
# floor (0.35 and a word in common, services/hooks.py). Fixed text, the secret too: the same score each run.
PROMPT = (f"Are invoice totals summed in integer cents and rounded once? Fix src/billing.py and add a test. "
          f"My AWS key is {SECRET}.")


@dataclass
class Run:
    """One `claude -p`: its JSON result and the /v1/messages requests the fake model received."""

    result: dict[str, Any]
    calls: list[Received]

    @property
    def session_id(self) -> str:
        return str(self.result["session_id"])

    def contexts(self, index: int) -> dict[str, str]:
        return hook_contexts(self.calls[index].body)


@dataclass
class Connected:
    """A connected repository and how Claude Code is run in it."""

    project: Path
    home: Path
    data_dir: Path
    environment: dict[str, str]

    def hook_failures(self) -> str:
        """What the hooks logged as failures (hooks.log in the data directory), or ""."""
        log = self.data_dir / "logs" / "hooks.log"
        return log.read_text() if log.exists() else ""

    def logs(self) -> str:
        """The hooks' and the hook server's logs, for an assertion's message."""
        parts = [f"--- {log.name}\n{log.read_text()[-4000:]}" for log in sorted((self.data_dir / "logs").glob("*.log"))]
        return "\n".join(parts) or "(no logs)"


@dataclass
class Sessions:
    connected: Connected
    database_url: str
    hi: Run
    task: Run


# --- set-up ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def claude() -> Path:
    return installed_claude()


@pytest.fixture(scope="module")
def module_database(pg_admin_uri: str) -> Iterator[str]:
    """A new, empty database shared by this module's tests (dropped afterwards)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin_execute(pg_admin_uri, f'CREATE DATABASE "{name}"')
    yield with_database(pg_admin_uri, name)
    admin_execute(pg_admin_uri, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def hook_runtime() -> Iterator[dict[str, str]]:
    """XDG_RUNTIME_DIR for the hooks: a directory of the test's own (short: a Unix socket's path has at
    most 107 bytes) where they put their server's socket and pid file. Every hook server found there
    is stopped at the end, before the database goes."""
    runtime = Path(tempfile.mkdtemp(prefix="ah-", dir="/tmp"))
    try:
        yield {"XDG_RUNTIME_DIR": str(runtime)}
    finally:
        stop_hook_servers(runtime / "aletheia")
        shutil.rmtree(runtime, ignore_errors=True)


def stop_hook_servers(directory: Path, timeout_s: float = 20) -> None:
    for pid_file in directory.glob("hooks-*.pid"):
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            continue
        if not is_hook_server(pid):
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while is_hook_server(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if is_hook_server(pid):
            os.kill(pid, signal.SIGKILL)


def connect_repository(root: Path, runtime: dict[str, str], **settings: str) -> Connected:
    """A git repository connected with `aletheia-mcp connect claude-code`, and Claude Code's environment
    for it (offline; HOME with the user's settings file holding `settings`). The model's URL is set
    per run."""
    project, home, data_dir = make_repository(root / "project"), root / "home", root / "data"
    write_tree(home / ".config" / "aletheia", {".env": "".join(f"{k}={v}\n" for k, v in {
        "ALETHEIA_USER_ID": USER, "ALETHEIA_DATA_DIR": str(data_dir), "EMBEDDING_PROVIDER": "hashing",
        "HOOK_SERVER_IDLE_S": "120",  # a safety net: the tests stop their servers themselves
        **settings}.items())})
    environment = clean_env(HOME=str(home), COLUMNS="200")
    del environment["ALETHEIA_ENV_FILE"]  # connect looks for the user's settings file in HOME
    connected = subprocess_run([str(ALETHEIA), "connect", "claude-code"], project, environment)
    assert "claude-code (project): connected." in connected, connected
    # The hooks are in the personal settings file only: these runs prove Claude Code runs them from there.
    assert (project / ".claude" / "settings.local.json").exists() and (project / ".mcp.json").exists()
    assert not (project / ".claude" / "settings.json").exists()
    return Connected(project, home, data_dir, claude_environment("", home, **runtime))


def subprocess_run(args: list[str], cwd: Path, environment: dict[str, str], stdin: str | None = None) -> str:
    """The stdout of a command that must succeed."""
    done = subprocess.run(args, cwd=cwd, env=environment, input=stdin, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def run(connected: Connected, model: FakeClaudeModel, script: list[Step], prompt: str) -> Run:
    """`claude -p PROMPT` at the repository's root, the fake model following `script`."""
    model.script = script
    before = len(model.messages_calls())
    environment = {**connected.environment, "ANTHROPIC_BASE_URL": model.url}
    result = await run_claude(installed_claude(), connected.project, environment, prompt,
                              "--permission-mode", "acceptEdits")
    return Run(result, model.messages_calls()[before:])


@pytest.fixture(scope="module")
async def sessions(claude: Path, module_database: str, tmp_path_factory: pytest.TempPathFactory
                   ) -> AsyncIterator[Sessions]:
    root = tmp_path_factory.mktemp("hooks-e2e")
    with hook_runtime() as runtime:
        connected = await anyio.to_thread.run_sync(lambda: connect_repository(
            root, runtime, DATABASE_URL=module_database))
        project = connected.project
        write_tree(project, {**RULES, "src/billing.py": BILLING})
        imported = await run_cli(["patterns", "import", ".cursor/rules"], project, module_database,
                                 ALETHEIA_USER_ID=USER)
        assert imported.returncode == 0, imported.stderr
        # Oldest first: session start gives the newest memories.
        lines = [json.dumps({"content": text}) for text in [RELEVANT, *FILLERS]]
        (project / "memories.jsonl").write_text("\n".join(lines) + "\n")
        imported = await run_cli(["memories", "import", "memories.jsonl"], project, module_database,
                                 ALETHEIA_USER_ID=USER)
        assert imported.returncode == 0, imported.stderr
        (project / "memories.jsonl").unlink()

        billing, test_file = project / "src" / "billing.py", project / "tests" / "test_billing.py"
        with FakeClaudeModel() as model:
            hi = await run(connected, model, [Step("Hello! What shall we work on?")], "hi")
            task = await run(connected, model, [
                Step("Let me read the billing code.", "Read", {"file_path": str(billing)}),
                Step("Summing in cents.", "Edit", {"file_path": str(billing), "old_string": "result = 0.0",
                                                   "new_string": "result = 0"}),
                Step("Now a test.", "Write", {"file_path": str(test_file), "content": TEST_FILE}),
                Step("Writing it again, by the conventions.", "Write", {"file_path": str(test_file),
                                                                        "content": TEST_FILE}),
                Step(FINAL),
            ], PROMPT)
        yield Sessions(connected, module_database, hi, task)


# --- what the model saw ----------------------------------------------------------------------


async def test_no_hook_failed(sessions: Sessions) -> None:
    assert sessions.connected.hook_failures() == ""
    assert sessions.hi.result["result"] == "Hello! What shall we work on?"
    assert sessions.task.result["result"] == FINAL


async def test_session_start_gives_the_always_apply_convention_as_stored_data(sessions: Sessions) -> None:
    for session in (sessions.hi, sessions.task):
        given = session.contexts(0)["SessionStart"]
        assert given.startswith(DATA_NOTICE + "\n"), given[:300]
        assert ALWAYS in given
        assert SOURCE_RULE not in given and TEST_RULE not in given  # those are for their files only
        assert FILLERS[-1] in given  # the newest memory


async def test_a_matching_prompt_gets_its_memory_and_hi_gets_none(sessions: Sessions) -> None:
    assert "UserPromptSubmit" not in sessions.hi.contexts(0), sessions.hi.contexts(0)
    contexts = sessions.task.contexts(0)
    assert RELEVANT not in contexts["SessionStart"]  # (the fillers took the room: only the prompt gives it)
    assert contexts["UserPromptSubmit"].startswith(DATA_NOTICE + "\n")
    assert RELEVANT in contexts["UserPromptSubmit"]
    assert not any(filler in contexts["UserPromptSubmit"] for filler in FILLERS)


async def test_a_files_conventions_reach_the_model_when_it_reads_the_file_before_it_edits(
        sessions: Sessions) -> None:
    task = sessions.task
    assert len(task.calls) == 5, [tool_results(c.body) for c in task.calls]  # one request per step
    assert SOURCE_RULE not in json.dumps(task.calls[0].body)
    # The request the model answered with the Edit carries the file's conventions, given on the Read.
    read = task.contexts(1)["PreToolUse:Read"]
    assert read.startswith(DATA_NOTICE + "\n") and SOURCE_RULE in read
    assert ALWAYS not in read  # given at session start already: once per session
    assert (sessions.connected.project / "src" / "billing.py").read_text() == BILLING.replace("0.0", "0")


async def test_a_new_files_first_write_is_refused_once_with_its_conventions(sessions: Sessions) -> None:
    task = sessions.task
    refused = tool_results(task.calls[3].body)[-1]  # the first Write's result, as the model got it
    assert refused["is_error"] is True
    assert refused["content"].startswith("PreToolUse:Write hook error: " + DATA_NOTICE)
    assert TEST_RULE in refused["content"] and "tests/test_billing.py" in refused["content"]
    written = tool_results(task.calls[4].body)[-1]  # the retry passed
    assert not written.get("is_error") and "tests/test_billing.py" in json.dumps(written["content"])
    assert TEST_RULE not in json.dumps(task.calls[4].body["messages"][-1])  # refused once, then not repeated
    assert (sessions.connected.project / "tests" / "test_billing.py").read_text() == TEST_FILE


# --- what was logged -------------------------------------------------------------------------


_LABEL = re.compile(r"\[(memory|pattern) (\d+)\]")


def labelled_ids(texts: list[str]) -> tuple[list[int], list[int]]:
    """The memory and pattern ids of the items in `texts` (each given as "[memory N] ...")."""
    found: dict[str, set[int]] = {"memory": set(), "pattern": set()}
    for text in texts:
        for kind, number in _LABEL.findall(text):
            found[kind].add(int(number))
    return sorted(found["memory"]), sorted(found["pattern"])


async def session_rows(database_url: str, session_id: str) -> list[dict[str, Any]]:
    return [row for row in await conversation_rows(database_url)
            if row["request_id"].startswith(f"hook:claude-code:{session_id}:")]


async def test_the_turn_is_logged_once_redacted_with_what_the_hooks_gave(sessions: Sessions) -> None:
    task, url = sessions.task, sessions.database_url
    rows = await session_rows(url, task.session_id)
    assert len(rows) == 1, ([r["request_id"] for r in rows], sessions.connected.logs())
    row = rows[0]
    transcript = transcript_path(sessions.connected.home, task.session_id)
    prompt_ids = {line["promptId"] for line in map(json.loads, transcript.read_text().splitlines())
                  if line.get("type") == "user" and line.get("promptId")}
    assert len(prompt_ids) == 1, prompt_ids
    prompt_id = prompt_ids.pop()
    assert row["request_id"] == f"hook:claude-code:{task.session_id}:{prompt_id}"

    # The turn, from the transcript: the prompt (redacted), the answer, the tool calls, the model.
    assert row["messages"] == [{"role": "user", "content": PROMPT.replace(SECRET, "[REDACTED:aws_access_key]")}]
    assert row["redactions"] >= 1
    blocks = row["response"]["content"]
    assert FINAL in "".join(b["text"] for b in blocks if b["type"] == "text")
    assert [b["name"] for b in blocks if b["type"] == "tool_use"] == ["Read", "Edit", "Write", "Write"]
    assert row["model"] == "claude-fake"  # what the fake model said it was
    assert row["project_key"] is not None
    leaked = await sql(url, "SELECT id FROM raw_conversations c WHERE strpos(row_to_json(c)::text, $1) > 0",
                       SECRET)
    assert leaked == []

    # Its provenance: exactly what the hooks put in front of the model during the turn.
    seen = [text for index in range(len(task.calls)) for text in task.contexts(index).values()]
    seen += [str(result["content"]) for result in tool_results(task.calls[-1].body)]  # the refusal's reason
    memory_ids, pattern_ids = labelled_ids(seen)
    assert (sorted(row["memory_ids"]), sorted(row["pattern_ids"])) == (memory_ids, pattern_ids)
    relevant = re.search(r"\[memory (\d+)\] " + re.escape(RELEVANT), task.contexts(0)["UserPromptSubmit"])
    assert relevant is not None and int(relevant[1]) in memory_ids
    assert len(pattern_ids) == 3  # house style at session start, money on the Read, tests on the Write

    # The same Stop again (Claude Code may fire it twice for a turn): no second row.
    stop = {"session_id": task.session_id, "transcript_path": str(transcript), "cwd": str(sessions.connected.project),
            "prompt_id": prompt_id, "permission_mode": "acceptEdits", "hook_event_name": "Stop",
            "stop_hook_active": False, "last_assistant_message": FINAL}
    environment = sessions.connected.environment
    answered = await anyio.to_thread.run_sync(lambda: subprocess_run(
        [str(ALETHEIA), "hook", "stop", "--client", "claude-code"], sessions.connected.project, environment,
        json.dumps(stop)))
    assert answered == ""
    assert [r["id"] for r in await session_rows(url, task.session_id)] == [row["id"]]
    assert sessions.connected.hook_failures() == ""


async def test_hi_is_logged_too_without_memories_of_its_own(sessions: Sessions) -> None:
    rows = await session_rows(sessions.database_url, sessions.hi.session_id)
    assert len(rows) == 1, sessions.connected.logs()
    given_at_start, _ = labelled_ids([sessions.hi.contexts(0)["SessionStart"]])
    assert sorted(rows[0]["memory_ids"]) == given_at_start  # nothing more came with "hi"


# --- a failing hook --------------------------------------------------------------------------


async def test_a_failing_hook_never_blocks_claude(claude: Path, tmp_path: Path) -> None:
    """The database unreachable: every hook fails, and Claude Code answers as if there were none."""
    with hook_runtime() as runtime:
        down = f"postgresql://{USER}@127.0.0.1:{free_port()}/nothing"  # a closed port
        connected = await anyio.to_thread.run_sync(lambda: connect_repository(
            tmp_path, runtime, DATABASE_URL=down, HOOK_START_TIMEOUT_S="5"))
        note = connected.project / "notes.txt"
        note.write_text("the launch code word is pelican\n")
        with FakeClaudeModel() as model:
            ran = await run(connected, model, [Step("Reading.", "Read", {"file_path": str(note)}),
                                               Step("Pelican.")], "What do my notes say?")
        assert ran.result["result"] == "Pelican."
        assert all(hook_contexts(call.body) == {} for call in ran.calls)
        failures = connected.hook_failures()
        for event in ("session-start", "prompt", "file", "stop"):
            assert f"aletheia-mcp hook {event} --client claude-code: " in failures, failures
