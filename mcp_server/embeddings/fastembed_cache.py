"""fastembed's model cache: where it is, whether a model is in it, and fetching one, quickly and quietly.

Left to itself, fastembed meets a missing model by downloading it in three attempts that sleep
3, 9 and 27 s between them, logging ERROR lines for each: ~40 s and a screenful of noise before
it fails offline, in every process that loads it. Here the cache is probed first without any
network (`local_files_only`), a download is one attempt through fastembed's own download path,
and the library's log lines are silenced: our messages say what failed and what to do.

Blocking functions: callers run them in a worker thread.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp_server.embeddings.base import short_reason
from mcp_server.errors import EmbeddingUnavailableError

# How long (s) the look-up of the model's repository may take before a download: one round trip.
_PROBE_TIMEOUT_S = 5.0
_TRUE = {"1", "TRUE", "YES", "ON"}


def text_embedding_class() -> Any:
    """fastembed's `TextEmbedding` (a heavy import: onnxruntime), with the library's own logging off."""
    try:
        from fastembed import TextEmbedding
    except ImportError as exc:
        raise EmbeddingUnavailableError(
            f"fastembed is not installed ({short_reason(exc)}): install it with `pip install fastembed`, "
            "or choose another EMBEDDING_PROVIDER (openai, sentence-transformers, hashing)."
        ) from exc
    _silence_library_logs()
    return TextEmbedding


def _silence_library_logs() -> None:
    """fastembed logs through loguru, straight to stderr: "sleeping for 27 s" lines would only mislead."""
    try:
        from loguru import logger
    except ImportError:  # a later fastembed may log otherwise; its lines are then merely noisy
        return
    logger.disable("fastembed")


def cache_dir(configured: str | Path | None) -> Path:
    """The cache fastembed reads: FASTEMBED_CACHE_PATH (from the settings or the environment), else
    `fastembed_cache` in the system's temporary directory, as fastembed itself decides (without
    creating it: probing must not leave directories behind)."""
    if configured:
        return Path(configured).expanduser()
    from_environment = os.environ.get("FASTEMBED_CACHE_PATH")
    return Path(from_environment).expanduser() if from_environment else Path(tempfile.gettempdir()) / "fastembed_cache"


def hub_offline() -> bool:
    """Whether HF_HUB_OFFLINE forbids downloads (fastembed honours it too)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in _TRUE


def find_cached(model: str, cache: Path) -> Path | None:
    """The directory holding `model`'s files in `cache`, or None when they are not all there. No network."""
    if not cache.is_dir():
        return None
    embedding = text_embedding_class()
    try:
        return Path(embedding.download_model(embedding._get_model_description(model), str(cache),
                                             retries=1, local_files_only=True))
    except Exception:  # fastembed: ValueError "could not load ... from any source", OSError, hub errors
        return None


def download(model: str, cache: Path, remedy: str | None = None) -> Path:
    """Fetch `model` into `cache` in one attempt (fastembed's download path); the directory of its files.

    The source is looked up first: fastembed sleeps 3 s even after its last failed attempt and only
    logs the network error it met, so an unreachable Hugging Face is found (and named) before.
    EmbeddingUnavailableError says why the model could not be fetched, then `remedy` (default: how_to_fetch)."""
    embedding = text_embedding_class()
    description = embedding._get_model_description(model)
    reason = _unreachable_reason(description)
    if reason is None:
        try:
            cache.mkdir(parents=True, exist_ok=True)
            return Path(embedding.download_model(description, str(cache), retries=1))
        except Exception as exc:
            reason = short_reason(exc)
    raise EmbeddingUnavailableError(
        f'The fastembed model "{model}" is not in the cache at {cache} and could not be downloaded ({reason}). '
        f"{remedy or how_to_fetch(cache)}"
    )


def _unreachable_reason(description: Any) -> str | None:
    """Why the model's Hugging Face repository cannot be reached (DNS, proxy, TLS, ...), or None when it can
    (or when the model comes from elsewhere: fastembed's download then finds out by itself)."""
    repository = getattr(getattr(description, "sources", None), "hf", None)
    if not repository:
        return None
    try:
        from huggingface_hub import model_info

        model_info(repository, timeout=_PROBE_TIMEOUT_S)
    except Exception as exc:
        return f"Hugging Face is unreachable: {short_reason(exc, 200)}"
    return None


def how_to_fetch(cache: Path) -> str:
    """The remedy for a model missing from `cache`."""
    return (
        "Run `aletheia-mcp models download` on this machine while it is online, or run it on a machine that is "
        f"and copy the cache directory it prints (here it would be {cache}) to this one, then set "
        "FASTEMBED_CACHE_PATH to the copy. Or set EMBEDDING_MODEL_PATH to a local ONNX model directory, or choose "
        "another EMBEDDING_PROVIDER (openai, sentence-transformers, hashing). Memories are still saved meanwhile; "
        "`aletheia-mcp reembed` embeds the waiting rows later."
    )


@dataclass(frozen=True)
class Fetched:
    """Where `models download` left a model."""

    model: str
    cache: Path  # the directory to copy to another machine (FASTEMBED_CACHE_PATH there)
    files: Path  # the model's own files inside it
    downloaded: bool  # False: they were already there


def fetch(model: str, cache: Path) -> Fetched:
    """Make sure `model` is in `cache`: nothing to do when it is there, else one download attempt."""
    embedding = text_embedding_class()
    try:
        embedding._get_model_description(model)
    except ValueError as exc:
        raise EmbeddingUnavailableError(
            f'fastembed does not know the model "{model}" (EMBEDDING_MODEL): choose one of '
            "`TextEmbedding.list_supported_models()`, e.g. BAAI/bge-small-en-v1.5."
        ) from exc
    found = find_cached(model, cache)
    if found is not None:
        return Fetched(model, cache, found, downloaded=False)
    if hub_offline():
        raise EmbeddingUnavailableError(
            f'The fastembed model "{model}" is not in the cache at {cache}, and HF_HUB_OFFLINE forbids downloading '
            "it: unset HF_HUB_OFFLINE on a machine that is online and run this command again."
        )
    remedy = (
        "Check this machine's network access to huggingface.co (a proxy goes in HTTPS_PROXY), or run this command "
        "on a machine that has it and copy the cache directory it prints to this one, setting FASTEMBED_CACHE_PATH "
        "to the copy."
    )
    return Fetched(model, cache, download(model, cache, remedy), downloaded=True)
