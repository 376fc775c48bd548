"""What this server put in a model's context, per MCP session, until the next logged exchange.

`recall`, `find_patterns` and `generate_context_file` record the ids they return; `log_exchange`
takes (and clears) them, so each logged exchange says which memories and patterns the model had
seen when it answered. Bounded so that many sessions cannot grow memory without limit.

The key is the caller's (`tools.session.session_key`): it starts with the acting user, so one
user's ids never reach another user's exchange. It lives in this process only: over HTTP with
several replicas, an exchange logged on another replica than the recall carries no provenance.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

MAX_SESSIONS = 1_000
MAX_IDS = 10_000


@dataclass
class _Seen:
    memory_ids: set[int] = field(default_factory=set)
    pattern_ids: set[int] = field(default_factory=set)


class ProvenanceTracker:
    def __init__(self) -> None:
        self._sessions: OrderedDict[str, _Seen] = OrderedDict()

    def _session(self, key: str) -> _Seen:
        seen = self._sessions.pop(key, None) or _Seen()
        self._sessions[key] = seen  # most recently used last
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return seen

    def record(self, key: str, *, memory_ids: Iterable[int] = (), pattern_ids: Iterable[int] = ()) -> None:
        seen = self._session(key)
        if len(seen.memory_ids) < MAX_IDS:
            seen.memory_ids.update(memory_ids)
        if len(seen.pattern_ids) < MAX_IDS:
            seen.pattern_ids.update(pattern_ids)

    def take(self, key: str) -> tuple[list[int], list[int]]:
        seen = self._sessions.pop(key, None)
        if seen is None:
            return [], []
        return sorted(seen.memory_ids), sorted(seen.pattern_ids)
