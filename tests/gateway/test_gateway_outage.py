"""PostgreSQL stopped under 200 calls through `aletheia-mcp gateway` (the CLI, a subprocess).

The gateway's database is a PostgreSQL of this module's own (so the test can stop it), given as
DATABASE_URL: the gateway cannot restart it, as with any external database. The openai SDK calls
through the gateway, 8 at a time, while the database is

    up (50 calls) -> stopped (75) -> back (25: the gateway stores what waited on its own)
    -> stopped again (50) -> the gateway gets SIGTERM, still without its database
    -> the database comes back -> the gateway is started again and stores the rest.

Every call must succeed for the client, and in the end the 200 calls are 200 rows, each stored
exactly once (by request_id), with nothing left in the spool.

The openai SDK stops reading a stream at `data: [DONE]` and closes the connection, often before
the upstream's final (empty) chunk has reached the gateway: such a call is still `completed` (the
last test pins that race down; the 200 calls met it at random).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from mcp_server.services.exchange_spool import SPOOL_DIR_NAME
from tests.gateway.fake_upstream import ANSWER, FakeUpstream, Reply, chat_events, running_upstream
from tests.helpers import clean_env, free_port, sql
from tests.stoppable_postgres import StoppablePostgres, stoppable_postgres

API_KEY = f"test-credential-{uuid.uuid4().hex}"
CONCURRENT = 8
WAIT_S = 90  # a guard against a hang in every wait below, never a timing


@pytest.fixture
def postgres() -> Iterator[StoppablePostgres]:
    with stoppable_postgres() as server:
        yield server


class Gateway:
    """`python -m mcp_server gateway` on a free port, its log (stderr) in a file."""

    def __init__(self, database_url: str, upstream: FakeUpstream, data_dir: Path, cwd: Path, log: Path) -> None:
        self.port = free_port()
        self.log = log
        environment = clean_env(DATABASE_URL=database_url, EMBEDDING_PROVIDER="hashing",
                                ALETHEIA_DATA_DIR=str(data_dir), ALETHEIA_USER_ID="outage-tester",
                                GATEWAY_OPENAI_UPSTREAM=upstream.url, GATEWAY_ANTHROPIC_UPSTREAM=upstream.url)
        with log.open("a") as stderr:
            self.proc = subprocess.Popen([sys.executable, "-m", "mcp_server", "gateway", "--port", str(self.port)],
                                         cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=stderr, text=True)
        until(self._listening, "the gateway to listen")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _listening(self) -> bool:
        assert self.proc.poll() is None, f"the gateway exited: {self.log.read_text()}"
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def terminate(self) -> str:
        """SIGTERM, as a service manager stops it; returns its stdout (must be empty)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            stdout, _ = self.proc.communicate(timeout=WAIT_S)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        assert self.proc.returncode == 0, self.log.read_text()
        return stdout


def until(condition: Callable[[], bool], what: str, found: Callable[[], object] = lambda: "") -> None:
    """Wait for `condition`; on time out, say what was waited for and what `found` sees instead."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"waited {WAIT_S} s for {what} {found()}"
        time.sleep(0.1)


def request_id(index: int) -> str:
    return f"outage-{index:03d}"


def make_calls(gateway: Gateway, indices: range) -> None:
    """Chat completions through the gateway with the openai SDK, CONCURRENT at a time, every other
    one streamed; each must get the upstream's whole answer."""
    client = openai.OpenAI(base_url=gateway.url, api_key=API_KEY, max_retries=0, timeout=30)

    def one(index: int) -> None:
        messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": f"call {index}"}]
        headers = {"x-request-id": request_id(index)}
        if index % 2:
            stream = client.chat.completions.create(model="gpt-fake", messages=messages, stream=True,
                                                    extra_headers=headers)
            text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        else:
            answer = client.chat.completions.create(model="gpt-fake", messages=messages, extra_headers=headers)
            assert answer._request_id == request_id(index)
            text = answer.choices[0].message.content or ""
        assert text == ANSWER, (index, text)

    with client, ThreadPoolExecutor(CONCURRENT) as pool:
        list(pool.map(one, indices))  # (re-raises the first failed call)


def stored(database_url: str) -> list[str]:
    rows = anyio.run(sql, database_url, "SELECT request_id FROM raw_conversations ORDER BY request_id")
    return [row["request_id"] for row in rows]


