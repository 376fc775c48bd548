"""Which repository a directory belongs to, and the project key it gives: read from the files git
keeps (no `git` process, no network), in well under a millisecond.

- The repository is the nearest enclosing directory with a `.git` entry: a folder, or a file
  `gitdir: ...` (a worktree or a submodule, each of which resolves to its own repository).
- Its key is the `origin` remote, normalised so that every clone of it agrees:
  `git@github.com:Org/Repo.git`, `https://github.com/org/repo` and
  `ssh://git@github.com:22/org/repo.git` are all `github.com/org/repo` (host and path, lower
  case, no scheme, user, password or port, no `.git`). A remote that is a local path keeps its
  path. A repository without `origin` is keyed by its root path.
- An explicit project name is checked (`check_project_name`): not blank, at most
  MAX_PROJECT_CHARS characters, no control characters.
"""

from __future__ import annotations

import logging
import posixpath
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from mcp_server.errors import InvalidInputError
from mcp_server.schemas import MAX_PROJECT_CHARS

logger = logging.getLogger(__name__)

Detection = Literal["git remote", "git root"]
# user@host:path (no scheme); a one-letter "host" is a Windows drive (C:/repo), not a host.
_SCP_LIKE = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[^:/\s]{2,}):(?P<path>.*)$")
_SECTION = re.compile(r'^\s*\[\s*(?P<name>[A-Za-z0-9.-]+)(?:\s+"(?P<sub>(?:[^"\\]|\\.)*)")?\s*\]')
_URL_LINE = re.compile(r"^\s*url\s*=\s*(?P<value>.*?)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Repository:
    root: Path  # the working tree's top directory
    key: str  # the project key: the normalised origin remote, else the root path
    detection: Detection


def check_project_name(name: object, field: str = "project") -> str:
    """A project name as given (stripped), or InvalidInputError saying what is wrong with it."""
    if not isinstance(name, str):
        raise InvalidInputError(f"`{field}` must be a string such as github.com/org/repo.")
    text = name.strip()
    if not text:
        raise InvalidInputError(f"`{field}` is blank: name a project (e.g. github.com/org/repo), or leave it out "
                                "to use the git repository of the working directory.")
    if len(text) > MAX_PROJECT_CHARS:
        raise InvalidInputError(f"`{field}` is {len(text)} characters; a project name has at most "
                                f"{MAX_PROJECT_CHARS}.")
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in text):
        raise InvalidInputError(f"`{field}` contains a control character; use a name such as github.com/org/repo.")
    return text


def normalize_remote(url: str, root: Path | None = None) -> str:
    """The project key of a git remote URL (see the module docstring); a relative local path is
    relative to the repository's `root`."""
    text = url.strip()
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme.lower() == "file" or not parts.hostname:
            return _local_key(parts.path, root)
        return _host_key(parts.hostname, parts.path)
    scp = _SCP_LIKE.match(text)
    if scp is not None and not (root or Path.cwd()).joinpath(text).exists():  # a local path may hold a colon
        return _host_key(scp.group("host"), scp.group("path"))
    return _local_key(text, root)


def _host_key(host: str, path: str) -> str:
    path = path.strip("/")
    path = path.removesuffix(".git").rstrip("/")
    return f"{host}/{path}".lower()


def _local_key(path: str, root: Path | None) -> str:
    if not path.startswith("/") and root is not None:  # `../upstream.git`: where it is, not how it is named
        path = posixpath.normpath((root / path).as_posix())
    return path.rstrip("/").removesuffix(".git").rstrip("/") or "/"


def find_repository(start: Path) -> Repository | None:
    """The repository containing `start`, or None outside any (or when it cannot be read, with a
    warning: a broken repository must never stop the server from starting)."""
    try:
        directory = start.resolve()
        for candidate in (directory, *directory.parents):
            marker = candidate / ".git"
            if marker.is_dir():
                return _repository(candidate, marker)
            if marker.is_file():
                return _repository(candidate, _linked_git_dir(marker))
    except (OSError, UnicodeDecodeError, ValueError, RuntimeError) as exc:  # (RuntimeError: a symlink loop)
        logger.warning("could not read the git repository around %s (%s): no project", start, exc)
    return None


def repository_of_working_directory() -> Repository | None:
    """`find_repository` of the working directory (None when even that cannot be read)."""
    try:
        directory = Path.cwd()
    except OSError as exc:  # deleted under us
        logger.warning("could not read the working directory (%s): no project", exc)
        return None
    return find_repository(directory)


def _linked_git_dir(marker: Path) -> Path:
    """The git directory a `.git` file points to (`gitdir: <path>`, relative to the file's folder)."""
    line = marker.read_text(encoding="utf-8").strip()
    if not line.startswith("gitdir:"):
        raise ValueError(f"{marker} is not a `gitdir:` file")
    return (marker.parent / line.removeprefix("gitdir:").strip()).resolve()


def _repository(root: Path, git_dir: Path) -> Repository:
    if not git_dir.is_dir():
        raise ValueError(f"its git directory {git_dir} is missing")
    # A worktree's own git directory names the repository's common one (where its config is).
    common = git_dir / "commondir"
    config_dir = (git_dir / common.read_text(encoding="utf-8").strip()).resolve() if common.is_file() else git_dir
    config = config_dir / "config"
    origin = _origin_url(config.read_text(encoding="utf-8")) if config.is_file() else None
    if origin:
        return Repository(root, normalize_remote(origin, root), "git remote")
    return Repository(root, root.as_posix(), "git root")


def _origin_url(config: str) -> str | None:
    """The first `url` of `[remote "origin"]` in a git config file's text."""
    in_origin = False
    for line in config.splitlines():
        section = _SECTION.match(line)
        if section is not None:
            in_origin = section.group("name").lower() == "remote" and section.group("sub") == "origin"
            continue
        if in_origin:
            found = _URL_LINE.match(line)
            if found is not None:
                value = found.group("value")
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                return value or None
    return None
