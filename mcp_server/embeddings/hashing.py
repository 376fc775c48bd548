"""A deterministic, dependency-free embedder: signed feature hashing of words and word bigrams.

It is for tests and air-gapped installs: no model, no network, the same vector for the same
text on every machine and every Python version (blake2b and fixed 64-bit arithmetic, never the
salted built-in `hash()`). It captures lexical overlap only, not meaning, which is enough for
recall to work end to end.

Model ids: `hashing-v2` (the default) skips English stop words, as the keyword index does: words
such as "the" and "we" sit in nearly every text, pull all vectors towards one common direction and
make nearest neighbours both less meaningful and harder for an HNSW index to find. Any other
hashing id (`hashing-v1`, or a name chosen in EMBEDDING_MODEL) hashes every word, so vectors
already stored under that id stay comparable with new ones.

Speed matters because `reembed` may run it over a whole database: Python only tokenises and
looks words up in a bounded cache; bigrams, term counts and bucketing are done by numpy for the
whole batch at once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from mcp_server.embeddings.base import describe, run_cpu_bound, validate_vectors
from mcp_server.embeddings.stopwords import ENGLISH_STOP_WORDS

DEFAULT_MODEL = "hashing-v2"
_SKIPS_STOP_WORDS = {DEFAULT_MODEL}

_TOKEN = re.compile(r"\w+")
# A text with no word token at all ("", "!!!") is hashed as this prefix plus its raw content, so
# it still gets a valid, deterministic, non-zero vector instead of an error.
_NO_TOKEN_PREFIX = "\x00raw:"
# Below this many texts the thread hop costs more than the hashing itself.
_INLINE_LIMIT = 32
# Distinct words remembered (about 100 bytes each, so ~25 MB at most): a server embedding an
# open vocabulary for months must not grow without limit.
_CACHE_SIZE = 1 << 18

# splitmix64 constants: combine two word hashes into a well-mixed bigram hash.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@lru_cache(maxsize=_CACHE_SIZE)
def _word_hash(word: str) -> int:
    """A stable unsigned 64-bit hash of one word (the same on every machine, every run)."""
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")


def _bigram_hash(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Order-sensitive hash of word pairs (uint64 arithmetic wraps, which is what we want)."""
    x = first * _GOLDEN + second
    x ^= x >> np.uint64(30)
    x *= _MIX1
    x ^= x >> np.uint64(27)
    x *= _MIX2
    x ^= x >> np.uint64(31)
    return np.asarray(x, dtype=np.uint64)


class HashingEmbedder:
    """Words and word bigrams hashed into `dimension` signed buckets, sublinear tf (1 + ln tf), L2-normalised."""

    name = "hashing"

    def __init__(self, dimension: int, model: str = DEFAULT_MODEL) -> None:
        if dimension < 1:
            raise ValueError("dimension must be at least 1")
        self.dimension = dimension
        self.model = model
        self._label = describe(self.name, model)
        self._stop_words = ENGLISH_STOP_WORDS if model in _SKIPS_STOP_WORDS else frozenset()

    def _matrix(self, texts: Sequence[str]) -> np.ndarray:
        """The (texts x dimension) matrix of raw, unnormalised feature weights."""
        hashes: list[int] = []
        lengths: list[int] = []
        for text in texts:
            found = _TOKEN.findall(text.lower())
            # A text made only of stop words ("to be or not to be") keeps them: still a real vector.
            tokens = [w for w in found if w not in self._stop_words] or found or [_NO_TOKEN_PREFIX + text]
            hashes.extend(map(_word_hash, tokens))  # a C-level loop over the cache
            lengths.append(len(tokens))
        words = np.asarray(hashes, dtype=np.uint64)
        rows = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)

        # Bigrams: neighbouring tokens of the same text (stop words already dropped in hashing-v2).
        same_text = rows[:-1] == rows[1:]
        bigrams = _bigram_hash(words[:-1][same_text], words[1:][same_text])
        features = np.concatenate([words, bigrams])
        feature_rows = np.concatenate([rows, rows[:-1][same_text]])

        # Term frequency of each distinct (text, feature) pair.
        order = np.lexsort((features, feature_rows))
        features, feature_rows = features[order], feature_rows[order]
        starts = np.flatnonzero(
            np.concatenate([[True], (features[1:] != features[:-1]) | (feature_rows[1:] != feature_rows[:-1])])
        )
        tf = np.diff(np.append(starts, features.size)).astype(np.float64)
        features, feature_rows = features[starts], feature_rows[starts]

        # Low bits pick the bucket, the top bit the sign.
        buckets = (features % np.uint64(self.dimension)).astype(np.int64)
        signs = np.where(features >> np.uint64(63), 1.0, -1.0)
        weights = signs * (1.0 + np.log(tf))
        dim = self.dimension
        matrix = np.bincount(feature_rows * dim + buckets, weights=weights, minlength=len(texts) * dim)
        matrix = matrix.reshape(len(texts), dim)
        for row in np.flatnonzero(~matrix.any(axis=1)):
            # Every feature cancelled out (opposite signs in one bucket; rare, likelier with a
            # tiny dimension): fall back to the raw-text feature so no vector is ever zero.
            raw = _word_hash(_NO_TOKEN_PREFIX + texts[int(row)])
            matrix[row, raw % self.dimension] = 1.0 if raw >> 63 else -1.0
        return matrix

    def embed_sync(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Embed in the calling thread (for code that is not async: CLI, benchmarks)."""
        if not texts:
            return []
        return validate_vectors(self._matrix(texts), self.dimension, self._label, expected_count=len(texts))

    async def load(self) -> None:
        """Nothing to load."""

    async def embed_documents(self, texts: Sequence[str]) -> list[np.ndarray]:
        if len(texts) <= _INLINE_LIMIT:
            return self.embed_sync(texts)
        return await run_cpu_bound(lambda: self.embed_sync(texts))

    async def embed_query(self, text: str) -> np.ndarray:
        return self.embed_sync([text])[0]

    async def aclose(self) -> None:
        """Nothing to release (the word cache is shared and bounded)."""
