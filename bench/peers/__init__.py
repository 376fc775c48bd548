"""Peer MCP memory servers measured in the same run as aletheia-mcp: mcp-server-qdrant and chroma-mcp.

Each is installed from PyPI into its own virtualenv under bench/.venvs/ and started through a
wrapper script of ours (bench/peers/*_peer.py) that gives it aletheia-mcp's hashing embedder
through its public extension point, so that only the store and the server differ. Their default
embedders download models, which cannot work offline.

For each peer: install (or reuse) the venv, bulk-load the corpus through the peer's own library,
then over one stdio session of the official MCP client: recall@10 of its find tool against the
exact cosine top-10, the find tool's latency over `calls` calls after a warm-up, and its store
tool's. A peer that cannot be installed, started or measured yields a result with `error`.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Any

import psutil

from bench.corpus import Corpus
from bench.head_to_head import Contender
from bench.peers.measure import (
    SharedCorpus,
    load,
    measure_peer,
    peer_session,
    server_log_hint,
    write_corpus,
)
from bench.peers.specs import PEERS, Peer
from bench.peers.venvs import VENVS, PeerError, ensure_venv

__all__ = ["PEERS", "bench_peers", "peer_contenders"]


def _reason(exc: BaseException) -> str:
    """One line: the innermost exception of (nested) exception groups, type and message."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = " ".join(str(exc).split())
    if isinstance(exc, PeerError):  # already worded for the results
        return text
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def _too_big(peer: Peer, rows: int) -> str | None:
    """Why a peer is not run at this size (it would take more than half the free memory), if so."""
    need = peer.bytes_per_row * rows
    available = psutil.virtual_memory().available
    if need <= available // 2:
        return None
    return (f"not run: serving {rows:,} rows needs ~{need / 2**30:.0f} GiB ({peer.bytes_per_row // 1000} kB a row), "
            f"more than half of the {available / 2**30:.0f} GiB available")


async def bench_peer(peer: Peer, corpus: Corpus, shared: SharedCorpus, workdir: Path, calls: int) -> dict[str, Any]:
    result: dict[str, Any] = {"system": peer.system, "n": len(corpus), "note": peer.note}
    if reason := _too_big(peer, len(corpus)):
        result["error"] = reason
        print(f"[bench] {peer.system}: {reason}", file=sys.stderr, flush=True)
        return result
    log = VENVS / "logs" / f"{peer.venv}-n{len(corpus)}.log"
    stage = "install"
    try:
        print(f"[bench] N={len(corpus)}: {peer.system}: installing ...", file=sys.stderr, flush=True)
        python, result["versions"] = await ensure_venv(peer.venv, peer.requirements, peer.reported)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("")
        data_dir = workdir / peer.venv
        stage = "load"
        print(f"[bench] N={len(corpus)}: {peer.system}: loading ...", file=sys.stderr, flush=True)
        result["load"] = await load(peer, python, data_dir, shared, log)
        stage = "measure"
        print(f"[bench] N={len(corpus)}: {peer.system}: measuring ...", file=sys.stderr, flush=True)
        result.update(await measure_peer(peer, python, data_dir, corpus, shared, calls, log))
    except Exception as exc:  # a peer's failure is one of its results, never the end of the benchmark
        hint = server_log_hint(log) if stage == "measure" else ""
        result["error"] = f"{stage}: {_reason(exc)}{hint}"
        print(f"[bench] {peer.system}: {result['error']}", file=sys.stderr, flush=True)
    return result


async def bench_peers(corpus: Corpus, workdir: Path, calls: int) -> list[dict[str, Any]]:
    """One result dict per peer (see the module docstring); never raises for a peer's failure."""
    directory = workdir / f"peers-{len(corpus)}"
    try:
        shared = write_corpus(corpus, directory)
    except Exception as exc:  # ours, not a peer's, but the run's other results must survive it
        return [{"system": peer.system, "n": len(corpus), "error": f"corpus: {_reason(exc)}"} for peer in PEERS]
    return [await bench_peer(peer, corpus, shared, directory, calls) for peer in PEERS]


def peer_contenders(corpus: Corpus, workdir: Path, results: list[dict[str, Any]]) -> list[Contender]:
    """The peers measured without error at this size, served again from the stores bench_peers loaded."""
    directory = workdir / f"peers-{len(corpus)}"
    failed = {r["system"] for r in results if r.get("error")}
    contenders = []
    for peer in PEERS:
        if peer.system in failed:
            continue
        python, data_dir = VENVS / peer.venv / "bin" / "python", directory / peer.venv
        log = VENVS / "logs" / f"{peer.venv}-n{len(corpus)}-head-to-head.log"
        contenders.append(Contender(
            peer.system, partial(peer_session, python, peer.serve_args(data_dir), peer.env(data_dir, log)),
            peer.find_tool, peer.find_arguments))  # no page check: its stored notes now count too
    return contenders
