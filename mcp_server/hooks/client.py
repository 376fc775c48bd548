"""`aletheia-mcp hook EVENT [--client CLIENT]`: the command a coding agent runs on each of its hooks.

It reads the agent's hook JSON on stdin, hands it to the hook server (server.py) over a Unix socket,
starting that server when none runs for this configuration, and writes the server's answer to
stdout. It imports the standard library only (platformdirs and python-dotenv on its slow paths):
the agent waits for it on every prompt, file and turn.

It never gets in the agent's way: whatever goes wrong (bad input, a server that cannot start, a
database that is down), it prints nothing on stdout, exits 0, and writes one line to stderr and to
`<data dir>/logs/hooks.log`. A non-zero exit could block the user's prompt.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from mcp_server.hooks.protocol import (
    ANSWER_GRACE_S,
    CLIENTS,
    DEFAULT_CLIENT,
    DEFAULT_START_TIMEOUT_S,
    EVENTS,
    MAX_ANSWER_BYTES,
    MAX_PAYLOAD_BYTES,
    HookFailure,
    ServerPaths,
    answer_deadline_s,
    decode_line,
    encode_request,
    peer_uid,
    server_paths,
    settings_file,
)

if TYPE_CHECKING:
    import subprocess

HOOKS_LOG_MAX_BYTES = 1024 * 1024  # hooks.log is rotated to hooks.log.1 past this
SERVER_LOG_MAX_BYTES = 5 * 1024 * 1024  # hook-server.log likewise, when a server starts
# After a server failed to start (the database is down, the settings are invalid), the hooks of the
# next this many seconds fail at once with that reason instead of each paying for a start that fails
# (0.7-2.3 s measured in Claude Code); the first hook after it tries again.
START_RETRY_S = 30.0
_POLL_S = 0.02
_USAGE = f"usage: aletheia-mcp hook EVENT [--client CLIENT]; EVENT: {', '.join(EVENTS)}; CLIENT: {', '.join(CLIENTS)}"


def main(argv: list[str]) -> int:
    """Answer one hook; `argv` is what follows `hook` on the command line. Always returns 0."""
    event, client = "?", DEFAULT_CLIENT
    try:
        event, client = parse_arguments(argv)
        answer = answer_hook(event, client, read_stdin(), os.environ)
    except HookFailure as exc:
        report_failure(event, client, str(exc))
        return 0
    except Exception as exc:  # a bug of ours: still never in the agent's way
        report_failure(event, client, f"internal error: {type(exc).__name__}: {exc}")
        return 0
    try:
        sys.stdout.write(answer)
        sys.stdout.flush()
    except OSError:  # the agent stopped listening: nothing left to tell it
        pass
    return 0


def parse_arguments(argv: list[str]) -> tuple[str, str]:
    """(EVENT, CLIENT) from `EVENT [--client CLIENT]`; HookFailure saying what is wrong."""
    client, positional, rest = DEFAULT_CLIENT, [], list(argv)
    while rest:
        word = rest.pop(0)
        if word == "--client":
            if not rest:
                raise HookFailure(f"--client needs a value; {_USAGE}")
            client = rest.pop(0)
        elif word.startswith("--client="):
            client = word.split("=", 1)[1]
        elif word.startswith("-"):
            raise HookFailure(f"unknown option {word}; {_USAGE}")
        else:
            positional.append(word)
    if len(positional) != 1:
        raise HookFailure(f"expected one EVENT, got {len(positional)}; {_USAGE}")
    event = positional[0]
    if event not in EVENTS:
        raise HookFailure(f"unknown hook event {event!r}: use one of {', '.join(EVENTS)}")
    if client not in CLIENTS:
        raise HookFailure(f"unknown client {client!r}: use one of {', '.join(CLIENTS)}")
    return event, client


def read_stdin() -> str:
    """The agent's hook JSON (at most MAX_PAYLOAD_BYTES), checked to be a JSON object."""
    if sys.stdin is None or sys.stdin.isatty():
        raise HookFailure("a hook reads the agent's hook JSON on stdin, and none was given")
    data = sys.stdin.buffer.read(MAX_PAYLOAD_BYTES + 1)
    if len(data) > MAX_PAYLOAD_BYTES:
        raise HookFailure(f"the hook's input is larger than {MAX_PAYLOAD_BYTES // (1024 * 1024)} MiB; not read")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise HookFailure("the hook's input (stdin) is not UTF-8 text") from None
    decode_line(data, "hook's input (stdin)")
    return text


class NoAnswer(Exception):
    """The server accepted the connection and closed it without answering: it was ending (an idle exit
    racing this hook) or was killed. Retried once, like a refused connection."""


