"""What differs between the peers: their packages, wrapper script, tools, arguments and answers.

`returned_ids` turns a tool's answer (what `harness._call` returns: structured content, or the
list of content blocks) into corpus row numbers, for recall@10 and for checking full pages.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
COLLECTION = "bench"
LIMIT = 10
_NOTE = re.compile(r"<content>Note (\d+): ")  # corpus texts start "Note <row>: "


def answer_text(payload: Any) -> str:
    if isinstance(payload, list):
        return "\n".join(str(getattr(block, "text", "")) for block in payload)
    return json.dumps(payload)


@dataclass(frozen=True)
class Peer:
    system: str
    venv: str
    requirements: tuple[str, ...]
    reported: tuple[str, ...]  # distributions whose versions go into the results
    script: str
    find_tool: str
    store_tool: str
    note: str  # what the figures measure, for the reader of the results
    bytes_per_row: int = 0  # serving memory per row when it is large enough to exhaust the machine; 0: no check

    @property
    def script_path(self) -> Path:
        return HERE / self.script

    def env(self, data_dir: Path, log: Path) -> dict[str, str]:
        # HF_HUB_OFFLINE: should anything still reach for a model download, fail at once, not after retries.
        # COLUMNS: rich (their log handler) wraps at 80 columns when not on a terminal; keep log lines whole.
        return {"PEER_LOG": str(log), "ANONYMIZED_TELEMETRY": "False", "HF_HUB_OFFLINE": "1", "COLUMNS": "240"}

    def serve_args(self, data_dir: Path) -> list[str]:
        return [str(self.script_path), "serve"]

    def find_arguments(self, query: str) -> dict[str, Any]:
        raise NotImplementedError

    def store_arguments(self, index: int, text: str, group: int) -> dict[str, Any]:
        raise NotImplementedError

    def returned_ids(self, payload: Any) -> list[int]:
        raise NotImplementedError


class QdrantPeer(Peer):
    def env(self, data_dir: Path, log: Path) -> dict[str, str]:
        # The variables its own entry point reads; the find tool's page size is a server setting.
        return {**super().env(data_dir, log), "QDRANT_LOCAL_PATH": str(data_dir), "COLLECTION_NAME": COLLECTION,
                "QDRANT_SEARCH_LIMIT": str(LIMIT)}

    def find_arguments(self, query: str) -> dict[str, Any]:
        return {"query": query}

    def store_arguments(self, index: int, text: str, group: int) -> dict[str, Any]:
        return {"information": text, "metadata": {"group": group}}

    def returned_ids(self, payload: Any) -> list[int]:
        return [int(row) for row in _NOTE.findall(answer_text(payload))]


class ChromaPeer(Peer):
    def serve_args(self, data_dir: Path) -> list[str]:
        return [*super().serve_args(data_dir), "--client-type", "persistent", "--data-dir", str(data_dir)]

    def find_arguments(self, query: str) -> dict[str, Any]:
        return {"collection_name": COLLECTION, "query_texts": [query], "n_results": LIMIT}

    def store_arguments(self, index: int, text: str, group: int) -> dict[str, Any]:
        return {"collection_name": COLLECTION, "documents": [text], "ids": [f"bench-store-{index}"],
                "metadatas": [{"group": group}]}

    def returned_ids(self, payload: Any) -> list[int]:
        found = json.loads(answer_text(payload))
        return [int(i) for i in found["ids"][0] if i.isdigit()]  # loaded rows have ids "0".."n-1"


PEERS: tuple[Peer, ...] = (
    QdrantPeer(system="mcp-server-qdrant", venv="qdrant", requirements=("mcp-server-qdrant==0.8.1",),
               reported=("qdrant-client", "fastmcp", "mcp", "pydantic", "numpy"), script="qdrant_peer.py",
               find_tool="qdrant-find", store_tool="qdrant-store",
               note="local mode: qdrant-client's in-process exact search (numpy), not the Qdrant engine, which "
                    "qdrant-client advises against above 20,000 points",
               # Local mode keeps every point as Python objects: peak RSS 3.3 GB at 100k rows (measured).
               bytes_per_row=34_000),
    # chroma-mcp 0.2.6 breaks with pydantic >= 2.12 (FACTS.md), hence the second pin.
    ChromaPeer(system="chroma-mcp", venv="chroma", requirements=("chroma-mcp==0.2.6", "pydantic==2.11.*"),
               reported=("chromadb", "mcp", "numpy"), script="chroma_peer.py",
               find_tool="chroma_query_documents", store_tool="chroma_add_documents",
               note="embedded chromadb (PersistentClient), default HNSW (M=16, ef_search=100); its store tool "
                    "reads every id in the collection on each call"),
)
