"""Client adapters: real Claude Code payloads (captured from 2.1.328) and documented ones for the
other clients, parsed into neutral events and rendered back in each client's format."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from mcp_server.hooks.clients import ADAPTERS, HookInputError, adapter_for, load_payload
from mcp_server.hooks.clients.base import MAX_PROMPT_CHARS, MAX_RENDERED_CONTEXT
from mcp_server.services.hook_events import (
    FileTouch,
    HookResult,
    HookSession,
    PromptSubmit,
    SessionStart,
    TurnEnd,
)

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(client: str, name: str, **changes: Any) -> dict[str, Any]:
    payload = json.loads((FIXTURES / client / name).read_text())
    return {**payload, **changes}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "notes.txt").write_text("Remember: use snake_case.\n")
    (tmp_path / "src").mkdir()
    return tmp_path


# ---- Claude Code (real payloads) ----------------------------------------------------------------

def test_claude_session_start_keeps_source(repo: Path) -> None:
    adapter = adapter_for("claude-code")
    first = adapter.parse("session-start", fixture("claude-code", "SessionStart.first.json", cwd=str(repo)), cwd="/")
    resumed = adapter.parse("session-start", fixture("claude-code", "SessionStart.second.json", cwd=str(repo)),
                            cwd="/")
    assert first == SessionStart(HookSession("claude-code", "b52a9688-cd2f-450d-b4ed-4f692b579eeb", str(repo)))
    assert isinstance(resumed, SessionStart) and resumed.source == "resume"


def test_claude_prompt_carries_prompt_id(repo: Path) -> None:
    event = adapter_for("claude-code").parse(
        "prompt", fixture("claude-code", "UserPromptSubmit.first.json", cwd=str(repo)), cwd="/")
    assert isinstance(event, PromptSubmit)
    assert event.prompt == "Read notes.txt, then write src/new_module.py"
    assert event.prompt_id == "ddf1d0d8-a954-4edb-8389-618d24fea2d1"


def test_claude_read_and_new_write(repo: Path) -> None:
    adapter = adapter_for("claude-code")
    read = fixture("claude-code", "PreToolUse.read.json", cwd=str(repo))
    read["tool_input"] = {"file_path": str(repo / "notes.txt")}
    write = fixture("claude-code", "PreToolUse.write.json", cwd=str(repo))
    write["tool_input"] = {**write["tool_input"], "file_path": "src/new_module.py"}  # relative: made absolute
    read_event = adapter.parse("file", read, cwd="/")
    write_event = adapter.parse("file", write, cwd="/")
    assert read_event == FileTouch(read_event.session, str(repo / "notes.txt"), "Read", "read", new_file=False,
                                   prompt_id=read["prompt_id"])
    assert isinstance(write_event, FileTouch)
    assert (write_event.file_path, write_event.action, write_event.new_file) == (
        str(repo / "src" / "new_module.py"), "write", True)
    (repo / "src" / "new_module.py").write_text("")
    again = adapter.parse("file", write, cwd="/")
    assert isinstance(again, FileTouch) and again.new_file is False


def test_claude_stop_reads_the_turn_of_its_prompt_id(repo: Path) -> None:
    transcript = str(FIXTURES / "claude-code" / "transcript.jsonl")
    adapter = adapter_for("claude-code")
    first = adapter.parse("stop", fixture("claude-code", "Stop.first.json", cwd=str(repo),
                                          transcript_path=transcript), cwd="/")
    second = adapter.parse("stop", fixture("claude-code", "Stop.second.json", cwd=str(repo),
                                           transcript_path=transcript), cwd="/")
    assert isinstance(first, TurnEnd) and first.turn is not None
    assert first.prompt_id == first.turn.prompt_id == "ddf1d0d8-a954-4edb-8389-618d24fea2d1"
    assert first.turn.prompt == "Read notes.txt, then write src/new_module.py"
    assert [call.name for call in first.turn.tool_calls] == ["Read", "Write"]
    assert first.turn.tool_calls[0].input == {"file_path": "/tmp/ha2-repo-_m32zt62/notes.txt"}
    assert first.turn.assistant_text.endswith("Done: I read notes.txt and wrote src/new_module.py.")
    assert first.turn.model == "claude-fake-1"
    assert isinstance(second, TurnEnd) and second.turn is not None
    assert (second.turn.prompt, second.turn.assistant_text, second.turn.tool_calls) == (
        "Thanks, anything else?", "Second answer, no tools.", [])


def test_claude_stop_adds_the_last_reply_the_transcript_does_not_have_yet(repo: Path) -> None:
    """Claude Code can run Stop before the turn's last reply reaches the transcript (seen in the end-to-end
    test): the payload's last_assistant_message completes the turn's earlier text, once."""
    lines = (FIXTURES / "claude-code" / "transcript.jsonl").read_text().splitlines(keepends=True)
    last = "Done: I read notes.txt and wrote src/new_module.py."
    [final] = [i for i, line in enumerate(lines) if last in line and '"type":"assistant"' in line]
    early = repo / "early.jsonl"
    early.write_text("".join(lines[:final]))  # the turn so far: two replies and two tool calls, not the last reply
    adapter = adapter_for("claude-code")
    stop = fixture("claude-code", "Stop.first.json", cwd=str(repo), transcript_path=str(early))
    assert stop["last_assistant_message"] == last
    event = adapter.parse("stop", stop, cwd="/")
    assert isinstance(event, TurnEnd) and event.turn is not None
    text = event.turn.assistant_text
    assert text.startswith("Let me read the notes.") and "Now I write the new module." in text
    assert text.endswith(last) and text.count(last) == 1
    assert [call.name for call in event.turn.tool_calls] == ["Read", "Write"]
    whole = adapter.parse("stop", {**stop, "transcript_path": str(FIXTURES / "claude-code" / "transcript.jsonl")},
                          cwd="/")
    assert isinstance(whole, TurnEnd) and whole.turn is not None
    assert whole.turn.assistant_text.count(last) == 1  # already there: not added again


def test_claude_stop_without_a_readable_transcript_logs_nothing(repo: Path) -> None:
    event = adapter_for("claude-code").parse(
        "stop", fixture("claude-code", "Stop.first.json", cwd=str(repo), transcript_path=str(repo / "gone.jsonl")),
        cwd="/")
    assert isinstance(event, TurnEnd) and event.turn is None


def test_claude_stop_waits_for_a_transcript_written_late(repo: Path) -> None:
    """Claude Code writes its transcript in batches: a short session's lines may land after Stop began."""
    real = (FIXTURES / "claude-code" / "transcript.jsonl").read_text()
    late = repo / "late.jsonl"
    writer = threading.Timer(0.5, late.write_text, args=(real,))
    writer.start()
    try:
        event = adapter_for("claude-code").parse(
            "stop", fixture("claude-code", "Stop.first.json", cwd=str(repo), transcript_path=str(late)), cwd="/")
    finally:
        writer.join()
    assert isinstance(event, TurnEnd) and event.turn is not None and event.turn.prompt


