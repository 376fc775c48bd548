"""Keep every tool result under MAX_RESPONSE_CHARS of JSON (a model's context is finite).

`fit` is what tools/runner.py applies to results that do not page or summarise themselves: lists
lose their last entries (a page then ends earlier: `next_cursor` points after the last entry kept,
so nothing is skipped: list_memories); single objects
have their longest strings shortened, longest first (every string longer than a common length is
cut to it), with a marker saying how much was cut and where to read the rest. The pattern tools
page whole entries instead (services/paging.py); recall and search_conversations shorten, then page
(services/result_pages.py). `shorten_texts` is the shortening step on its
own, reporting each cut, for results that say what they shortened (get_conversation).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from mcp_server.errors import InvalidInputError

M = TypeVar("M", bound=BaseModel)
# find_patterns and generate_context_file page their lists themselves (services/paging.py).
LIST_FIELDS = ("results", "items")
TRUNCATION_NOTE = ("…[truncated {cut} characters to fit MAX_RESPONSE_CHARS; a pattern's aletheia://patterns/{{id}} "
                   "resource and `aletheia-mcp patterns export` / `memories export` give it whole]")
MIN_KEPT_CHARS = 50  # a shortened text keeps at least this much of its start
# How every shortened text shown to a model is marked (here, services/paging.py, result_pages.py,
# hook_context.py): a text holding one is a part of something, never a whole to store back.
SHORTENED_MARKS = ("…[truncated", "…[shortened")


def refuse_shortened_edit(new: str, old: str, kind: str, read_whole: str) -> None:
    """Refuse to replace `old` with `new` when `new` holds a shortened text's mark that `old` does
    not (a text may quote one): it was made from what a response showed, not from the whole."""
    if any(new.count(mark) > old.count(mark) for mark in SHORTENED_MARKS):
        raise InvalidInputError(
            f"`content` holds the mark of a text shortened to fit a response (…[truncated / …[shortened): it "
            f"would replace the whole {kind} with the part that was shown. Read it whole first ({read_whole}), "
            "then pass the whole new text.")

Path = tuple[str | int, ...]


def json_size(value: Any) -> int:
    """Characters of JSON data (dicts, lists, scalars) as compact JSON: what a result's size is measured in."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


@dataclass(frozen=True)
class Cut:
    """One shortened text: where it is, how long it is, and which part of it is shown."""

    path: Path
    total_chars: int
    shown_from: int
    shown_chars: int


def fit(result: M, limit: int) -> M:
    data = result.model_dump(mode="json")
    if json_size(data) <= limit:
        return result
    for name in LIST_FIELDS:
        entries = data.get(name)
        if not isinstance(entries, list) or not entries:
            continue
        room = limit - json_size({**data, name: []})
        kept: list[Any] = []
        for entry in entries:
            cost = json_size(entry) + 1
            if cost > room:
                break
            kept.append(entry)
            room -= cost
        # The page ends with the last entry shown (the first one, shortened, when none fits whole):
        # the cursor goes on from there, so no entry of the page is skipped.
        shown = len(kept) or 1
        if shown < len(entries) and "next_cursor" in data:
            data["next_cursor"] = str(entries[shown - 1]["id"])
        data[name] = kept
        if not kept:
            data[name] = [_shorten(entries[0], max(200, limit - json_size({**data, name: []}) - 10))]
    if json_size(data) > limit:
        data = _shorten(data, limit)
    return type(result).model_validate(data)


def _shorten(value: Any, limit: int) -> Any:
    """Cut the longest strings in `value` until its JSON fits in `limit` characters."""
    shortened, _ = shorten_texts(value, limit, lambda cut: TRUNCATION_NOTE.format(cut=cut))
    return shortened


_Attempt = tuple[Any, list[Cut], bool]  # (shortened value, its cuts, whether it fits)


def _no_room(cuts: int) -> int:
    return 0


