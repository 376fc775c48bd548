"""fastembed's cache and downloads: what blocks a download (only a Hub that cannot be connected to), and
where the model is kept (the user's cache directory, not the temporary one; an old copy there is still used).

No model comes from the internet: the Hub is a loopback fake of the test's own (HF_ENDPOINT, read by
huggingface_hub when it is imported, hence the subprocesses), and the model is tests/embeddings/tiny_model.py.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mcp_server.embeddings import load_embedder
from mcp_server.embeddings.fastembed_cache import cache_dir, default_cache_dir
from mcp_server.settings import Settings
from tests.embeddings.tiny_model import build_cached_model, build_tiny_model, expected_vector
from tests.helpers import LoopbackHTTPServer, clean_env, free_port

MODEL = "BAAI/bge-small-en-v1.5"
ARCHIVE = "/models/tiny.tar.gz"


class FakeHub(LoopbackHTTPServer):
    """Hugging Face answering every request with `status` (a rate limit, a missing token...), next to a
    plain file server holding the tiny model as a fastembed `url` source archive."""

    def __init__(self, status: int, archive: bytes) -> None:
        self.status = status
        self.archive = archive
        self.hub_requests: list[str] = []
        self.archive_requests = 0
        self._lock = threading.Lock()
        super().__init__(self._handler_class())

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == ARCHIVE:
                    with hub._lock:
                        hub.archive_requests += 1
                    self._send(200, hub.archive, "application/gzip")
                    return
                with hub._lock:
                    hub.hub_requests.append(self.path)
                body = json.dumps({"error": f"fake hub says {hub.status}"}).encode()
                self._send(hub.status, body, "application/json")

            do_HEAD = do_GET

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Keep the test output quiet."""

        return Handler


def tiny_archive(work: Path) -> bytes:
    """The tiny model as fastembed's `url` sources ship it: a tar.gz of one directory named after the model."""
    build_tiny_model(work / "tiny")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(work / "tiny", arcname="tiny")
    return buffer.getvalue()


@contextmanager
def fake_hub(status: int, work: Path) -> Iterator[FakeHub]:
    with FakeHub(status, tiny_archive(work)) as hub:
        yield hub


FETCH = """
import sys
from pathlib import Path

from fastembed import TextEmbedding
from fastembed.common.model_description import ModelSource, PoolingType

from mcp_server.embeddings.fastembed_cache import fetch
from mcp_server.errors import EmbeddingUnavailableError

model, url, cache = sys.argv[1:]
if url:  # a model with a `url` source next to its Hugging Face one (as some of fastembed's own have)
    TextEmbedding.add_custom_model("acme/tiny", pooling=PoolingType.CLS, normalization=True, dim=384,
                                   sources=ModelSource(hf="acme/tiny-onnx", url=url),
                                   model_file="model_optimized.onnx")
try:
    fetched = fetch(model, Path(cache))
except EmbeddingUnavailableError as exc:
    print("failed:", exc)
else:
    print("fetched:", fetched.files)
"""


def run_fetch(model: str, hub_url: str, cache: Path, tmp_path: Path, url: str = "") -> str:
    environment = clean_env(HF_ENDPOINT=hub_url, TMPDIR=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "xdg"),
                            NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    for name in ("HF_HUB_OFFLINE", "FASTEMBED_CACHE_PATH", "EMBEDDING_MODEL_PATH", "EMBEDDING_CACHE_DIR"):
        environment.pop(name, None)
    result = subprocess.run([sys.executable, "-c", FETCH, model, url, str(cache)], env=environment,
                            capture_output=True, text=True, timeout=120)  # (a guard against a hang)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("status", [429, 401])
def test_a_hub_that_answers_with_an_error_does_not_stop_the_download(status: int, tmp_path: Path) -> None:
    """Before: any error of the look-up (a rate limit, a missing token) was taken for an unreachable Hub,
    and fastembed's download was never tried."""
    with fake_hub(status, tmp_path / "work") as hub:
        output = run_fetch(MODEL, hub.url, tmp_path / "cache", tmp_path)
        lookups = [path for path in hub.hub_requests if path.startswith("/api/models/")]
    assert output.startswith(f'failed: The fastembed model "{MODEL}" is not in the cache at {tmp_path / "cache"} '
                             "and could not be downloaded"), output
    assert "unreachable" not in output
    assert f"Hugging Face answered the look-up of the model with {'HfHubHTTPError' if status == 429 else ''}" in output
    assert len(lookups) >= 2, hub.hub_requests  # our look-up, then fastembed's own download attempt


