"""The domain's error hierarchy.

Every message here is written for the person or model that has to act on it: it says what
went wrong and what to do, and never carries a secret (URLs are redacted before they get here).
Tools turn these into MCP tool errors; the CLI prints them on one line and exits non-zero.
"""

from __future__ import annotations


class AletheiaError(Exception):
    """Base of every error this application raises on purpose."""


class ConfigurationError(AletheiaError):
    """A setting is missing or invalid."""


class DatabaseUnavailableError(AletheiaError):
    """PostgreSQL cannot be reached (wrong host, refused, auth failed, timed out)."""


class ConnectionLostError(DatabaseUnavailableError):
    """The connection to PostgreSQL was lost or refused mid-work (restart, terminated backend, down).

    `cause` names the driver's exception; each adapter words the advice for its medium (a tool
    retries once, the CLI says what was kept).
    """

    def __init__(self, cause: str) -> None:
        self.cause = cause
        super().__init__(f"the database connection was lost ({cause})")


class DatabaseRefusedError(AletheiaError):
    """PostgreSQL refused a statement (the details, which may hold data, go to the log only)."""

    def __init__(self, sqlstate: str | None) -> None:
        self.sqlstate = sqlstate
        super().__init__(f"The database refused the request (SQLSTATE {sqlstate}); the server log has the details.")


class SchemaError(AletheiaError):
    """The database schema cannot be brought to, or does not match, what this version needs."""


class EmbeddingDimensionMismatchError(SchemaError):
    """EMBEDDING_DIM differs from the dimension of the stored vector columns."""

    def __init__(self, configured: int, stored: int, column: str) -> None:
        self.configured = configured
        self.stored = stored
        self.column = column
        super().__init__(
            f"EMBEDDING_DIM is {configured} but the database stores {stored}-dimensional vectors "
            f"({column}). Either set EMBEDDING_DIM={stored} (and the model that produced them), or "
            f"re-embed everything at the new size with `aletheia-mcp reembed --dim {configured}`. "
            "Nothing was changed."
        )


class InvalidInputError(AletheiaError):
    """An argument is out of range or malformed."""


class NotFoundError(AletheiaError):
    """A row with the given id does not exist (for this user)."""


class PermissionDeniedError(AletheiaError):
    """The acting user may not do this (e.g. change patterns when ALETHEIA_PATTERN_MAINTAINERS excludes them)."""


class RuleFileError(InvalidInputError):
    """A rule file that cannot be imported (reported per file; the others still import)."""


class EmbeddingUnavailableError(AletheiaError):
    """The embedder cannot produce vectors now (model not loadable, API down, bad credentials)."""


class InvalidEmbeddingError(AletheiaError):
    """The embedder returned something that is not a usable vector (NaN, all zeros, wrong size)."""