def shorten_texts(value: Any, limit: int, marker: Callable[[int], str], *, extra: Callable[[int], int] = _no_room,
                  last: Path | None = None) -> tuple[Any, list[Cut]]:
    """`value` with its longest strings cut to one common length, the largest that makes its JSON fit
    in `limit` characters (each cut string ends with `marker(characters cut)`), and the cuts.

    `extra(number of cuts)` is the room the caller needs for reporting the cuts. The string at `last`
    is cut only when cutting every other one to MIN_KEPT_CHARS is not enough (the text asked for).
    When nothing fits, the result is as short as this can make it: the caller decides what else to drop.
    """
    texts = [(path, text) for path, text in _strings(value) if len(text) > MIN_KEPT_CHARS and path != last]
    if json_size(value) + extra(0) <= limit:
        return value, []

    def attempt(cap: int, last_cap: int | None) -> _Attempt:
        cuts = {path: cap for path, text in texts if len(text) > cap}
        if last is not None and last_cap is not None:
            cuts[last] = last_cap
        shortened, made = _cut(value, cuts, marker)
        return shortened, made, json_size(shortened) + extra(len(made)) <= limit

    low, high = MIN_KEPT_CHARS, max((len(text) for _, text in texts), default=MIN_KEPT_CHARS)
    best = attempt(low, None)
    if not best[2]:
        if last is None:
            return best[0], best[1]
        last_text = _get(value, last)
        # the longest part of the text asked for that still fits
        best = _largest_fitting(0, len(last_text) if isinstance(last_text, str) else 0, attempt(MIN_KEPT_CHARS, 0),
                                lambda size: attempt(MIN_KEPT_CHARS, size))
        return best[0], best[1]
    best = _largest_fitting(low, high, best, lambda size: attempt(size, None))  # the largest common length
    return best[0], best[1]


def _largest_fitting(low: int, high: int, best: _Attempt, attempt: Callable[[int], _Attempt]) -> _Attempt:
    """Binary search for the largest size in [low, high] whose attempt fits (`best`: the attempt at low)."""
    while low < high:
        middle = (low + high + 1) // 2
        tried = attempt(middle)
        if tried[2]:
            best, low = tried, middle
        else:
            high = middle - 1
    return best


def _strings(value: Any, path: Path = ()) -> list[tuple[Path, str]]:
    if isinstance(value, str):
        return [(path, value)]
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    found: list[tuple[Path, str]] = []
    for key, child in children:
        found += _strings(child, (*path, key))
    return found


def _get(value: Any, path: Path) -> Any:
    for key in path:
        value = value[key]
    return value


def _cut(value: Any, cuts: dict[Path, int], marker: Callable[[int], str]) -> tuple[Any, list[Cut]]:
    """A copy of `value` with the string at each path of `cuts` kept to that many characters."""
    above = {path[:depth] for path in cuts for depth in range(len(path) + 1)}  # subtrees with a cut

    def walk(node: Any, path: Path) -> tuple[Any, list[Cut]]:
        if path not in above:
            return node, []
        if isinstance(node, str):
            keep = cuts.get(path)
            if keep is None or keep >= len(node):
                return node, []
            return node[:keep] + marker(len(node) - keep), [Cut(path, len(node), 0, keep)]
        made: list[Cut] = []
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, child in node.items():
                out[key], below = walk(child, (*path, key))
                made += below
            return out, made
        if isinstance(node, list):
            items: list[Any] = []
            for index, child in enumerate(node):
                item, below = walk(child, (*path, index))
                items.append(item)
                made += below
            return items, made
        return node, []

    return walk(value, ())


# ---- get_conversation: the exchange fitted, saying what was shortened and how to read the rest

MAX_LISTED_CUTS = 50
# The parts of an exchange whose texts may be shortened (`request`: a gateway call's system prompt,
# tools and parameters, often larger than its messages).
TEXT_FIELDS = ("messages", "request", "response")
_CUT_ENTRY_CHARS = 110  # JSON of one `shortened` entry, generously
_NOTE_CHARS = 600


def pointer(path: Path) -> str:
    """RFC 6901 JSON Pointer of `path` in {"messages": ..., "request": ..., "response": ...}."""
    return "".join("/" + str(key).replace("~", "~0").replace("/", "~1") for key in path)


def parse_pointer(pointer: str, exchange: dict[str, Any]) -> Path | None:
    """The path a JSON Pointer names in `exchange`, if it names a text there."""
    if not pointer.startswith("/"):
        return None
    path: list[str | int] = []
    node: Any = exchange
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list) and token.isdigit() and int(token) < len(node):
            path.append(int(token))
            node = node[int(token)]
        elif isinstance(node, dict) and token in node:
            path.append(token)
            node = node[token]
        else:
            return None
    return tuple(path) if isinstance(node, str) else None


