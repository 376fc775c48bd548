"""`aletheia-mcp doctor`: run the start-up path and say plainly what is wrong, if anything."""

from __future__ import annotations

from dataclasses import dataclass

import anyio

from mcp_server.db import migrate
from mcp_server.db.engine import DatabaseTarget, resolve_target, single_connection
from mcp_server.db.introspect import pgvector_status, server_version
from mcp_server.db.schema_check import shipped_head
from mcp_server.embeddings import create_embedder
from mcp_server.embeddings.base import describe, short_reason
from mcp_server.errors import AletheiaError, ConfigurationError, EmbeddingDimensionMismatchError
from mcp_server.services.projects import default_project
from mcp_server.settings import Settings

# How long the embedder may take to load and embed one text. A cached local model loads in a second or
# two and an API answers in well under one; a first download of the default model (~70 MB) may take longer.
EMBEDDER_CHECK_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


async def run_doctor(settings: Settings) -> list[Check]:
    """Each check with its outcome; stops early only when the database cannot be reached."""
    checks: list[Check] = []
    project = _project_check(settings)
    embedder = await embedder_check(settings)
    try:
        target = await resolve_target(settings)
        async with single_connection(target, settings.db_connect_timeout_s) as conn:
            version = await server_version(conn)
    except AletheiaError as exc:
        return [Check("database", False, str(exc)), embedder, project]
    except Exception as exc:  # e.g. the embedded server failed to start
        return [Check("database", False, f"could not start or reach the database: {exc}"), embedder, project]

    checks.append(Check("database", True, f"{_describe(target, settings)}, PostgreSQL {version}"))

    head = shipped_head()
    dimension_ok = True
    try:
        report = await migrate.upgrade(target, settings)
        revision = report.to_revision
        schema_detail = f"at {revision} (head)" if not report.migrated else (
            f"migrated {report.from_revision or 'empty database'} -> {revision} (head)"
        )
        checks.append(Check("schema", revision == head, schema_detail))
    except EmbeddingDimensionMismatchError as exc:
        dimension_ok = False
        current = await migrate.read_revision(target, settings)
        checks.append(Check("schema", current == head, f"at {current or 'nothing'}; head is {head}"))
        checks.append(Check("embedding dimension", False, str(exc)))
    except AletheiaError as exc:
        checks.append(Check("schema", False, str(exc)))

    async with single_connection(target, settings.db_connect_timeout_s) as conn:
        vector = await pgvector_status(conn)
    if vector.installed_version:
        checks.append(Check("pgvector", True, f"version {vector.installed_version}"))
    elif vector.available_version:
        checks.append(Check("pgvector", False, f"available ({vector.available_version}) but not installed: "
                                               "run `aletheia-mcp db upgrade` as a role allowed to CREATE EXTENSION"))
    else:
        checks.append(Check("pgvector", False, "not available on this server: install pgvector "
                                               "(https://github.com/pgvector/pgvector#installation)"))

    if dimension_ok:
        checks.append(Check("embedding dimension", True,
                            f"EMBEDDING_DIM {settings.embedding_dim} matches the stored vector columns"))
    checks.append(embedder)
    checks.append(project)
    return checks


async def embedder_check(settings: Settings, timeout_s: float = EMBEDDER_CHECK_TIMEOUT_S) -> Check:
    """Load the configured embedder and embed one text, within `timeout_s`: what the server will do.

    Loading alone proves little for an API (its `load` makes no call), so one text is embedded too.
    """
    label = describe(settings.embedding_provider, settings.embedding_model)
    try:
        embedder = create_embedder(settings)
    except AletheiaError as exc:
        return Check("embedder", False, str(exc))
    try:
        with anyio.fail_after(timeout_s):
            await embedder.load()
            await embedder.embed_query("aletheia doctor")
    except TimeoutError:
        return Check("embedder", False, f"{label} did not load and embed a text within {timeout_s:g} s. A first "
                                        "download of a model can take that long: run `aletheia-mcp models "
                                        "download`, then `aletheia-mcp doctor` again.")
    except AletheiaError as exc:  # the providers' messages say what to do
        return Check("embedder", False, str(exc))
    except Exception as exc:  # a provider bug: say which, the server would meet it too
        return Check("embedder", False, f"{label} failed: {short_reason(exc)}")
    finally:
        await embedder.aclose()
    return Check("embedder", True, f"{label} loads and embeds ({embedder.dimension} dimensions)")


def _project_check(settings: Settings) -> Check:
    """Which project rows go to from here, and how it was chosen."""
    try:
        project = default_project(settings)
    except ConfigurationError as exc:
        return Check("project", False, str(exc))
    if project is None:
        return Check("project", True, "none: not in a git repository and ALETHEIA_PROJECT is unset, so only "
                                      "global memories and patterns are read and written")
    where = f"the git repository at {project.root.as_posix()}" if project.root else "no git repository"
    how = {"setting": f"ALETHEIA_PROJECT; {where}",
           "git remote": f"the origin remote of {where}",
           "git root": f"the root of {where}, which has no origin remote"}.get(project.detection, project.detection)
    return Check("project", True, f"{project.key} ({how})")


def _describe(target: DatabaseTarget, settings: Settings) -> str:
    if target.embedded:
        return f"embedded PostgreSQL in {settings.pgdata_dir}"
    return f"external {target.display}"
