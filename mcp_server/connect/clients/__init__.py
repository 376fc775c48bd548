"""The clients `connect` knows, one module each: where each keeps its MCP servers and hooks per scope
(each module cites the client's documentation), and which of its hook events run which of ours."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mcp_server.connect.parts import Part
from mcp_server.errors import ConfigurationError

Scope = Literal["project", "user"]


@dataclass(frozen=True)
class Places:
    """Where things are on this machine: the user's home, the repository root (None outside one),
    the environment (CLAUDE_CONFIG_DIR, CODEX_HOME, XDG_CONFIG_HOME, APPDATA) and the platform."""

    home: Path
    root: Path | None
    environ: Mapping[str, str]
    platform: str  # sys.platform

    def project_root(self, client: str) -> Path:
        if self.root is None:
            raise ConfigurationError(f"not inside a git repository, so there is no project to connect {client} to: "
                                     f"run this at the repository, or use `--scope user`.")
        return self.root

    @property
    def hooks_run(self) -> bool:
        """Whether our hooks can run here: not on Windows, where the hook command's client has no Unix
        socket to reach its server by and no fcntl to lock with (mcp_server/hooks/client.py)."""
        return self.platform != "win32"

    def app_config_dir(self) -> Path:
        """Where desktop applications keep their settings (Electron's `appData`)."""
        if self.platform == "darwin":
            return self.home / "Library" / "Application Support"
        if self.platform.startswith("win"):
            return Path(self.environ.get("APPDATA") or self.home / "AppData" / "Roaming")
        return Path(self.environ.get("XDG_CONFIG_HOME") or self.home / ".config")


@dataclass(frozen=True)
class Client:
    name: str
    scopes: tuple[Scope, ...]
    parts: Callable[[Scope, Places], list[Part]]
    hint: Callable[[Scope, Places], str | None] = lambda scope, places: None


def _load() -> dict[str, Client]:
    from mcp_server.connect.clients import claude_code, claude_desktop, codex, cursor, gemini, vscode

    return {c.name: c for c in (claude_code.CLIENT, claude_desktop.CLIENT, cursor.CLIENT, codex.CLIENT,
                                gemini.CLIENT, vscode.CLIENT)}


CLIENTS: dict[str, Client] = _load()


def client_named(name: str) -> Client:
    try:
        return CLIENTS[name]
    except KeyError:
        raise ConfigurationError(f"unknown client {name!r}; use one of: {', '.join(CLIENTS)}.") from None