@pytest.mark.parametrize("status", [429, 401])
def test_a_model_with_a_url_source_is_downloaded_from_it_when_the_hub_answers_with_an_error(
        status: int, tmp_path: Path) -> None:
    with fake_hub(status, tmp_path / "work") as hub:
        output = run_fetch("acme/tiny", hub.url, tmp_path / "cache", tmp_path, url=hub.url + ARCHIVE)
        archive_requests = hub.archive_requests
    assert output.strip() == f"fetched: {tmp_path / 'cache' / 'tiny'}", output
    assert archive_requests == 1
    assert (tmp_path / "cache" / "tiny" / "model_optimized.onnx").is_file()


def test_a_model_with_a_url_source_is_downloaded_from_it_when_the_hub_cannot_be_connected_to(
        tmp_path: Path) -> None:
    """Before: the unreachable Hub blocked the download, though the `url` source was there."""
    with fake_hub(200, tmp_path / "work") as files:
        output = run_fetch("acme/tiny", f"http://127.0.0.1:{free_port()}", tmp_path / "cache", tmp_path,
                           url=files.url + ARCHIVE)
        assert files.archive_requests == 1
    assert output.strip() == f"fetched: {tmp_path / 'cache' / 'tiny'}", output


# --- where the model is kept ---------------------------------------------------------------------


@pytest.fixture
def isolated_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The user's cache directory and the temporary directory, both inside tmp_path: (persistent, old default)."""
    for name in ("FASTEMBED_CACHE_PATH", "EMBEDDING_MODEL_PATH", "EMBEDDING_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return tmp_path / "xdg" / "aletheia" / "fastembed", tmp_path / "tmp" / "fastembed_cache"


@pytest.mark.skipif(sys.platform != "linux", reason="the XDG layout of the user's cache directory is Linux's")
def test_the_default_cache_is_in_the_users_cache_directory(isolated_caches: tuple[Path, Path]) -> None:
    """Before: fastembed's default, in the temporary directory, which tmp cleaners empty."""
    persistent, _ = isolated_caches
    assert default_cache_dir() == persistent
    assert cache_dir(None) == persistent
    assert not str(cache_dir(None)).startswith(tempfile.gettempdir())


def test_fastembed_cache_path_still_overrides_the_default(isolated_caches: tuple[Path, Path],
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTEMBED_CACHE_PATH", str(tmp_path / "mine"))
    assert cache_dir(None) == tmp_path / "mine"
    assert cache_dir(tmp_path / "configured") == tmp_path / "configured"


@pytest.mark.anyio
async def test_a_model_left_in_the_old_temporary_cache_is_still_loaded(isolated_caches: tuple[Path, Path]) -> None:
    """Upgrading must not make anyone download the model again (offline here: HF_HUB_OFFLINE)."""
    persistent, old = isolated_caches
    table = build_cached_model(old)
    embedder = await load_embedder(Settings(_env_file=None, embedding_provider="fastembed", embedding_model=MODEL))
    np.testing.assert_allclose(await embedder.embed_query("vector search"), expected_vector(table, "vector"),
                               atol=1e-5)
    await embedder.aclose()
    assert not persistent.exists()  # loading reads; it never writes a cache


def test_models_download_moves_a_model_from_the_old_temporary_cache_to_the_persistent_one(tmp_path: Path) -> None:
    """`aletheia-mcp models download` with the default cache: the copy an earlier version left in the
    temporary directory is copied into the user's cache directory (no network: the Hub is a closed port),
    and it is what the command reports and what loads."""
    cwd, old, persistent = tmp_path / "cwd", tmp_path / "fastembed_cache", tmp_path / "xdg" / "aletheia" / "fastembed"
    cwd.mkdir()
    build_cached_model(old)
    environment = clean_env(HF_ENDPOINT=f"http://127.0.0.1:{free_port()}", TMPDIR=str(tmp_path),
                            XDG_CACHE_HOME=str(tmp_path / "xdg"), COLUMNS="400")
    for name in ("HF_HUB_OFFLINE", "FASTEMBED_CACHE_PATH", "EMBEDDING_MODEL_PATH", "EMBEDDING_CACHE_DIR"):
        environment.pop(name, None)
    result = subprocess.run([sys.executable, "-m", "mcp_server", "models", "download"], cwd=cwd, env=environment,
                            capture_output=True, text=True, timeout=120)  # (a guard against a hang)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (f'Copied "{MODEL}" from the old cache at {old} (in the temporary directory, which may be emptied) '
            f"into the fastembed cache at {persistent}; it loads.") in result.stdout
    assert f"Model files: {persistent / 'models--Qdrant--bge-small-en-v1.5-onnx-Q' / 'snapshots'}" in result.stdout
    assert f"copy {persistent} to it and set FASTEMBED_CACHE_PATH" in result.stdout
    assert any(persistent.rglob("model_optimized.onnx"))
