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


def make_corpus(size: int, n_queries: int = 600, vocabulary: int = 5000, seed: int = SEED) -> Corpus:
    rng = np.random.default_rng(seed)
    vocab = np.array(_vocabulary(rng, vocabulary))
    ranks = np.arange(1, len(vocab) + 1)
    weights = 1.0 / ranks**1.07  # Zipf, s ~ 1.07
    weights /= weights.sum()
    lengths = np.clip(rng.lognormal(mean=3.0, sigma=0.6, size=size).astype(int), 6, 160)
    total = int(lengths.sum())
    content_words = vocab[rng.choice(len(vocab), size=total, p=weights)]
    fillers = np.array(FILLER)[rng.integers(0, len(FILLER), size=total)]
    use_filler = rng.random(total) < 0.35
    words = np.where(use_filler, fillers, content_words)
    texts: list[str] = []
    start = 0
    for i, n in enumerate(lengths):
        chunk = words[start : start + n]
        start += n
        texts.append(f"Note {i}: " + " ".join(chunk) + ".")
    groups = (rng.permutation(size) % 100).tolist()
    query_words = vocab[rng.choice(len(vocab), size=n_queries * 6, p=weights)]
    query_lengths = rng.integers(2, 7, size=n_queries)
    queries = [" ".join(query_words[i * 6 : i * 6 + query_lengths[i]]) for i in range(n_queries)]
    return Corpus(texts, groups, queries)
