"""Reading and writing a client's configuration file: one change per file, shown as a diff, written
atomically (a temporary file renamed over it, keeping its permissions), and never through a symlink
without saying so (in a project, never through one that leads outside it: `link_outside`)."""

from __future__ import annotations

import difflib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mcp_server.errors import ConfigurationError


@dataclass(frozen=True)
class FileChange:
    path: Path  # as the client names it
    before: str | None  # None: the file does not exist yet
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    @property
    def symlink_target(self) -> Path | None:
        """Where the file really is when `path` is a symlink (the change is written there)."""
        return self.path.resolve() if self.path.is_symlink() else None

    def diff(self) -> str:
        before = [] if self.before is None else self.before.splitlines(keepends=True)
        lines = difflib.unified_diff(before, self.after.splitlines(keepends=True),
                                     fromfile="/dev/null" if self.before is None else str(self.path),
                                     tofile=str(self.path))
        return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def link_outside(path: Path, root: Path) -> tuple[Path, Path] | None:
    """(the symlink, where `path` really is) when a symlink on `path` below `root` leads outside `root`.

    A cloned repository chooses its own symlinks: `.mcp.json` (or `.claude/`) may point at any file of
    the user's, which a project-scope `connect` must not edit unasked."""
    try:
        real = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        real = path
    else:
        if real.is_relative_to(root.resolve()):
            return None
    current = root
    for name in path.relative_to(root).parts:
        current = current / name
        if current.is_symlink():
            return current, real
    return (path, real) if real != path else None


def read(path: Path) -> str | None:
    """The file's text as it is (line endings kept), or None when there is no file."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ConfigurationError(f"{path} is a directory, not a configuration file; move it aside.") from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"{path} is not UTF-8 text; fix or move it, then run the command again.") from None


def write(change: FileChange) -> None:
    """Replace the file (the symlink's target, for a symlink) with `change.after`, atomically."""
    target = change.symlink_target or change.path
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = target.stat().st_mode & 0o7777 if target.exists() else _new_file_mode()
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(change.after)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _new_file_mode() -> int:
    """What `open()` would give a new file (mkstemp's are private, 0600): 0666 less the umask."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask
