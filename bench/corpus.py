"""A synthetic but realistic corpus: engineering notes over a Zipf-distributed vocabulary.

Fixed seed, so every system in a run (and every run) sees the same texts and queries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SEED = 20261123
BASE_WORDS = [
    "api",
    "auth",
    "backoff",
    "batch",
    "benchmark",
    "branch",
    "broker",
    "build",
    "bug",
    "cache",
    "canary",
    "certificate",
    "checkpoint",
    "ci",
    "client",
    "cluster",
    "commit",
    "config",
    "connection",
    "container",
    "coverage",
    "cron",
    "database",
    "deadlock",
    "debug",
    "deploy",
    "dependency",
    "deprecate",
    "diff",
    "disk",
    "dns",
    "docker",
    "endpoint",
    "error",
    "event",
    "exception",
    "feature",
    "flag",
    "fixture",
    "flaky",
    "gateway",
    "git",
    "graph",
    "handler",
    "hash",
    "header",
    "health",
    "heap",
    "helm",
    "hook",
    "http",
    "idempotent",
    "image",
    "incident",
    "index",
    "ingress",
    "invariant",
    "jitter",
    "job",
    "json",
    "kafka",
    "kernel",
    "key",
    "kubernetes",
    "latency",
    "lease",
    "library",
    "limit",
    "linter",
    "lock",
    "log",
    "loop",
    "memory",
    "merge",
    "metric",
    "migration",
    "mock",
    "module",
    "monitor",
    "mutex",
    "namespace",
    "network",
    "node",
    "oauth",
    "observability",
    "offset",
    "orm",
    "outage",
    "package",
    "pagination",
    "parser",
    "partition",
    "patch",
    "payload",
    "performance",
    "pipeline",
    "pod",
    "policy",
    "pool",
    "postgres",
    "profile",
    "protocol",
    "proxy",
    "pull",
    "query",
    "queue",
    "quota",
    "race",
    "rate",
    "read",
    "redis",
    "refactor",
    "region",
    "registry",
    "release",
    "replica",
    "request",
    "resource",
    "response",
    "retry",
    "review",
    "rollback",
    "rollout",
    "route",
    "runbook",
    "runtime",
    "schema",
    "scheduler",
    "secret",
    "semaphore",
    "serializer",
    "server",
    "service",
    "session",
    "shard",
    "signal",
    "snapshot",
    "socket",
    "span",
    "sql",
    "staging",
    "stack",
    "storage",
    "stream",
    "subscriber",
    "swap",
    "sync",
    "table",
    "task",
    "template",
    "tenant",
    "test",
    "thread",
    "throughput",
    "timeout",
    "token",
    "topic",
    "trace",
    "transaction",
    "trigger",
    "ttl",
    "type",
    "upgrade",
    "upstream",
    "user",
    "validation",
    "vector",
    "version",
    "volume",
    "webhook",
    "worker",
    "write",
]
FILLER = [
    "the",
    "a",
    "we",
    "our",
    "this",
    "that",
    "when",
    "with",
    "for",
    "to",
    "of",
    "in",
    "on",
    "and",
    "or",
    "but",
    "not",
    "always",
    "never",
    "should",
    "must",
    "use",
    "after",
    "before",
    "because",
    "only",
    "each",
    "per",
    "every",
]


def _vocabulary(rng: np.random.Generator, size: int) -> list[str]:
    words = [str(w) for w in rng.permutation(BASE_WORDS)]  # Zipf ranks in random, not alphabetical, order
    syllables = ["ka", "ro", "mi", "ta", "ne", "lo", "vi", "su", "de", "pa", "zo", "ri", "gu", "fe"]
    while len(words) < size:  # rarer, project-specific terms: service and table names
        name = "".join(rng.choice(syllables, size=int(rng.integers(2, 4))))
        words.append(f"{name}{rng.choice(['', 'svc', 'db', 'api', 'job'])}")
    return list(dict.fromkeys(words))[:size]


@dataclass(frozen=True)
class Corpus:
    texts: list[str]
    groups: list[int]  # metadata {"group": g}; each group holds ~1% of the rows
    queries: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def query_series(self, count: int) -> list[str]:
        """`count` queries, the corpus's own repeated in order as often as needed."""
        return [self.queries[i % len(self.queries)] for i in range(count)]


def make_corpus(size: int, n_queries: int = 600, vocabulary: int = 5000, seed: int = SEED, topics: int = 200,
                topic_words: int = 120, topical_share: float = 0.6) -> Corpus:
    """Notes about topics, as a team's notes are: each is about one subject of the codebase (a
    service, a table, a practice), so most of its words come from that subject's own vocabulary.

    - Vocabulary: 5,000 words; word frequencies follow Zipf's law (s ~ 1.07), globally and inside
      each topic (a topic is 120 words of the vocabulary, ranked by their own Zipf weights).
    - A note: 6-160 words (log-normal, median ~20); 35% filler words ("the", "we", "must"...), and
      of the rest `topical_share` from its topic, the others from the whole vocabulary.
    - A query: 2-6 words about one topic, like "what did we decide about <subject>" asked tersely.
    """
    rng = np.random.default_rng(seed)
    vocab = np.array(_vocabulary(rng, vocabulary))
    weights = _zipf(len(vocab))
    topic_weights = _zipf(topic_words)
    # A topic mixes common engineering words with rarer, project-specific names: its words are
    # drawn without replacement with probability ~ sqrt(global frequency).
    flatter = np.sqrt(weights) / np.sqrt(weights).sum()
    topic_vocab = np.stack([rng.choice(len(vocab), size=topic_words, replace=False, p=flatter)
                            for _ in range(topics)])

    lengths = np.clip(rng.lognormal(mean=3.0, sigma=0.6, size=size).astype(int), 6, 160)
    total = int(lengths.sum())
    note_topics = np.repeat(rng.integers(0, topics, size=size), lengths)
    general = rng.choice(len(vocab), size=total, p=weights)
    topical = topic_vocab[note_topics, rng.choice(topic_words, size=total, p=topic_weights)]
    kind = rng.random(total)  # < 0.35 filler, then topical, then general
    content = np.where(kind < 0.35 + 0.65 * topical_share, topical, general)
    words = np.where(kind < 0.35, np.array(FILLER)[rng.integers(0, len(FILLER), size=total)], vocab[content])
    texts: list[str] = []
    start = 0
    for i, n in enumerate(lengths):
        texts.append(f"Note {i}: " + " ".join(words[start : start + n]) + ".")
        start += n
    groups = (rng.permutation(size) % 100).tolist()

    query_topics = rng.integers(0, topics, size=n_queries)
    query_lengths = rng.integers(2, 7, size=n_queries)
    queries = [
        " ".join(vocab[topic_vocab[t, rng.choice(topic_words, size=k, p=topic_weights)]])
        for t, k in zip(query_topics, query_lengths, strict=True)
    ]
    return Corpus(texts, groups, queries)


def _zipf(count: int, s: float = 1.07) -> np.ndarray:
    weights = 1.0 / np.arange(1, count + 1) ** s
    return weights / weights.sum()
