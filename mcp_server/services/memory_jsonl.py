"""The JSONL format of `memories import` / `memories export`: one memory per line.

Line format: {"content": str, "source": str|null, "metadata": object, "created_at": ISO-8601,
"project": str|null}. A line without `project` goes to the import's project; `null` is global.
Lines are validated like `remember`'s arguments; a bad line is reported by number and skipped.
Secrets in content, source and metadata are redacted as `remember` redacts them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mcp_server.db.memories import MemoryExport, content_hash
from mcp_server.errors import InvalidInputError
from mcp_server.redact import Redactor
from mcp_server.repository import check_project_name
from mcp_server.services import validation as check

IMPORT_BATCH_ROWS = 5_000


@dataclass
class ImportReport:
    read: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: list[str] = field(default_factory=list)  # "line N: reason"
    redactions: int = 0  # secrets replaced by [REDACTED:<rule>] before storing
    embedded: int = 0  # rows given a vector after the import
    embed_error: str | None = None  # why they were not, when embedding was asked for and failed


# content, content_hash, source, metadata JSON, created_at, project (a key; None: a global memory)
ParsedLine = tuple[str, str, str | None, str, datetime | None, str | None]


def parse_line(raw: str, max_chars: int, project: str | None,
               redactor: Redactor | None = None) -> tuple[ParsedLine, int]:
    """A valid line as a row to import (into `project` unless the line names its own), its secrets
    redacted, and how many were."""
    try:
        item = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"not JSON ({exc.msg})") from None
    if not isinstance(item, dict):
        raise InvalidInputError("not a JSON object")
    text = check.content(item.get("content"), max_chars)
    source = check.optional_label(item.get("source"), "source")
    meta = check.metadata(item.get("metadata")) or {}
    created = item.get("created_at")
    created_at = None
    if created is not None:
        try:
            created_at = datetime.fromisoformat(str(created))
        except ValueError:
            raise InvalidInputError("`created_at` is not an ISO-8601 timestamp") from None
    if "project" in item:
        project = None if item["project"] is None else check_project_name(item["project"])
    count = 0
    if redactor is not None:
        (text, source, meta), count = redactor.redact_json([text, source, meta])
    return (text, content_hash(text), source, json.dumps(meta), created_at, project), count


def batches(lines: Iterable[str], report: ImportReport, max_chars: int,
            project: str | None, redactor: Redactor | None = None) -> Iterator[list[ParsedLine]]:
    """Valid rows in batches of IMPORT_BATCH_ROWS; counts every line read and rejected in `report`."""
    batch: list[ParsedLine] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        report.read += 1
        try:
            row, redacted = parse_line(raw, max_chars, project, redactor)
        except InvalidInputError as exc:
            report.rejected.append(f"line {number}: {exc}")
            continue
        batch.append(row)
        report.redactions += redacted
        if len(batch) >= IMPORT_BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


def export_line(memory: MemoryExport) -> str:
    item: dict[str, Any] = {
        "content": memory.content,
        "source": memory.source,
        "metadata": memory.metadata,
        "created_at": memory.created_at.isoformat(),
        "project": memory.project,
    }
    return json.dumps(item, ensure_ascii=False) + "\n"
