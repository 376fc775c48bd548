"""`aletheia-mcp connect|disconnect CLIENT`: write (or remove) a client's MCP server entry and hooks.

`plan(...)` computes one FileChange per file the client keeps them in, without writing anything;
the command shows them (--dry-run) or writes them (`files.write`). Each file is parsed once and every
part of ours in it applied in turn (Gemini CLI keeps servers and hooks in one settings.json), so a
malformed file fails before anything is written, and running `connect` twice changes nothing.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from mcp_server.connect import files
from mcp_server.connect.clients import CLIENTS, Client, Places, Scope, client_named
from mcp_server.connect.files import FileChange
from mcp_server.connect.ignore import exclusion
from mcp_server.connect.parts import Description, Part, Retired, dump, load
from mcp_server.errors import ConfigurationError

__all__ = ["CLIENTS", "HOOKS_NEED_POSIX", "FileChange", "Places", "Plan", "Scope", "Status", "default_scope", "plan",
           "running_executable", "status", "write"]

write = files.write


def default_scope(client: Client) -> Scope:
    return "project" if "project" in client.scopes else client.scopes[0]


@dataclass(frozen=True)
class Plan:
    changes: list[FileChange]  # one per file, changed or not
    notes: list[str]  # what the user should know about them


def plan(client_name: str, scope: Scope, places: Places, executable: str | None, *, remove: bool,
         follow_symlinks: bool = False) -> Plan:
    """The change to each of the client's files: ours made current (`executable`), or removed.

    In project scope a file reached through a symlink that leads outside the repository is refused
    (the repository chose that link) unless `follow_symlinks`; nothing is read or written then."""
    client = client_named(client_name)
    if scope not in client.scopes:
        raise ConfigurationError(f"{client.name} has no {scope} scope; use --scope {' or '.join(client.scopes)}.")
    root = places.project_root(client.name) if scope == "project" else None
    parts = client.parts(scope, places)
    notes = []
    if not remove and not places.hooks_run and any(part.registers_hooks for part in parts):
        parts = [part for part in parts if not part.registers_hooks]
        notes.append(f"{client.name}'s hooks are not registered: {HOOKS_NEED_POSIX} The MCP server entry is written, "
                     "and its tools work as usual.")
    changes = []
    for path, file_parts in _by_file(parts).items():
        if root is not None:
            notes += _outside(path, root, follow_symlinks)
        before = files.read(path)
        if before is None and remove:
            continue
        document = load(path, before, file_parts[0].format)
        for part in file_parts:
            if remove:
                part.disconnect(document)
            else:
                assert executable is not None
                part.connect(document, executable)
        after = dump(document)
        if before is None and after.strip() in ("", "{}"):
            continue
        change = FileChange(path, before, after)
        changes.append(change)
        if change.changed and not remove and any(isinstance(part, Retired) for part in file_parts):
            moved = _personal(parts)
            notes.append(f"our hooks were removed from {path}, which the team shares"
                         + (f": they are in {moved} now." if moved else "."))
    if root is not None and not remove:
        notes += _keep_out_of_git(root, parts, changes)
        shared = list(dict.fromkeys(str(p.path) for p in parts if not p.personal and not isinstance(p, Retired)))
        if shared:
            one = len(shared) == 1
            notes.append(f"{', '.join(shared)} name{'s' if one else ''} this machine's path of aletheia-mcp "
                         f"({executable}): commit {'it' if one else 'them'} only if everyone on the team installs "
                         f"aletheia-mcp at that same path; otherwise keep {'it' if one else 'them'} out of git, or "
                         f"use `aletheia-mcp connect {client.name} --scope user` instead.")
    return Plan(changes, notes)


# Why hooks are left out on Windows (mcp_server/hooks/client.py).
HOOKS_NEED_POSIX = ("the hook command reaches its server over a Unix socket and locks with fcntl, which "
                    "aletheia-mcp does not support on Windows.")


def _outside(path: Path, root: Path, follow_symlinks: bool) -> list[str]:
    escape = files.link_outside(path, root)
    if escape is None:
        return []
    link, real = escape
    if not follow_symlinks:
        raise ConfigurationError(
            f"{link} is a symlink that leads outside the repository {root}, so the change to {path} would be "
            f"written at {real}; nothing was written. A cloned repository chooses its own symlinks: check this "
            "one, then run the command again with --follow-symlinks to write there, or remove the link.")
    return [] if link == path else [f"{link} is a symlink: the change to {path} goes to {real}."]


def _personal(parts: list[Part]) -> str:
    return ", ".join(str(part.path) for part in parts if part.personal)


def _keep_out_of_git(root: Path, parts: list[Part], changes: list[FileChange]) -> list[str]:
    """Add to `changes` what makes git ignore our personal files; a note when git cannot tell."""
    notes = []
    for part in parts:
        if not part.personal:
            continue
        found = exclusion(root, part.path)
        if isinstance(found, FileChange):
            changes.append(found)
        elif found is not None:
            notes.append(f"{part.path} names this machine's path of aletheia-mcp and must not be committed, "
                         f"but whether git ignores it is unknown ({found}): add it to .gitignore.")
    return notes


@dataclass(frozen=True)
class Status:
    client: str
    scope: Scope
    path: Path
    what: Description | None  # None: nothing of ours
    error: str | None = None


def status(places: Places) -> list[Status]:
    """What of ours each client's files hold, per scope (a project scope only inside a repository)."""
    found = []
    for client in CLIENTS.values():
        for scope in client.scopes:
            if scope == "project" and places.root is None:
                continue
            for path, parts in _by_file(client.parts(scope, places)).items():
                escape = files.link_outside(path, places.root) if scope == "project" and places.root else None
                if escape is not None:  # never read where a repository's symlink points (a FIFO would hang)
                    found.append(Status(client.name, scope, path, None, f"not read: {escape[0]} is a symlink that "
                                        f"leads outside the repository, to {escape[1]}"))
                    continue
                try:
                    text = files.read(path)
                    if text is None:
                        found.append(Status(client.name, scope, path, None))
                        continue
                    document = load(path, text, parts[0].format)
                    for part in parts:
                        found.append(Status(client.name, scope, path, part.describe(document)))
                except ConfigurationError as exc:
                    found.append(Status(client.name, scope, path, None, str(exc)))
    return found


def running_executable(argv0: str | None = None, interpreter: str | None = None) -> str:
    """The absolute path of the `aletheia-mcp` command running now: what a client must start.

    sys.argv[0] when it is that command (made absolute, symlinks kept: a pipx or `uv tool` link stays
    valid across upgrades), else the script beside the interpreter (`python -m mcp_server connect`).
    Any path will do for a server entry; hook commands check theirs (parts.hook_command).
    """
    scripts = Path(interpreter or sys.executable).parent
    candidates = [Path(argv0 or sys.argv[0]), scripts / "aletheia-mcp", scripts / "aletheia-mcp.exe"]
    for candidate in candidates:
        if candidate.name.startswith("aletheia-mcp") and candidate.is_file() and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
    raise ConfigurationError("cannot tell where the aletheia-mcp command is: run `connect` through it "
                             "(e.g. /path/to/.venv/bin/aletheia-mcp connect ...).")


def _by_file(parts: list[Part]) -> dict[Path, list[Part]]:
    grouped: dict[Path, list[Part]] = {}
    for part in parts:
        grouped.setdefault(part.path, []).append(part)
    return grouped