def answer_hook(event: str, client: str, payload: str, environ: Mapping[str, str]) -> str:
    """What the hook server answers, starting the server first when none listens."""
    paths = server_paths(environ)
    request = encode_request(client=client, event=event, payload=payload, cwd=os.getcwd())
    timeout = answer_deadline_s(event) + ANSWER_GRACE_S
    try:
        return exchange(paths.socket, request, timeout)
    except (FileNotFoundError, ConnectionRefusedError, NoAnswer):  # no server, a dead one's socket, one ending
        pass
    start_server(paths, environ)
    try:
        return exchange(paths.socket, request, timeout)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise HookFailure(f"the hook server went away right after starting ({exc.strerror})") from None
    except NoAnswer:
        raise HookFailure("the hook server closed the connection without answering, twice "
                          "(see hook-server.log)") from None


def exchange(socket_path: str, request: bytes, timeout: float) -> str:
    """Send one request and return the answer's stdout. FileNotFoundError / ConnectionRefusedError when
    nothing listens, NoAnswer when the server hung up before answering; HookFailure for anything else."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(timeout)
        connection.connect(socket_path)
        check_server_user(connection, socket_path)
        try:
            connection.sendall(request)
            line = _receive_line(connection)
        except TimeoutError:
            raise HookFailure(f"the hook server did not answer within {timeout:g} s") from None
        except (ConnectionResetError, BrokenPipeError):  # (what a killed server's queued connection gets)
            raise NoAnswer from None
        except OSError as exc:
            raise HookFailure(f"lost the connection to the hook server: {exc}") from None
    answer = decode_line(line, "hook server's answer")
    error, stdout = answer.get("error"), answer.get("stdout")
    if error:
        raise HookFailure(str(error))
    if not isinstance(stdout, str):
        raise HookFailure("the hook server's answer has no stdout")
    return stdout


def check_server_user(connection: socket.socket, socket_path: str) -> None:
    """Refuse a server run by another user (it would read the prompts and choose what reaches the
    model). The directory check alone leaves a window between it and the connect."""
    uid = peer_uid(connection)
    if uid is not None and uid != os.getuid():
        raise HookFailure(f"refusing the hook server on {socket_path}: it runs as another user (uid {uid}, "
                          f"not {os.getuid()}); remove {os.path.dirname(socket_path)} and run the hook again")


def _receive_line(connection: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = connection.recv(65536)
        if not chunk:
            raise NoAnswer
        newline = chunk.find(b"\n")
        if newline >= 0:
            chunks.append(chunk[:newline])
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise HookFailure(f"the hook server's answer is larger than {MAX_ANSWER_BYTES} bytes")


# --- starting the server ---------------------------------------------------------------------


def start_server(paths: ServerPaths, environ: Mapping[str, str]) -> None:
    """Make sure a server listens on `paths.socket`, starting one if needed. Under a lock: of several hooks
    arriving at once, one starts the server and the others wait for it. A socket left by a server that
    was killed is removed; a server still starting is waited for, not started twice."""
    import fcntl

    timeout = start_timeout(environ)
    deadline = time.monotonic() + timeout
    lock = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _not_started(timeout, environ) from None
                time.sleep(_POLL_S)
        if _listening(paths.socket):
            return  # another hook started it while this one waited for the lock
        recent = recent_start_failure(paths.failed)
        if recent is not None:
            raise recent
        process: subprocess.Popen[bytes] | None = None
        pid = _read_pid(paths.pid)
        if pid is None or not is_hook_server(pid):
            process = _start(paths, environ)
            pid = process.pid
        while time.monotonic() < deadline:
            if _listening(paths.socket):
                _remove(paths.failed)
                return
            ended = process.poll() if process is not None else (None if is_hook_server(pid) else "unknown")
            if ended is not None and process is None:
                # Not ours, and gone: still starting when this hook came, or a server whose socket file
                # was deleted (it exits when it notices, server.py). Start one.
                process = _start(paths, environ)
                pid = process.pid
                continue
            if ended is not None:
                reason = f"(exit status {ended}): {_last_line(server_log(environ))}"
                with contextlib.suppress(OSError):  # (not remembered: the next hook tries again)
                    remember_start_failure(paths.failed, reason, time.time())
                raise HookFailure(f"the hook server stopped while starting {reason}")
            time.sleep(_POLL_S)
        raise _not_started(timeout, environ)
    finally:
        os.close(lock)  # (releases the lock)


def remember_start_failure(path: str, reason: str, when: float) -> None:
    """Write when (`time.time()`) and why a server failed to start, for the hooks of the next START_RETRY_S."""
    staging = f"{path}.{os.getpid()}"
    with open(staging, "w", encoding="utf-8") as handle:
        json.dump({"time": when, "reason": reason}, handle)
    os.replace(staging, path)  # (a reader never sees half a file)


def recent_start_failure(path: str) -> HookFailure | None:
    """The failure to report instead of starting a server, when one failed less than START_RETRY_S ago."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return None
    try:
        recorded = json.loads(text)
        when, reason = float(recorded["time"]), str(recorded["reason"])
    except (ValueError, TypeError, KeyError):
        return None  # unreadable: try a start, which rewrites it
    age = time.time() - when
    if not 0 <= age < START_RETRY_S:  # (a clock set back counts as expired)
        return None
    return HookFailure(f"the hook server failed to start {age:.0f} s ago; the next try is in "
                       f"{START_RETRY_S - age:.0f} s (to try now, delete {path}); it stopped {reason}")


