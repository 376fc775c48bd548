"""chroma-mcp with aletheia-mcp's hashing embedder; run with the peer venv's python.

The embedder is plugged in through chromadb's own extension point: an `EmbeddingFunction`
registered under a name. A collection created with it records that name in its configuration,
and chromadb rebuilds the function from the registry whenever the server's tools (which pass no
embedding function) embed documents or queries. No default ONNX model is ever needed.

`serve`: chroma-mcp's FastMCP server on stdio with a persistent client (its `main()` minus the
status lines it prints on stdout). `load`: bulk-load a corpus into the same persistent store
through chromadb, with the ids, documents and metadatas `chroma_add_documents` would write.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _peer_common import MODEL, hashing_embedder, protect_stdout
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function


@register_embedding_function
class AletheiaHashing(EmbeddingFunction[Documents]):
    """Our HashingEmbedder as a chromadb embedding function (no configuration: fixed 384-d, hashing-v2)."""

    def __init__(self) -> None:
        self._embedder = hashing_embedder()

    def __call__(self, input: Documents) -> Embeddings:
        return self._embedder.embed_sync(list(input))

    @staticmethod
    def name() -> str:
        return f"aletheia-{MODEL}"

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> AletheiaHashing:
        return AletheiaHashing()

    def get_config(self) -> dict[str, Any]:
        return {}

    def default_space(self) -> Space:
        return "cosine"  # the vectors are L2-normalised; cosine is what the other systems rank by


def serve(argv: list[str]) -> None:
    protect_stdout(os.environ.get("PEER_LOG"))
    from chroma_mcp import server

    args = server.create_parser().parse_args(argv)
    server.get_chroma_client(args)
    server.mcp.run(transport="stdio")


def load(path: Path, collection: str, corpus_file: Path, vectors_file: Path) -> dict[str, Any]:
    import chromadb

    corpus = json.loads(corpus_file.read_text())
    vectors = np.load(vectors_file)
    started = time.perf_counter()
    client = chromadb.PersistentClient(path=str(path))
    target = client.create_collection(collection, embedding_function=AletheiaHashing())  # type: ignore[arg-type]
    batch = client.get_max_batch_size()
    texts, groups = corpus["texts"], corpus["groups"]
    for start in range(0, len(texts), batch):
        stop = start + batch
        target.add(ids=[str(i) for i in range(start, min(stop, len(texts)))], embeddings=vectors[start:stop],
                   documents=texts[start:stop], metadatas=[{"group": g} for g in groups[start:stop]])
    rows = target.count()
    client.close()  # stops the system: index and sqlite flushed before the server opens the directory
    return {"rows": rows, "seconds": round(time.perf_counter() - started, 3),
            "method": f"chromadb PersistentClient: collection.add, batches of {batch}, precomputed vectors"}


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", add_help=False)
    loader = commands.add_parser("load")
    for option in ("--path", "--collection", "--corpus", "--vectors"):
        loader.add_argument(option, required=True)
    args, rest = parser.parse_known_args()
    if args.command == "serve":
        serve(rest)  # chroma-mcp's own options: --client-type persistent --data-dir ...
    else:
        report = load(Path(args.path), args.collection, Path(args.corpus), Path(args.vectors))
        sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
