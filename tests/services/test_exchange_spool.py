"""ExchangeSpool against a real PostgreSQL of this module's own (so that it can be stopped): calls
submitted while the database is down are all stored once it is back, also by a new spool after a
restart; a full queue spills; the spill folder is private; a torn line is skipped, reported once."""

from __future__ import annotations

import contextlib
import logging
import stat
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from mcp_server.app_context import open_app
from mcp_server.schemas import CapturedCall
from mcp_server.services.exchange_spool import SPOOL_DIR_NAME, ExchangeSpool
from mcp_server.settings import Settings
from tests.helpers import make_settings, sql
from tests.stoppable_postgres import StoppablePostgres, stoppable_postgres

pytestmark = pytest.mark.anyio
GUARD_S = 120  # against a hang only


@pytest.fixture(scope="module")
def postgres() -> Iterator[StoppablePostgres]:
    with stoppable_postgres() as server:
        yield server


@pytest.fixture
def spool_settings(postgres: StoppablePostgres, tmp_path: Path) -> Settings:
    postgres.start()  # (a failed test may have left it stopped)
    return make_settings(postgres.new_database(), tmp_path)


def call_number(index: int, **fields: object) -> CapturedCall:
    values: dict[str, object] = {
        "request_id": f"call-{index:04d}", "provider": "openai", "endpoint": "/v1/chat/completions",
        "model": "gpt-x", "request": {"model": "gpt-x", "messages": [{"role": "user", "content": f"question {index}"}]},
        "response": {"choices": [{"message": {"role": "assistant", "content": f"answer {index}"}}]},
        "status_code": 200, "latency_ms": 5, "ttft_ms": None, "usage": None, "outcome": "completed",
        "stream": False, "project": None, "created_at": datetime.now(UTC),
    }
    values.update(fields)
    return CapturedCall.model_validate(values)


@contextlib.asynccontextmanager
async def running(spool: ExchangeSpool) -> AsyncIterator[ExchangeSpool]:
    """The spool's writer for the block; then shut down as the gateway does (drain, cancel)."""
    async with anyio.create_task_group() as tasks:
        await tasks.start(spool.run)
        try:
            yield spool
        finally:
            await spool.drain(5)
            tasks.cancel_scope.cancel()


async def until_stored(spool: ExchangeSpool) -> None:
    await until(lambda: not spool.pending())


async def until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(GUARD_S):
        while True:
            if condition():
                return
            await anyio.sleep(0.05)


async def stored_ids(settings: Settings) -> list[str]:
    url = settings.database_url.get_secret_value()  # type: ignore[union-attr]
    return [r["request_id"] for r in await sql(url, "SELECT request_id FROM raw_conversations ORDER BY request_id")]


def spill_files(settings: Settings, pattern: str = "spill-*.jsonl") -> list[Path]:
    return sorted((settings.data_dir / SPOOL_DIR_NAME).glob(pattern))


async def test_calls_made_while_postgres_is_down_are_all_stored_once_also_after_a_restart(
    postgres: StoppablePostgres, spool_settings: Settings
) -> None:
    async with open_app(spool_settings, load_in_background=False) as app:
        async with running(ExchangeSpool(app.conversations, spool_settings)) as before:
            before.submit(call_number(0))
            await until_stored(before)
            postgres.stop()
            try:
                for index in range(1, 101):
                    before.submit(call_number(index))  # returns at once: the database is not on its path
                # every call reaches the file while the database is down
                await until(lambda: not (before._queue or before._in_flight))
            except BaseException:
                postgres.start()
                raise
        # The spool is gone (a gateway restart); a new one on the same data directory takes more
        # calls, still without the database, then stores them all once it is back.
        assert spill_files(spool_settings) and before.pending() == 100
        try:
            async with running(ExchangeSpool(app.conversations, spool_settings)) as after:
                for index in range(101, 201):
                    after.submit(call_number(index))
                await anyio.sleep(0.5)  # (a few attempts fail meanwhile)
                postgres.start()
                await until_stored(after)
        finally:
            postgres.start()

    assert await stored_ids(spool_settings) == [f"call-{index:04d}" for index in range(201)]
    assert spill_files(spool_settings) == [] and spill_files(spool_settings, "*") == []


async def test_a_spill_file_stored_again_adds_nothing(spool_settings: Settings) -> None:
    # A crash after its calls were stored but before the file was deleted: the next start stores
    # the same file again.
    spool_dir = spool_settings.data_dir / SPOOL_DIR_NAME
    spool_dir.mkdir(parents=True, mode=0o700)
    lines = "".join(call_number(i).model_dump_json() + "\n" for i in range(5))
    async with open_app(spool_settings, load_in_background=False) as app:
        for _ in range(2):
            (spool_dir / "spill-00000000000000000001-1-feedbeef.jsonl").write_text(lines)
            async with running(ExchangeSpool(app.conversations, spool_settings)) as spool:
                await until_stored(spool)
    assert await stored_ids(spool_settings) == [f"call-{i:04d}" for i in range(5)]


