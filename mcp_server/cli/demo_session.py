"""The session `aletheia-mcp demo` narrates: the server as a client sees it.

Starts `aletheia-mcp serve` as a subprocess in a temporary data directory (its own embedded
PostgreSQL), talks to it over stdio with the official MCP client, and narrates each step.
Works offline: if the embedding model cannot be loaded, the demo says so and recall falls
back to keyword search, which is what the server does in that situation.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from rich.console import Console
from rich.table import Table

from mcp_server.settings import Settings

MEMORIES = [
    ("We deploy new releases with blue/green: the new version runs beside the old one and traffic "
     "switches once health checks pass.", "adr-7"),
    ("Outgoing HTTP calls retry up to 3 times with exponential backoff and jitter; never retry POST "
     "without an idempotency key.", "code-review"),
    ("API request bodies are validated with pydantic models in api/schemas.py; handlers never read raw "
     "JSON.", "conventions"),
    ("The team prefers small pull requests (under 400 lines) reviewed within one working day.", "chat"),
]
QUESTION = "How do we roll out a new release safely?"
WAIT_FOR_EMBEDDER_S = 15.0


async def _call(session: ClientSession, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    if result.is_error:
        text = result.content[0].text if result.content else "(no message)"  # type: ignore[union-attr]
        raise RuntimeError(f"{tool} failed: {text}")
    assert result.structured_content is not None
    return dict(result.structured_content)


async def _wait_for_embedder(session: ClientSession, console: Console) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_FOR_EMBEDDER_S
    status = await _call(session, "server_status", {})
    if status["embedder"]["state"] == "loading":
        console.print(f"  waiting up to {WAIT_FOR_EMBEDDER_S:.0f} s for the embedding model to load...")
    while status["embedder"]["state"] == "loading" and time.monotonic() < deadline:
        await anyio.sleep(0.5)
        status = await _call(session, "server_status", {})
    return status


async def run_demo(settings: Settings, console: Console) -> int:
    with tempfile.TemporaryDirectory(prefix="aletheia-demo-") as tmp:
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env.update(ALETHEIA_DATA_DIR=tmp, ALETHEIA_USER_ID="demo", LOG_LEVEL="WARNING")
        params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_server", "serve"], env=env)
        log_path = Path(tmp) / "server.log"
        with log_path.open("w") as errlog:
            try:
                await _drive(params, errlog, console)
            except Exception as exc:
                console.print(f"[red]demo failed:[/red] {exc}")
                console.print(f"[dim]server log:[/dim]\n{log_path.read_text()[-3000:]}")
                return 1
    return 0


async def _drive(params: StdioServerParameters, errlog: Any, console: Console) -> None:
    console.rule("[bold]aletheia-mcp demo")
    console.print("Starting [bold]aletheia-mcp serve[/bold] over stdio with an embedded PostgreSQL in a "
                  "temporary directory...")
    started = time.perf_counter()
    async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
        init = await session.initialize()
        console.print(f"Connected to [bold]{init.server_info.name}[/bold] {init.server_info.version} "
                      f"in {time.perf_counter() - started:.2f} s (protocol {init.protocol_version}).\n")

        tools = (await session.list_tools()).tools
        table = Table("tool", "what it is for", title=f"{len(tools)} tools", title_justify="left")
        for tool in tools:
            table.add_row(tool.name, (tool.description or "").split("\n")[0][:90])
        console.print(table)

        status = await _wait_for_embedder(session, console)
        embedder = status["embedder"]
        if embedder["state"] == "ready":
            console.print(f"\nEmbedder ready: {embedder['provider']} {embedder['model']} "
                          f"({embedder['dimension']}-d).")
        else:
            console.print(f"\n[yellow]Embedder not available[/yellow] ({embedder['state']}): "
                          f"{embedder['detail']}\nMemories are still stored (waiting for a vector) and recall "
                          "falls back to keyword search; `aletheia-mcp reembed` embeds them later.")

        console.print("\n[bold]remember[/bold]")
        for content, source in MEMORIES:
            stored = await _call(session, "remember", {"content": content, "source": source})
            console.print(f"  #{stored['id']} embedded={stored['embedded']}  {content[:70]}...")
        again = await _call(session, "remember", {"content": MEMORIES[0][0], "source": MEMORIES[0][1]})
        console.print(f"  storing #{again['id']} again -> created={again['created']} (no duplicate)")

        console.print(f"\n[bold]recall[/bold] \"{QUESTION}\"")
        recalled = await _call(session, "recall", {"query": QUESTION, "limit": 3})
        console.print(f"  mode: {recalled['mode']}")
        for hit in recalled["results"]:
            console.print(f"  #{hit['id']} score={hit['score']:.3f}  {hit['content'][:80]}")

        status = await _call(session, "server_status", {})
        database, counts = status["database"], status["counts"]
        console.print("\n[bold]server_status[/bold]")
        console.print(f"  database: {database['kind']} PostgreSQL {database['server_version']}, pgvector "
                      f"{database['pgvector_version']}, schema {database['schema_revision']}")
        console.print(f"  memories: {counts['memories']} ({counts['memories_awaiting_embedding']} awaiting an "
                      f"embedding); embedder: {status['embedder']['state']}")
    console.rule("done")

