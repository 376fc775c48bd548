"""Input checks shared by every use case: one place that says what is acceptable and why."""

from __future__ import annotations

import json
import math
from typing import Any

from mcp_server.errors import InvalidInputError
from mcp_server.schemas import MAX_METADATA_BYTES, MAX_SOURCE_CHARS


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def content(text: Any, max_chars: int, field: str = "content", setting: str | None = "MAX_CONTENT_CHARS",
            limit_of: str = "", advice: str = "Shorten it.") -> str:
    """`text` stripped; `limit_of` (" for a pattern") and `advice` make a too-long text's error specific."""
    if not isinstance(text, str):
        raise InvalidInputError(f"`{field}` must be a string.")
    cleaned: str = text.strip()
    if not cleaned:
        raise InvalidInputError(f"`{field}` is empty: pass the text to store.")
    if len(cleaned) > max_chars:
        named = f" ({setting})" if setting else ""
        raise InvalidInputError(
            f"`{field}` is {len(cleaned)} characters; the limit{limit_of} is {max_chars}{named}. {advice}")
    if "\x00" in cleaned:
        raise InvalidInputError(f"`{field}` contains a NUL character (\\u0000), which cannot be stored.")
    return cleaned


def optional_label(value: Any, field: str, max_chars: int = MAX_SOURCE_CHARS) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"`{field}` must be a string.")
    value = value.strip()
    if "\x00" in value:
        raise InvalidInputError(f"`{field}` contains a NUL character (\\u0000).")
    if len(value) > max_chars:
        raise InvalidInputError(f"`{field}` is longer than {max_chars} characters.")
    return value or None


def metadata(value: Any, field: str = "metadata") -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInputError(
            f"`{field}` must be a JSON object such as {{\"project\": \"api\"}}, not {type(value).__name__}."
        )
    if _has_nul(value):
        raise InvalidInputError(f"`{field}` contains a NUL character (\\u0000), which PostgreSQL cannot store.")
    try:
        encoded = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"`{field}` is not valid JSON: {exc}.") from None
    if len(encoded.encode()) > MAX_METADATA_BYTES:
        raise InvalidInputError(f"`{field}` is larger than {MAX_METADATA_BYTES} bytes of JSON.")
    return value


def int_range(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"`{field}` must be an integer between {low} and {high}.")
    if not low <= value <= high:
        raise InvalidInputError(f"`{field}` is {value}; it must be between {low} and {high}.")
    return value


def score_threshold(value: Any, field: str = "min_score") -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise InvalidInputError(f"`{field}` must be a number between -1 and 1.")
    if not -1.0 <= value <= 1.0:
        raise InvalidInputError(f"`{field}` is {value}; cosine similarity is between -1 and 1.")
    return float(value)


def row_id(value: Any, field: str = "id") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value > 2**63 - 1:
        raise InvalidInputError(f"`{field}` must be a positive integer id.")
    return value
