"""Which patterns apply to a file: gitignore-style globs relative to the repository root.

Semantics (pinned by tests):
- `*.py` (no slash) matches at any depth; `api/*.py` only directly under `api/`;
  `src/**/*.ts` at any depth below `src/`; `docs/` and `docs/**` everything under `docs/`
  (a trailing slash means the folder at the root, not a folder of that name anywhere);
  a leading `./` or `/` is ignored; `!glob` excludes what it matches.
- Paths from clients may use Windows separators (`api\\users.py`) or a leading `./`.

Matching uses pathspec's gitignore patterns. To find candidates in SQL without scanning every
pattern, each glob also gets one *key* (stored in `eng_patterns.context_keys`, GIN-indexed):
`d:<first folder>` for globs anchored under a literal folder, `e:<extension>` for `*.ext`
globs, `n:<name>` for a literal file name, or `*` for everything else. A path's keys are
its first folder, its extension, its name and `*`; only patterns sharing a key are checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern

from mcp_server.errors import InvalidInputError

CATCH_ALL_KEY = "*"
_WILDCARD = re.compile(r"\*\*|\*|\?|\[[^\]]*\]")
MAX_GLOB_CHARS = 500


def normalize_path(path: str) -> str:
    """A client's file path as a repository-relative POSIX path."""
    if not isinstance(path, str) or not path.strip():
        raise InvalidInputError("`file_path` is empty: pass a path relative to the repository root, e.g. api/users.py.")
    if "\x00" in path:
        raise InvalidInputError("`file_path` contains a NUL character.")
    cleaned = path.strip().replace("\\", "/")
    cleaned = re.sub(r"/{2,}", "/", cleaned)
    while cleaned.startswith("./"):
        cleaned = cleaned[2:]
    return cleaned.lstrip("/")


def normalize_glob(glob: str) -> str:
    """A stored glob in canonical form; raises InvalidInputError for one that cannot match anything."""
    if not isinstance(glob, str):
        raise InvalidInputError("Each target context must be a glob string such as `api/*.py`.")
    if "\x00" in glob:
        raise InvalidInputError(f"The glob {glob!r} contains a NUL character.")
    text = glob.strip().replace("\\", "/")
    negated = text.startswith("!")
    if negated:
        text = text[1:].strip()
    while text.startswith("./"):
        text = text[2:]
    text = text.lstrip("/")
    if text.endswith("/"):
        text = text.rstrip("/") + "/**"
    if not text:
        raise InvalidInputError(f"The glob {glob!r} is empty: use e.g. `**/*` for every file, `api/*.py`, `tests/**`.")
    if len(text) > MAX_GLOB_CHARS:
        raise InvalidInputError(f"A glob is longer than {MAX_GLOB_CHARS} characters.")
    if _compile(text) is None:
        raise InvalidInputError(f"The glob {glob!r} is not a valid gitignore-style pattern.")
    return f"!{text}" if negated else text


def normalize_globs(globs: Iterable[str] | None) -> list[str]:
    if globs is None:
        return []
    if isinstance(globs, str):
        raise InvalidInputError("`target_contexts` must be a list of globs, e.g. [\"api/*.py\", \"tests/**\"].")
    return list(dict.fromkeys(normalize_glob(g) for g in globs))


@lru_cache(maxsize=65_536)
def _compile(glob: str) -> re.Pattern[str] | None:
    try:
        pattern = GitIgnoreSpecPattern(glob)
    except (ValueError, TypeError):
        return None
    return pattern.regex


@lru_cache(maxsize=65_536)
def canonical(glob: str) -> str | None:
    """The normalized form of a stored glob, or None if it can never match (legacy rows)."""
    try:
        return normalize_glob(glob)
    except InvalidInputError:
        return None


def glob_matches(glob: str, path: str) -> bool:
    form = canonical(glob)
    regex = _compile(form.removeprefix("!")) if form else None
    return regex is not None and regex.search(path) is not None


def specificity(glob: str) -> float:
    """How specific a glob is in [0, 1): literal characters count, wildcards do not.

    `**/*` ~ 0, `*.py` < `api/*.py` < `api/routes/*.py` < `api/routes/users.py`.
    """
    literal = _WILDCARD.sub("", glob).replace("/", "")
    return len(literal) / (len(literal) + 8.0)


@dataclass(frozen=True)
class ContextMatch:
    applies: bool
    matched: list[str]  # the globs that matched (empty for an unscoped pattern)
    specificity: float  # of the most specific matching glob; 0 for unscoped


def match_contexts(globs: Sequence[str], path: str) -> ContextMatch:
    """Does a pattern with these globs apply to `path` (gitignore order: later `!globs` exclude)?"""
    if not globs:
        return ContextMatch(True, [], 0.0)
    included = False
    matched: list[str] = []
    for glob in globs:
        if glob.startswith("!"):
            if included and glob_matches(glob, path):
                included, matched = False, []
        elif glob_matches(glob, path):
            included = True
            matched.append(glob)
    if not included:
        return ContextMatch(False, [], 0.0)
    return ContextMatch(True, matched, max(specificity(g) for g in matched))


def glob_key(glob: str) -> str:
    form = canonical(glob)
    if form is None:
        return CATCH_ALL_KEY
    text = form.removeprefix("!")
    segments = text.split("/")
    if len(segments) > 1 and not _WILDCARD.search(segments[0]):
        return f"d:{segments[0]}"  # anchored under a literal first folder
    last = segments[-1]
    if len(segments) == 1 or all(s == "**" for s in segments[:-1]):
        if not _WILDCARD.search(last):
            return f"n:{last}"
        tail = _WILDCARD.split(last)[-1]  # the literal end of the name, e.g. ".py" of "test_*.py"
        if "." in tail and tail.rsplit(".", 1)[-1]:
            return f"e:{tail.rsplit('.', 1)[-1].lower()}"
    return CATCH_ALL_KEY


def context_keys(globs: Sequence[str]) -> list[str]:
    """Candidate keys of a pattern; unscoped patterns and negations apply broadly, so `*`."""
    if not globs or any(g.startswith("!") for g in globs):
        return [CATCH_ALL_KEY]
    return sorted({glob_key(g) for g in globs})


def path_keys(path: str) -> list[str]:
    segments = path.split("/")
    keys = {CATCH_ALL_KEY, f"n:{segments[-1]}"}
    if len(segments) > 1:
        keys.add(f"d:{segments[0]}")
    if "." in segments[-1]:
        keys.add(f"e:{segments[-1].rsplit('.', 1)[-1].lower()}")
    return sorted(keys)