async def test_a_full_queue_spills_to_a_private_file_instead_of_blocking(
        postgres: StoppablePostgres, tmp_path: Path) -> None:
    settings = make_settings(postgres.new_database(), tmp_path, gateway_queue_size=5)
    async with open_app(settings, load_in_background=False) as app:
        spool = ExchangeSpool(app.conversations, settings)
        await anyio.to_thread.run_sync(spool._prepare_directory)  # (the writer would; it is not running yet)
        for index in range(20):
            spool.submit(call_number(index))  # nobody stores yet: 5 wait in memory, 15 in the file
        assert len(spool._queue) == 5 and spool.pending() == 20
        [spill] = spill_files(settings)
        assert len(spill.read_text().splitlines()) == 15
        assert stat.S_IMODE(spill.stat().st_mode) == 0o600
        assert stat.S_IMODE(spill.parent.stat().st_mode) == 0o700
        async with running(spool):
            await until_stored(spool)
    assert await stored_ids(settings) == [f"call-{index:04d}" for index in range(20)]


async def test_a_torn_line_is_skipped_and_reported_once_and_the_others_are_stored(
    spool_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    spool_dir = spool_settings.data_dir / SPOOL_DIR_NAME
    spool_dir.mkdir(parents=True, mode=0o700)
    whole = [call_number(i).model_dump_json() for i in range(3)]
    torn = call_number(3).model_dump_json()[:57]  # a crash while this line was written
    spill = spool_dir / "spill-00000000000000000001-1-0badf00d.jsonl"
    spill.write_text(f"{whole[0]}\n{whole[1]}\nnot json at all\n{whole[2]}\n{torn}")
    caplog.set_level(logging.WARNING, logger="mcp_server.services.exchange_spool")
    async with open_app(spool_settings, load_in_background=False) as app:
        for _ in range(2):  # a second start reports nothing again
            async with running(ExchangeSpool(app.conversations, spool_settings)) as spool:
                await until_stored(spool)

    assert await stored_ids(spool_settings) == ["call-0000", "call-0001", "call-0002"]
    reports = [r.getMessage() for r in caplog.records if "could not be read" in r.getMessage()]
    assert len(reports) == 1 and "2 line(s) of spill-00000000000000000001-1-0badf00d.jsonl" in reports[0]
    kept = spool_dir / f"unreadable-{spill.name}"
    assert kept.read_text() == f"not json at all\n{torn}\n" and stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert not spill.exists()


async def test_submit_never_raises_even_when_the_spill_folder_cannot_be_written(
    spool_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(spool_settings.database_url.get_secret_value(),  # type: ignore[union-attr]
                             spool_settings.data_dir.parent, gateway_queue_size=1)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / SPOOL_DIR_NAME).write_text("a file where the folder should be")
    async with open_app(settings, load_in_background=False) as app:
        spool = ExchangeSpool(app.conversations, settings)
        spool.submit(call_number(0))
        spool.submit(call_number(1))  # the queue is full, the spill file cannot be made
    assert len(spool._queue) == 1
    assert any("call-0001 could not be queued or spilled" in r.getMessage() for r in caplog.records)



async def test_a_shutdown_keeps_every_call_not_stored_yet(spool_settings: Settings) -> None:
    async with open_app(spool_settings, load_in_background=False) as app:
        # Shut down at once (no time to store), the gateway's way (drain, then cancel), and a call
        # arriving after the drain; then a plain cancellation with calls queued and in flight.
        async with anyio.create_task_group() as tasks:
            spool = ExchangeSpool(app.conversations, spool_settings)
            await tasks.start(spool.run)
            for index in range(100):
                spool.submit(call_number(index))
            await spool.drain(0)
            spool.submit(call_number(100))
            tasks.cancel_scope.cancel()
        async with anyio.create_task_group() as tasks:
            spool = ExchangeSpool(app.conversations, spool_settings)
            await tasks.start(spool.run)
            for index in range(101, 200):
                spool.submit(call_number(index))
            await anyio.lowlevel.checkpoint()  # the writer takes a batch
            tasks.cancel_scope.cancel()
        async with running(ExchangeSpool(app.conversations, spool_settings)) as spool:
            await until_stored(spool)
    assert await stored_ids(spool_settings) == [f"call-{index:04d}" for index in range(200)]
