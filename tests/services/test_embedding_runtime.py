"""EmbedderRuntime's degraded state: one failed call is a blip, two in a row are an outage; while it lasts,
calls skip the embedder at once, except one probe per backoff interval, and the first success ends it.

The embedder is the real `openai` provider against the tests' loopback embeddings API, made to fail or
hang and then recover. The probes' backoff runs on a clock of the test's own, so nothing waits for it:
the assertions count the requests the fake API received.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest

from mcp_server.errors import InvalidEmbeddingError
from mcp_server.services import embedding_runtime
from mcp_server.services.embedding_runtime import EmbedderRuntime
from mcp_server.settings import Settings
from tests.fake_embeddings_api import FakeEmbeddingsAPI, Reply, running_api
from tests.helpers import free_port

pytestmark = pytest.mark.anyio
DIM = 16
TIMEOUT_S = 0.5  # EMBEDDING_TIMEOUT_S: how long a call waits on the hanging API (a guard, never asserted)
HANG = Reply(delay_s=5.0)  # answers long after the call gave up
DOWN = Reply(status=503, body={"error": {"message": "overloaded"}})


class Clock:
    """The runtime's monotonic clock for its probe backoff, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def api() -> Iterator[FakeEmbeddingsAPI]:
    with running_api(DIM) as server:
        yield server


def api_settings(base_url: str) -> Settings:
    return Settings(_env_file=None, embedding_provider="openai", embedding_model="fake-embed", embedding_dim=DIM,
                    embedding_api_base=base_url, embedding_max_retries=0, embedding_timeout_s=TIMEOUT_S)


async def loaded_runtime(base_url: str, clock: Clock) -> EmbedderRuntime:
    runtime = EmbedderRuntime(api_settings(base_url), clock=clock)
    assert await runtime.load_once()
    return runtime


async def test_one_failed_call_is_a_blip_two_in_a_row_are_degraded(api: FakeEmbeddingsAPI) -> None:
    """Before: the first failed call made it degraded."""
    runtime = await loaded_runtime(api.base_url, Clock())
    assert await runtime.try_embed_query("works") is not None

    api.reply(DOWN)
    assert await runtime.try_embed_query("one failure") is None
    status = runtime.status()
    assert (status.state, status.consecutive_failures, status.detail) == ("ready", 1, None)
    assert await runtime.try_embed_query("works again") is not None
    assert (runtime.status().state, runtime.status().consecutive_failures) == ("ready", 0)

    api.reply(DOWN, DOWN)
    assert await runtime.try_embed_documents(["first failure"]) is None
    assert runtime.status().state == "ready"
    assert await runtime.try_embed_query("second failure") is None
    status = runtime.status()
    assert (status.state, status.consecutive_failures) == ("degraded", 2)
    assert status.detail is not None and "the latest 2 embedding calls failed" in status.detail
    assert "HTTP 503" in status.detail and "without waiting for the embedder" in status.detail
    await runtime.aclose()


async def test_an_embedder_that_never_worked_is_degraded_from_its_first_failure() -> None:
    """Nothing says an API at a closed port works: it is not reported ready for one more call."""
    runtime = await loaded_runtime(f"http://127.0.0.1:{free_port()}/v1", Clock())
    assert await runtime.try_embed_query("nobody listens") is None
    status = runtime.status()
    assert (status.state, status.consecutive_failures) == ("degraded", 1)
    assert status.detail is not None and "no call has succeeded since the server started" in status.detail
    await runtime.aclose()


