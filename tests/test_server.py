"""The server's start-up stays light: a warm start (a database already at head) never imports
Alembic or SQLAlchemy, which cost about half a second and 20 MB on every start of every client."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

from mcp_server.app_context import open_app
from mcp_server.settings import Settings
from tests.helpers import REPO_ROOT, clean_env

pytestmark = pytest.mark.anyio

WARM_START = """
import sys
import anyio
from mcp_server.app_context import open_app
from mcp_server.server import create_server
from mcp_server.settings import Settings

async def main() -> None:
    create_server(Settings())
    async with open_app(Settings(), load_in_background=False) as app:
        await app.status.report()

anyio.run(main)
print(sorted(m for m in ("alembic", "sqlalchemy") if m in sys.modules))
"""


async def test_a_warm_start_imports_no_migration_machinery(settings: Settings, database_url: str,
                                                           cli_cwd: Path) -> None:
    async with open_app(settings, load_in_background=False):
        pass  # the first start migrates the empty database
    env = clean_env(DATABASE_URL=database_url, EMBEDDING_PROVIDER="hashing", PYTHONPATH=str(REPO_ROOT))
    result = await anyio.run_process([sys.executable, "-c", WARM_START], cwd=cli_cwd, env=env, check=False)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == "[]"
