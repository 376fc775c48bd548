"""`aletheia-mcp gateway` as a user runs it: a subprocess on a free port, stopped with SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx2
import pytest

from tests.gateway.fake_upstream import ANSWER, Reply, chat_events, running_upstream
from tests.helpers import clean_env, free_port, sql


def start_gateway(url: str, upstream: str, data_dir: Path, cwd: Path, port: int) -> subprocess.Popen[str]:
    environment = clean_env(DATABASE_URL=url, EMBEDDING_PROVIDER="hashing", ALETHEIA_DATA_DIR=str(data_dir),
                            GATEWAY_OPENAI_UPSTREAM=upstream, GATEWAY_ANTHROPIC_UPSTREAM=upstream)
    proc = subprocess.Popen([sys.executable, "-m", "mcp_server", "gateway", "--port", str(port)], cwd=cwd,
                            env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the gateway did not start listening within 60 s")


def test_sigterm_finishes_the_call_in_flight_stores_it_and_exits(database_url: str, cli_cwd: Path,
                                                                 scratch_dir: Path) -> None:
    port = free_port()
    with running_upstream() as upstream:
        upstream.reply(Reply(events=chat_events(), trickle_s=1.5))  # still streaming when SIGTERM comes
        proc = start_gateway(database_url, upstream.url, scratch_dir, cli_cwd, port)
        try:
            body = {"model": "gpt-fake", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
            with httpx2.Client(timeout=30) as http, http.stream(
                    "POST", f"http://127.0.0.1:{port}/v1/chat/completions", json=body,
                    headers={"authorization": "Bearer k", "x-request-id": "in-flight-1"}) as answer:
                chunks = answer.iter_raw()
                received = next(chunks)
                proc.send_signal(signal.SIGTERM)
                received += b"".join(chunks)  # the whole answer, after the signal
            assert answer.status_code == 200
            assert received.startswith(upstream.sent[0]) and received.endswith(b": keep-alive\n\n")
            _, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, stderr
    assert proc.stdout is not None
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass  # no longer listening
    stored = anyio.run(sql, database_url, "SELECT request_id, outcome, response FROM raw_conversations")
    assert [(r["request_id"], r["outcome"]) for r in stored] == [("in-flight-1", "completed")]
    assert json.loads(stored[0]["response"])["choices"][0]["message"]["content"] == ANSWER


def test_a_bad_setting_or_a_busy_port_is_one_line_and_exit_1(database_url: str, cli_cwd: Path,
                                                             scratch_dir: Path) -> None:
    environment = clean_env(DATABASE_URL=database_url, EMBEDDING_PROVIDER="hashing",
                            ALETHEIA_DATA_DIR=str(scratch_dir), GATEWAY_OPENAI_UPSTREAM="api.openai.com")
    bad = subprocess.run([sys.executable, "-m", "mcp_server", "gateway"], cwd=cli_cwd, env=environment,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "GATEWAY_OPENAI_UPSTREAM" in bad.stderr.upper() and "http://" in bad.stderr
    assert "Traceback" not in bad.stderr
    exposed = subprocess.run([sys.executable, "-m", "mcp_server", "gateway", "--host", "0.0.0.0"], cwd=cli_cwd,
                             env={**environment, "GATEWAY_OPENAI_UPSTREAM": "http://127.0.0.1:1"},
                             capture_output=True, text=True, timeout=120)
    assert exposed.returncode == 1 and "ALETHEIA_HTTP_TOKENS_FILE" in exposed.stderr
    assert "Traceback" not in exposed.stderr and exposed.stdout == ""