def fit_exchange(data: dict[str, Any], limit: int, asked: Path | None = None,
                 offset: int = 0) -> tuple[dict[str, Any], list[Cut], list[int]]:
    """An exchange's JSON (`messages`, `request`, `response` and its other fields) fitted to `limit` characters.

    The longest texts are shortened first; the text at `asked` is shown from `offset` and shortened
    last. When even that is not enough, messages from the middle are left out (the first, the one
    asked for and the most recent ones stay). Returns the fitted data, the cuts (paths and offsets in
    the stored exchange), and the indices of the messages left out.
    """
    texts = {key: data[key] for key in TEXT_FIELDS}
    full_asked: str | None = None
    if asked is not None:
        full_asked = _get(texts, asked)
        texts = _replace(texts, asked, full_asked[offset:] if full_asked is not None else "")
    rest = {key: value for key, value in data.items() if key not in texts}
    room = limit - json_size(rest) - len('"messages":,"response":,') - 2

    def marker(cut: int) -> str:
        return f"…[truncated: {cut:,} more characters, see `shortened`]"

    def extra(cuts: int) -> int:
        return min(cuts, MAX_LISTED_CUTS) * _CUT_ENTRY_CHARS + (_NOTE_CHARS if cuts else 0)

    kept = _messages_to_keep(texts, room - extra(MAX_LISTED_CUTS) - _NOTE_CHARS, asked)
    messages = texts["messages"]
    omitted = [index for index in range(len(messages)) if index not in set(kept)] if isinstance(messages, list) else []
    shown = {**texts, "messages": [messages[index] for index in kept]} if omitted else texts
    shown_asked = asked
    if omitted and asked is not None and asked[0] == "messages":
        shown_asked = ("messages", kept.index(int(asked[1])), *asked[2:])
    fitted, cuts = shorten_texts(shown, room - (_NOTE_CHARS if omitted else 0), marker, extra=extra,
                                 last=shown_asked)
    if omitted:
        cuts = [Cut(("messages", kept[int(c.path[1])], *c.path[2:]), c.total_chars, c.shown_from, c.shown_chars)
                if c.path[0] == "messages" else c for c in cuts]
    if asked is not None and full_asked is not None:
        shown_chars = next((cut.shown_chars for cut in cuts if cut.path == asked), len(full_asked) - offset)
        cuts = [cut for cut in cuts if cut.path != asked]
        if offset or shown_chars < len(full_asked) - offset:
            cuts.append(Cut(asked, len(full_asked), offset, shown_chars))
    # The text asked for first, then the longest: when there are too many to list, those matter most.
    cuts.sort(key=lambda cut: (cut.path != asked, -cut.total_chars))
    return {**rest, **fitted}, cuts, omitted


def _replace(value: Any, path: Path, text: str) -> Any:
    if not path:
        return text
    head, tail = path[0], path[1:]
    if isinstance(value, list) and isinstance(head, int):
        return [_replace(item, tail, text) if i == head else item for i, item in enumerate(value)]
    return {key: _replace(item, tail, text) if key == head else item for key, item in value.items()}


def _messages_to_keep(texts: dict[str, Any], room: int, asked: Path | None) -> list[int]:
    """Indices of the messages to show: all when they fit with each text cut short, else the first and
    the one asked for (when a text is asked for), or the first and as many of the most recent as fit in
    half of `room`."""
    messages = texts["messages"]
    if not isinstance(messages, list):
        return []
    everything = list(range(len(messages)))
    minimal, _ = _cut(texts, {path: MIN_KEPT_CHARS for path, _ in _strings(texts)}, lambda cut: "…[+999,999]")
    if len(messages) < 3 or json_size(minimal) <= room:
        return everything
    costs = [json_size(message) + 1 for message in minimal["messages"]]
    must = {0} | ({int(asked[1])} if asked is not None and asked[0] == "messages" else set())
    if asked is not None:  # a text was asked for: give it the room, show only the first message besides
        return sorted(must)
    # Half the room for messages at their shortest, so that the texts shown can be more than a start.
    budget = room // 2 - json_size({**minimal, "messages": []}) - sum(costs[index] for index in must)
    kept = set(must)
    for index in reversed(everything):
        if index in kept:
            continue
        if budget - costs[index] < 0:
            break
        kept.add(index)
        budget -= costs[index]
    return sorted(kept)
