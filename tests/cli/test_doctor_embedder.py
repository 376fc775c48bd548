"""`aletheia-mcp doctor` loads the embedder and embeds one text, and says what to do when it cannot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.embeddings.tiny_model import build_cached_model
from tests.fake_embeddings_api import running_api
from tests.helpers import clean_env, free_port


def doctor(cwd: Path, database_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    """doctor without network: Hugging Face at a closed local port, the default cache in `cwd`/xdg."""
    environment = clean_env(DATABASE_URL=database_url, HF_ENDPOINT="http://127.0.0.1:1", TMPDIR=str(cwd),
                            XDG_CACHE_HOME=str(cwd / "xdg"), COLUMNS="400", **env)
    for name in ("HF_HUB_OFFLINE", "FASTEMBED_CACHE_PATH", "EMBEDDING_MODEL_PATH", "EMBEDDING_CACHE_DIR"):
        if name not in env:
            environment.pop(name, None)
    return subprocess.run([sys.executable, "-m", "mcp_server", "doctor"], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=120)


def test_default_model_missing_offline_fails_and_says_how_to_fetch_it(database_url: str, cli_cwd: Path) -> None:
    result = doctor(cli_cwd, database_url)
    assert result.returncode == 1
    line = next(line for line in result.stdout.splitlines() if "embedder" in line)
    assert line.startswith("FAIL embedder: The fastembed model \"BAAI/bge-small-en-v1.5\" is not in the cache at "
                           f"{cli_cwd / 'xdg' / 'aletheia' / 'fastembed'}")
    assert "aletheia-mcp models download" in line and "FASTEMBED_CACHE_PATH" in line
    assert "1 problem(s) found." in result.stdout  # the database is fine
    assert "ERROR" not in result.stderr and "Traceback" not in result.stderr


def test_a_cached_model_passes(database_url: str, cli_cwd: Path, tmp_path: Path) -> None:
    build_cached_model(tmp_path / "cache")
    result = doctor(cli_cwd, database_url, FASTEMBED_CACHE_PATH=str(tmp_path / "cache"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert ('ok   embedder: the fastembed embedder (model "BAAI/bge-small-en-v1.5") loads and embeds '
            "(384 dimensions)") in result.stdout


def test_an_api_that_is_down_fails_and_one_that_answers_passes(database_url: str, cli_cwd: Path) -> None:
    api = {"EMBEDDING_PROVIDER": "openai", "EMBEDDING_MODEL": "fake-embed", "EMBEDDING_DIM": "384",
           "EMBEDDING_MAX_RETRIES": "0"}
    closed = doctor(cli_cwd, database_url, EMBEDDING_API_BASE=f"http://127.0.0.1:{free_port()}/v1", **api)
    assert closed.returncode == 1
    assert "FAIL embedder: The embeddings API at http://127.0.0.1:" in closed.stdout
    assert "Check that the service is up and reachable and EMBEDDING_API_BASE is right" in closed.stdout

    with running_api(384) as server:
        answered = doctor(cli_cwd, database_url, EMBEDDING_API_BASE=server.base_url, **api)
        assert server.received, "doctor made no embedding call"
    assert answered.returncode == 0, answered.stdout + answered.stderr
    assert ('ok   embedder: the openai embedder (model "fake-embed") loads and embeds (384 dimensions)'
            in answered.stdout)
