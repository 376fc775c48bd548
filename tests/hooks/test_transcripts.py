"""Reading one turn from a transcript's tail: bounded, widening only as needed, bad lines skipped."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from mcp_server.hooks import transcripts
from mcp_server.hooks.transcripts import INITIAL_WINDOW, read_claude_turn, read_codex_turn

FIXTURES = Path(__file__).parent / "fixtures"
REAL = FIXTURES / "claude-code" / "transcript.jsonl"


def line(record: dict[str, Any]) -> str:
    return json.dumps(record) + "\n"


def prompt(text: str, prompt_id: str) -> str:
    return line({"type": "user", "promptId": prompt_id, "isSidechain": False, "timestamp": "2026-12-06T21:48:48.934Z",
                 "message": {"role": "user", "content": text}})


def reply(text: str, model: str = "claude-x") -> str:
    return line({"type": "assistant", "isSidechain": False, "timestamp": "2026-12-06T21:48:50.000Z",
                 "message": {"role": "assistant", "model": model, "content": [{"type": "text", "text": text}]}})


def test_real_transcript_turns() -> None:
    last = read_claude_turn(str(REAL))  # no prompt id: the last prompt
    assert last is not None and last.prompt == "Thanks, anything else?"
    assert last.prompt_id == "74d6053d-640e-403f-a0ae-f7cb0bedafd7"
    first = read_claude_turn(str(REAL), "ddf1d0d8-a954-4edb-8389-618d24fea2d1")
    assert first is not None
    # Tool results (type user, same promptId) do not start a turn; the synthetic
    # "No response requested." line after a resume is not the assistant's text.
    assert first.assistant_text == ("Let me read the notes.\n\nNow I write the new module.\n\n"
                                    "Done: I read notes.txt and wrote src/new_module.py.")
    assert "No response requested." not in first.assistant_text
    assert first.started_at is not None and first.ended_at is not None and first.started_at < first.ended_at


def test_malformed_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(prompt("hello", "p1") + "{not json\n" + "[1, 2]\n" + "\n" + '"a string"\n' + reply("hi there"))
    turn = read_claude_turn(str(path), "p1")
    assert turn is not None and (turn.prompt, turn.assistant_text, turn.model) == ("hello", "hi there", "claude-x")


def test_unknown_prompt_id_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(prompt("hello", "p1") + reply("hi"))
    assert read_claude_turn(str(path), "another") is None
    assert read_claude_turn(str(tmp_path / "missing.jsonl")) is None
    assert read_claude_turn(str(tmp_path)) is None  # a directory
    (tmp_path / "empty.jsonl").write_text("")
    assert read_claude_turn(str(tmp_path / "empty.jsonl")) is None


def test_a_turn_ends_at_the_next_prompt(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(prompt("one", "p1") + reply("answer one") + prompt("two", "p2") + reply("answer two"))
    turn = read_claude_turn(str(path), "p1")
    assert turn is not None and turn.assistant_text == "answer one"


def test_the_window_widens_past_a_long_turn(tmp_path: Path) -> None:
    """The prompt is 3 windows back: the reader widens until it finds it, and cuts no line."""
    path = tmp_path / "t.jsonl"
    filler = "".join(reply("x" * 1000) for _ in range(3 * INITIAL_WINDOW // 1000))
    path.write_text(prompt("old", "p0") + reply("old answer") + prompt("the prompt", "p1") + filler + reply("end"))
    turn = read_claude_turn(str(path), "p1")
    assert turn is not None and turn.prompt == "the prompt" and turn.assistant_text.endswith("end")


def test_reads_are_bounded(tmp_path: Path) -> None:
    """A prompt further back than the cap is not searched for: nothing is logged (no huge read)."""
    path = tmp_path / "t.jsonl"
    filler = "".join(reply("y" * 1000) for _ in range(2 * INITIAL_WINDOW // 1000))
    path.write_text(prompt("far away", "p1") + filler)
    assert read_claude_turn(str(path), "p1", max_window=INITIAL_WINDOW) is None
    assert read_claude_turn(str(path), "p1", max_window=4 * INITIAL_WINDOW) is not None


def test_read_tail_drops_the_cut_line_only(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    cut = 'garbage before ' + prompt("not a real line", "p0")  # its cut tail would parse as JSON
    path.write_text(cut + reply("b"))
    # The window starts on the '{' after the garbage: a valid JSON object, but not a line.
    tail = transcripts.read_tail(str(path), len(reply("b")) + len(cut) - len("garbage before "))
    assert tail is not None
    records, whole = tail
    assert not whole and [r["message"]["content"][0]["text"] for r in records] == ["b"]
    # A window that starts exactly on a line keeps that line.
    tail = transcripts.read_tail(str(path), len(reply("b")))
    assert tail is not None and not tail[1] and len(tail[0]) == 1


def test_tool_results_never_start_a_turn(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    result = line({"type": "user", "promptId": "p1", "message": {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t1", "content": "file text"}, {"type": "text", "text": "note"}]}})
    path.write_text(prompt("the prompt", "p1") + reply("reading") + result + reply("done"))
    turn = read_claude_turn(str(path), "p1")
    assert turn is not None and turn.prompt == "the prompt" and turn.assistant_text == "reading\n\ndone"


def test_a_huge_transcript_only_costs_its_tail(tmp_path: Path) -> None:
    """200 MB of earlier session before the turn: the turn is read from the last window only."""
    path = tmp_path / "big.jsonl"
    with path.open("wb") as handle:
        handle.truncate(200 * 1024 * 1024)  # a sparse run of NUL bytes: not JSON, never parsed as lines
        handle.seek(0, 2)
        handle.write(("\n" + prompt("latest", "p9") + reply("done")).encode())
    turn = read_claude_turn(str(path), "p9")
    assert turn is not None and turn.prompt == "latest"


def test_codex_rollout(tmp_path: Path) -> None:
    path = tmp_path / "rollout.jsonl"
    shutil.copy(FIXTURES / "codex" / "rollout.jsonl", path)
    turn = read_codex_turn(str(path), "turn-1")
    assert turn is not None and turn.prompt == "add a retry to the uploader" and turn.prompt_id == "turn-1"
    assert [call.name for call in turn.tool_calls] == ["shell", "apply_patch"]
    assert read_codex_turn(str(tmp_path / "missing.jsonl")) is None


def test_a_path_that_is_not_a_regular_file_gives_none_at_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A payload names the transcript: a FIFO there blocked the open (and the hook server) for good,
    a device could be read without end."""
    fifo = tmp_path / "transcript.jsonl"
    os.mkfifo(fifo)
    for path in (fifo, Path(os.devnull), tmp_path):
        caplog.clear()
        results: list[object] = []

        def read(p: Path = path, into: list[object] = results) -> None:
            into.append(read_claude_turn(str(p)))

        reader = threading.Thread(target=read, daemon=True)
        with caplog.at_level(logging.WARNING, logger=transcripts.__name__):
            reader.start()
            reader.join(timeout=10)  # a guard against the hang, not a timing
        if reader.is_alive():  # let the blocked reader go before failing
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            reader.join(timeout=10)
            pytest.fail(f"reading {path} blocked")
        assert results == [None], path
        assert len(caplog.records) == 1 and "not a regular file" in caplog.records[0].getMessage(), path