def spilled_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / SPOOL_DIR_NAME).glob("*.jsonl"))


def test_postgres_stopped_during_200_calls_and_a_gateway_restart_loses_and_doubles_nothing(
        postgres: StoppablePostgres, scratch_dir: Path, cli_cwd: Path, tmp_path: Path) -> None:
    database_url = postgres.new_database()
    data_dir, log = scratch_dir / "data", tmp_path / "gateway.log"
    with running_upstream() as upstream:
        gateway = Gateway(database_url, upstream, data_dir, cli_cwd, log)
        try:
            make_calls(gateway, range(0, 50))
            until(lambda: len(stored(database_url)) == 50, "the first 50 rows", lambda: len(stored(database_url)))

            postgres.stop()
            try:
                make_calls(gateway, range(50, 125))
                # They wait in the spill file (in the data directory), not in memory only.
                until(lambda: bool(spilled_files(data_dir)), "calls spilled to the data directory")
            finally:
                postgres.start()
            make_calls(gateway, range(125, 150))
            until(lambda: len(stored(database_url)) == 150, "the gateway to store what waited, on its own",
                  lambda: len(stored(database_url)))

            postgres.stop()
            try:
                make_calls(gateway, range(150, 200))
                stdout = gateway.terminate()  # still without its database: what is queued goes to the file
            finally:
                postgres.start()
        finally:
            if gateway.proc.poll() is None:
                gateway.proc.kill()
        assert stdout == ""
        assert len(stored(database_url)) == 150  # the last 50 are in the file only
        assert spilled_files(data_dir)

        restarted = Gateway(database_url, upstream, data_dir, cli_cwd, log)
        try:
            until(lambda: len(stored(database_url)) >= 200, "the restarted gateway to store the spilled calls",
                  lambda: len(stored(database_url)))
            until(lambda: not spilled_files(data_dir), "the spill files to be removed once stored",
                  lambda: [(p.name, p.stat().st_size) for p in spilled_files(data_dir)])
        finally:
            restarted.terminate()
        chat_calls = [r for r in upstream.received if r.path == "/v1/chat/completions"]

    assert len(chat_calls) == 200  # every call went upstream once (none retried by anyone)
    assert stored(database_url) == [request_id(i) for i in range(200)]  # all 200, each exactly once
    rows = anyio.run(sql, database_url, "SELECT request_id, status_code, outcome, stream, messages "
                                        "FROM raw_conversations ORDER BY request_id")
    assert [(r["request_id"], r["status_code"], r["outcome"]) for r in rows
            if (r["status_code"], r["outcome"]) != (200, "completed")] == []
    assert [r["stream"] for r in rows] == [bool(i % 2) for i in range(200)]
    assert [f"call {i}" in r["messages"] for i, r in enumerate(rows)] == [True] * 200
    assert list((data_dir / SPOOL_DIR_NAME).glob("*")) == []  # nothing set aside (refused, unreadable)
    leaked = anyio.run(sql, database_url, "SELECT id FROM raw_conversations c "
                                          "WHERE strpos(row_to_json(c)::text, $1) > 0", API_KEY)
    assert leaked == []


def test_a_client_that_stops_reading_at_done_got_the_whole_answer_completed(
        database_url: str, scratch_dir: Path, cli_cwd: Path, tmp_path: Path) -> None:
    """The upstream keeps its stream open after `[DONE]` (keep-alive comments): the SDK has the
    whole answer and closes, so the gateway sees the client go before the upstream ends."""
    with running_upstream() as upstream:
        upstream.reply(Reply(events=chat_events(), trickle_s=5))
        gateway = Gateway(database_url, upstream, scratch_dir / "data", cli_cwd, tmp_path / "gateway.log")
        try:
            make_calls(gateway, range(1, 2))  # (odd: streamed)
            assert upstream.client_went_away.wait(WAIT_S)  # the gateway left the upstream too
        finally:
            gateway.terminate()
    rows = anyio.run(sql, database_url, "SELECT request_id, outcome, response FROM raw_conversations")
    assert [(r["request_id"], r["outcome"]) for r in rows] == [(request_id(1), "completed")]
    assert json.loads(rows[0]["response"])["choices"][0]["message"]["content"] == ANSWER
