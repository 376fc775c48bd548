"""The prompt hook's relevance floor for the `hashing` embedder, measured on a real corpus through
the real database: the 910 bullets of ../shared/corpora/cursor-rules-mdc stored as memories.
Chat prompts get nothing; prompts about a bullet's subject get that bullet. (The figures behind
RELEVANCE_FLOORS' hashing entry come from the same corpus.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mcp_server.app_context import open_app
from mcp_server.services.hook_events import HookSession, PromptSubmit
from mcp_server.services.relevance_floors import relevance_floor
from mcp_server.settings import Settings

pytestmark = pytest.mark.anyio
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "cursor-rules-mdc"
UNRELATED = ["hi", "hello", "thanks!", "run the tests", "fix the typo in the readme", "continue", "what's next?",
             "ok do it", "yes", "please commit this", "explain this error", "make it faster", "undo that",
             "looks good, ship it", "why did that fail?", "summarize what you did", "start over",
             "can you help me", "go ahead", "try again"]
RELATED = {
    "how should we configure pytest fixtures for the database?": "Use `pytest` fixtures for setup and teardown.",
    "write dockerfile with multi-stage builds": "Separate build-time dependencies from runtime dependencies.",
    "avoid N+1 queries in the ORM": "**Optimize ORM Queries**: Avoid N+1 queries.",
}


def corpus_bullets() -> list[str]:
    bullets = []
    for path in sorted(CORPUS.glob("*.mdc")):
        for line in path.read_text(encoding="utf-8").splitlines():
            text = line.strip()
            if re.match(r"[-*] ", text) and 40 <= len(text) <= 300:
                bullets.append(text[2:])
    return bullets


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not next to this checkout")
async def test_hashing_floor_gives_nothing_for_chat_and_the_bullet_a_prompt_is_about(
    settings: Settings, tmp_path: Path
) -> None:
    assert relevance_floor(settings, "hashing", "hashing-v2").similarity == 0.35
    bullets = corpus_bullets()
    assert len(bullets) > 800
    async with open_app(settings) as app:
        lines = [json.dumps({"content": text, "project": None}) for text in bullets]
        report = await app.memories.import_jsonl(lines, embed=True)
        assert report.embedded == report.inserted > 800
        given: dict[str, list[str]] = {}
        for number, prompt in enumerate([*UNRELATED, *RELATED]):
            result = await app.hooks.handle(PromptSubmit(HookSession("claude-code", f"s{number}", str(tmp_path)),
                                                         prompt))
            given[prompt] = [(await app.memories.get(i)).content for i in result.memory_ids]

    assert {prompt: given[prompt] for prompt in UNRELATED if given[prompt] and prompt != "run the tests"} == {}
    # "run the tests" shares words with "npm run e2e-tests # Run Cypress/Selenium tests": for an
    # embedder of words alone, that is a match.
    assert all("run" in text.lower() and "tests" in text.lower() for text in given["run the tests"])
    for prompt, expected in RELATED.items():
        assert any(expected in text for text in given[prompt]), (prompt, given[prompt])
