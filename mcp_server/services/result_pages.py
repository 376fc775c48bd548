"""Search results that never lose an entry to MAX_RESPONSE_CHARS: long texts are shortened first,
then the rest comes in pages.

`recall`: each memory's content is shortened to one common length, the largest that lets every
result of the page fit (a shortened one says so: `truncated`, `content_chars`, and get_memory(id)
reads it whole); a page holds as many results as fit with each content cut to MIN_SHOWN_CHARS, so
at MAX_RESPONSE_CHARS=10,000 ten results of any length come in one response; its cursor pins the
newest memory the first page's search considered: memories stored between two pages (hooks capture
them as a session goes) do not shift the ranking. `search_conversations`: its items are short
previews, so whole items are paged, and the cursor pins the newest exchange listed: exchanges
logged between two pages (the gateway logs every call) do not shift the list.
Cursors are services/paging.py's (offset, the call's arguments, the listing's identity).
"""

from __future__ import annotations

from collections.abc import Sequence

from mcp_server.schemas import ConversationPage, ConversationSummary, RecalledMemory, RecallResult, SearchMode
from mcp_server.services.paging import (
    cursor_room,
    decode_cursor,
    digest,
    encode_cursor,
    entries_that_fit,
    json_chars,
)
from mcp_server.services.response_fit import shorten_texts

MIN_SHOWN_CHARS = 200  # a result shows at least this much of its content (all of a shorter one)
PIN_CHARS = "c" * 40  # what a pin (`,"p":` and a 19-digit id) adds to a cursor, in base64


def shortened_memory(hit: RecalledMemory, chars: int) -> RecalledMemory:
    """`hit` with at most the first `chars` characters of its content, marked when cut."""
    whole = hit.content
    if len(whole) <= chars:
        return hit
    note = f"…[truncated: {len(whole) - chars:,} more characters; get_memory(id={hit.id}) reads it whole]"
    return hit.model_copy(update={"content": whole[:chars] + note, "truncated": True, "content_chars": len(whole)})


def _page_size(hits: Sequence[RecalledMemory], chars: int) -> int:
    """JSON characters of `hits` as a list, each content cut to `chars`."""
    return sum(json_chars(shortened_memory(hit, chars)) for hit in hits) + max(len(hits) - 1, 0) + 2


def recall_page(ranked: Sequence[RecalledMemory], mode: SearchMode, cursor: str | None, arguments: str,
                limit: int, pin: int | None = None) -> RecallResult:
    """The page of `ranked` that `cursor` points to, within `limit` characters of JSON; the next
    cursor carries `pin` (the newest memory id the search considered, see MemoryService.recall)."""
    listing = digest([hit.id for hit in ranked])
    start = decode_cursor(cursor, "recall", arguments, listing, len(ranked))
    room = limit - json_chars(RecallResult(results=[], mode=mode, next_cursor=cursor_room() + PIN_CHARS)) + 2
    rest = ranked[start:]
    if _page_size(rest, max((len(hit.content) for hit in rest), default=0)) <= room:
        # Everything left fits whole (the usual case): one measure, no shortening (the search below
        # measures the page a dozen times, ~1 ms per call at ten results).
        return RecallResult(results=list(rest), mode=mode)
    count = entries_that_fit([json_chars(shortened_memory(hit, MIN_SHOWN_CHARS)) for hit in rest], 0, room - 2)
    count = max(count, 1) if rest else 0
    page = rest[:count]
    longest = max((len(hit.content) for hit in page), default=0)
    low = MIN_SHOWN_CHARS if _page_size(page, MIN_SHOWN_CHARS) <= room else 0
    high = longest
    while low < high:  # the largest common length that fits (JSON escapes make sizes uneven: measure)
        middle = (low + high + 1) // 2
        if _page_size(page, middle) <= room:
            low = middle
        else:
            high = middle - 1
    shown = [shortened_memory(hit, low) for hit in page]
    if count == 1 and _page_size(shown, low) > room:  # even its metadata is too large: shorten every text
        data, _ = shorten_texts(shown[0].model_dump(mode="json"), room - 2, lambda cut: f"…[truncated {cut:,}]")
        shown = [RecalledMemory.model_validate({**data, "truncated": True,
                                                "content_chars": len(page[0].content)})]
    end = start + count
    return RecallResult(results=shown, mode=mode,
                        next_cursor=encode_cursor(end, arguments, listing, pin) if end < len(ranked) else None)


def conversations_page(listed: Sequence[ConversationSummary], cursor: str | None, arguments: str,
                       limit: int) -> ConversationPage:
    """The page of `listed` (newest first) that `cursor` points to, within `limit` characters of JSON:
    whole items (a preview is short); an item too large alone comes with its texts shortened."""
    listing = digest([item.id for item in listed])
    start = decode_cursor(cursor, "search_conversations", arguments, listing, len(listed))
    newest = max((item.id for item in listed), default=None)  # the cursor's pin (see ConversationService.search)
    room = limit - json_chars(ConversationPage(items=[], next_cursor=cursor_room() + PIN_CHARS))
    count = entries_that_fit([json_chars(item) for item in listed], start, room)
    items = list(listed[start:start + count])
    if count == 0 and start < len(listed):  # (a gateway call's usage object can be large)
        data, _ = shorten_texts(listed[start].model_dump(mode="json"), room, lambda cut: f"…[truncated {cut:,}]")
        items, count = [ConversationSummary.model_validate(data)], 1
    end = start + count
    return ConversationPage(items=items, next_cursor=encode_cursor(end, arguments, listing, newest)
                            if end < len(listed) else None)
