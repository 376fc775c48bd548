"""HashingEmbedder: deterministic, lexical, fast, never fails on odd input."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mcp_server.embeddings import Embedder, HashingEmbedder

pytestmark = pytest.mark.anyio

REPO_ROOT = Path(__file__).resolve().parents[2]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))  # vectors are unit length


async def test_shape_dtype_and_unit_length() -> None:
    embedder = HashingEmbedder(384)
    assert isinstance(embedder, Embedder)
    assert (embedder.name, embedder.model, embedder.dimension) == ("hashing", "hashing-v2", 384)
    vectors = await embedder.embed_documents(["PostgreSQL stores the vectors", "a second text"])
    for vector in vectors:
        assert vector.dtype == np.float32 and vector.shape == (384,)
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    query = await embedder.embed_query("PostgreSQL stores the vectors")
    np.testing.assert_array_equal(query, vectors[0])


async def test_shared_words_score_higher_than_unrelated_text() -> None:
    embedder = HashingEmbedder(384)
    base, related, unrelated = await embedder.embed_documents(
        [
            "use pgvector with an hnsw index for cosine search",
            "the hnsw index in pgvector speeds up cosine search",
            "bake the bread at two hundred degrees for forty minutes",
        ]
    )
    assert cosine(base, related) > 0.3
    assert cosine(base, related) > cosine(base, unrelated) + 0.25


async def test_word_order_matters_through_bigrams_and_case_does_not() -> None:
    embedder = HashingEmbedder(384)
    a, b, c = await embedder.embed_documents(["dog bites man", "man bites dog", "DOG Bites MAN"])
    assert cosine(a, b) < 0.999  # same words, different bigrams
    np.testing.assert_allclose(a, c, atol=1e-7)


async def test_sublinear_term_frequency() -> None:
    embedder = HashingEmbedder(1024)
    once, many = await embedder.embed_documents(["error timeout", "error error error error error error timeout"])
    # With raw tf "error" would dominate; with 1 + ln(tf) "timeout" still counts.
    timeout = await embedder.embed_query("timeout")
    assert cosine(many, timeout) > 0.2
    assert cosine(once, many) > 0.5


@pytest.mark.parametrize("text", ["", "   ", "!!! ???", "—", "\n\t"])
async def test_texts_without_words_still_get_a_valid_vector(text: str) -> None:
    vector = await HashingEmbedder(64).embed_query(text)
    assert vector.shape == (64,) and np.isfinite(vector).all()
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


async def test_tiny_dimension_never_yields_a_zero_vector() -> None:
    # With one bucket, opposite signs cancel often; the raw-text fallback must kick in.
    embedder = HashingEmbedder(1)
    vectors = await embedder.embed_documents([f"w{i} w{i + 1}" for i in range(200)])
    assert all(abs(float(v[0])) == pytest.approx(1.0) for v in vectors)


async def test_unicode_words() -> None:
    embedder = HashingEmbedder(256)
    a, b, c = await embedder.embed_documents(["Größe der Datenbank", "größe der datenbank", "日本語 テキスト"])
    np.testing.assert_allclose(a, b, atol=1e-7)
    assert cosine(a, c) < 0.5


def test_deterministic_across_processes() -> None:
    """blake2b, not the per-process salted hash(): another interpreter gives the same vector."""
    code = (
        "from mcp_server.embeddings import HashingEmbedder;"
        "v = HashingEmbedder(32).embed_sync(['same text, same vector'])[0];"
        "print(','.join(repr(float(x)) for x in v))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    here = HashingEmbedder(32).embed_sync(["same text, same vector"])[0]
    assert outputs.pop().strip() == ",".join(repr(float(x)) for x in here)


async def test_large_batch_runs_off_the_event_loop_and_keeps_order() -> None:
    embedder = HashingEmbedder(128)
    texts = [f"memory {i} about subject {i % 13}" for i in range(500)]
    batch = await embedder.embed_documents(texts)
    singles = [embedder.embed_sync([t])[0] for t in texts[:20]]
    for a, b in zip(batch[:20], singles, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-7)
    assert await embedder.embed_documents([]) == []


def test_throughput_at_least_5000_texts_per_second() -> None:
    rng = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocabulary = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(5000)]
    texts = [" ".join(rng.choice(vocabulary) for _ in range(30)) + "." for _ in range(10_000)]
    embedder = HashingEmbedder(384)
    started = time.perf_counter()
    vectors = embedder.embed_sync(texts)
    rate = len(texts) / (time.perf_counter() - started)
    assert len(vectors) == 10_000
    assert rate >= 5000, f"{rate:.0f} texts/s"


async def test_v2_skips_stop_words_and_v1_keeps_making_the_vectors_it_made() -> None:
    v2, v1 = HashingEmbedder(384), HashingEmbedder(384, model="hashing-v1")
    with_fillers = "we should always retry the request with backoff"
    assert cosine(v2.embed_sync([with_fillers])[0], v2.embed_sync(["should always retry request backoff"])[0]) > 0.999
    assert cosine(v1.embed_sync([with_fillers])[0], v1.embed_sync(["should always retry request backoff"])[0]) < 0.9
    # Two texts that share only stop words are unrelated for v2, not for v1.
    a, b = "the cache and the queue", "the parser and the socket"
    assert cosine(*v2.embed_sync([a, b])) < cosine(*v1.embed_sync([a, b])) - 0.2
    # Only stop words: still a real, deterministic unit vector.
    only_stop = v2.embed_sync(["to be or not to be"])[0]
    assert abs(float(np.linalg.norm(only_stop)) - 1.0) < 1e-5
    np.testing.assert_array_equal(only_stop, v1.embed_sync(["to be or not to be"])[0])
