"""The prompt hook's relevance floor, calibrated on real rule files: what a floor lets through.

`python -m bench.hook_floors [--corpus ../shared/corpora/cursor-rules-mdc] [--floors 0.25,0.3,0.35,0.4,0.5]`

The bullets of the corpus's rule files (40-300 characters each) are stored as memories (hashing
embedder, embedded PostgreSQL in a temporary directory). For each floor (HOOK_MIN_SCORE), every
prompt goes through the real hook service (`HookService.handle`, a new session each) and the table
says how many chat prompts ("hi", "run the tests", ...) got a memory, and how many prompts about
one bullet (2-4 of its words in a question) got that bullet. A floor should let almost no chat
through and keep what it can of the rest; the default is in services/relevance_floors.py.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
import uuid
from pathlib import Path
from typing import Any

import anyio

from bench.ours import settings_for
from mcp_server.app_context import AppContext, open_app
from mcp_server.schemas import MAX_MEMORY_PAGE
from mcp_server.services.hook_events import HookSession, PromptSubmit

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "cursor-rules-mdc"
CHAT = ["hi", "hello", "thanks!", "run the tests", "fix the typo in the readme", "continue", "what's next?",
        "ok do it", "yes", "please commit this", "explain this error", "make it faster", "undo that",
        "looks good, ship it", "why did that fail?", "summarize what you did", "start over", "can you help me",
        "go ahead", "try again"]
TEMPLATES = ["how do we {}?", "what is our rule about {}?", "remind me: {}", "{} - what did we decide?"]
WORD = re.compile(r"[A-Za-z][A-Za-z0-9+#.-]{3,}")
SEED = 18


def bullets(corpus: Path) -> list[str]:
    found = []
    for path in sorted(corpus.glob("*.mdc")):
        for line in path.read_text(encoding="utf-8").splitlines():
            text = line.strip()
            if re.match(r"[-*] ", text) and 40 <= len(text) <= 300:
                found.append(text[2:])
    return found


def prompts_about(texts: list[str], count: int) -> list[tuple[str, int]]:
    """(prompt, index of its bullet): 2-4 of the bullet's words in a question, as a person asks."""
    rng = random.Random(SEED)
    chosen = []
    for index in rng.sample(range(len(texts)), min(count, len(texts))):
        words = list(dict.fromkeys(w.lower() for w in WORD.findall(texts[index])))
        if len(words) >= 2:
            picked = rng.sample(words, min(len(words), rng.randint(2, 4)))
            chosen.append((rng.choice(TEMPLATES).format(" ".join(picked)), index))
    return chosen


async def ids_by_content(app: AppContext) -> dict[str, int]:
    """Each stored memory's id by its text (the import keeps one row per distinct text)."""
    ids: dict[str, int] = {}
    cursor = None
    while True:
        page = await app.memories.list(limit=MAX_MEMORY_PAGE, cursor=cursor, scope="global")
        ids.update((memory.content, memory.id) for memory in page.items)
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


async def given(app: AppContext, prompt: str, cwd: str) -> list[int]:
    """The memories the prompt hook adds to `prompt`, in a session of its own (nothing given before)."""
    event = PromptSubmit(HookSession("claude-code", uuid.uuid4().hex, cwd), prompt)
    return (await app.hooks.handle(event)).memory_ids


async def measure(corpus: Path, floors: list[float], related: int) -> dict[str, Any]:
    texts = bullets(corpus)
    about = prompts_about(texts, related)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="aletheia-bench-floors-") as tmp:
        base = settings_for(Path(tmp))
        async with open_app(base) as app:
            await app.memories.import_jsonl([json.dumps({"content": t, "project": None}) for t in texts], embed=True)
            ids = await ids_by_content(app)
        for floor in floors:
            settings = base.model_copy(update={"hook_min_score": floor})
            async with open_app(settings) as app:
                chat_hits = [p for p in CHAT if await given(app, p, tmp)]
                found = 0
                for prompt, index in about:
                    found += ids.get(texts[index]) in await given(app, prompt, tmp)
            rows.append({"floor": floor, "chat_prompts_given_a_memory": len(chat_hits), "chat_prompts": len(CHAT),
                         "chat_given": chat_hits, "related_found": found, "related_prompts": len(about)})
    return {"memories": len(texts), "rows": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--floors", default="0.25,0.3,0.35,0.4,0.5")
    parser.add_argument("--related", type=int, default=280, help="prompts about one bullet each")
    args = parser.parse_args(argv)
    if not args.corpus.is_dir():
        raise SystemExit(f"no corpus at {args.corpus}: pass --corpus DIR (a folder of .mdc rule files)")
    results = anyio.run(measure, args.corpus, [float(f) for f in args.floors.split(",")], args.related)
    print(f"{results['memories']} memories (hashing embedder)")
    print(f"{'floor':>6} {'chat given a memory':>20} {'related found':>14}")
    for row in results["rows"]:
        print(f"{row['floor']:>6} {row['chat_prompts_given_a_memory']:>13} of {row['chat_prompts']:<4}"
              f" {row['related_found']:>7} of {row['related_prompts']}  {row['chat_given']}")


if __name__ == "__main__":
    main()
