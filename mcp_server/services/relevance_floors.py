"""How similar a memory must be to a prompt for a hook to add it: one floor per embedder.

Relevance is a cosine similarity from the vector search alone (MemoryService.relevant); each
model spreads similarities on its own scale, so the floor depends on the provider and the model
(RELEVANCE_FLOORS, first match wins); HOOK_MIN_SCORE replaces the similarity.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mcp_server.embeddings.stopwords import ENGLISH_STOP_WORDS
from mcp_server.schemas import RecalledMemory
from mcp_server.settings import Settings


@dataclass(frozen=True)
class Floor:
    """The least cosine similarity between a prompt and a memory added to it."""

    similarity: float
    # Also require a word in common: an embedder that sees only words (hashing) puts unrelated texts
    # close when their words fall into the same buckets; a shared word tells a match from a collision.
    shared_word: bool = False


# (provider, a fragment of the model's name or None for any), first match wins. Floors sit where an
# unrelated prompt ("hi", "run the tests") scores below them and a prompt about a memory's subject
# above; each model's scale differs:
# - hashing (words and bigrams hashed into buckets, no meaning): measured on 910 memories (the bullets
#   of ../shared/corpora/cursor-rules-mdc): with a word in common required, 0.35 let through 1 of 20
#   chat prompts ("run the tests", 0.45, on "npm run e2e-tests # Run Cypress/Selenium tests", a real
#   word match; 0 of 20 at 0.5), and gave 23 of 280 terse prompts made of 2-4 of a memory's words
#   that very memory (14 at 0.5, 30 at 0.25); without the shared word, bucket collisions gave "hi"
#   0.33 and "thanks!" 0.49. `python -m bench.hook_floors` measures it again.
# - bge-small-en-v1.5 (fastembed's default): similarities are compressed high; unrelated pairs sit
#   around 0.5-0.6, related query/passage pairs 0.7-0.9.
# - OpenAI text-embedding-3-*: unrelated pairs ~0.0-0.2, related ones ~0.35-0.7; ada-002 is compressed
#   like bge (unrelated ~0.7).
# - all-MiniLM-L6-v2 (sentence-transformers' usual model): unrelated ~-0.1-0.15, related ~0.4-0.8.
# Missing a relevant memory costs little (the agent can `recall`); adding an unrelated one costs
# attention on every prompt, so each floor leans high.
RELEVANCE_FLOORS: tuple[tuple[str | None, str | None, Floor], ...] = (
    ("hashing", None, Floor(0.35, shared_word=True)),
    (None, "ada-002", Floor(0.80)),
    (None, "text-embedding-3", Floor(0.40)),
    (None, "minilm", Floor(0.40)),
    (None, "bge-", Floor(0.75)),
    ("openai", None, Floor(0.40)),
    ("fastembed", None, Floor(0.75)),
    ("sentence-transformers", None, Floor(0.40)),
)
UNKNOWN_MODEL_FLOOR = Floor(0.75)  # an unlisted provider: the strictest scale above
# Without an embedder, a memory is added to a prompt only if it holds every term of a prompt of at
# least this many terms: keywords alone cannot tell "run the tests" from a memory about tests.
KEYWORD_TERMS = 3
_WORD = re.compile(r"\w+")


def relevance_floor(settings: Settings, provider: str, model: str) -> Floor:
    """The floor for `provider`'s `model`; HOOK_MIN_SCORE replaces its similarity."""
    floor = UNKNOWN_MODEL_FLOOR
    for wanted_provider, fragment, candidate in RELEVANCE_FLOORS:
        if (wanted_provider is None or wanted_provider == provider) and (
                fragment is None or fragment in model.lower()):
            floor = candidate
            break
    if settings.hook_min_score is not None:
        return Floor(settings.hook_min_score, floor.shared_word)
    return floor


def sharing_a_word(prompt: str, hits: Sequence[RecalledMemory]) -> list[RecalledMemory]:
    """The hits that have a word (not a stop word) in common with `prompt`."""
    words = _words(prompt)
    return [hit for hit in hits if words & _words(hit.content)]


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in ENGLISH_STOP_WORDS}
