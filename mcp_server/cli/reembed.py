"""`aletheia-mcp reembed`."""

from __future__ import annotations

import typer

from mcp_server.cli.common import load_settings, out, progress, run
from mcp_server.settings import Settings, default_env_file


def reembed(
    provider: str | None = typer.Option(None, help="Embedding provider to switch to."),
    model: str | None = typer.Option(None, help="Embedding model to switch to."),
    dim: int | None = typer.Option(None, help="New vector dimension (alters the columns, rebuilds indexes)."),
) -> None:
    """Embed rows waiting for a vector, or re-embed everything with another model or dimension."""
    from mcp_server.services.reembed import reembed as reembed_all

    settings = load_settings()
    changes = {k: v for k, v in {"embedding_provider": provider, "embedding_model": model,
                                 "embedding_dim": dim}.items() if v is not None}
    if changes:
        settings = Settings.model_validate({**settings.model_dump(), **changes})
    with progress("embedding") as start:
        report = run(reembed_all(settings, start))
    resized = f", vector columns resized {report.resized_from} -> {report.dimension}" if report.resized_from else ""
    out.print(f"Embedded {report.embedded} row(s) with {report.model}{resized}.", highlight=False)
    if changes:
        out.print("Now set " + " ".join(f"{k.upper()}={v}" for k, v in changes.items())
                  + f" in your environment or {default_env_file()} so the server uses the same model.",
                  highlight=False)