def _not_started(timeout: float, environ: Mapping[str, str]) -> HookFailure:
    return HookFailure(f"the hook server did not start within {timeout:g} s (HOOK_START_TIMEOUT_S); it goes on "
                       f"starting, so later hooks will use it (its log: {server_log(environ)})")


def _listening(socket_path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(socket_path)
        except OSError:
            return False
    return True


def _start(paths: ServerPaths, environ: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Spawn a server in place of whatever files a dead one left, and write its pid file."""
    for stale in (paths.socket, paths.pid):
        _remove(stale)
    process = _spawn(paths, environ)
    with open(paths.pid, "w") as handle:
        handle.write(str(process.pid))
    return process


def _spawn(paths: ServerPaths, environ: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """`python -m mcp_server hook-server --socket PATH`, detached (its own session: the agent's
    terminal signals and the hook's exit do not reach it), in the socket's directory (never inside a
    repository the hook ran in), its output to hook-server.log (never the hook's stdout)."""
    import subprocess

    log_path = server_log(environ)
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    _rotate(log_path, SERVER_LOG_MAX_BYTES)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "mcp_server", "hook-server", "--socket", paths.socket],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=paths.directory, env=dict(environ),
            start_new_session=True, close_fds=True,
        )


def is_hook_server(pid: int) -> bool:
    """Whether `pid` is alive and (where /proc tells) a hook server, not a process that reused the pid."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"hook-server" in handle.read()
    except OSError:
        return True  # no /proc (macOS): a live process with the pid we wrote


def _read_pid(path: str) -> int | None:
    try:
        with open(path) as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _rotate(path: str, max_bytes: int) -> None:
    try:
        if os.path.getsize(path) > max_bytes:
            os.replace(path, path + ".1")
    except OSError:
        pass


def _last_line(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, os.path.getsize(path) - 4096))
            lines = [line for line in handle.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    return lines[-1].strip() if lines else f"see {path}"


# --- settings the client needs ---------------------------------------------------------------


def setting(environ: Mapping[str, str], name: str) -> str | None:
    """A setting's raw value as the server would read it: the environment (any case), else the user's
    settings file."""
    for key, value in environ.items():
        if key.upper() == name:
            return value
    path = settings_file(environ)
    if path is None or not os.path.isfile(path):
        return None
    from dotenv import dotenv_values

    for key, file_value in dotenv_values(path).items():
        if key.upper() == name:
            return file_value
    return None


def start_timeout(environ: Mapping[str, str]) -> float:
    try:
        value = float(setting(environ, "HOOK_START_TIMEOUT_S") or DEFAULT_START_TIMEOUT_S)
    except ValueError:
        return DEFAULT_START_TIMEOUT_S
    return value if 0 < value <= 120 else DEFAULT_START_TIMEOUT_S


def data_dir(environ: Mapping[str, str]) -> str:
    """ALETHEIA_DATA_DIR, else platformdirs' user data directory (settings._default_data_dir)."""
    value = setting(environ, "ALETHEIA_DATA_DIR")
    if value:
        return os.path.abspath(os.path.expanduser(value))
    import platformdirs

    return platformdirs.user_data_dir("aletheia", appauthor=False)


def server_log(environ: Mapping[str, str]) -> str:
    return os.path.join(data_dir(environ), "logs", "hook-server.log")


def hooks_log(environ: Mapping[str, str]) -> str:
    return os.path.join(data_dir(environ), "logs", "hooks.log")


# --- failures --------------------------------------------------------------------------------


def report_failure(event: str, client: str, message: str) -> None:
    """One line on stderr and one appended to hooks.log (rotated past HOOKS_LOG_MAX_BYTES); nothing on
    stdout. Failing to write the log must not fail the hook either."""
    line = f"aletheia-mcp hook {event} --client {client}: {' '.join(message.split())}"
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    try:
        import logging
        from logging.handlers import RotatingFileHandler

        logging.raiseExceptions = False  # a write error must not print a traceback on stderr
        path = hooks_log(os.environ)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        handler = RotatingFileHandler(path, maxBytes=HOOKS_LOG_MAX_BYTES, backupCount=1, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        try:
            handler.emit(logging.LogRecord("aletheia.hooks", logging.WARNING, __file__, 0, line, None, None))
        finally:
            handler.close()
    except Exception:  # (a read-only or full disk: stderr has the line)
        pass
