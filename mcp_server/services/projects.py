"""Which project a call reads and writes, and the projects themselves (`projects list|rename`).

The current project of a call, first that applies:
1. the call's own `project` argument (a tool's, the CLI's `--project`);
2. the request's `Aletheia-Project` header (HTTP);
3. the application's: ALETHEIA_PROJECT, else the git repository of the working directory
   (repository.find_repository), else none (only global rows then).
A project is stored (and gets an id) when a row is first written under it; reading a project
that holds nothing yet reads only the global rows.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath

from mcp_server.db import projects as repo
from mcp_server.db.database import Database, open_database
from mcp_server.db.engine import Connection
from mcp_server.db.projects import MergeCounts, ProjectRows, Scope
from mcp_server.errors import ConfigurationError, InvalidInputError, NotFoundError
from mcp_server.identity import requested_project
from mcp_server.repository import Repository, check_project_name, find_repository, repository_of_working_directory
from mcp_server.rules.globs import check_path_length
from mcp_server.schemas import ConversationScope, ProjectDetection, ProjectStatus, ReadScope, WriteScope
from mcp_server.settings import Settings

logger = logging.getLogger(__name__)

# An absolute path: /home/..., //server/share/... or C:/... (a Windows drive)
_ABSOLUTE = re.compile(r"^(?:/|[A-Za-z]:/)")
# The application's project replaced for one call (ProjectService.working_in): (project,) or None.
_working_in: ContextVar[tuple[Project | None] | None] = ContextVar("aletheia_working_in", default=None)


@dataclass(frozen=True)
class Project:
    key: str
    detection: ProjectDetection
    root: Path | None  # the repository's root when known (absolute file paths are relative to it)

    def status(self) -> ProjectStatus:
        return ProjectStatus(key=self.key, detection=self.detection,
                             root=self.root.as_posix() if self.root else None)


def default_project(settings: Settings, directory: Path | None = None) -> Project | None:
    """The application's project: ALETHEIA_PROJECT, else the repository of `directory` (default: the
    working directory; see above)."""
    repository = find_repository(directory) if directory is not None else repository_of_working_directory()
    root = repository.root if repository else None
    if settings.project is not None:
        try:
            return Project(check_project_name(settings.project, "ALETHEIA_PROJECT"), "setting", root)
        except InvalidInputError as exc:
            raise ConfigurationError(str(exc)) from None
    return project_of(repository)


def project_of(repository: Repository | None) -> Project | None:
    return Project(repository.key, repository.detection, repository.root) if repository else None


class ProjectService:
    def __init__(self, database: Database, default: Project | None) -> None:
        self.database = database
        self.default = default
        # key -> id of projects known to exist. Projects are never deleted, so a cached id stays
        # valid; after `projects rename` this process keeps writing to the renamed project (the
        # repository it serves) until it restarts and detects its key again.
        self._ids: dict[str, int] = {}

    @contextmanager
    def working_in(self, project: Project | None) -> Iterator[None]:
        """Within the block, `project` (None: no project, global rows only) stands for the
        application's project: a hook acts in the repository of its own working directory."""
        token = _working_in.set((project,))
        try:
            yield
        finally:
            _working_in.reset(token)

    @property
    def _default(self) -> Project | None:
        replaced = _working_in.get()
        return replaced[0] if replaced is not None else self.default

    def current(self, project: str | None = None) -> Project | None:
        """The project of the call in progress (see the module docstring)."""
        if project is not None:
            return self._named(check_project_name(project), "argument")
        header = requested_project()
        if header is not None:
            return self._named(check_project_name(header, "Aletheia-Project header"), "header")
        return self._default

    def explicit(self, project: str | None = None) -> Project | None:
        """The project a call names (argument, header or ALETHEIA_PROJECT); None when it is left to
        the repository of each file (patterns import, context generate)."""
        if project is not None or requested_project() is not None:
            return self.current(project)
        default = self._default
        return default if default is not None and default.detection == "setting" else None

    def _named(self, key: str, detection: ProjectDetection) -> Project:
        # The default's root still applies when the name is the default's own project.
        default = self._default
        root = default.root if default and default.key == key else None
        return Project(key, detection, root)

    async def id_to_write(self, project: Project | str | None, conn: Connection | None = None) -> int | None:
        """The id rows of `project` (or of the project of that key) are stored under; the project
        is created on first use (on `conn` when given: a caller holding a connection must not
        wait for a second one from the pool)."""
        key = project.key if isinstance(project, Project) else project
        if key is None:
            return None
        known = self._ids.get(key)
        if known is None:
            if conn is not None:
                known = await repo.ensure(conn, key)
            else:
                async with self.database.connection() as own:
                    known = await repo.ensure(own, key)
            self._ids[key] = known
        return known

    async def id_to_read(self, project: Project | None) -> int | None:
        """The id of `project`, or None when it holds nothing yet (or there is no project)."""
        if project is None:
            return None
        known = self._ids.get(project.key)
        if known is None:
            async with self.database.connection() as conn:
                known = await repo.find(conn, project.key)
            if known is not None:
                self._ids[project.key] = known
        return known

    def write_target(self, scope: WriteScope, project: str | None) -> Project | None:
        """Where a write goes: the current project, or no project for `scope="global"`."""
        current = self.current(project)
        if scope == "global":
            return None
        if scope != "project":
            raise InvalidInputError('`scope` must be "project" or "global".')
        return current

    async def read_scope(self, scope: ReadScope, project: str | None) -> Scope:
        """The memories or patterns a read covers: "project" = the current project's and the global
        ones, "global" = the global ones, "all" = every project's."""
        current = self.current(project)  # a bad name is an error whatever the scope
        if scope == "all":
            return Scope(None, "all")
        if scope == "global":
            return Scope(None, "global")
        if scope != "project":
            raise InvalidInputError('`scope` must be "project", "global" or "all".')
        return Scope(await self.id_to_read(current), "project+global")

    async def only_scope(self, scope: ConversationScope, project: str | None) -> Scope:
        """Rows of the current project only (those of no project outside any) for "project", every
        project's for "all": what exchanges are listed by, and exports with `--project` cover."""
        current = self.current(project)
        if scope == "all":
            return Scope(None, "all")
        if scope != "project":
            raise InvalidInputError('`scope` must be "project" or "all".')
        if current is None:
            return Scope(None, "global")
        found = await self.id_to_read(current)
        return Scope(found, "project") if found is not None else Scope(None, "nothing")

    def relative_path(self, file_path: str, project: Project | None) -> str:
        """A client's file path relative to the repository root: an absolute path inside the current
        project's root is made relative to it; any other absolute path is an error saying why."""
        check_path_length(file_path)  # before any filesystem call, and never echoed whole
        text = file_path.strip().replace("\\", "/")
        if "\x00" in text:
            raise InvalidInputError("`file_path` contains a NUL character.")
        if not _ABSOLUTE.match(text):
            return file_path  # relative: as given
        if project is None or project.root is None:
            whose = (f"project {project.key} was named here, so its repository's root is unknown"
                     if project else "there is no current project (no git repository)")
            raise InvalidInputError(f"`file_path` {file_path} is absolute, but {whose}: pass the path relative "
                                    "to the repository root (e.g. src/app.py).")
        root = project.root
        # (normpath: /repo/../etc/x is not inside /repo)
        candidates: list[tuple[PurePath, PurePath]] = [
            (PurePosixPath(posixpath.normpath(text)), PurePosixPath(posixpath.normpath(root.as_posix())))]
        if Path(text).is_absolute():  # (C:/... is not, on POSIX: never resolve it against the working directory)
            candidates.append((Path(text).resolve(), root.resolve()))  # through symlinks, e.g. /tmp -> /private/tmp
        for candidate, base in candidates:
            try:
                return candidate.relative_to(base).as_posix() or "."
            except ValueError:
                continue
        raise InvalidInputError(f"`file_path` {file_path} is outside the repository of project {project.key} "
                                f"({root.as_posix()}): pass a path inside it, absolute or relative to its root.")

    async def rows_per_project(self) -> list[ProjectRows]:
        async with self.database.connection() as conn:
            return await repo.rows_per_project(conn)


