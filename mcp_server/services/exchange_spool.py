"""The gateway's calls, stored off the request path: a bounded queue in memory, a file when needed.

`submit()` is all a proxied call pays: an append to an in-memory queue (GATEWAY_QUEUE_SIZE calls).
A writer task (`run`) stores the queued calls (ConversationService.log_captured). When the
database is away, or the queue is full, calls go to a spill file instead: JSON lines, one call
each, in `ALETHEIA_DATA_DIR/gateway-spool` (a 0700 folder of 0600 files), synced to disk in
batches. Once the database takes rows again, the writer stores the spilled calls, oldest file
first, and deletes a file only when every call in it is stored: a crash or a restart in between
stores the file again at the next start, and storing is idempotent per request_id, so nothing is
lost and nothing is stored twice.

Each process appends to spill files of its own, each held under a lock (filelock) while it is
written: a gateway stores another process's files only when no one writes them (that process
ended, or crashed). A line that cannot be read (a crash in the middle of writing it) is moved to
an `unreadable-*` file beside them and reported once in the log; a call the database refuses for
good (not a lost connection) goes to a `refused-*` file, also reported: kept for a person to look
at, never retried in a loop.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from enum import Enum
from pathlib import Path
from typing import IO

import anyio
import filelock
from anyio.abc import TaskStatus
from pydantic_core import PydanticSerializationError

from mcp_server.errors import DatabaseRefusedError, DatabaseUnavailableError
from mcp_server.schemas import CapturedCall
from mcp_server.services.conversations import ConversationService
from mcp_server.settings import Settings

logger = logging.getLogger(__name__)

SPOOL_DIR_NAME = "gateway-spool"
SEGMENT_PREFIX = "spill-"
SEGMENT_SUFFIX = ".jsonl"
STORE_BATCH = 64  # calls taken from the queue at a time (spilled together when the database is away)
READ_BATCH = 64  # lines read from a spill file at a time
RETRY_FIRST_S = 0.25  # waits between attempts while the database is away: doubled up to RETRY_MAX_S
RETRY_MAX_S = 5.0
# SQLSTATE classes of refusals that pass (resources, an operator's shutdown, a connection, a
# conflict, a read-only server during a failover): the call waits in the file like for a lost
# connection. Any other refusal would refuse the same row again.
TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "55", "57", "58")
TRANSIENT_SQLSTATES = ("25006",)


class _Stored(Enum):
    STORED = "stored"
    AWAY = "away"  # the database did not take it now: keep it and try again later
    REFUSED = "refused"  # it would never be taken: set aside


class _Replayed(Enum):
    DONE = "done"  # every call in the file is stored (or set aside); the file is gone
    AWAY = "away"  # the database went away: the file stays
    SKIPPED = "skipped"  # another process holds the file


def _is_transient(error: DatabaseRefusedError) -> bool:
    state = error.sqlstate or ""
    return state in TRANSIENT_SQLSTATES or state[:2] in TRANSIENT_SQLSTATE_CLASSES


def _open_private(path: Path, flags: int) -> int:
    """A file only its owner may read or write (0600 whatever the umask)."""
    fd = os.open(path, flags | os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.chmod(path, 0o600)
    return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _line_of(call: CapturedCall) -> bytes:
    """One line of a spill file (JSON escapes every line break inside texts)."""
    try:
        return call.model_dump_json().encode() + b"\n"
    except PydanticSerializationError:  # a lone surrogate (a client's "\\ud800"): JSON can escape it
        return json.dumps(call.model_dump(mode="json")).encode() + b"\n"


def _call_of(line: bytes) -> CapturedCall:
    """The call on a line of a spill file; ValueError when the line is not one (a partial write)."""
    return CapturedCall.model_validate(json.loads(line))


class _Segment:
    """The spill file this process appends to, locked (against other processes storing it) for as
    long as it is open. The spool's own threading lock serialises `append`, `detach` and `dup`."""

    def __init__(self, directory: Path) -> None:
        name = f"{SEGMENT_PREFIX}{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}{SEGMENT_SUFFIX}"
        self.path = directory / name
        self.lock = filelock.FileLock(_lock_path(self.path), timeout=0, mode=0o600, thread_local=False)
        self.lock.acquire()
        self.fd = _open_private(self.path, os.O_EXCL)
        self.unsynced = False
        _sync_directory(directory)  # the new file's name survives a power loss too

    def append(self, data: bytes) -> None:
        self.unsynced = True
        _write_all(self.fd, data)

    def unsynced_fd(self) -> int | None:
        """A duplicate of the file's descriptor to sync outside the lock (None: nothing to sync)."""
        if not self.unsynced:
            return None
        self.unsynced = False
        return os.dup(self.fd)

    def close(self) -> None:
        try:
            os.fsync(self.fd)
        finally:
            os.close(self.fd)
            self.lock.release()
            with contextlib.suppress(OSError):
                _lock_path(self.path).unlink()


