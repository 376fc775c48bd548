"""Where the database is: DATABASE_URL spellings, the embedded server, and clear errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mcp_server.db.engine import DatabaseTarget, normalize_database_url
from mcp_server.errors import ConfigurationError
from mcp_server.redact import redact_url
from tests.helpers import HEAD, admin_execute, clean_env

PASSWORD = "Sup3r-S3cret-Pw"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://u:{PASSWORD}@db.example:5433/app",
        f"postgresql+asyncpg://u:{PASSWORD}@db.example:5433/app",
        f"postgresql+psycopg://u:{PASSWORD}@db.example:5433/app",
        f"postgres://u:{PASSWORD}@db.example:5433/app",
    ],
)
def test_accepted_url_spellings_normalize_to_one_dsn(url: str) -> None:
    assert normalize_database_url(url) == f"postgresql://u:{PASSWORD}@db.example:5433/app"


def test_other_schemes_are_refused_without_echoing_the_password() -> None:
    with pytest.raises(ConfigurationError) as caught:
        normalize_database_url(f"mysql://u:{PASSWORD}@db.example/app")
    assert PASSWORD not in str(caught.value)
    assert "postgresql://" in str(caught.value)


def test_redacted_url_keeps_host_and_hides_password() -> None:
    shown = redact_url(f"postgresql://u:{PASSWORD}@db.example:5433/app?sslmode=require")
    assert shown == "postgresql://u:***@db.example:5433/app?sslmode=require"
    assert DatabaseTarget(f"postgresql://u:{PASSWORD}@db.example:5433/app", False).location == "db.example:5433/app"


def run_cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mcp_server", *args], cwd=cwd, env=clean_env(**env),
                          capture_output=True, text=True, timeout=120)


def test_unreachable_host_gives_one_line_naming_the_host(cli_cwd: Path) -> None:
    url = f"postgresql://alice:{PASSWORD}@127.0.0.1:1/aletheia"
    result = run_cli(["db", "upgrade"], cli_cwd, DATABASE_URL=url)

    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "127.0.0.1:1/aletheia" in lines[0] and "refused" in lines[0]
    assert PASSWORD not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_doctor_reports_an_unreachable_database_and_exits_1(cli_cwd: Path) -> None:
    result = run_cli(["doctor"], cli_cwd, DATABASE_URL=f"postgresql+asyncpg://alice:{PASSWORD}@127.0.0.1:1/x")
    assert result.returncode == 1
    assert "FAIL database" in result.stdout and "127.0.0.1:1/x" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr


def test_wrong_password_is_one_line_without_the_password(
    pg_admin_uri: str, embedded_pgdata: Path, database_url: str, cli_cwd: Path
) -> None:
    # The embedded server trusts local connections; require a password for one role to test this.
    admin_execute(pg_admin_uri, f"DO $$ BEGIN CREATE ROLE pw_user LOGIN PASSWORD '{PASSWORD}'; "
                                "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    hba = embedded_pgdata / "pg_hba.conf"
    rule = "local all pw_user scram-sha-256\n"
    if rule not in hba.read_text():
        hba.write_text(rule + hba.read_text())
    admin_execute(pg_admin_uri, "SELECT pg_reload_conf()")
    wrong = "Wr0ng-Passw0rd-Value"
    url = database_url.replace("postgres:@", f"pw_user:{wrong}@")

    result = run_cli(["db", "upgrade"], cli_cwd, DATABASE_URL=url)

    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "password authentication failed" in lines[0]
    assert str(embedded_pgdata.parent) in lines[0] or "/tmp" in lines[0]
    assert wrong not in result.stderr + result.stdout and PASSWORD not in result.stderr


START_AND_MIGRATE = textwrap.dedent(
    """
    import asyncio
    from mcp_server.logs import configure_logging
    from mcp_server.settings import Settings
    from mcp_server.db.engine import resolve_target
    from mcp_server.db import migrate

    async def main():
        settings = Settings()
        configure_logging("DEBUG")
        target = await resolve_target(settings)
        await migrate.upgrade(target, settings)

    asyncio.run(main())
    """
)


def test_start_up_path_writes_nothing_to_stdout(scratch_dir: Path, cli_cwd: Path) -> None:
    """First run: initdb, server start, database creation and every migration, at DEBUG level."""
    result = subprocess.run([sys.executable, "-c", START_AND_MIGRATE], cwd=cli_cwd,
                            env=clean_env(ALETHEIA_DATA_DIR=str(scratch_dir / "data")),
                            capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b""
    assert f"migrated from empty to {HEAD}".encode() in result.stderr


HOLDER = textwrap.dedent(
    """
    import asyncio, sys, asyncpg
    from mcp_server.settings import Settings
    from mcp_server.db.engine import resolve_target
    from mcp_server.db import migrate

    async def main():
        settings = Settings()
        target = await resolve_target(settings)
        await migrate.upgrade(target, settings)
        conn = await asyncpg.connect(target.dsn)
        if sys.argv[1] == "write":
            await conn.execute("INSERT INTO memory_shards (user_id, content) VALUES ('u', 'survives restarts')")
        count = await conn.fetchval("SELECT count(*) FROM memory_shards")
        pid = await conn.fetchval("SELECT pg_postmaster_start_time()::text")
        print(count, pid, flush=True)
        await conn.close()
        sys.stdin.readline()  # hold the server until told to exit

    asyncio.run(main())
    """
)


def test_two_processes_share_one_embedded_instance_and_data_survives(scratch_dir: Path, cli_cwd: Path) -> None:
    env = clean_env(ALETHEIA_DATA_DIR=str(scratch_dir / "data"))

    def start(mode: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-c", HOLDER, mode], cwd=cli_cwd, env=env, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    first = start("write")
    assert first.stdout is not None
    count_a, started_a = first.stdout.readline().split(maxsplit=1)
    second = start("read")
    assert second.stdout is not None
    count_b, started_b = second.stdout.readline().split(maxsplit=1)
    assert (count_a, count_b) == ("1", "1")
    assert started_a == started_b  # the same postmaster served both processes
    for proc in (first, second):
        proc.communicate("\n", timeout=60)
        assert proc.returncode == 0

    pgdata = scratch_dir / "data" / "pgdata"
    assert not (pgdata / "postmaster.pid").exists()  # the last process out stopped the server

    third = start("read")
    out, _ = third.communicate("\n", timeout=120)
    assert out.split()[0] == "1"