@dataclass(frozen=True)
class RenameReport:
    merged: MergeCounts | None  # what moved, when `new` existed and `old` was merged into it


async def rename_project(settings: Settings, old: str, new: str, *, merge: bool = False) -> RenameReport:
    """Give the project `old` the key `new` (its repository moved to a new remote); with `merge`, a
    project `new` that exists already receives `old`'s rows instead, and `old` stays, empty (a
    server still running under it keeps writing rows that belong to a project; merging again moves
    them). Every user's rows move, so this acts as the login role (no row-level security), like
    `reembed`."""
    old_key, new_key = check_project_name(old, "old"), check_project_name(new, "new")
    if old_key == new_key:
        raise InvalidInputError(f"{old_key} is already the project's name.")
    database = await open_database(settings, scoped=False, min_size=1, max_size=1)
    try:
        async with database.connection() as conn, conn.transaction():
            source = await repo.find_for_update(conn, old_key)
            if source is None:
                raise NotFoundError(f"No project {old_key}. `aletheia-mcp projects list` shows them.")
            target = await repo.find_for_update(conn, new_key)
            if target is None:
                await repo.rename(conn, source, new_key)
                return RenameReport(None)
            if not merge:
                raise InvalidInputError(f"A project {new_key} exists already. To move {old_key}'s rows into it, "
                                        "run the command again with --merge.")
            return RenameReport(await repo.merge(conn, source, target))
    finally:
        await database.close()
