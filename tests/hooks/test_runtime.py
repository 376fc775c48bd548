"""The hook runtime through real processes: the installed `aletheia-mcp hook` executable, the hook server it
starts, a real PostgreSQL (the embedded test server) and the hashing embedder."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import asyncpg
import pytest

from mcp_server.hooks import client as hook_client
from mcp_server.hooks.clients import ADAPTERS
from mcp_server.hooks.protocol import (
    ANSWER_DEADLINES_S,
    MAX_PAYLOAD_BYTES,
    HookFailure,
    encode_answer,
    encode_request,
    server_paths,
)
from mcp_server.hooks.server import HookServer
from mcp_server.services.hook_events import HookEvent, HookResult
from tests.helpers import cli, free_port, make_repository, make_settings
from tests.hooks.runtime_helpers import (
    EXECUTABLE,
    HookRuntime,
    alive,
    hook_server_pids,
    payload,
    wait_until,
)

# Never in a hook process (the agent waits for it on every prompt): the MCP SDK, the database stack, our
# services and settings, typer.
HEAVY_MODULES = ("mcp", "sqlalchemy", "asyncpg", "pydantic", "pydantic_settings", "typer", "rich", "numpy",
                 "anyio", "mcp_server.services", "mcp_server.settings", "mcp_server.app_context", "mcp_server.cli",
                 "mcp_server.hooks.server", "mcp_server.hooks.clients")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repository(tmp_path / "repo")


def answered(done: object) -> None:
    """The hook succeeded: exit 0, nothing on stderr, stdout empty or the JSON Claude Code expects."""
    assert getattr(done, "returncode", None) == 0
    assert getattr(done, "stderr", None) == "", getattr(done, "stderr", None)
    stdout = str(getattr(done, "stdout", ""))
    if stdout:
        assert "hookSpecificOutput" in json.loads(stdout)


def failed_quietly(done: object, hooks: HookRuntime, expected: str, log_lines_before: int = 0) -> None:
    """The hook failed as it must: exit 0, stdout empty, ONE line on stderr naming the problem, and one
    more line in hooks.log."""
    assert getattr(done, "returncode", None) == 0
    assert getattr(done, "stdout", None) == ""
    stderr = str(getattr(done, "stderr", ""))
    assert len(stderr.splitlines()) == 1, stderr
    assert expected in stderr, stderr
    lines = hooks.hooks_log.read_text().splitlines()
    assert len(lines) == log_lines_before + 1
    assert expected in lines[-1]


# --- the process model ------------------------------------------------------------------------------


def test_first_hook_starts_the_server_and_later_hooks_reuse_it(hooks: HookRuntime, repo: Path) -> None:
    answered(hooks.run("session-start", payload("session-start", repo), repo))
    [first] = hooks.server_pids()
    assert alive(first)
    for event in ("prompt", "file", "stop", "session-start"):
        answered(hooks.run(event, payload(event, repo), repo))
    assert hooks.server_pids() == [first]
    assert hook_server_pids(hooks.sockets_dir) == [first]


def test_a_hook_process_never_imports_the_heavy_stack(hooks: HookRuntime, repo: Path) -> None:
    answered(hooks.run("prompt", payload("prompt", repo), repo))  # (warms the server)
    done = hooks.run("prompt", payload("prompt", repo), repo, PYTHONPROFILEIMPORTTIME="1")
    assert done.returncode == 0
    imported = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "mcp_server.hooks.client" in imported  # (the listing is real)
    heavy = sorted(m for m in imported if any(m == h or m.startswith(h + ".") for h in HEAVY_MODULES))
    assert heavy == []


def test_hooks_arriving_together_start_one_server(hooks: HookRuntime, repo: Path) -> None:
    started = [hooks.start("prompt", "", repo) for _ in range(6)]
    for process in started:  # every hook has its input before any is waited for: they run at once
        assert process.stdin is not None
        process.stdin.write(payload("prompt", repo).encode())
        process.stdin.close()
    for process in started:
        assert process.wait(timeout=120) == 0
        assert process.stderr is not None and process.stderr.read() == b""
    assert len(hook_server_pids(hooks.sockets_dir)) == 1
    assert len(hooks.server_pids()) == 1


def test_a_killed_servers_socket_is_recovered(hooks: HookRuntime, repo: Path) -> None:
    answered(hooks.run("prompt", payload("prompt", repo), repo))
    [first] = hooks.server_pids()
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: not alive(first), what="the killed server to go")
    assert list(hooks.sockets_dir.glob("hooks-*.sock"))  # its socket is left behind
    answered(hooks.run("prompt", payload("prompt", repo), repo))
    [second] = hooks.server_pids()
    assert second != first and alive(second)


def test_another_configuration_gets_its_own_server(hooks: HookRuntime, repo: Path) -> None:
    answered(hooks.run("prompt", payload("prompt", repo), repo))
    for other in (hooks.with_env(ALETHEIA_USER_ID="someone-else"), hooks.with_env(EMBEDDING_DIM="384")):
        answered(other.run("prompt", payload("prompt", repo), repo))
    assert len(hooks.server_pids()) == 3
    assert len(hook_server_pids(hooks.sockets_dir)) == 3


def test_the_server_exits_when_idle(hooks: HookRuntime, repo: Path) -> None:
    idle = hooks.with_env(HOOK_SERVER_IDLE_S="1")
    answered(idle.run("prompt", payload("prompt", repo), repo))
    [pid] = idle.server_pids()
    wait_until(lambda: not alive(pid), timeout=60, what="the idle server to exit")
    assert list(hooks.sockets_dir.glob("hooks-*.sock")) == []
    assert idle.pid_files() == []
    answered(idle.run("prompt", payload("prompt", repo), repo))  # the next hook starts a new one


def test_the_servers_output_never_reaches_the_hooks_stdout(hooks: HookRuntime, repo: Path) -> None:
    chatty = hooks.with_env(LOG_LEVEL="DEBUG")
    answered(chatty.run("session-start", payload("session-start", repo), repo))  # the hook that starts it
    assert "hook server ready" in chatty.server_log.read_text()


def test_sigterm_stops_the_server_and_removes_its_files(hooks: HookRuntime, repo: Path) -> None:
    answered(hooks.run("prompt", payload("prompt", repo), repo))
    [pid] = hooks.server_pids()
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not alive(pid), what="the server to stop")
    assert hooks.pid_files() == []
    assert list(hooks.sockets_dir.glob("hooks-*.sock")) == []


def test_sigterm_stops_the_server_while_its_embedder_is_still_loading(hooks: HookRuntime, repo: Path,
                                                                       tmp_path: Path) -> None:
    """A model load that does not return (offline, fastembed retries its download for ~40 s; here a model
    file that never finishes reading, as on a hung mount) runs in a thread nothing can interrupt: the
    server must end without waiting for it."""
    with server_stuck_loading_its_model(hooks, repo, tmp_path) as (loading, pid):
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not alive(pid), timeout=15, what="the server to exit while its embedder loads")
    assert loading.pid_files() == []
    assert list(hooks.sockets_dir.glob("hooks-*.sock")) == []
    assert "not waiting for 1 worker thread" in loading.server_log.read_text()


@contextmanager
def server_stuck_loading_its_model(hooks: HookRuntime, repo: Path, tmp_path: Path) -> Iterator[tuple[HookRuntime, int]]:
    """A hook server whose embedder is stuck reading its model: the model files are FIFOs, held open
    for writing and never written, so the loader's read blocks until the block ends. Yields the
    runtime with that embedder and the server's pid."""
    model = tmp_path / "model"
    model.mkdir()
    for name in ("model.onnx", "model_optimized.onnx"):  # (fastembed reads the one its model lists)
        os.mkfifo(model / name)
    loading = hooks.with_env(EMBEDDING_PROVIDER="fastembed", EMBEDDING_MODEL_PATH=str(model))
    answered(loading.run("session-start", payload("session-start", repo), repo))
    [pid] = loading.server_pids()
    writer: list[int] = []
    wait_until(lambda: _open_writer(model, writer), timeout=60, what="the embedder to open its model file")
    try:
        yield loading, pid
    finally:
        for fd in writer:
            os.close(fd)


