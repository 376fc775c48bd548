"""The one way migrations read settings (no drift between the app and the `alembic` CLI).

The application passes its own Settings in `config.attributes["settings"]`; run from the
`alembic` command line, the settings come from the environment and the user's settings file like
everywhere else (never the working directory's `.env` unless ALETHEIA_ENV_FILE names it).
"""

from __future__ import annotations

from alembic.config import Config

from mcp_server.settings import Settings


def migration_settings(config: Config | None = None) -> Settings:
    if config is None:
        from alembic import op

        config = op.get_context().config
    if config is None:  # a bare MigrationContext (not driven by env.py): read the environment
        return Settings()
    settings = config.attributes.get("settings")
    if settings is None:
        settings = Settings()
        config.attributes["settings"] = settings
    return settings