def test_claude_render() -> None:
    adapter = adapter_for("claude-code")
    session = HookSession("claude-code", "s", "/repo")
    start = json.loads(adapter.render(SessionStart(session), HookResult(context="ctx")))
    assert start == {"hookSpecificOutput": {"hookEventName": "SessionStart", "additionalContext": "ctx"}}
    prompt = json.loads(adapter.render(PromptSubmit(session, "p"), HookResult(context="m")))
    assert prompt["hookSpecificOutput"]["hookEventName"] == "UserPromptSubmit"
    touch = FileTouch(session, "/repo/a.py", "Write", "write", new_file=True)
    deny = json.loads(adapter.render(touch, HookResult(deny_reason="conventions")))
    assert deny == {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny",
                                           "permissionDecisionReason": "conventions"}}
    assert adapter.render(touch, HookResult()) == ""
    assert adapter.render(TurnEnd(session, None), HookResult(context="x", logged_exchange_id=1)) == ""
    huge = json.loads(adapter.render(SessionStart(session), HookResult(context="x" * 50_000)))
    assert len(huge["hookSpecificOutput"]["additionalContext"]) == MAX_RENDERED_CONTEXT


# ---- Codex, Gemini, Cursor (documented payloads) ----------------------------------------------

def test_codex_events(repo: Path) -> None:
    adapter = adapter_for("codex")
    start = adapter.parse("session-start", fixture("codex", "SessionStart.json", cwd=str(repo)), cwd="/")
    assert isinstance(start, SessionStart) and start.session.cwd == str(repo)
    prompt = adapter.parse("prompt", fixture("codex", "UserPromptSubmit.json", cwd=str(repo)), cwd="/")
    assert isinstance(prompt, PromptSubmit) and prompt.prompt_id == "019d036d-c7fa-72d2-b6fd-78878bfe34e4"
    patch = adapter.parse("file", fixture("codex", "PreToolUse.apply_patch.json", cwd=str(repo)), cwd="/")
    assert isinstance(patch, FileTouch)
    assert (patch.file_path, patch.tool, patch.action, patch.new_file) == (
        str(repo / "src/uploader_retry.py"), "apply_patch", "write", True)
    with pytest.raises(HookInputError, match="not a file tool"):
        adapter.parse("file", fixture("codex", "PreToolUse.bash.json", cwd=str(repo)), cwd="/")
    stop = adapter.parse("stop", fixture("codex", "Stop.json", cwd=str(repo),
                                         transcript_path=str(FIXTURES / "codex" / "rollout.jsonl")), cwd="/")
    assert isinstance(stop, TurnEnd) and stop.turn is not None
    assert stop.turn.prompt == "add a retry to the uploader"
    assert stop.turn.assistant_text == "Added a retry."
    assert [call.name for call in stop.turn.tool_calls] == ["shell", "apply_patch"]
    assert stop.turn.tool_calls[0].input == {"command": ["cat", "src/uploader.py"]}
    assert stop.turn.model == "gpt-5-codex"
    deny = json.loads(adapter.render(patch, HookResult(deny_reason="r")))
    assert deny["hookSpecificOutput"]["permissionDecision"] == "deny"