def _open_writer(model: Path, opened: list[int]) -> bool:
    """Open a FIFO of `model` for writing once a reader has it open (ENXIO until then)."""
    for fifo in model.iterdir():
        try:
            opened.append(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            return True
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
    return False


# --- failures: stdout empty, exit 0, one line on stderr and in hooks.log ------------------------------


@pytest.mark.parametrize(
    ("args", "stdin", "expected"),
    [
        (["prompt"], "this is not JSON", "not JSON"),
        (["prompt"], "[1, 2]", "not a JSON object"),
        (["prompt"], b"\xff\xfe{}", "not UTF-8"),
        (["bogus"], "{}", "unknown hook event 'bogus'"),
        (["prompt", "--client", "nope"], "{}", "unknown client 'nope'"),
        (["prompt", "--verbose"], "{}", "unknown option --verbose"),
        ([], "{}", "expected one EVENT"),
        (["prompt"], b"{" + b" " * (MAX_PAYLOAD_BYTES + 10) + b"}", "larger than 8 MiB"),
    ],
    ids=["not-json", "not-an-object", "not-utf8", "unknown-event", "unknown-client", "unknown-option", "no-event",
         "huge-stdin"],
)
def test_bad_input_fails_quietly_without_a_server(hooks: HookRuntime, repo: Path, args: list[str],
                                                  stdin: str | bytes, expected: str) -> None:
    done = hooks.run(args[0], stdin, repo, *args[1:]) if args else hooks.run(None, stdin, repo)
    failed_quietly(done, hooks, expected)
    assert hook_server_pids(hooks.sockets_dir) == []  # refused before any server was needed


def test_a_malformed_payload_fails_quietly(hooks: HookRuntime, repo: Path) -> None:
    fixtures = Path(__file__).parent / "fixtures" / "malformed"
    done = hooks.run("prompt", (fixtures / "missing-fields.json").read_text(), repo)
    failed_quietly(done, hooks, "")
    done = hooks.run("file", json.dumps({"session_id": "s", "cwd": str(repo), "hook_event_name": "PreToolUse",
                                         "tool_name": "Read", "tool_input": {}}), repo)
    failed_quietly(done, hooks, "", log_lines_before=1)
    answered(hooks.run("prompt", payload("prompt", repo), repo))  # the server is fine


def test_a_database_that_is_down_fails_quietly(hooks: HookRuntime, repo: Path) -> None:
    down = hooks.with_env(DATABASE_URL=f"postgresql://nobody:secret@127.0.0.1:{free_port()}/none",
                          DB_CONNECT_TIMEOUT_S="2", HOOK_START_TIMEOUT_S="60")
    done = down.run("prompt", payload("prompt", repo), repo)
    failed_quietly(done, hooks, "the hook server stopped while starting")
    assert "secret" not in done.stderr
    assert hook_server_pids(hooks.sockets_dir) == []


def test_a_failed_start_is_remembered_so_the_next_hooks_do_not_start_servers(hooks: HookRuntime,
                                                                            repo: Path) -> None:
    down = hooks.with_env(DATABASE_URL=f"postgresql://nobody:secret@127.0.0.1:{free_port()}/none",
                          DB_CONNECT_TIMEOUT_S="2", HOOK_START_TIMEOUT_S="60")
    failed_quietly(down.run("prompt", payload("prompt", repo), repo), hooks, "the hook server stopped while starting")
    server_log = down.server_log.read_text()  # (each server that starts writes to it)
    reason = hooks.hooks_log.read_text().split("the hook server stopped while starting ", 1)[1].strip()
    for event in ("file", "stop"):
        done = down.run(event, payload(event, repo), repo)
        failed_quietly(done, hooks, "the hook server failed to start", log_lines_before=1 if event == "file" else 2)
        assert " s ago; the next try is in " in done.stderr, done.stderr
        assert done.stderr.strip().endswith("; it stopped " + reason), done.stderr
        assert "secret" not in done.stderr
        assert down.server_log.read_text() == server_log  # no server was started
    # START_RETRY_S later, the next hook tries again.
    [marker] = hooks.sockets_dir.glob("hooks-*.failed")
    hook_client.remember_start_failure(str(marker), reason, time.time() - hook_client.START_RETRY_S - 1)
    failed_quietly(down.run("prompt", payload("prompt", repo), repo), hooks, "the hook server stopped while starting",
                   log_lines_before=3)
    assert len(down.server_log.read_text()) > len(server_log)


def test_a_start_that_works_clears_the_remembered_failure(hooks: HookRuntime, repo: Path) -> None:
    marker = server_paths(hooks.env).failed
    hook_client.remember_start_failure(marker, "(exit status 1): error: the database was down", time.time())
    failed_quietly(hooks.run("prompt", payload("prompt", repo), repo), hooks, "the database was down")
    assert hook_server_pids(hooks.sockets_dir) == []
    hook_client.remember_start_failure(marker, "(exit status 1): error: the database was down",
                                       time.time() - hook_client.START_RETRY_S - 1)
    answered(hooks.run("prompt", payload("prompt", repo), repo))
    assert not os.path.exists(marker)


def test_a_server_that_cannot_start_in_time_fails_quietly(hooks: HookRuntime, repo: Path) -> None:
    slow = hooks.with_env(HOOK_START_TIMEOUT_S="0.05")
    done = slow.run("prompt", payload("prompt", repo), repo)
    failed_quietly(done, hooks, "did not start within 0.05 s (HOOK_START_TIMEOUT_S)")
    # It goes on starting: a later hook (with time to wait) is answered by that same server.
    [pid] = slow.server_pids()
    answered(slow.run("prompt", payload("prompt", repo), repo, HOOK_START_TIMEOUT_S="60"))
    assert slow.server_pids() == [pid]


# --- what a warm server answers ----------------------------------------------------------------------


def test_the_answer_carries_what_the_service_decided(hooks: HookRuntime, repo: Path, tmp_path: Path) -> None:
    memories = tmp_path / "memories.jsonl"
    memories.write_text(json.dumps({"content": "We pin dependencies with compatible ranges.", "project": None}) + "\n")
    imported = cli(["memories", "import", str(memories)], repo, hooks.env["DATABASE_URL"],
                   ALETHEIA_DATA_DIR=str(hooks.data_dir))
    assert imported.returncode == 0, imported.stderr
    done = hooks.run("session-start", payload("session-start", repo), repo)
    answered(done)
    output = json.loads(done.stdout)["hookSpecificOutput"]
    assert output["hookEventName"] == "SessionStart"
    assert "We pin dependencies with compatible ranges." in output["additionalContext"]


def test_the_server_refuses_requests_it_cannot_read(hooks: HookRuntime, repo: Path) -> None:
    answered(hooks.run("prompt", payload("prompt", repo), repo))
    [socket_path] = hooks.sockets_dir.glob("hooks-*.sock")
    for request, expected in [({"v": 2}, "protocol version 1"),
                              ({"v": 1, "client": "claude-code", "event": 3, "payload": "{}", "cwd": "/"},
                               "event must be text"),
                              ({"v": 1, "client": "vim", "event": "prompt", "payload": "{}", "cwd": "/"},
                               "unknown client 'vim'")]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(60)
            connection.connect(str(socket_path))
            connection.sendall(json.dumps(request).encode() + b"\n")
            answer = json.loads(connection.makefile("rb").readline())
        assert answer["stdout"] == ""
        assert expected in answer["error"]
    answered(hooks.run("prompt", payload("prompt", repo), repo))  # still serving


# --- deadlines, the socket's owner, lost sockets and connections (review 18) -------------------------


@pytest.mark.anyio
async def test_a_hung_database_costs_a_prompt_hook_only_its_short_deadline(hooks: HookRuntime, repo: Path) -> None:
    """A prompt hook runs before every prompt: a database that does not answer must not hold it for
    long (ANSWER_DEADLINES_S["prompt"]), and the server serves again once the database does."""
    answered(await anyio.to_thread.run_sync(lambda: hooks.run("prompt", payload("prompt", repo), repo)))
    blocker = await asyncpg.connect(hooks.env["DATABASE_URL"])
    try:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("LOCK TABLE memory_shards IN ACCESS EXCLUSIVE MODE")  # every query on it waits
        done = await anyio.to_thread.run_sync(lambda: hooks.run("prompt", payload("prompt", repo), repo))
        await transaction.rollback()
    finally:
        await blocker.close()
    deadline = ANSWER_DEADLINES_S["prompt"]
    failed_quietly(done, hooks, f"did not answer the prompt hook within {deadline:g} s")
    answered(await anyio.to_thread.run_sync(lambda: hooks.run("prompt", payload("prompt", repo), repo)))


def test_a_server_whose_socket_was_deleted_is_replaced_at_once(hooks: HookRuntime, repo: Path) -> None:
    """Without its socket file no hook can reach a server: it exits, and the next hook starts another
    instead of waiting HOOK_START_TIMEOUT_S (here 60 s: the guard below would stop it)."""
    patient = hooks.with_env(HOOK_START_TIMEOUT_S="60")
    answered(patient.run("prompt", payload("prompt", repo), repo))
    [first] = patient.server_pids()
    [socket_file] = hooks.sockets_dir.glob("hooks-*.sock")
    socket_file.unlink()
    done = subprocess.run([str(EXECUTABLE), "hook", "prompt"], cwd=repo, env=patient.env,
                          input=payload("prompt", repo).encode(), capture_output=True, timeout=30)
    assert (done.returncode, done.stderr) == (0, b"")
    wait_until(lambda: not alive(first), what="the socketless server to exit")
    [second] = patient.server_pids()
    assert second != first and alive(second)
    assert "was deleted or replaced" in patient.server_log.read_text()


def test_a_connection_closed_before_its_answer_is_retried(hooks: HookRuntime, repo: Path) -> None:
    """A server ending (idle) as a hook connects closes that connection unanswered: the hook tries once
    more, as after a refused connection. (A listener of the test's own plays the ending server, to make
    the race happen every time.)"""
    paths = server_paths(hooks.env)
    requests: list[bytes] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(paths.socket)
        listener.listen()
        listener.settimeout(60)

        def serve() -> None:
            with contextlib.suppress(OSError):
                while len(requests) < 2:
                    connection, _ = listener.accept()
                    with connection:
                        line = connection.makefile("rb").readline()
                        if not line:
                            continue  # (the client's probe: is anything listening?)
                        requests.append(line)
                        if len(requests) == 2:  # the first one is dropped unanswered
                            connection.sendall(encode_answer('{"answered": "the second time"}', None))

        server = threading.Thread(target=serve, daemon=True)
        server.start()
        done = hooks.run("prompt", payload("prompt", repo), repo)
        server.join(60)
    answered_any(done)
    assert json.loads(done.stdout) == {"answered": "the second time"}
    assert len(requests) == 2 and requests[0] == requests[1]


def answered_any(done: subprocess.CompletedProcess[str]) -> None:
    assert (done.returncode, done.stderr) == (0, ""), done.stderr


NOBODY = 65534


@pytest.mark.skipif(os.getuid() != 0, reason="needs root, to act as another user")
def test_the_server_refuses_another_users_connection(hooks: HookRuntime, repo: Path) -> None:
    answered(hooks.run("prompt", payload("prompt", repo), repo))
    [socket_file] = hooks.sockets_dir.glob("hooks-*.sock")
    # As if the permissions had been loosened: only the peer check is left to refuse the stranger.
    for directory in (hooks.runtime_dir, hooks.sockets_dir):
        directory.chmod(0o711)
    socket_file.chmod(0o666)
    request = encode_request(client="claude-code", event="prompt", payload=payload("prompt", repo), cwd=str(repo))
    # The server may close the connection before the request is even sent (a broken pipe) or after.
    script = ("import socket, sys\n"
              "s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(sys.argv[1])\n"
              "try:\n    s.sendall(sys.stdin.buffer.read())\n    print(repr(s.recv(65536)))\n"
              "except (BrokenPipeError, ConnectionResetError):\n    print('closed')\n")
    done = subprocess.run([sys.executable, "-I", "-c", script, str(socket_file)], input=request, user=NOBODY,
                          cwd="/", env={"PATH": "/usr/bin:/bin"}, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in (b"b''", b"closed")  # not a word of an answer
    assert f"refused a connection from another user (uid {NOBODY})" in hooks.server_log.read_text()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root, to act as another user")
def test_the_hook_refuses_a_server_run_by_another_user(hooks: HookRuntime, repo: Path) -> None:
    """A stranger's process listening where our server is looked for would read the prompts and choose
    what reaches the model: the hook asks the kernel who listens, and talks only to its own user."""
    paths = server_paths(hooks.env)
    staging = Path(tempfile.mkdtemp(prefix="ah-other-"))
    staging.chmod(0o777)
    script = ("import socket, sys\n"
              "s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); print('ready', flush=True)\n"
              "while True:\n"
              "    c, _ = s.accept(); c.makefile('rb').readline()\n"
              "    c.sendall(b'{\"stdout\": \"INJECTED\", \"error\": null}\\n'); c.close()\n")
    stranger = subprocess.Popen([sys.executable, "-I", "-c", script, str(staging / "s.sock")], user=NOBODY, cwd="/",
                                env={"PATH": "/usr/bin:/bin"}, stdout=subprocess.PIPE)
    try:
        assert stranger.stdout is not None and stranger.stdout.readline() == b"ready\n"
        os.rename(staging / "s.sock", paths.socket)
        done = hooks.run("prompt", payload("prompt", repo), repo)
    finally:
        stranger.kill()
        stranger.wait()
        shutil.rmtree(staging, ignore_errors=True)
    failed_quietly(done, hooks, f"runs as another user (uid {NOBODY}")


def test_the_server_refuses_a_socket_directory_others_can_open(hooks: HookRuntime, tmp_path: Path) -> None:
    shared = Path(tempfile.mkdtemp(prefix="ah-shared-"))
    try:
        shared.chmod(0o755)
        done = subprocess.run([str(EXECUTABLE), "hook-server", "--socket", str(shared / "hooks-k.sock")],
                              env=hooks.env | {"HOOK_SERVER_IDLE_S": "1"}, cwd=tmp_path, capture_output=True,
                              timeout=60)
        assert done.returncode == 1
        assert "refusing the hooks' socket directory" in done.stderr.decode()
        assert list(shared.iterdir()) == []
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_a_server_that_fails_while_its_embedder_loads_still_exits(hooks: HookRuntime, repo: Path,
                                                                   tmp_path: Path) -> None:
    """The server fails (here: it can open no more files, so accepting a hook fails) while the embedder
    loads in a thread that never returns: it says why and exits, without waiting for that thread."""
    with server_stuck_loading_its_model(hooks, repo, tmp_path) as (loading, pid):
        open_fds = {int(fd) for fd in os.listdir(f"/proc/{pid}/fd")}
        lowest_free = min(set(range(len(open_fds) + 1)) - open_fds)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (lowest_free, lowest_free))  # no new file from now on
        [socket_file] = hooks.sockets_dir.glob("hooks-*.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.connect(str(socket_file))  # (the kernel queues it; the server's accept fails)
            wait_until(lambda: not alive(pid), timeout=30, what="the failed server to exit while its embedder loads")
    assert "Too many open files" in loading.server_log.read_text()


@pytest.mark.anyio
async def test_a_parse_that_hangs_holds_neither_the_server_nor_other_hooks(database_url: str, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A Stop reads its transcript while parsing; a transcript on a mount that stopped answering never
    returns. (No real file can do that in a test: the real Claude Code adapter is wrapped so that its
    Stop parse waits, in-process, with the real server, database and the other events' real parse.)
    Other hooks are answered meanwhile, and the stuck one gets an error answer at its deadline."""
    entered, release = threading.Event(), threading.Event()
    real = ADAPTERS["claude-code"]

    class OnAHungMount:
        name = "claude-code"

        def parse(self, event: str, payload: Mapping[str, Any], *, cwd: str) -> HookEvent:
            if event == "stop":
                entered.set()
                release.wait(60)
            return real.parse(event, payload, cwd=cwd)

        def render(self, event: HookEvent, result: HookResult) -> str:
            return real.render(event, result)

    monkeypatch.setitem(ADAPTERS, "claude-code", OnAHungMount())
    monkeypatch.setitem(ANSWER_DEADLINES_S, "stop", 2.0)
    repo = make_repository(tmp_path / "repo")
    directory = Path(tempfile.mkdtemp(prefix="ah-"))  # (0700; short enough for a socket path)
    socket_path = directory / "hooks-inprocess.sock"

    def ask(event: str) -> str:
        request = encode_request(client="claude-code", event=event, payload=payload(event, repo), cwd=str(repo))
        return hook_client.exchange(str(socket_path), request, 20)

    stopped: list[str | Exception] = []
    stop_answered = anyio.Event()

    async def stop() -> None:
        try:
            stopped.append(await anyio.to_thread.run_sync(ask, "stop"))
        except HookFailure as exc:
            stopped.append(exc)
        stop_answered.set()

    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(HookServer(make_settings(database_url, tmp_path), socket_path).run)
            await anyio.to_thread.run_sync(lambda: wait_until(socket_path.exists, timeout=60, what="the server"))
            tasks.start_soon(stop)
            assert await anyio.to_thread.run_sync(entered.wait, 30)
            for event in ("prompt", "file", "session-start"):  # answered while the Stop hangs
                await anyio.to_thread.run_sync(ask, event)
            with anyio.fail_after(30):
                await stop_answered.wait()
            tasks.cancel_scope.cancel()
    finally:
        release.set()
        shutil.rmtree(directory, ignore_errors=True)
    [failure] = stopped
    assert isinstance(failure, HookFailure)
    assert "did not answer the stop hook within 2 s" in str(failure)
