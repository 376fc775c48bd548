"""fastembed's model cache: where it is, whether a model is in it, and fetching one, quickly and quietly.

Left to itself, fastembed meets a missing model by downloading it in three attempts that sleep
3, 9 and 27 s between them, logging ERROR lines for each: ~40 s and a screenful of noise before
it fails offline, in every process that loads it. Here the cache is probed first without any
network (`local_files_only`), a download is one attempt through fastembed's own download path,
and the library's log lines are silenced: our messages say what failed and what to do.

The default cache is persistent (the user's cache directory), not fastembed's own default in the
temporary directory, which tmp cleaners empty: a model fetched once stays. A model an earlier
version left in that old default is still read from there, so nobody downloads it again.

Blocking functions: callers run them in a worker thread.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

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
    default_cache_dir() (not created here: probing must not leave directories behind)."""
    if configured:
        return Path(configured).expanduser()
    from_environment = os.environ.get("FASTEMBED_CACHE_PATH")
    return Path(from_environment).expanduser() if from_environment else default_cache_dir()


def default_cache_dir() -> Path:
    """`fastembed` in the user's cache directory (~/.cache/aletheia/fastembed on Linux, honouring
    XDG_CACHE_HOME): kept across reboots and tmp cleaning, shared by every project and data directory
    of this user, and a cache by nature (a model can always be fetched again, unlike the data dir)."""
    return Path(platformdirs.user_cache_dir("aletheia", appauthor=False)) / "fastembed"


def legacy_cache_dir() -> Path:
    """fastembed's own default, where earlier versions of this server cached the model: read, never written."""
    return Path(tempfile.gettempdir()) / "fastembed_cache"


def cache_holding(model: str, cache: Path) -> Path | None:
    """The cache that holds `model`: `cache`, or else the old temporary default when `cache` is the
    default one (an earlier version put the model there: it is read there, not fetched again); None
    when neither does. No network."""
    if find_cached(model, cache) is not None:
        return cache
    if cache == default_cache_dir() and find_cached(model, legacy_cache_dir()) is not None:
        return legacy_cache_dir()
    return None


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
    probe = _probe_hub(description)
    reason = probe.unreachable
    if reason is None:
        try:
            cache.mkdir(parents=True, exist_ok=True)
            return Path(embedding.download_model(description, str(cache), retries=1))
        except Exception as exc:
            reason = short_reason(exc)
            if probe.answer:  # fastembed's own error is often a bare "could not load ... from any source"
                reason += f"; Hugging Face answered the look-up of the model with {probe.answer}"
    raise EmbeddingUnavailableError(
        f'The fastembed model "{model}" is not in the cache at {cache} and could not be downloaded ({reason}). '
        f"{remedy or how_to_fetch(cache)}"
    )


@dataclass(frozen=True)
class _HubProbe:
    unreachable: str | None = None  # why no download is attempted: Hugging Face cannot be connected to
    answer: str | None = None  # the error Hugging Face answered with (429, 401, 403...): the download is tried


def _probe_hub(description: Any) -> _HubProbe:
    """Look the model's Hugging Face repository up (one round trip) before a download.

    Only a failed connection (DNS, refused, timeout, proxy) blocks the download, and only for a model
    whose sole source is Hugging Face: fastembed would spend its retries on it and fail anyway. An answer,
    even a 429, a 401 or a 403 from a proxy that lets files through but not the API, says the Hub is
    there, and fastembed's download may well succeed (through its other requests, or the model's `url`
    source); a model with a `url` source is always tried."""
    sources = getattr(description, "sources", None)
    repository = getattr(sources, "hf", None)
    if not repository or getattr(sources, "url", None):
        return _HubProbe()
    try:
        from huggingface_hub import model_info

        model_info(repository, timeout=_PROBE_TIMEOUT_S)
    except Exception as exc:
        if _is_connection_failure(exc):
            return _HubProbe(unreachable=f"Hugging Face is unreachable: {short_reason(exc, 200)}")
        return _HubProbe(answer=short_reason(exc, 200))
    return _HubProbe()


def _is_connection_failure(exc: BaseException) -> bool:
    """Whether `exc` (or an exception it was raised from) is a failure to connect: DNS, refused, timeout, proxy."""
    failures = _connection_failure_types()
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, failures):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _connection_failure_types() -> tuple[type[BaseException], ...]:
    """The exceptions of a failed connection, for the HTTP library huggingface_hub is built on. (Not OSError
    as a whole: huggingface_hub's HfHubHTTPError, raised for any HTTP error status, is one.)"""
    stdlib: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, socket.gaierror)
    try:
        from huggingface_hub.utils import httpx  # whichever of httpx and httpx2 huggingface_hub uses
    except ImportError:
        return stdlib
    return (*stdlib, httpx.ConnectError, httpx.TimeoutException, httpx.ProxyError)


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
    copied_from: Path | None = None  # the old temporary cache they were copied from, when they were


def _copy_from_legacy_cache(model: str, cache: Path) -> Fetched | None:
    """A model found in the old default cache (in the temporary directory, which tmp cleaners empty),
    copied into the persistent `cache`; None when it is not there."""
    legacy = legacy_cache_dir()
    found = find_cached(model, legacy)
    if found is None:
        return None
    top = legacy / found.relative_to(legacy).parts[0]  # the model's own directory in the cache
    try:
        cache.mkdir(parents=True, exist_ok=True)
        # symlinks=True: a Hugging Face cache links snapshots to blobs relatively, and they stay valid.
        shutil.copytree(top, cache / top.name, symlinks=True, dirs_exist_ok=True)
    except OSError as exc:
        raise EmbeddingUnavailableError(
            f'The fastembed model "{model}" is in the old cache at {legacy} but could not be copied to {cache} '
            f"({short_reason(exc)}): check that {cache} is writable, or set FASTEMBED_CACHE_PATH to {legacy}."
        ) from exc
    copied = find_cached(model, cache)
    if copied is None:
        raise EmbeddingUnavailableError(
            f'The fastembed model "{model}" was copied from the old cache at {legacy} to {cache}, but is not '
            f"usable there: delete {cache / top.name} and run `aletheia-mcp models download` again."
        )
    return Fetched(model, cache, copied, downloaded=False, copied_from=legacy)


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
    if cache == default_cache_dir():
        moved = _copy_from_legacy_cache(model, cache)
        if moved is not None:
            return moved
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