async def test_while_degraded_calls_skip_a_hanging_api_but_one_probes_it_per_backoff(api: FakeEmbeddingsAPI) -> None:
    """Before: every call while degraded sent a request, and waited EMBEDDING_TIMEOUT_S on the hanging API."""
    clock = Clock()
    runtime = await loaded_runtime(api.base_url, clock)
    assert await runtime.try_embed_query("works") is not None
    api.reply(HANG, HANG, HANG)  # two calls that time out, then a probe that does too

    assert await runtime.try_embed_query("hangs") is None
    assert await runtime.try_embed_documents(["hangs too"]) is None
    assert runtime.status().state == "degraded"
    assert len(api.received) == 3

    for index in range(5):  # no probe is due yet: nothing is sent, nothing waits
        assert await runtime.try_embed_query(f"skipped {index}") is None
        assert await runtime.try_embed_documents([f"skipped {index}"]) is None
    assert len(api.received) == 3

    clock.advance(embedding_runtime.PROBE_FIRST_DELAY_S)  # the first probe is due: one call tries, and hangs
    assert await runtime.try_embed_query("first probe") is None
    assert await runtime.try_embed_query("skipped after the probe") is None
    assert len(api.received) == 4
    assert runtime.status().consecutive_failures == 3

    clock.advance(embedding_runtime.PROBE_FIRST_DELAY_S)  # the backoff doubled: not due yet
    assert await runtime.try_embed_query("still skipped") is None
    assert len(api.received) == 4

    clock.advance(embedding_runtime.PROBE_FIRST_DELAY_S)  # due again; the API is back
    assert await runtime.try_embed_query("second probe") is not None
    status = runtime.status()
    assert (status.state, status.consecutive_failures, status.detail) == ("ready", 0, None)
    assert await runtime.try_embed_query("every call again") is not None
    assert len(api.received) == 6
    await runtime.aclose()


async def test_only_one_probe_at_a_time(api: FakeEmbeddingsAPI) -> None:
    """While the probe waits on the API, the other calls do not join it."""
    clock = Clock()
    runtime = await loaded_runtime(api.base_url, clock)
    assert await runtime.try_embed_query("works") is not None
    api.reply(DOWN, DOWN, HANG)
    for text in ("down", "down again"):
        assert await runtime.try_embed_query(text) is None
    assert runtime.status().state == "degraded" and len(api.received) == 3
    clock.advance(embedding_runtime.PROBE_FIRST_DELAY_S)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(runtime.try_embed_query, "the probe, hanging")
        await anyio.wait_all_tasks_blocked()  # the probe is under way, waiting on the API
        assert await runtime.try_embed_query("during the probe") is None
    assert len(api.received) == 4  # the probe's request alone
    assert runtime.status().consecutive_failures == 3
    await runtime.aclose()


async def test_an_embedder_that_answers_wrongly_is_still_asked(api: FakeEmbeddingsAPI) -> None:
    """Invalid vectors come at once: nothing is waited for, and each call keeps reporting the error."""
    runtime = await loaded_runtime(api.base_url, Clock())
    api.vector_hook = lambda vector, index: [0.0] * len(vector)
    for attempt in range(1, 4):
        with pytest.raises(InvalidEmbeddingError):
            await runtime.try_embed_query("zero vector")
        assert len(api.received) == attempt
    status = runtime.status()
    assert status.state == "degraded" and status.detail is not None
    assert "every call still asks the embedder" in status.detail
    await runtime.aclose()


def test_the_backoff_doubles_up_to_its_maximum() -> None:
    """The probe schedule itself: PROBE_FIRST_DELAY_S after the outage began, doubling to PROBE_MAX_DELAY_S."""
    clock = Clock()
    calls = embedding_runtime.CallOutcomes(clock)
    calls.succeeded()
    calls.failed("a")
    assert calls.admit() is False  # one failure: calls go on as usual
    calls.failed("b")
    waits = []
    for _ in range(7):
        waited = 0.0
        while calls.admit() is None:
            clock.advance(1.0)
            waited += 1.0
        waits.append(waited)
        calls.failed("the probe failed")
        calls.probe_ended()
    first, most = embedding_runtime.PROBE_FIRST_DELAY_S, embedding_runtime.PROBE_MAX_DELAY_S
    assert waits == [min(first * 2**n, most) for n in range(7)]
    assert calls.admit() is None
    calls.succeeded()
    assert calls.admit() is False
