"""Settings set only in this shell: the client will not pass them on, so `connect` says where they belong.

The server entry carries no environment of its own (see parts.SERVER_ENV): what configures us must be
in the user's settings file, which the server and the hooks both read whatever the client passes them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values
from pydantic import AliasChoices

from mcp_server.settings import ENV_FILE_VARIABLE, Settings, default_env_file


def setting_names() -> set[str]:
    """Every environment name a setting is read from."""
    names = {ENV_FILE_VARIABLE}
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        names |= {c for c in choices if isinstance(c, str) and c.isupper()}
    return names


def shell_only_settings(environ: Mapping[str, str] = os.environ) -> tuple[list[str], Path]:
    """The settings set in `environ` that the user's settings file does not set, and that file."""
    named = environ.get(ENV_FILE_VARIABLE)
    settings_file = Path(named).expanduser() if named else default_env_file()
    in_file = set(dotenv_values(settings_file)) if settings_file.is_file() else set()
    names = sorted(n for n in setting_names() - {ENV_FILE_VARIABLE} if n in environ and n not in in_file)
    return names, settings_file
