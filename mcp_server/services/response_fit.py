"""Keep every tool result under MAX_RESPONSE_CHARS of JSON (a model's context is finite).

Lists lose their last entries (a page then ends earlier: `next_cursor` points after the last
entry kept, so nothing is skipped); single objects have their longest strings shortened with a
marker saying how much was cut and where to read the rest.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)
LIST_FIELDS = ("results", "items", "files")
TRUNCATION_NOTE = "…[truncated {cut} characters to fit MAX_RESPONSE_CHARS; the CLI shows it in full]"


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def fit(result: M, limit: int) -> M:
    data = result.model_dump(mode="json")
    if _size(data) <= limit:
        return result
    for name in LIST_FIELDS:
        entries = data.get(name)
        if not isinstance(entries, list) or not entries:
            continue
        room = limit - _size({**data, name: []})
        kept: list[Any] = []
        for entry in entries:
            cost = _size(entry) + 1
            if cost > room:
                break
            kept.append(entry)
            room -= cost
        if len(kept) < len(entries) and "next_cursor" in data:
            data["next_cursor"] = str(kept[-1]["id"]) if kept else data.get("next_cursor")
        data[name] = kept
        if not kept:
            data[name] = [_shorten(entries[0], max(200, limit - _size({**data, name: []}) - 10))]
    if _size(data) > limit:
        data = _shorten(data, limit)
    return type(result).model_validate(data)


def _shorten(value: Any, limit: int) -> Any:
    """Cut the longest strings in `value` until its JSON fits in `limit` characters."""
    for _ in range(50):
        excess = _size(value) - limit
        if excess <= 0:
            return value
        path, text = _longest_string(value)
        if path is None or len(text) < 100:
            return value
        cut = min(len(text) - 50, excess + len(TRUNCATION_NOTE) + 20)
        _set(value, path, text[: len(text) - cut] + TRUNCATION_NOTE.format(cut=cut))
    return value


def _longest_string(value: Any, path: tuple[Any, ...] = ()) -> tuple[tuple[Any, ...] | None, str]:
    best: tuple[tuple[Any, ...] | None, str] = (None, "")
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        if isinstance(child, str):
            if len(child) > len(best[1]):
                best = ((*path, key), child)
        else:
            found = _longest_string(child, (*path, key))
            if len(found[1]) > len(best[1]):
                best = found
    return best


def _set(value: Any, path: tuple[Any, ...], text: str) -> None:
    for key in path[:-1]:
        value = value[key]
    value[path[-1]] = text
