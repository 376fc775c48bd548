"""mcp-server-qdrant with aletheia-mcp's hashing embedder; run with the peer venv's python.

`serve`: its `QdrantMCPServer` on stdio, configured from the environment as its own entry point
does (QDRANT_LOCAL_PATH, COLLECTION_NAME, QDRANT_SEARCH_LIMIT), but given our embedder through
its `embedding_provider` argument instead of a fastembed model (which would be downloaded).
`load`: bulk-load a corpus into the same local store through qdrant-client, in the shape the
`qdrant-store` tool writes (named vector, payload {"document", "metadata"}), so `qdrant-find`
returns the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from _peer_common import DIMENSION, MODEL, hashing_embedder, protect_stdout
from mcp_server_qdrant.embeddings.base import EmbeddingProvider

VECTOR_NAME = MODEL  # the collection's named vector: what the provider reports, shared with the loader
BATCH = 1000


class HashingProvider(EmbeddingProvider):
    """The EmbeddingProvider interface of mcp-server-qdrant 0.8.1 over our HashingEmbedder."""

    def __init__(self) -> None:
        self._embedder = hashing_embedder()

    async def embed_documents(self, documents: list[str]) -> list[list[float]]:
        return [vector.tolist() for vector in self._embedder.embed_sync(documents)]

    async def embed_query(self, query: str) -> list[float]:
        return self._embedder.embed_sync([query])[0].tolist()

    def get_vector_name(self) -> str:
        return VECTOR_NAME

    def get_vector_size(self) -> int:
        return DIMENSION


def serve() -> None:
    protect_stdout(os.environ.get("PEER_LOG"))
    from mcp_server_qdrant.mcp_server import QdrantMCPServer
    from mcp_server_qdrant.settings import QdrantSettings, ToolSettings

    server = QdrantMCPServer(tool_settings=ToolSettings(), qdrant_settings=QdrantSettings(),
                             embedding_provider=HashingProvider())
    server.run(transport="stdio")


def load(path: Path, collection: str, corpus_file: Path, vectors_file: Path) -> dict[str, Any]:
    from qdrant_client import QdrantClient, models

    corpus = json.loads(corpus_file.read_text())
    vectors = np.load(vectors_file)
    started = time.perf_counter()
    client = QdrantClient(path=str(path))
    client.create_collection(collection, vectors_config={
        VECTOR_NAME: models.VectorParams(size=DIMENSION, distance=models.Distance.COSINE)})
    fast = _skip_fsync(client, collection)
    for start in range(0, len(corpus["texts"]), BATCH):
        stop = start + BATCH
        client.upsert(collection, points=[
            models.PointStruct(id=uuid.UUID(int=i + 1).hex, vector={VECTOR_NAME: vector.tolist()},
                               payload={"document": text, "metadata": {"group": group}})
            for i, (text, group, vector) in enumerate(
                zip(corpus["texts"][start:stop], corpus["groups"][start:stop], vectors[start:stop], strict=True),
                start=start)
        ])
    rows = client.count(collection).count
    client.close()  # releases the storage lock the server will take
    return {"rows": rows, "seconds": round(time.perf_counter() - started, 3),
            "method": f"qdrant-client local mode: QdrantClient(path).upsert, batches of {BATCH}, precomputed vectors"
                      + (", sqlite without fsync during the load" if fast else "")}


def _skip_fsync(client: Any, collection: str) -> bool:
    """Turn off sqlite's per-commit fsync for the bulk load only (the server reopens the file normally).

    Local mode commits every point on its own; at ~20 ms an fsync, 100k rows would take over half
    an hour, which says nothing about search. The rows written are the same. This reaches into
    qdrant-client internals, so it is best effort: when they change, the load is merely slower.
    """
    try:
        connection = client._client.collections[collection].storage.storage
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("PRAGMA journal_mode = MEMORY")
    except (AttributeError, KeyError) as exc:
        print(f"bulk load keeps fsync per point: {exc!r}", file=sys.stderr)
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve")
    loader = commands.add_parser("load")
    for option in ("--path", "--collection", "--corpus", "--vectors"):
        loader.add_argument(option, required=True)
    args = parser.parse_args()
    if args.command == "serve":
        serve()
    else:
        report = load(Path(args.path), args.collection, Path(args.corpus), Path(args.vectors))
        sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
