"""`conversations replay`, printed: the plan (--dry-run), one line per exchange as it is done, a summary.

Results go to stdout, notes to stderr; stored text (which holds `[REDACTED:...]`) is printed
without rich markup.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from mcp_server.cli.common import err, out

if TYPE_CHECKING:
    from mcp_server.app_context import AppContext
    from mcp_server.services.replay import PlannedReplay, ReplayCriteria, ReplayResult, ReplaySummary, Tokens


async def run_replay(app: AppContext, criteria: ReplayCriteria, upstream: str, model: str, dry_run: bool) -> None:
    from mcp_server.services.replay import REPLAYABLE_ENDPOINTS, ReplayCredentials, upstream_base

    base = upstream_base(upstream)  # a wrong URL is said before anything is read or sent
    plan = await app.replay.plan(criteria, model)
    if not plan:
        err.print("No logged exchange matches: nothing to replay.")
        return
    sendable = [item for item in plan if item.not_replayable is None]
    if dry_run:
        _say(f"Dry run: {len(sendable)} of {len(plan)} exchange(s) would be sent to {base} as model {model}; "
             "nothing is sent.")
        for item in plan:
            _say(_planned_line(item, model))
        _note_redacted(sendable)
        return
    for item in plan:
        if item.not_replayable is not None:
            _say(_planned_line(item, model))
    if not sendable:
        _say("Nothing to send: no selected exchange is replayable.")
        return
    apis = {REPLAYABLE_ENDPOINTS[item.endpoint] for item in sendable if item.endpoint is not None}
    openai_key = app.settings.openai_api_key.get_secret_value() if app.settings.openai_api_key else None
    credentials = ReplayCredentials(openai_api_key=openai_key or None,
                                    anthropic_api_key=os.environ.get("ANTHROPIC_API_KEY") or None)
    for api, key, header in (("openai", credentials.openai_api_key, "Authorization"),
                             ("anthropic", credentials.anthropic_api_key, "x-api-key")):
        if api in apis and not key:
            err.print(f"note: {api.upper()}_API_KEY is not set: its calls are sent without {header} (enough for "
                      "a local server).", markup=False, highlight=False)
    _note_redacted(sendable)
    _say(f"Replaying {len(sendable)} exchange(s) to {base} as model {model}:")
    summary = await app.replay.replay(plan, upstream, model, credentials, on_result=lambda r: _say(_result_line(r)))
    _say(_summary_line(summary))


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def _note_redacted(items: list[PlannedReplay]) -> None:
    redacted = [f"#{item.id}" for item in items if item.redacted]
    if redacted:
        err.print(f"note: {len(redacted)} request(s) ({', '.join(redacted[:10])}{' …' if len(redacted) > 10 else ''}) "
                  "had secrets redacted when they were logged: [REDACTED:...] placeholders are sent as they are.",
                  markup=False, highlight=False, soft_wrap=True)


def _planned_line(item: PlannedReplay, model: str) -> str:
    if item.not_replayable is not None:
        return f"#{item.id}  not replayable: {item.not_replayable}"
    return f"#{item.id}  {item.endpoint}  {item.model or '?'} -> {model}  {item.message_count} message(s)"


def _result_line(result: ReplayResult) -> str:
    stored = f"-> #{result.replay_id}" if result.replay_id is not None else "(not stored)"
    verdict = ("same text" if result.same_text else "different text") if result.error is None \
        else f"failed: {result.error}"
    return (f"#{result.original_id} {stored}  {result.endpoint}  {verdict}  "
            f"latency {_ms(result.latency_before_ms)} -> {_ms(result.latency_after_ms)}  "
            f"tokens in/out {_tokens(result.tokens_before)} -> {_tokens(result.tokens_after)}")


def _summary_line(summary: ReplaySummary) -> str:
    parts = f"{summary.same_text} same text, {summary.different_text} different, {summary.failed} failed"
    skipped = f"; {summary.not_replayable} not replayable" if summary.not_replayable else ""
    return (f"Summary: {summary.replayed} replay(s) stored ({parts}){skipped}. Latency p50 "
            f"{_ms(summary.latency_before_p50_ms)} -> {_ms(summary.latency_after_p50_ms)}; tokens in/out "
            f"{_tokens(summary.tokens_before)} -> {_tokens(summary.tokens_after)}.")


def _ms(value: float | None) -> str:
    return "?" if value is None else f"{round(value):,} ms"


def _tokens(tokens: Tokens | None) -> str:
    if tokens is None:
        return "?"
    return "/".join("?" if count is None else f"{count:,}" for count in (tokens.input, tokens.output))
