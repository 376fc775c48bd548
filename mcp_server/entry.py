"""The `aletheia-mcp` console command.

`aletheia-mcp hook ...` runs the hook client directly: a coding agent waits for it on every prompt,
file and turn, so it must not pay for typer, pydantic or our services (mcp_server/hooks/client.py
imports the standard library only). Everything else, including `hook --help`, is the typer
application of mcp_server/cli.
"""

from __future__ import annotations

import sys


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["hook"] and not {"-h", "--help"} & set(argv[1:]):
        from mcp_server.hooks.client import main as answer_hook

        sys.exit(answer_hook(argv[1:]))
    from mcp_server.cli import main as cli_main

    cli_main()
