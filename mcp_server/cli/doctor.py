"""`aletheia-mcp doctor`."""

from __future__ import annotations

import typer

from mcp_server.cli.common import load_settings, out, run


def doctor() -> None:
    """Check the database, pgvector, the schema revision, the embedding dimension and the embedder."""
    from mcp_server.services.doctor import run_doctor

    checks = run(run_doctor(load_settings()))
    for check in checks:
        mark = "[green]ok[/green]  " if check.ok else "[red]FAIL[/red]"
        out.print(f"{mark} {check.name}: {check.detail}", highlight=False, soft_wrap=True)
    failed = [c for c in checks if not c.ok]
    if failed:
        out.print(f"\n{len(failed)} problem(s) found.", highlight=False)
        raise typer.Exit(1)
    out.print("\nAll checks passed.")
