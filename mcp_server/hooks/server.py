"""The hook server (`aletheia-mcp hook-server --socket PATH`): answers hooks over a Unix socket, warm.

The first hook of a configuration starts it (client.py); it opens the application once (the
database pool, migrations checked, the embedder loading in the background) and answers each
request: the client's adapter parses the payload into a neutral event, `app.hooks` decides, the
adapter renders the answer. It exits after HOOK_SERVER_IDLE_S without a request, or on SIGTERM /
SIGINT, removing its socket and pid file.

The socket appears only once the application is open: it is bound under a temporary name and
renamed into place, so a hook that can connect is answered by a ready server. It lives in a private
directory (checked before anything else), only connections from this user are served (the kernel's
peer credentials), and the server exits when its socket file is deleted or replaced: a hook could no
longer reach it, and the next one starts a new server.

No request can hold the server: the adapter's parse (Stop reads a transcript of up to many MB) runs
in a worker thread, and each answer has a deadline (protocol.ANSWER_DEADLINES_S: a few seconds for
prompt and file hooks, which the agent waits for on every prompt and tool call); past it the hook
gets an error answer, and the server goes on serving and can go idle.

It exits promptly even while the embedder is still loading: the load runs in a worker thread that
cannot be interrupted (fastembed offline retries its download for ~40 s; a model file on a hung
mount never returns), and Python waits for such threads before a process ends. So once the server
is done, the process ends without waiting for them (`exit_without_waiting_for_threads`).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import NoReturn

import anyio
import anyio.to_thread
from anyio import CancelScope
from anyio.abc import ByteStream, SocketAttribute
from anyio.streams.buffered import BufferedByteReceiveStream

from mcp_server.app_context import AppContext, open_app
from mcp_server.errors import AletheiaError
from mcp_server.hooks.clients import adapter_for, load_payload
from mcp_server.hooks.protocol import (
    MAX_REQUEST_BYTES,
    PROTOCOL_VERSION,
    HookFailure,
    answer_deadline_s,
    can_tell_peers,
    check_private_directory,
    decode_line,
    encode_answer,
    peer_uid,
)
from mcp_server.services.hook_events import HookEvent
from mcp_server.settings import Settings

logger = logging.getLogger(__name__)

# A connection that has not sent its whole request line by then is dropped (the client sends it at once).
REQUEST_READ_TIMEOUT_S = 10.0
# How long an ending server lets its worker threads finish before it leaves them behind.
THREAD_GRACE_S = 1.0
# How often an idle server checks that its socket file is still its own (deleted: exit, see above).
SOCKET_CHECK_S = 1.0


def run_hook_server(settings: Settings, socket_path: Path) -> None:
    """Serve until idle or signalled. Returns (or raises) when the server failed or no worker thread is
    left; ends the process itself when one is (see the module's docstring)."""
    anyio.run(HookServer(settings, socket_path).run)
    left = lingering_threads(grace_s=THREAD_GRACE_S)
    if left:
        logger.info("not waiting for %d worker thread(s) still running (%s): exiting now", len(left),
                    ", ".join(sorted({thread.name for thread in left})))
        exit_without_waiting_for_threads(0)


def lingering_threads(grace_s: float) -> list[threading.Thread]:
    """The threads that would keep the process alive after the server is done (an embedder still
    loading), given `grace_s` in all to finish (idle worker threads stop within it)."""
    deadline = time.monotonic() + grace_s
    left = []
    for thread in threading.enumerate():
        if thread is threading.main_thread() or thread.daemon:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            left.append(thread)
    return left


def exit_without_waiting_for_threads(status: int) -> NoReturn:
    """End the process as a normal exit would (the atexit handlers run: logging is flushed, the handle on
    an embedded PostgreSQL released), except that running threads are abandoned instead of joined."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)


class HookServer:
    def __init__(self, settings: Settings, socket_path: Path) -> None:
        self.settings = settings
        self.socket_path = socket_path
        self.pid_path = socket_path.with_suffix(".pid")
        self._active = 0  # requests being answered (the server is not idle while one is)
        self._last_activity = 0.0
        self._socket_inode: int | None = None  # to remove only our own socket, never a successor's

    async def run(self) -> None:
        check_private_directory(str(self.socket_path.parent))  # (HookFailure: nothing is started)
        self.pid_path.write_text(str(os.getpid()))
        try:
            async with open_app(self.settings) as app:
                await self._serve(app)
        finally:
            self._remove_own_files()

    async def _serve(self, app: AppContext) -> None:
        staging = self.socket_path.with_name(f"{self.socket_path.name}.{os.getpid()}")
        try:
            listener = await anyio.create_unix_listener(staging, mode=0o600)
        except OSError as exc:
            raise HookFailure(f"cannot listen on {staging}: {exc.strerror or exc}") from None
        async with listener, anyio.create_task_group() as tasks:
            self._socket_inode = staging.stat().st_ino
            staging.replace(self.socket_path)
            # A start that works ends the hooks' memory of the last one that failed (client.py).
            self.socket_path.with_suffix(".failed").unlink(missing_ok=True)
            self._last_activity = anyio.current_time()
            logger.info("hook server ready on %s (pid %d; exits after %g s idle)", self.socket_path, os.getpid(),
                        self.settings.hook_server_idle_s)
            if not can_tell_peers():
                logger.warning("this system tells no socket peer's user: connections are not checked, only the "
                               "socket directory's permissions protect the hooks")
            tasks.start_soon(self._exit_when_idle, tasks.cancel_scope)
            tasks.start_soon(self._exit_on_signal, tasks.cancel_scope)
            await listener.serve(lambda stream: self._connection(app, stream), tasks)

    async def _exit_when_idle(self, scope: CancelScope) -> None:
        idle_s = self.settings.hook_server_idle_s
        while True:
            if not self._socket_is_ours():
                logger.info("the socket %s was deleted or replaced; no hook can reach this server: exiting",
                            self.socket_path)
                break
            remaining = self._last_activity + idle_s - anyio.current_time()
            if remaining <= 0 and self._active == 0:
                logger.info("no hook for %g s (HOOK_SERVER_IDLE_S): exiting", idle_s)
                break
            await anyio.sleep(min(max(remaining, 0.05), SOCKET_CHECK_S))
        self._remove_own_files()  # first, so that the next hook starts a new server instead of waiting here
        scope.cancel()

    async def _exit_on_signal(self, scope: CancelScope) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for received in signals:
                logger.info("%s: exiting", signal.Signals(received).name)
                self._remove_own_files()
                scope.cancel()
                return

    def _socket_is_ours(self) -> bool:
        try:
            return self.socket_path.lstat().st_ino == self._socket_inode
        except OSError:
            return False

    async def _connection(self, app: AppContext, stream: ByteStream) -> None:
        self._active += 1
        try:
            async with stream:
                uid = peer_uid(stream.extra(SocketAttribute.raw_socket))
                if uid is not None and uid != os.getuid():
                    logger.warning("refused a connection from another user (uid %d): only uid %d's hooks are served",
                                   uid, os.getuid())
                    return
                reader = BufferedByteReceiveStream(stream)
                try:
                    with anyio.fail_after(REQUEST_READ_TIMEOUT_S):
                        line = await reader.receive_until(b"\n", MAX_REQUEST_BYTES)
                except (anyio.IncompleteRead, anyio.DelimiterNotFound, anyio.EndOfStream, TimeoutError, OSError):
                    return  # a hook probing whether the server listens, or one that gave up
                answer = await self._answer(app, line)
                try:
                    await stream.send(answer)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    logger.info("a hook left before its answer was sent")
        finally:
            self._active -= 1
            self._last_activity = anyio.current_time()

    async def _answer(self, app: AppContext, line: bytes) -> bytes:
        try:
            request = read_request(line)
            deadline = answer_deadline_s(request.event)
            try:
                with anyio.fail_after(deadline):
                    return encode_answer(await answer(app, request), None)
            except TimeoutError:
                raise HookFailure(f"the hook server did not answer the {request.event} hook within {deadline:g} s "
                                  f"(is the database or the embedder slow?); it added nothing this time") from None
        except (HookFailure, AletheiaError) as exc:
            logger.warning("hook not answered: %s", exc)
            return encode_answer("", str(exc))
        except Exception as exc:  # a bug: its traceback goes to this server's log, the hook gets one line
            logger.exception("hook failed")
            return encode_answer("", f"internal error in the hook server ({type(exc).__name__}: {exc}); "
                                     f"its log has the details")

    def _remove_own_files(self) -> None:
        try:
            if self._socket_inode is not None and self.socket_path.stat().st_ino == self._socket_inode:
                self.socket_path.unlink()
        except FileNotFoundError:
            pass
        self._socket_inode = None
        try:
            if self.pid_path.read_text().strip() == str(os.getpid()):
                self.pid_path.unlink()
        except OSError:
            pass


class Request:
    """One hook's request, checked (protocol.py's wire format)."""

    def __init__(self, client: str, event: str, payload: str, cwd: str) -> None:
        self.client, self.event, self.payload, self.cwd = client, event, payload, cwd


def read_request(line: bytes) -> Request:
    request = decode_line(line, "request")
    if request.get("v") != PROTOCOL_VERSION:
        raise HookFailure(f"the hook server speaks protocol version {PROTOCOL_VERSION}, not {request.get('v')!r}")
    fields = {name: request.get(name) for name in ("client", "event", "payload", "cwd")}
    wrong = [name for name, value in fields.items() if not isinstance(value, str)]
    if wrong:
        raise HookFailure(f"the request's {', '.join(wrong)} must be text")
    return Request(*(str(fields[name]) for name in ("client", "event", "payload", "cwd")))


async def answer(app: AppContext, request: Request) -> str:
    """The stdout of one hook: the request parsed, the event decided, the answer rendered. Parsing reads
    files (a transcript, up to many MB) and so runs in a worker thread, abandoned if the deadline passes."""
    adapter = adapter_for(request.client)

    def parse() -> HookEvent:
        return adapter.parse(request.event, load_payload(request.payload), cwd=request.cwd)

    hook_event = await anyio.to_thread.run_sync(parse, abandon_on_cancel=True)
    result = await app.hooks.handle(hook_event)
    return adapter.render(hook_event, result)
