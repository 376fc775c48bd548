"""`aletheia-mcp models download`: fetch the embedding model once, online, for every process and for
machines without network (copy the cache directory it prints, set FASTEMBED_CACHE_PATH there)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from mcp_server.cli.common import err, load_settings, out, run

if TYPE_CHECKING:
    from mcp_server.embeddings.fastembed_cache import Fetched

app = typer.Typer(help="Embedding models: fetch the configured one for offline use.", no_args_is_help=True)


@app.command()
def download(
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="Download into this directory instead of FASTEMBED_CACHE_PATH (or the default "
                                  "cache, `fastembed` in the user's cache directory), e.g. to prepare a copy for "
                                  "another machine."),
) -> None:
    """Download the configured fastembed model into its cache, check that it loads, print where it is."""
    from mcp_server.embeddings.fastembed_cache import cache_dir as resolve_cache_dir

    settings = load_settings()
    provider, model = settings.embedding_provider, settings.embedding_model
    if provider in ("hashing", "openai"):
        out.print(f"EMBEDDING_PROVIDER is {provider}: there is no model to download.", highlight=False)
        return
    if provider != "fastembed":
        err.print(f"[red]error:[/red] `models download` fetches fastembed models; EMBEDDING_PROVIDER is {provider}. "
                  "Download the model with its own tools and set EMBEDDING_MODEL_PATH to its directory.",
                  highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    if settings.embedding_model_path and cache_dir is None:
        out.print(f"EMBEDDING_MODEL_PATH is set: the model is read from {settings.embedding_model_path}, "
                  "nothing to download. (Unset it, or pass --cache-dir, to fetch into a cache.)",
                  highlight=False, soft_wrap=True)
        return

    cache = resolve_cache_dir(cache_dir or settings.embedding_cache_dir)
    fetched = run(_fetch_and_load(model, settings.embedding_dim, cache))
    if fetched.copied_from is not None:
        out.print(f'Copied "{model}" from the old cache at {fetched.copied_from} (in the temporary directory, which '
                  f"may be emptied) into the fastembed cache at {fetched.cache}; it loads. The old copy can be "
                  "deleted.", highlight=False, soft_wrap=True)
    elif fetched.downloaded:
        out.print(f'Downloaded "{model}" into the fastembed cache at {fetched.cache}; it loads.', highlight=False,
                  soft_wrap=True)
    else:
        out.print(f'"{model}" is already in the fastembed cache at {fetched.cache}; it loads.', highlight=False,
                  soft_wrap=True)
    out.print(f"Model files: {fetched.files}", highlight=False, soft_wrap=True)
    out.print(f"For a machine without network: copy {fetched.cache} to it and set FASTEMBED_CACHE_PATH to the "
              "copy there (with the same EMBEDDING_MODEL).", highlight=False, soft_wrap=True)


async def _fetch_and_load(model: str, dimension: int, cache: Path) -> Fetched:
    """The model in `cache` (downloaded when missing), then loaded from there alone: what will be copied works."""
    from mcp_server.embeddings.base import run_cpu_bound
    from mcp_server.embeddings.fastembed import FastEmbedEmbedder
    from mcp_server.embeddings.fastembed_cache import fetch

    fetched = await run_cpu_bound(lambda: fetch(model, cache))
    embedder = FastEmbedEmbedder(model, dimension, cache_dir=str(cache))  # a given cache: never downloads
    try:
        await embedder.load()
        await embedder.embed_query("aletheia models download")
    finally:
        await embedder.aclose()
    return fetched
