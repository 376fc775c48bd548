"""What the hook client and server share: the lists that must match the rest of the package, the server
key, the socket directory's safety, and the hooks log."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mcp_server.hooks import client as hook_client
from mcp_server.hooks.clients import ADAPTERS
from mcp_server.hooks.clients.base import EVENTS as ADAPTER_EVENTS
from mcp_server.hooks.protocol import (
    CLIENTS,
    EVENTS,
    SETTING_VARIABLES,
    HookFailure,
    runtime_directory,
    server_key,
    settings_file,
)
from mcp_server.settings import _setting_names, default_env_file


def test_the_key_covers_every_setting() -> None:
    """A setting missing here would let two configurations share one server."""
    assert _setting_names() == SETTING_VARIABLES


def test_events_and_clients_match_the_adapters() -> None:
    assert set(CLIENTS) == set(ADAPTERS)
    assert EVENTS == ADAPTER_EVENTS


@pytest.mark.parametrize("xdg_config_home", [None, "", "  ", "/somewhere/config"])
def test_the_settings_file_is_the_one_settings_reads(monkeypatch: pytest.MonkeyPatch,
                                                     xdg_config_home: str | None) -> None:
    monkeypatch.delenv("ALETHEIA_ENV_FILE", raising=False)
    if xdg_config_home is None:
        monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CONFIG_HOME", xdg_config_home)
    assert settings_file(os.environ) == str(default_env_file())


def test_the_key_follows_the_configuration(tmp_path: Path) -> None:
    env_file = tmp_path / "aletheia.env"
    env_file.write_text("DATABASE_URL=postgresql://a/b\n")
    base = {"ALETHEIA_ENV_FILE": str(env_file), "DATABASE_URL": "postgresql://x/y", "PATH": "/bin"}
    key = server_key(base)
    assert server_key(base | {"PATH": "/usr/bin", "TERM": "xterm"}) == key  # not ours
    assert server_key(base | {"HOOK_START_TIMEOUT_S": "30"}) == key  # read by the client only
    assert server_key(base | {"DATABASE_URL": "postgresql://x/z"}) != key
    assert server_key(base | {"embedding_provider": "hashing"}) != key  # (any case, as pydantic-settings reads)
    assert server_key(base | {"PGPASSWORD": "other"}) != key  # libpq's variables reach the driver
    env_file.write_text("DATABASE_URL=postgresql://a/c\n")
    assert server_key(base) != key  # the settings file's content


def test_an_unsafe_socket_directory_is_refused(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    (runtime / "aletheia").mkdir(parents=True, mode=0o755)
    (runtime / "aletheia").chmod(0o755)  # (mkdir's mode is filtered by the umask)
    with pytest.raises(HookFailure, match="only you can open"):
        runtime_directory({"XDG_RUNTIME_DIR": str(runtime)})
    (runtime / "aletheia").chmod(0o700)
    assert runtime_directory({"XDG_RUNTIME_DIR": str(runtime)}) == str(runtime / "aletheia")


def test_a_new_socket_directory_is_private(tmp_path: Path) -> None:
    directory = Path(runtime_directory({"XDG_RUNTIME_DIR": str(tmp_path)}))
    assert directory.stat().st_mode & 0o777 == 0o700


def test_the_hooks_log_is_rotated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ALETHEIA_DATA_DIR", str(tmp_path))
    log = tmp_path / "logs" / "hooks.log"
    log.parent.mkdir()
    log.write_text("x" * (hook_client.HOOKS_LOG_MAX_BYTES + 1) + "\n")
    hook_client.report_failure("prompt", "claude-code", "the database\nis down")
    assert (tmp_path / "logs" / "hooks.log.1").stat().st_size > hook_client.HOOKS_LOG_MAX_BYTES
    [line] = log.read_text().splitlines()
    assert line.endswith("aletheia-mcp hook prompt --client claude-code: the database is down")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "aletheia-mcp hook prompt --client claude-code: the database is down\n"


def test_the_data_dir_may_come_from_the_settings_file(tmp_path: Path) -> None:
    env_file = tmp_path / "aletheia.env"
    env_file.write_text(f"ALETHEIA_DATA_DIR={tmp_path / 'data'}\nHOOK_START_TIMEOUT_S=3\n")
    environ = {"ALETHEIA_ENV_FILE": str(env_file)}
    assert hook_client.data_dir(environ) == str(tmp_path / "data")
    assert hook_client.start_timeout(environ) == 3.0
    assert hook_client.start_timeout(environ | {"HOOK_START_TIMEOUT_S": "nonsense"}) == 10.0


def test_a_failed_start_is_remembered_for_a_while(tmp_path: Path) -> None:
    marker = str(tmp_path / "hooks-k.failed")
    assert hook_client.recent_start_failure(marker) is None  # none recorded
    now = time.time()
    hook_client.remember_start_failure(marker, "(exit status 1): error: the database is down", now - 10)
    failure = hook_client.recent_start_failure(marker)
    assert failure is not None
    assert str(failure).startswith("the hook server failed to start 10 s ago; the next try is in 20 s")
    assert str(failure).endswith(f"(to try now, delete {marker}); it stopped (exit status 1): error: the database "
                                 "is down")
    for when in (now - hook_client.START_RETRY_S - 1, now + 60):  # expired; from a clock that was set back
        hook_client.remember_start_failure(marker, "r", when)
        assert hook_client.recent_start_failure(marker) is None
    for garbage in ("", "not json", "[]", '{"time": "soon", "reason": "r"}', '{"reason": "r"}'):
        Path(marker).write_text(garbage)
        assert hook_client.recent_start_failure(marker) is None  # unreadable: a start is tried, and rewrites it