def test_gemini_events(repo: Path) -> None:
    adapter = adapter_for("gemini")
    start = adapter.parse("session-start", fixture("gemini", "SessionStart.json", cwd=str(repo)), cwd="/")
    assert isinstance(start, SessionStart)
    prompt = adapter.parse("prompt", fixture("gemini", "BeforeAgent.json", cwd=str(repo)), cwd="/")
    assert isinstance(prompt, PromptSubmit) and prompt.prompt == "why does the uploader time out?"
    read = adapter.parse("file", fixture("gemini", "AfterTool.read_file.json", cwd=str(repo)), cwd="/")
    assert isinstance(read, FileTouch) and read.action == "read" and read.file_path == str(repo / "src/uploader.py")
    write = adapter.parse("file", fixture("gemini", "BeforeTool.write_file.json", cwd=str(repo)), cwd="/")
    assert isinstance(write, FileTouch) and write.new_file is True
    stop = adapter.parse("stop", fixture("gemini", "AfterAgent.json", cwd=str(repo)), cwd="/")
    assert isinstance(stop, TurnEnd) and stop.turn is not None
    assert (stop.turn.prompt, stop.turn.assistant_text) == ("why does the uploader time out?", "It never retries.")
    assert json.loads(adapter.render(write, HookResult(deny_reason="r"))) == {"decision": "deny", "reason": "r"}
    assert json.loads(adapter.render(read, HookResult(context="c"))) == {
        "hookSpecificOutput": {"hookEventName": "AfterTool", "additionalContext": "c"}}
    assert json.loads(adapter.render(prompt, HookResult(context="c")))["hookSpecificOutput"]["hookEventName"] == (
        "BeforeAgent")


def test_cursor_session_start_only(repo: Path) -> None:
    adapter = adapter_for("cursor")
    start = adapter.parse("session-start", fixture("cursor", "sessionStart.json", workspace_roots=[str(repo)]),
                          cwd="/")
    assert start == SessionStart(HookSession("cursor", "c-conv-1", str(repo)))
    assert json.loads(adapter.render(start, HookResult(context="c"))) == {"additional_context": "c"}
    with pytest.raises(HookInputError, match="context generate --format cursor_mdc"):
        adapter.parse("prompt", fixture("cursor", "beforeSubmitPrompt.json"), cwd="/")


# ---- malformed input: a clear HookInputError, never another exception ------------------------

def test_unknown_client_and_event() -> None:
    with pytest.raises(HookInputError, match="unknown client 'vim': expected one of claude-code, codex"):
        adapter_for("vim")
    with pytest.raises(HookInputError, match="unknown hook event 'SessionStart': expected one of session-start"):
        adapter_for("claude-code").parse("SessionStart", fixture("claude-code", "SessionStart.first.json"), cwd="/")


def test_not_json_and_not_an_object() -> None:
    with pytest.raises(HookInputError, match="not JSON"):
        load_payload((FIXTURES / "malformed" / "not-json.txt").read_text())
    with pytest.raises(HookInputError, match="must be a JSON object, not list"):
        load_payload((FIXTURES / "malformed" / "array.json").read_text())
    with pytest.raises(HookInputError, match="not JSON"):
        load_payload(b"\xff\xfe")


@pytest.mark.parametrize(("name", "event", "message"), [
    ("wrong-types.json", "prompt", r"payload is invalid \(session_id: Input should be a valid string\)"),
    ("missing-fields.json", "prompt", r"session_id: Field required; prompt: Field required"),
    ("file-without-path.json", "file", r"tool_input.file_path: Field required"),
    ("not-a-file-tool.json", "file", r"tool 'Bash' is not a file tool"),
])
def test_malformed_payloads(name: str, event: str, message: str) -> None:
    payload = load_payload((FIXTURES / "malformed" / name).read_text())
    for client in ("claude-code", "codex", "gemini"):
        with pytest.raises(HookInputError):
            ADAPTERS[client].parse(event, payload, cwd="/")
    with pytest.raises(HookInputError, match=message):
        adapter_for("claude-code").parse(event, payload, cwd="/")


def test_huge_prompt_is_refused() -> None:
    payload = fixture("claude-code", "UserPromptSubmit.first.json", prompt="x" * (MAX_PROMPT_CHARS + 1))
    with pytest.raises(HookInputError, match="prompt: String should have at most 200000 characters"):
        adapter_for("claude-code").parse("prompt", payload, cwd="/")


def test_payload_that_is_not_a_mapping() -> None:
    with pytest.raises(HookInputError, match="must be a JSON object, not str"):
        adapter_for("claude-code").parse("prompt", "text", cwd="/")  # type: ignore[arg-type]


def test_extra_fields_are_ignored(repo: Path) -> None:
    payload = fixture("claude-code", "UserPromptSubmit.first.json", cwd=str(repo), brand_new_field={"x": 1})
    assert isinstance(adapter_for("claude-code").parse("prompt", payload, cwd="/"), PromptSubmit)
