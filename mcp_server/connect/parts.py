"""What `connect` puts in a client's files, one part at a time: the MCP server entry and the hooks.

Each part knows its file and format, and does three things to the parsed file: `connect` (make ours
what it should be, touching nothing when it already is), `disconnect` (remove ours and only ours) and
`describe` (what of ours is there, for `connect --list`). Ours is recognised by content, never by
position: the server entry named SERVER_NAME, and hook commands of the exact form the contract fixes,
`"<aletheia-mcp>" hook <event> --client <client>`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import tomlkit
import tomlkit.exceptions
from tomlkit.items import InlineTable, Table

from mcp_server.connect.jsonedit import JsonDocument, Key
from mcp_server.errors import ConfigurationError

SERVER_NAME = "aletheia"
SERVER_ARGS = ["serve"]
# The server's environment: empty on purpose. Settings belong in the user's settings file
# (~/.config/aletheia/.env), the one place that the server (whatever environment the client gives
# it: Codex passes a short whitelist, Claude Desktop none of the shell's) and the hooks (whose
# commands carry no environment of their own) both read, so they always agree on the database and
# the user. Nothing written here can leak a password or an API key into a committed project file.
SERVER_ENV: dict[str, str] = {}
_OUR_HOOK = re.compile(r'^"(?P<command>[^"]+)" hook (?P<event>[a-z-]+) --client (?P<client>[a-z-]+)$')
# What a POSIX shell still reads inside double quotes. Only a hook is a shell command line (the
# client runs it with `sh -c`); a server entry is an argument list, so any path is fine there.
SHELL_SPECIAL = '"$`\\'


def hook_command(executable: str, event: str, client: str) -> str:
    if any(c in executable for c in SHELL_SPECIAL):
        raise ConfigurationError(
            f"the command's path {executable} holds a character a shell reads inside double quotes "
            '(" $ ` \\), and a hook is a shell command line; nothing was written. Install aletheia-mcp under '
            "another path (a client without hooks, vscode or claude-desktop, takes this one as it is).")
    return f'"{executable}" hook {event} --client {client}'


def ours(command: object, client: str) -> bool:
    match = _OUR_HOOK.match(command) if isinstance(command, str) else None
    return match is not None and match.group("client") == client


@dataclass(frozen=True)
class Hook:
    native: str  # the client's event name
    event: str  # ours: session-start, prompt, file, stop
    matcher: str | None = None


class Part(ABC):
    path: Path
    format: Literal["json", "jsonc", "toml"]
    registers_hooks: ClassVar[bool] = False  # registers hooks (left out where hooks cannot run: Windows)
    personal: bool = False  # a file of the user's own, never committed (Claude Code's settings.local.json)

    @abstractmethod
    def connect(self, document: Any, executable: str) -> None: ...

    @abstractmethod
    def disconnect(self, document: Any) -> None: ...

    @abstractmethod
    def describe(self, document: Any) -> Description | None: ...


@dataclass(frozen=True)
class Description:
    """What of ours a file holds (for `connect --list`), and the command it runs."""

    text: str
    command: str | None


def load(path: Path, text: str | None, format: str) -> Any:
    if format == "toml":
        try:
            return tomlkit.parse(text or "")
        except tomlkit.exceptions.ParseError as exc:
            raise ConfigurationError(f"{path}: it is not valid TOML ({exc}); nothing was written. Fix or move the "
                                     "file, then run the command again.") from None
    return JsonDocument(text or "", path, comments=format == "jsonc")


def dump(document: Any) -> str:
    return document.text if isinstance(document, JsonDocument) else tomlkit.dumps(document)


def server_entry(existing: object, executable: str, extra: dict[str, str]) -> dict[str, Any]:
    """Our entry: the existing one (its other fields, and any `env` the user added, kept) with our
    command and arguments."""
    entry: dict[str, Any] = dict(existing) if isinstance(existing, dict) else {}
    return {**extra, **entry, **extra, "command": executable, "args": SERVER_ARGS,
            "env": entry.get("env", dict(SERVER_ENV))}


@dataclass
class JsonServer(Part):
    """`<container>.aletheia = {command, args, env}` in a JSON file (`mcpServers`, VS Code's `servers`)."""

    path: Path
    container: tuple[str, ...] = ("mcpServers",)
    format: Literal["json", "jsonc", "toml"] = "json"
    extra: dict[str, str] = field(default_factory=dict)  # e.g. VS Code's "type": "stdio"

    def connect(self, document: JsonDocument, executable: str) -> None:
        keys = (*self.container, SERVER_NAME)
        existing = document.get(keys)
        wanted = server_entry(existing, executable, self.extra)
        if existing != wanted:
            document.set(keys, wanted)

    def disconnect(self, document: JsonDocument) -> None:
        if document.get((*self.container, SERVER_NAME)) is not None:
            document.remove((*self.container, SERVER_NAME))
            _prune(document, self.container)

    def describe(self, document: JsonDocument) -> Description | None:
        entry = document.get((*self.container, SERVER_NAME))
        return _describe_server(entry) if isinstance(entry, dict) else None


@dataclass
class JsonHooks(Part):
    """Hook registrations in a JSON file. `nested` (Claude Code, Codex, Gemini CLI): each event holds
    groups `{matcher?, hooks: [{type: command, command}]}`, and ours is a group of its own; `flat`
    (Cursor): each event holds entries `{command, matcher?}`."""

    path: Path
    client: str  # the hook command's --client
    hooks: tuple[Hook, ...]
    style: Literal["nested", "flat"] = "nested"
    format: Literal["json", "jsonc", "toml"] = "json"
    header: dict[str, Any] = field(default_factory=dict)  # members the file must have (Cursor: version 1)
    personal: bool = False
    registers_hooks: ClassVar[bool] = True

    def connect(self, document: JsonDocument, executable: str) -> None:
        for key, value in self.header.items():
            if key not in document.value:
                document.set((key,), value)
        events = document.get(("hooks",))
        if events is not None and not isinstance(events, dict):
            raise ConfigurationError(f"{self.path}: `hooks` is not an object; nothing was written.")
        wanted = {hook.native: self._entry(hook, executable) for hook in self.hooks}
        for native in [*(events or {}), *(n for n in wanted if n not in (events or {}))]:
            found = self._ours(document, native)
            entries = document.get(("hooks", native)) or []
            if native in wanted and len(found) == 1 and entries[found[0][0]] == wanted[native]:
                continue  # already exactly ours
            self._remove(document, native, found)
            if native in wanted:
                document.append(("hooks", native), wanted[native])
        _prune(document, ("hooks",))

    def disconnect(self, document: JsonDocument) -> None:
        for native in list(document.get(("hooks",)) or {}):
            self._remove(document, native, self._ours(document, native))
        _prune(document, ("hooks",))

    def describe(self, document: JsonDocument) -> Description | None:
        present = [native for native in (document.get(("hooks",)) or {}) if self._ours(document, native)]
        if not present:
            return None
        index, inner = self._ours(document, present[0])[0]
        entry = document.get(("hooks", present[0], index))
        command = entry["command"] if inner is None else entry["hooks"][inner]["command"]
        match = _OUR_HOOK.match(command)
        return Description(f"hooks for {', '.join(present)}", match.group("command") if match else None)

    def _entry(self, hook: Hook, executable: str) -> dict[str, Any]:
        command = hook_command(executable, hook.event, self.client)
        matcher = {} if hook.matcher is None else {"matcher": hook.matcher}
        if self.style == "flat":
            return {"command": command, **matcher}
        return {**matcher, "hooks": [{"type": "command", "command": command}]}

    def _ours(self, document: JsonDocument, native: str) -> list[tuple[int, int | None]]:
        """(entry index, hook index inside a nested group) of each of our hooks under `native`."""
        entries = document.get(("hooks", native))
        if not isinstance(entries, list):
            return []
        found: list[tuple[int, int | None]] = []
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                continue
            if self.style == "flat" and ours(entry.get("command"), self.client):
                found.append((index, None))
            elif self.style == "nested" and isinstance(entry.get("hooks"), list):
                found += [(index, i) for i, h in enumerate(entry["hooks"])
                          if isinstance(h, dict) and ours(h.get("command"), self.client)]
        return found

    def _remove(self, document: JsonDocument, native: str, found: list[tuple[int, int | None]]) -> None:
        """Remove our hooks (last first, so indexes stay right) and any group they leave empty."""
        for index, inner in sorted(found, key=lambda f: (f[0], -1 if f[1] is None else f[1]), reverse=True):
            if inner is not None:
                document.remove(("hooks", native, index, "hooks", inner))
                if document.get(("hooks", native, index, "hooks")):
                    continue
            document.remove(("hooks", native, index))
        if found and document.get(("hooks", native)) == []:
            document.remove(("hooks", native))


@dataclass
class Retired(Part):
    """A place `connect` wrote to before and writes to no more (Claude Code's project hooks were in
    the shared .claude/settings.json): `connect` and `disconnect` both remove ours from it, and
    `connect --list` still shows what is there, so an earlier connect can always be undone."""

    part: Part
    path: Path = field(init=False)
    format: Literal["json", "jsonc", "toml"] = field(init=False)

    def __post_init__(self) -> None:
        self.path, self.format = self.part.path, self.part.format

    def connect(self, document: Any, executable: str) -> None:
        self.part.disconnect(document)

    def disconnect(self, document: Any) -> None:
        self.part.disconnect(document)

    def describe(self, document: Any) -> Description | None:
        return self.part.describe(document)


def _describe_server(entry: dict[str, Any]) -> Description:
    command = entry.get("command")
    args = entry.get("args")
    args = args if isinstance(args, list) else []
    return Description(f"server `{' '.join(str(a) for a in args)}`", command if isinstance(command, str) else None)


def _prune(document: JsonDocument, keys: tuple[str, ...]) -> None:
    """Remove the containers on `keys` that are now empty (ours left nothing in them)."""
    for depth in range(len(keys), 0, -1):
        if document.get(keys[:depth]) in ({}, []):
            document.remove(keys[:depth])


@dataclass
class CodexToml(Part):
    """Codex's `config.toml`: `[mcp_servers.aletheia]`, and `[features] codex_hooks = true`, which
    Codex needs before it runs any hook (left in place by `disconnect`: other hooks may need it)."""

    path: Path
    enable_hooks: bool = True  # False where hooks cannot run (Windows): the feature stays as it is
    format: Literal["json", "jsonc", "toml"] = "toml"

    def connect(self, document: tomlkit.TOMLDocument, executable: str) -> None:
        servers = _table(document, "mcp_servers", super_table=True)
        existing = servers.get(SERVER_NAME)
        plain = existing.unwrap() if isinstance(existing, Table | InlineTable) else existing
        wanted = server_entry(plain, executable, {})
        if plain != wanted:
            entry = tomlkit.table()
            for key, value in wanted.items():
                entry[key] = tomlkit.inline_table() if key == "env" and not value else value
            servers[SERVER_NAME] = entry
        if self.enable_hooks:
            features = _table(document, "features", super_table=False)
            if features.get("codex_hooks") is not True:
                features["codex_hooks"] = True

    def disconnect(self, document: tomlkit.TOMLDocument) -> None:
        servers = document.get("mcp_servers")
        if isinstance(servers, Table) and SERVER_NAME in servers:
            del servers[SERVER_NAME]
            if not servers:
                del document["mcp_servers"]

    def describe(self, document: tomlkit.TOMLDocument) -> Description | None:
        servers = document.get("mcp_servers")
        entry = servers.get(SERVER_NAME) if isinstance(servers, Table) else None
        return _describe_server(entry.unwrap()) if isinstance(entry, Table | InlineTable) else None


def _table(document: tomlkit.TOMLDocument, name: str, *, super_table: bool) -> Table:
    found = document.get(name)
    if found is None:
        found = tomlkit.table(is_super_table=super_table)
        document[name] = found
    if not isinstance(found, Table):
        raise ConfigurationError(f"`{name}` in the Codex configuration is not a table; nothing was written.")
    return found


__all__ = ["SERVER_NAME", "CodexToml", "Description", "Hook", "JsonHooks", "JsonServer", "Key", "Part", "Retired",
           "dump", "hook_command", "load"]
