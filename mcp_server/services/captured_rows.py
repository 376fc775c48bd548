"""How a call captured by the gateway becomes a raw_conversations row: pure functions, no I/O.

A captured call is a record of what a client sent and got, not a submission to judge: nothing in
it is refused. What does not fit a column is made to fit (a label too long keeps its start and a
digest; a text that breaks UTF-8 is repaired; a call over MAX_EXCHANGE_BYTES has its longest
texts shortened, each saying so), and the rest is stored as sent.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from mcp_server.schemas import MAX_SOURCE_CHARS
from mcp_server.services.response_fit import Cut, shorten_texts

# Ends every text shortened to fit MAX_EXCHANGE_BYTES (a replay can tell such a request is not whole).
SHORTENED_MARK = "…[aletheia: "
# Where an API keeps the conversation in its request body, when not in `messages`.
CONVERSATION_KEY = {"/v1/responses": "input"}
_DIGEST_CHARS = 16
_FIT_ATTEMPTS = 8


def split_request(endpoint: str, body: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """The conversation in a request body, and the rest of the body (system prompt, tools,
    parameters): `messages` for chat completions and Anthropic messages (whose `system` stays in
    the rest), `input` for responses (a string there is one user message). A conversation that is
    not a list stays in the rest as sent, and the conversation is then empty."""
    key = CONVERSATION_KEY.get(endpoint, "messages")
    conversation = body.get(key)
    if key == "input" and isinstance(conversation, str):
        conversation = [{"role": "user", "content": conversation}]
    if not isinstance(conversation, list):
        return [], dict(body)
    return conversation, {name: value for name, value in body.items() if name != key}


def bounded_label(value: Any) -> str | None:
    """A label (model, endpoint, request id) as stored: text of at most MAX_SOURCE_CHARS. A longer
    one keeps its start and a digest of the whole, so that two long labels stay apart and the same
    one always gives the same result (request ids must, for idempotency)."""
    if value is None:
        return None
    text = (value if isinstance(value, str) else json.dumps(value, sort_keys=True)).replace("\x00", "").strip()
    if len(text) <= MAX_SOURCE_CHARS:
        return text or None
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST_CHARS]
    return f"{text[:MAX_SOURCE_CHARS - _DIGEST_CHARS - 1]}#{digest}"


def json_bytes(value: Any) -> int:
    """The size of `value` as compact UTF-8 JSON."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))


def valid_text(value: Any) -> Any:
    """`value` as PostgreSQL's jsonb takes it: a lone surrogate in a string (from a "\\ud800" escape
    in the client's JSON) becomes U+FFFD (a pair stays the character it makes), and a number JSON
    cannot hold (NaN, Infinity: Python's JSON reader accepts them) becomes its text. Returns `value`
    itself when nothing needs repair (the common case costs one serialisation)."""
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode()
    except (UnicodeEncodeError, ValueError):
        return _repaired(value)
    return value


def _repaired(node: Any) -> Any:
    if isinstance(node, str):
        return node.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(node, float) and not math.isfinite(node):
        return str(node)
    if isinstance(node, dict):
        return {_repaired(key): _repaired(item) for key, item in node.items()}
    if isinstance(node, list):
        return [_repaired(item) for item in node]
    return node


def fit_to_bytes(value: Any, limit: int) -> tuple[Any, int]:
    """`value` with its longest texts shortened (longest first, to one common length) until its JSON
    is at most `limit` bytes, each ending with a marker saying how much was cut and why; and how many
    were shortened. When even every text at its minimum is too large (a structure of many small
    values), that is returned: the row is stored larger rather than lost."""
    if json_bytes(value) <= limit:
        return value, 0

    def marker(cut: int) -> str:
        return f"{SHORTENED_MARK}{cut:,} characters cut here: the call was over MAX_EXCHANGE_BYTES={limit:,}]"

    budget = limit  # characters; a text of non-ASCII characters takes more bytes: tighten by the excess
    shortened: Any = value
    cuts: list[Cut] = []
    for _ in range(_FIT_ATTEMPTS):
        shortened, cuts = shorten_texts(value, budget, marker)
        over = json_bytes(shortened) - limit
        if over <= 0 or not cuts:
            break
        budget -= over
    return shortened, len(cuts)
