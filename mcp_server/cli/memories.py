"""`aletheia-mcp memories export|import`: memories as JSONL."""

from __future__ import annotations

from pathlib import Path

import typer

from mcp_server.cli.common import err, out, progress, project_option, with_app, write_output

app = typer.Typer(help="Export and import memories as JSONL.", no_args_is_help=True)


@app.command("export")
def memories_export(
    out_file: Path | None = typer.Option(None, "--out", "-o", help="File to write (default: stdout)."),
    project: str | None = project_option("Only this project's memories (default: every "
                                         "project's and the global ones)."),
) -> None:
    """Write the configured user's memories as JSONL (one object per line, with its project)."""
    count = with_app(lambda a: write_output(out_file, lambda out: a.memories.export_jsonl(out, project)),
                     load_embedder=False)
    err.print(f"Exported {count} memories.")


@app.command("import")
def memories_import(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL file of memories."),
    embed: bool = typer.Option(True, "--embed/--no-embed", help="Embed the imported rows afterwards."),
    project: str | None = project_option("Project (e.g. github.com/org/repo) of lines that name none; default: "
                                         "ALETHEIA_PROJECT, else the git repository holding the file (none: "
                                         "global)."),
) -> None:
    """Import memories from JSONL in bulk (COPY); lines already stored are skipped."""
    total_lines = sum(1 for line in path.open(encoding="utf-8") if line.strip())
    with progress("importing") as start, path.open(encoding="utf-8") as lines:
        report = with_app(lambda a: a.memories.import_jsonl(lines, start(total_lines), embed=embed,
                                                            project=project, directory=path.parent),
                          load_embedder=False, project=project)
    out.print(f"Read {report.read} line(s): {report.inserted} imported, {report.duplicates} already stored, "
              f"{len(report.rejected)} rejected"
              + (f"; {report.redactions} secret(s) redacted." if report.redactions else "."), highlight=False)
    for problem in report.rejected[:20]:
        err.print(f"  {path.name} {problem}", highlight=False)
    if report.embed_error:
        err.print(f"[yellow]warning:[/yellow] not embedded now ({report.embed_error}); they are found by keywords "
                  "meanwhile, and `aletheia-mcp reembed` embeds them later.", highlight=False, soft_wrap=True)
    elif embed:
        out.print(f"Embedded {report.embedded} row(s).")
    if report.rejected:
        raise typer.Exit(2)