def _lock_path(segment: Path) -> Path:
    return segment.with_name(segment.name + ".lock")


def _sync_directory(directory: Path) -> None:
    if hasattr(os, "O_DIRECTORY"):  # (not on Windows, where the file's own sync is what there is)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class ExchangeSpool:
    """Writes captured calls off the request path (see the module docstring). `submit` is called
    on the event loop the writer (`run`) runs on."""

    def __init__(self, conversations: ConversationService, settings: Settings) -> None:
        self._conversations = conversations
        self._capacity = settings.gateway_queue_size
        self._directory = settings.data_dir.expanduser() / SPOOL_DIR_NAME
        self._queue: deque[CapturedCall] = deque()
        self._in_flight: deque[CapturedCall] = deque()  # taken from the queue, not stored yet
        self._wakeup: anyio.Event | None = None
        self._file_lock = threading.Lock()  # the segment is written by submit() and by worker threads
        self._segment: _Segment | None = None
        self._spill_waiting = False  # spill files may hold calls to store (set by each spill)
        self._away = False  # the database did not take the last call: spill until it does
        self._closing = False  # drain() began, or the writer stopped: submit() spills directly
        self._settled: anyio.Event | None = None  # drain() waits on it: nothing queued, or the database away

    # --- the caller's side -----------------------------------------------------------------

    def submit(self, call: CapturedCall) -> None:
        """Queue `call` to be stored; never blocks and never raises. A full queue (or a spool that
        is shutting down) sends it to the spill file instead."""
        try:
            if self._closing or len(self._queue) >= self._capacity:
                self._spill([call])
            else:
                self._queue.append(call)
            if self._wakeup is not None:
                self._wakeup.set()
        except Exception:  # logging must never break a call: say so, loudly
            logger.exception("gateway call %s could not be queued or spilled: it is not logged", call.request_id)

    def pending(self) -> int:
        """Calls not stored yet: queued, being stored, or in spill files (which this counts: it reads them)."""
        return len(self._queue) + len(self._in_flight) + self._count_spilled()

    # --- the writer ------------------------------------------------------------------------

    async def run(self, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Store queued and spilled calls until cancelled; calls not stored then are spilled."""
        self._wakeup = anyio.Event()
        self._spill_waiting = await anyio.to_thread.run_sync(self._prepare_directory)
        task_status.started()
        delay = RETRY_FIRST_S
        try:
            while True:
                self._note_settled()
                await self._sync_spill()
                if self._away:
                    await self._spill_queued()
                    await anyio.sleep(delay)
                    if await self._replay_spilled():
                        self._away, delay = False, RETRY_FIRST_S
                        logger.info("the database takes gateway calls again: the spilled ones are stored")
                    else:
                        delay = min(delay * 2, RETRY_MAX_S)
                elif self._queue:
                    await self._store_queued()
                elif self._spill_waiting:
                    await self._replay_spilled()
                else:
                    await self._wakeup.wait()
                    self._wakeup = anyio.Event()
        finally:
            self._closing = True
            if self._settled is not None:
                self._settled.set()
            # Cancelled (shutdown): what is not stored goes to the file now. A call being stored
            # may have been stored too: storing it again at the next start will see that.
            left = [*self._in_flight, *self._queue]
            self._in_flight.clear()
            self._queue.clear()
            try:
                self._spill(left)
                self._close_segment()
            except Exception:
                logger.exception("%d gateway call(s) could not be spilled at shutdown: they are not logged", len(left))

    async def drain(self, timeout: float) -> None:
        """Shutdown: give the writer up to `timeout` seconds to store what is queued; spill the rest
        (and every later call) to the file, synced, for the next start to store."""
        if self._wakeup is not None and not self._closing:  # (the writer runs)
            self._settled = anyio.Event()
            self._note_settled()
            self._wakeup.set()
            with anyio.move_on_after(timeout):
                await self._settled.wait()
        self._closing = True
        left = list(self._queue)
        self._queue.clear()
        await anyio.to_thread.run_sync(self._spill_and_sync, left)

    def _note_settled(self) -> None:
        if self._settled is not None and (self._away or not (self._queue or self._in_flight)):
            self._settled.set()

    async def _store_queued(self) -> None:
        for _ in range(min(STORE_BATCH, len(self._queue))):
            self._in_flight.append(self._queue.popleft())
        while self._in_flight:
            stored = await self._store(self._in_flight[0])
            if stored is _Stored.AWAY:
                if not self._away:
                    logger.warning("the database does not take gateway calls now: they wait in %s until it does",
                                   self._directory)
                self._away = True
                await self._spill_queued()
                return
            if stored is _Stored.REFUSED:
                await anyio.to_thread.run_sync(self._set_aside, "refused", [_line_of(self._in_flight[0])], None)
            self._in_flight.popleft()
        self._note_settled()

    async def _spill_queued(self) -> None:
        """Everything not stored yet goes to the file, synced (the database is away)."""
        calls = [*self._in_flight, *self._queue]
        self._in_flight.clear()
        self._queue.clear()
        try:
            await anyio.to_thread.run_sync(self._spill_and_sync, calls)
        except OSError:
            logger.exception("%d gateway call(s) could not be spilled to %s: kept in memory, tried again",
                             len(calls), self._directory)
            self._queue.extendleft(reversed(calls))

    async def _store(self, call: CapturedCall) -> _Stored:
        try:
            await self._conversations.log_captured(call)
        except DatabaseUnavailableError:
            return _Stored.AWAY
        except DatabaseRefusedError as exc:
            if _is_transient(exc):
                return _Stored.AWAY
            logger.error("the database refused gateway call %s (SQLSTATE %s): set aside in %s", call.request_id,
                         exc.sqlstate, self._directory)
            return _Stored.REFUSED
        except Exception:
            logger.exception("gateway call %s could not be stored: set aside in %s", call.request_id, self._directory)
            return _Stored.REFUSED
        return _Stored.STORED

    # --- spill files -----------------------------------------------------------------------

    def _prepare_directory(self) -> bool:
        """Make the folder (0700) and say whether spill files wait in it (from a previous run)."""
        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self._directory, 0o700)  # (made earlier, or under a permissive umask)
        return bool(self._segments())

    def _segments(self) -> list[Path]:
        return sorted(self._directory.glob(f"{SEGMENT_PREFIX}*{SEGMENT_SUFFIX}"))

    def _count_spilled(self) -> int:
        total = 0
        for path in self._segments():
            with contextlib.suppress(FileNotFoundError), path.open("rb") as file:
                total += sum(1 for line in file if line.strip())
        return total

    def _spill(self, calls: list[CapturedCall]) -> None:
        """Append `calls` to this process's spill file (synced later: _sync_spill)."""
        if not calls:
            return
        data = b"".join(_line_of(call) for call in calls)
        with self._file_lock:
            if self._segment is None:
                self._segment = _Segment(self._directory)
            try:
                self._segment.append(data)
            except OSError:
                # A partial line must stay its file's last: the next calls go to a new file.
                segment, self._segment = self._segment, None
                with contextlib.suppress(OSError):
                    segment.close()
                raise
            self._spill_waiting = True

    def _spill_and_sync(self, calls: list[CapturedCall]) -> None:
        self._spill(calls)
        with self._file_lock:
            fd = self._segment.unsynced_fd() if self._segment is not None else None
        if fd is not None:  # synced outside the lock: submit() never waits for a disk
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    async def _sync_spill(self) -> None:
        """Calls spilled by submit() (a full queue) reach the disk in batches, here."""
        if self._segment is not None and self._segment.unsynced:
            await anyio.to_thread.run_sync(self._spill_and_sync, [])

    def _close_segment(self) -> None:
        with self._file_lock:
            segment, self._segment = self._segment, None
        if segment is not None:
            segment.close()

    def _set_aside(self, kind: str, lines: list[bytes], source: Path | None) -> Path:
        """Keep lines that will not be stored in a file of their own (0600), for a person to look at."""
        name = f"{kind}-{source.name}" if source is not None else f"{kind}-{time.time_ns():020d}-{os.getpid()}.jsonl"
        path = self._directory / name
        fd = _open_private(path, 0)
        try:
            _write_all(fd, b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines))
            os.fsync(fd)
        finally:
            os.close(fd)
        return path

    # --- storing spilled calls -------------------------------------------------------------

    async def _replay_spilled(self) -> bool:
        """Store the spilled calls, oldest file first; False when the database went away meanwhile.
        Files another process holds are left to it (or to the next start)."""
        self._spill_waiting = False  # a spill from now on sets it again
        await anyio.to_thread.run_sync(self._close_segment)  # this process's file can be stored now
        for path in await anyio.to_thread.run_sync(self._segments):
            if await self._replay_segment(path) is _Replayed.AWAY:
                self._spill_waiting = True
                return False
        return True

    async def _replay_segment(self, path: Path) -> _Replayed:
        lock = filelock.FileLock(_lock_path(path), timeout=0, mode=0o600, thread_local=False)
        try:
            await anyio.to_thread.run_sync(lock.acquire)
        except filelock.Timeout:
            return _Replayed.SKIPPED  # another process writes or stores it
        outcome = _Replayed.AWAY
        try:
            try:
                file = await anyio.to_thread.run_sync(path.open, "rb")
            except FileNotFoundError:
                outcome = _Replayed.DONE  # stored by another process meanwhile
                return outcome
            with file:
                outcome = await self._replay_lines(path, file)
            if outcome is _Replayed.DONE:
                await anyio.to_thread.run_sync(path.unlink)
            return outcome
        finally:
            lock.release()
            if outcome is _Replayed.DONE:
                with contextlib.suppress(OSError):
                    _lock_path(path).unlink()

    async def _replay_lines(self, path: Path, file: IO[bytes]) -> _Replayed:
        unreadable: list[bytes] = []
        while lines := await anyio.to_thread.run_sync(_read_lines, file, READ_BATCH):
            for line in lines:
                if not line.strip():
                    continue
                try:
                    call = _call_of(line)
                except ValueError:  # (JSON, UTF-8 or validation errors alike)
                    unreadable.append(line)
                    continue
                stored = await self._store(call)
                if stored is _Stored.AWAY:
                    return _Replayed.AWAY
                if stored is _Stored.REFUSED:
                    await anyio.to_thread.run_sync(self._set_aside, "refused", [line], None)
                if self._queue:  # calls arriving now go first; the file keeps
                    await self._store_queued()
                    if self._away:
                        return _Replayed.AWAY
        if unreadable:
            kept = await anyio.to_thread.run_sync(self._set_aside, "unreadable", unreadable, path)
            logger.warning("%d line(s) of %s could not be read (a crash while writing them?): skipped, kept in %s; "
                           "the other calls in it are stored", len(unreadable), path.name, kept.name)
        return _Replayed.DONE


def _read_lines(file: IO[bytes], count: int) -> list[bytes]:
    lines = []
    for _ in range(count):
        line = file.readline()
        if not line:
            break
        lines.append(line)
    return lines
