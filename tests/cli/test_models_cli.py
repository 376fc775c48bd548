"""`aletheia-mcp models download` as a person runs it: offline it fails with one clear line; with the
model already in the cache it says where, and that the copy loads. No model is downloaded here: the
cache is the tiny model of tests/embeddings/tiny_model.py laid out as a Hugging Face download."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.embeddings.tiny_model import build_cached_model
from tests.helpers import clean_env

MODEL = "BAAI/bge-small-en-v1.5"


def models_download(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The command without network: Hugging Face at a closed local port, and no HF_HUB_OFFLINE unless given."""
    environment = clean_env(HF_ENDPOINT="http://127.0.0.1:1", COLUMNS="400", TMPDIR=str(cwd),
                            XDG_CACHE_HOME=str(cwd / "xdg"), **env)
    for name in ("HF_HUB_OFFLINE", "FASTEMBED_CACHE_PATH", "EMBEDDING_MODEL_PATH", "EMBEDDING_CACHE_DIR"):
        if name not in env:
            environment.pop(name, None)
    return subprocess.run([sys.executable, "-m", "mcp_server", "models", "download", *args], cwd=cwd,
                          env=environment, capture_output=True, text=True, timeout=60)


def test_offline_it_fails_with_the_reason_and_what_to_do(cli_cwd: Path) -> None:
    result = models_download(cli_cwd)
    assert result.returncode == 1, result.stdout + result.stderr
    cache = cli_cwd / "xdg" / "aletheia" / "fastembed"  # the default cache, in the user's cache directory
    assert f'"{MODEL}" is not in the cache at {cache} and could not be downloaded' in result.stderr
    assert "Hugging Face is unreachable: ConnectError" in result.stderr
    assert "HTTPS_PROXY" in result.stderr and "FASTEMBED_CACHE_PATH" in result.stderr
    assert "Traceback" not in result.stderr and "sleeping" not in result.stderr and result.stdout == ""


def test_hub_offline_says_it_will_not_download(cli_cwd: Path) -> None:
    result = models_download(cli_cwd, HF_HUB_OFFLINE="1")
    assert result.returncode == 1
    assert "HF_HUB_OFFLINE forbids downloading it" in result.stderr and "Traceback" not in result.stderr


def test_a_filled_cache_is_already_there_and_loads(cli_cwd: Path, tmp_path: Path) -> None:
    cache = tmp_path / "models"
    build_cached_model(cache)
    result = models_download(cli_cwd, FASTEMBED_CACHE_PATH=str(cache))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f'"{MODEL}" is already in the fastembed cache at {cache}; it loads.' in result.stdout
    assert f"copy {cache} to it and set FASTEMBED_CACHE_PATH" in result.stdout
    assert "Model files: " + str(cache / "models--Qdrant--bge-small-en-v1.5-onnx-Q" / "snapshots") in result.stdout


def test_cache_dir_option_is_where_it_looks(cli_cwd: Path, tmp_path: Path) -> None:
    cache = tmp_path / "for-the-airgapped-box"
    build_cached_model(cache)
    result = models_download(cli_cwd, "--cache-dir", str(cache))
    assert result.returncode == 0, result.stderr
    assert f"already in the fastembed cache at {cache}" in result.stdout


def test_a_damaged_cache_is_named(cli_cwd: Path, tmp_path: Path) -> None:
    cache = tmp_path / "models"
    build_cached_model(cache)
    for onnx in cache.rglob("model_optimized.onnx"):
        onnx.write_bytes(b"not a model")
    result = models_download(cli_cwd, FASTEMBED_CACHE_PATH=str(cache))
    assert result.returncode == 1
    assert f"is in the cache at {cache} but could not be loaded" in result.stderr
    assert "Delete that directory and run `aletheia-mcp models download` again" in result.stderr


def test_providers_without_a_model_file(cli_cwd: Path) -> None:
    hashing = models_download(cli_cwd, EMBEDDING_PROVIDER="hashing")
    assert hashing.returncode == 0 and "EMBEDDING_PROVIDER is hashing: there is no model to download" in hashing.stdout
    other = models_download(cli_cwd, EMBEDDING_PROVIDER="sentence-transformers")
    assert other.returncode == 1 and "fetches fastembed models" in other.stderr
