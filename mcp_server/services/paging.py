"""Results larger than MAX_RESPONSE_CHARS come in pages of whole entries, never cut silently.

A page holds as many entries, in order, as fit; `next_cursor` continues after the last one. The
cursor is opaque (base64 of a small JSON object) and pins what it continues:
- `o`: the offset of the next entry in the complete list;
- `a`: a hash of the call's other arguments, so a cursor used with different ones is refused
  (it would skip or repeat entries of another list);
- `r`: a hash of the complete list's identity (e.g. the ranked pattern ids), so a list that changed
  between two pages (a pattern added or deleted) is refused instead of paged with gaps or repeats.

Sizes are those of the result's compact JSON, as services/response_fit.py measures them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic_core import to_jsonable_python

from mcp_server.errors import InvalidInputError
from mcp_server.schemas import (
    ContextFile,
    ContextFiles,
    FileSummary,
    FindPatternsResult,
    FoundPattern,
    LeftOutPattern,
)
from mcp_server.services.response_fit import json_size, shorten_texts

EXCERPT_CHARS = 200  # what a summarised pattern shows of its content
_KEY_CHARS = 16  # hex digits of each hash kept in a cursor: enough to tell calls apart, short on the wire
# The longest cursor encode_cursor makes (offsets stay far below 10**9): pages reserve room for it.
_LONGEST_CURSOR_CHARS = len(base64.urlsafe_b64encode(
    json.dumps({"o": 10**9, "a": "f" * _KEY_CHARS, "r": "f" * _KEY_CHARS}, separators=(",", ":")).encode()))


def json_chars(value: Any) -> int:
    """Characters of `value` (JSON data, models, lists of them) as compact JSON."""
    return json_size(to_jsonable_python(value))


def digest(value: Any) -> str:
    """A short, stable hash of a JSON-able value."""
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:_KEY_CHARS]


def cursor_room() -> str:
    """A stand-in for `next_cursor` at its longest: measure a page with it to leave room for the real one."""
    return "c" * _LONGEST_CURSOR_CHARS


def encode_cursor(offset: int, arguments: str, listing: str, pin: int | None = None) -> str:
    """`pin` (optional, `p`): a value the caller needs again to rebuild the same list (the newest row id
    search_conversations lists, so that exchanges logged between two pages do not shift it)."""
    fields: dict[str, Any] = {"o": offset, "a": arguments, "r": listing} | ({"p": pin} if pin is not None else {})
    payload = json.dumps(fields, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode()


@dataclass(frozen=True)
class _Cursor:
    offset: int
    arguments: str
    listing: str
    pin: int | None = None


def call_arguments(cursor: str | None, tool: str, arguments: dict[str, Any]) -> str:
    """The hash of a call's `arguments` (all but the cursor) that its cursors carry; a `cursor` that
    is not one of ours, or continues a call with other arguments, is refused (call it before any work)."""
    key = digest(arguments)
    _parsed(cursor, tool, key)
    return key


def cursor_pin(cursor: str | None, tool: str, arguments: str) -> int | None:
    """The `pin` that `cursor` (checked as call_arguments does) carries, if any."""
    parsed = _parsed(cursor, tool, arguments)
    return parsed.pin if parsed is not None else None


def _parsed(cursor: str | None, tool: str, arguments: str) -> _Cursor | None:
    if cursor is None:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        parsed = _Cursor(payload["o"], payload["a"], payload["r"], payload.get("p"))
        valid = (isinstance(parsed.offset, int) and isinstance(parsed.arguments, str)
                 and isinstance(parsed.listing, str) and (parsed.pin is None or type(parsed.pin) is int))
    except (UnicodeEncodeError, binascii.Error, ValueError, TypeError, KeyError):
        valid = False
    if not valid:
        raise InvalidInputError(f"`cursor` {cursor[:40]!r} is not one {tool} returned: pass the `next_cursor` of "
                                "the previous page unchanged, or leave `cursor` out to start from the first page.")
    if parsed.arguments != arguments:
        raise InvalidInputError(f"This cursor continues a {tool} call with other arguments: repeat that call's "
                                "arguments exactly (only `cursor` changes), or leave `cursor` out to start again.")
    return parsed


def decode_cursor(cursor: str | None, tool: str, arguments: str, listing: str, total: int) -> int:
    """The offset `cursor` continues at in a list of `total` entries (0 without one), after checking
    that it belongs to this call and that the list is still the one it was issued for."""
    parsed = _parsed(cursor, tool, arguments)
    if parsed is None:
        return 0
    if parsed.listing != listing or not 0 < parsed.offset < total:
        raise InvalidInputError(f"The {tool} results changed since this cursor was issued (entries were added, "
                                "changed or deleted, or got their search vectors): call again without `cursor` "
                                "to start from the first page.")
    return parsed.offset


def entries_that_fit(sizes: Sequence[int], start: int, room: int) -> int:
    """How many entries, from `start` on, fit in `room` characters of a JSON list (a comma between two)."""
    count, used = 0, 0
    for size in sizes[start:]:
        cost = size + (1 if count else 0)
        if used + cost > room:
            break
        used += cost
        count += 1
    return count


def excerpt(text: str, chars: int = EXCERPT_CHARS) -> str:
    """The start of `text` on one line, at most `chars` long, cut after a whole word when there is one
    in its second half (textwrap.shorten would keep nothing of a long URL), marked with an ellipsis."""
    line = " ".join(text.split())
    if len(line) <= chars:
        return line
    cut = line[:chars - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > chars // 2 else cut) + "…"


# ---- generate_context_file: pages over whole files

def context_files_page(complete: ContextFiles, cursor: str | None, arguments: str, limit: int,
                       regenerate: str) -> ContextFiles:
    """The page of `complete` that `cursor` points to, within `limit` characters of JSON.

    Files come whole, in order; a file too large to share a page comes alone on its own, and one
    larger than the whole response is described in `summarised` (its path, size and patterns, and
    `regenerate`: how to write it) rather than cut, since a generated file cut short would lose its
    end marker and corrupt the next merge. `pattern_ids` are those of the files on this page (the
    patterns the model sees); `left_out` comes on the first page only (it concerns the whole set),
    in at most half of it, and less when a file needs the room (those not listed are counted).
    """
    files = complete.files
    listing = digest([file.path for file in files])
    start = decode_cursor(cursor, "generate_context_file", arguments, listing, len(files))
    left_out = complete.left_out if start == 0 else []  # about the whole set: said once
    frame = json_chars(ContextFiles(files=[], pattern_ids=[], left_out_unlisted=len(left_out),
                                    next_cursor=cursor_room()))
    # What was left out may take at most half of the first page: the files come first.
    listed = _left_out_within(left_out, limit // 2)
    # A file's pattern ids are listed twice: in the file and in the page's `pattern_ids`.
    costs = [json_chars(file) + json_chars(file.pattern_ids) - 1 for file in files]
    count = entries_that_fit(costs, start, limit - frame - json_chars(listed))
    if count == 0 and start < len(files) and costs[start] <= limit - frame - json_chars([]):
        # It fits alone: what was left out gives way (counted in left_out_unlisted), the file comes.
        listed = _left_out_within(listed, limit - frame - costs[start])
        count = 1
    shown: list[ContextFile] = list(files[start:start + count])
    summaries: list[FileSummary] = []
    if count == 0 and start < len(files):  # even alone it does not fit: describe it
        too_large = files[start]
        summaries.append(FileSummary(
            path=too_large.path, content_chars=len(too_large.content), pattern_ids=too_large.pattern_ids,
            note=f"{len(too_large.content):,} characters: larger than MAX_RESPONSE_CHARS={limit:,}, so not "
                 f"returned here. {regenerate}"))
        listed = _left_out_within(listed, limit - frame - json_chars(summaries))
        count = 1
    end = start + count
    return ContextFiles(
        files=shown, pattern_ids=list(dict.fromkeys(i for file in shown for i in file.pattern_ids)),
        left_out=listed, left_out_unlisted=len(left_out) - len(listed), summarised=summaries,
        next_cursor=encode_cursor(end, arguments, listing) if end < len(files) else None)


def _left_out_within(left_out: Sequence[LeftOutPattern], room: int) -> list[LeftOutPattern]:
    return list(left_out[:entries_that_fit([json_chars(entry) for entry in left_out], 0, room - 2)])


# ---- find_patterns: pages over the ranked patterns

def found_patterns_page(ranked: Sequence[FoundPattern], cursor: str | None, arguments: str,
                        limit: int) -> FindPatternsResult:
    """The page of `ranked` that `cursor` points to, within `limit` characters of JSON: whole
    patterns in rank order; a pattern larger than the whole response comes alone, its content
    shortened and marked (`truncated`, `content_chars`)."""
    listing = digest([pattern.id for pattern in ranked])
    start = decode_cursor(cursor, "find_patterns", arguments, listing, len(ranked))
    room = limit - json_chars(FindPatternsResult(results=[], next_cursor=cursor_room()))
    count = entries_that_fit([json_chars(pattern) for pattern in ranked], start, room)
    results = list(ranked[start:start + count])
    if count == 0 and start < len(ranked):
        results, count = [_shortened(ranked[start], room)], 1
    end = start + count
    return FindPatternsResult(results=results,
                              next_cursor=encode_cursor(end, arguments, listing) if end < len(ranked) else None)


def _shortened(pattern: FoundPattern, room: int) -> FoundPattern:
    """`pattern` with the longest start of its content that fits in `room` characters of JSON."""
    whole = pattern.content

    def kept(chars: int) -> FoundPattern:
        note = (f"…[truncated: {len(whole) - chars:,} more characters; the whole pattern: the "
                f"aletheia://patterns/{pattern.id} resource, or get_pattern]")
        return pattern.model_copy(update={"content": whole[:chars] + note, "truncated": True,
                                          "content_chars": len(whole)})

    low, high = 0, len(whole)
    if json_chars(kept(low)) > room:  # even without content (a large metadata object): shorten every text
        data, _ = shorten_texts(kept(low).model_dump(mode="json"), room, lambda cut: f"…[truncated {cut:,}]")
        return FoundPattern.model_validate(data)
    while low < high:  # the longest start that fits (JSON escapes make sizes uneven: measure)
        middle = (low + high + 1) // 2
        if json_chars(kept(middle)) <= room:
            low = middle
        else:
            high = middle - 1
    return kept(low)


# ---- the conventions_for prompt: whole patterns first, the rest summarised

PROMPT_ENVELOPE_CHARS = 400  # the prompt result around the message's text (its description, roles, types)


def conventions_message(file_path: str, found: Sequence[FoundPattern], limit: int, *,
                        complete: bool = True) -> tuple[str, list[int]]:
    """The message of the `conventions_for` prompt and the ids it shows, within `limit` characters of
    JSON (the prompt result whole).

    The patterns stay in a JSON payload (data, not instructions), most specific first: as many whole
    as fit with a summary (id, title, globs, a short excerpt: one line each) of each of the others; the
    header says which are summaries and that `get_pattern` reads them. The summaries may not crowd
    the whole patterns into less than half the message: then only the summaries that fit are listed
    and the header counts the others (`find_patterns` pages through all). `complete` False: `found`
    may not be all the patterns that apply (the header says so).
    """
    whole = [_piece({"id": p.id, "title": p.title, "applies_to": p.matched_contexts or ["(everywhere)"],
                     "content": p.content}) for p in found]
    summaries = ["  " + json.dumps({"id": p.id, "title": p.title, "applies_to": p.matched_contexts or ["(everywhere)"],
                                    "excerpt": excerpt(p.content)}, ensure_ascii=False) for p in found]
    costs_whole = [json_chars(piece) - 2 + 3 for piece in whole]  # + the ",\n" after it
    costs_summary = [json_chars(piece) - 2 + 3 for piece in summaries]
    total = len(found)
    shown_path = file_path  # (shortened below when even the header alone would not fit)

    def header(full: int, listed: int) -> str:
        text = (f"Follow these team conventions when working on `{shown_path}`. They are data from the "
                "pattern store, listed most specific first.")
        if listed > full:
            text += (f" The last {listed - full} of them did not fit in this message whole: each has an `excerpt` "
                     "instead of its `content`; call `get_pattern` with its id for the full text.")
        if listed < total:
            text += (f" {total - listed} more apply but are not listed here: call `find_patterns` with this "
                     "file_path to page through all of them.")
        if not complete:
            text += f" Only the {total} most specific are considered."
        return text

    def size(full: int, listed: int) -> int:
        return (json_chars(header(full, listed) + "\n\n[\n\n]") + PROMPT_ENVELOPE_CHARS
                + sum(costs_whole[:full]) + sum(costs_summary[full:listed]))

    # A file_path may have 4,096 characters, more than a small limit holds: the header shows at most a
    # quarter of the limit of it (its end: the file's name), so that the patterns keep their room.
    kept = min(len(file_path), limit // 4)
    if kept < len(file_path):
        shown_path = "…" + file_path[len(file_path) - kept:]
    while size(0, 0) > limit and kept > 0:  # (JSON escapes: a path of quotes doubles in size)
        kept = max(0, kept - (size(0, 0) - limit) - 1)
        shown_path = "…" + file_path[len(file_path) - kept:]
    if total == 0:
        return header(0, 0) + "\n\n[] (no pattern applies)", []
    half = limit // 2
    # As many whole as fit with every other one summarised, while the summaries take at most half.
    full = next((k for k in range(total, -1, -1) if size(k, total) <= limit), 0)
    listed = total
    if size(full, total) > limit or sum(costs_summary[full:]) > half:
        # Whole patterns get (at least) half, summaries what is left, the rest is counted; the most
        # specific one comes whole whenever it fits at all.
        full = 1 if size(1, 1) <= limit else 0
        while full < total and sum(costs_whole[:full + 1]) <= half and size(full + 1, full + 1) <= limit:
            full += 1
        listed = next((m for m in range(total, full - 1, -1) if size(full, m) <= limit), full)
    pieces = whole[:full] + summaries[full:listed]
    if not pieces:
        return header(0, 0) + "\n\n[]", []
    return header(full, listed) + "\n\n[\n" + ",\n".join(pieces) + "\n]", [p.id for p in found[:listed]]


def _piece(entry: dict[str, Any]) -> str:
    """`entry` as it appears in a JSON list dumped with indent=2 (so that pieces joined by ",\\n"
    between "[\\n" and "\\n]" are exactly that dump)."""
    # Not textwrap.indent: it also breaks lines at U+2028 and others, which JSON leaves inside strings.
    return "\n".join("  " + line for line in json.dumps(entry, indent=2, ensure_ascii=False).split("\n"))
