"""How much the keyword ranking weighs against the vector ranking in a hybrid search, per embedder.

The fusion (db/hybrid_query.py) scores a hit 1/(60 + vector rank) + w/(60 + keyword rank).
Cross-validated on the 241 public rule files (`python -m bench quality`: the queries split in two
halves, w chosen on one, scored on the other):
- all-MiniLM-L6-v2 (a model of meaning): w = 0.6 scores 0.959 held out; the curve is flat from
  0.2 to 0.9 and falls beyond 1.0. Models of meaning take KEYWORD_WEIGHT.
- hashing (words hashed into buckets, no meaning): MRR@10 rises with w all the way (0.352 at 0.6,
  0.453 at 1.5, 0.708 at 10; keywords alone 0.891): its vectors are a blurred copy of the
  keywords. It takes HASHING_KEYWORD_WEIGHT, the keyword order with the vector's own finds after.
"""

from __future__ import annotations

from mcp_server.db.hybrid_query import KEYWORD_WEIGHT

HASHING_KEYWORD_WEIGHT = 50.0


def keyword_weight(provider: str) -> float:
    """The keyword ranking's weight in the fusion for vectors from `provider`."""
    return HASHING_KEYWORD_WEIGHT if provider == "hashing" else KEYWORD_WEIGHT
