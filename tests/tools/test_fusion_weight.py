"""With the hashing embedder (words hashed into buckets, no meaning), hybrid recall follows the
keyword ranking: its vectors are a blurred copy of the keywords (services/fusion_weights.py; on the
public rule files, hybrid MRR@10 0.352 at the weight meant for models of meaning, 0.860 at this one)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from mcp_server.server import create_server
from mcp_server.services.fusion_weights import HASHING_KEYWORD_WEIGHT, keyword_weight
from tests.helpers import call, make_settings

pytestmark = pytest.mark.anyio


async def test_hybrid_recall_with_the_hashing_embedder_puts_the_rare_word_first(database_url: str,
                                                                               tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path)
    assert settings.embedding_provider == "hashing" and keyword_weight("hashing") == HASHING_KEYWORD_WEIGHT
    async with Client(create_server(settings)) as client:
        # The hashed vector of the query is nearest the short note holding two of its words (cosine
        # 0.775 against 0.744); BM25 puts the one holding all three first. At the weight meant for
        # models of meaning (0.6) the fusion put the short note first.
        target = (await call(client, "remember", {"content": "The kafka consumer lag alert pages on call."}))["id"]
        repeats = await call(client, "remember", {"content": "consumer lag"})
        query = {"query": "kafka consumer lag", "limit": 10}
        vector = await call(client, "recall", query | {"mode": "vector"})
        assert vector["results"][0]["id"] == repeats["id"]  # (what the vectors alone prefer)
        keywords = await call(client, "recall", query | {"mode": "keywords"})
        assert keywords["results"][0]["id"] == target
        hybrid = await call(client, "recall", query)
        assert hybrid["mode"] == "hybrid" and hybrid["results"][0]["id"] == target
