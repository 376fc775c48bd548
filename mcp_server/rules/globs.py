"""Which patterns apply to a file: gitignore-style globs relative to the repository root.

This is the *canonical form*: every glob is stored this way, whatever tool it came from
(rules/dialects.py converts Cursor's and Copilot's globs on import, and back on generation).
Semantics (pinned by tests):
- `*.py` (no slash) matches at any depth; `api/*.py` only directly under `api/`;
  `src/**/*.ts` at any depth below `src/`; `docs/` and `docs/**` everything under `docs/`
  (a trailing slash means the folder at the root, not a folder of that name anywhere);
  a leading `./` is ignored; `!glob` excludes what it matches.
- A leading `/` anchors a glob without another slash at the root, as in git: `/Makefile` is the
  root's Makefile only, `Makefile` one at any depth. A glob with another slash is anchored
  already, so its leading `/` is dropped (`/api/*.py` is stored `api/*.py`): one spelling a meaning.
- As in git, a glob that matches a folder matches everything inside it (`tests` matches
  `tests/unit/x.py`); globs are case-sensitive, unless the pattern says otherwise
  (`metadata.globs_ignore_case`, set for Copilot's globs, which VS Code matches ignoring case).
- Paths from clients may use Windows separators (`api\\users.py`) or a leading `./`.

Braces are alternatives, as in minimatch and VS Code: `src/**/*.{ts,tsx}` is `src/**/*.ts` or
`src/**/*.tsx`, nested braces too; `{x}` without a comma, or an unclosed `{`, is literal. A glob
expands to at most MAX_BRACE_ALTERNATIVES globs.

Matching: pathspec translates each alternative into a regular expression (so the meaning of a
glob is pathspec's), and RE2 runs them, as one alternation, instead of Python's `re`. RE2
never backtracks, so a match costs time linear in the path's length whatever the glob (`re` took
24 s on `*a*a*a*a*a*a*a*ab` against 60 characters, blocking the event loop for every user).
Limits keep the constant small: a glob has at most MAX_GLOB_CHARS characters and
MAX_GLOB_WILDCARDS wildcards, a path at most MAX_PATH_CHARS characters; the worst match then
costs a few milliseconds. A stored glob beyond the limits (a row written before them) never
matches; editing its pattern asks for valid globs.

To find candidates in SQL without scanning every pattern, each glob also gets one *key* (stored
in `eng_patterns.context_keys`, GIN-indexed): `d:<first folder>` for globs anchored under a
literal folder, `e:<extension>` for `*.ext` globs (also `**/src/**/*.ext`), `n:<name>` for a literal
last name, or `*` for everything else. A path's keys are its first folder, the name and extension of
each of its segments (a glob matching a folder matches the files inside it: `tests` matches
`pkg/tests/x.py` through `n:tests`) and `*`; only patterns sharing a key are checked. A pattern
matching ignoring case gets lower-cased `n:`/`d:` keys, and a path's keys include lower-cased ones too.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import re2  # type: ignore[import-untyped]  # (google-re2 ships no type information)
from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern

from mcp_server.errors import InvalidInputError

CATCH_ALL_KEY = "*"
_WILDCARD = re.compile(r"\*\*|\*|\?|\[[^\]]*\]")
# Control characters (C0, DEL, C1) and Unicode line breaks: no file name has them on purpose.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# A match costs about glob length x path length (RE2's NFA, when its DFA gives up on a hostile
# glob), so both are capped well above real use: real globs are a few dozen characters with a
# handful of wildcards (`src/**/components/*.tsx`), and no file path is longer than PATH_MAX.
MAX_GLOB_CHARS = 256
MAX_GLOB_WILDCARDS = 16  # `*`, `**`, `?` and `[...]` each count
MAX_PATH_CHARS = 4096  # PATH_MAX on Linux
MAX_BRACE_ALTERNATIVES = 32  # `{a,b}{c,d}` is 4; real rules list a few extensions
# Compiled globs kept: a regex whose DFA a hostile glob filled holds ~160 KB (a real one ~3 KB),
# so this bounds the cache to ~320 MB at worst; a miss costs ~30 us to compile again.
_COMPILED_GLOBS_KEPT = 2048


class _Matcher(Protocol):
    def search(self, text: str) -> object | None: ...


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.never_capture = True  # we only ask "does it match"
    options.log_errors = False  # a refused glob is our error to report, not a line on stderr
    options.max_mem = 1 << 20  # per regex; beyond it RE2 falls back to its (still linear) NFA
    return options


_RE2_OPTIONS = _re2_options()
_RE2_OPTIONS_IGNORING_CASE = _re2_options()
_RE2_OPTIONS_IGNORING_CASE.case_sensitive = False


def check_path_length(path: str) -> None:
    """Refuse a path no real file has (before anything else looks at it, and without echoing it)."""
    if len(path) > MAX_PATH_CHARS:
        raise InvalidInputError(f"`file_path` is {len(path):,} characters long; at most {MAX_PATH_CHARS:,} are "
                                "accepted: pass the file's path relative to the repository root.")


def normalize_path(path: str) -> str:
    """A client's file path as a repository-relative POSIX path."""
    if not isinstance(path, str) or not path.strip():
        raise InvalidInputError("`file_path` is empty: pass a path relative to the repository root, e.g. api/users.py.")
    check_path_length(path)
    if "\x00" in path:
        raise InvalidInputError("`file_path` contains a NUL character.")
    _require_unicode(path, "`file_path`")
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
        raise InvalidInputError(f"The glob {_shown(glob)} contains a NUL character.")
    text = glob.strip().replace("\\", "/")
    if _CONTROL.search(text):  # (a line break would also end the front-matter line a glob is written on)
        raise InvalidInputError(f"The glob {_shown(glob)} contains a control or line-break character: a glob is "
                                "one line of path characters, e.g. `src/**/*.ts`; pass several globs as a list.")
    negated = text.startswith("!")
    if negated:
        text = text[1:].strip()
    while text.startswith("./"):
        text = text[2:]
    rooted = text.startswith("/")
    text = text.lstrip("/")
    if text.endswith("/"):
        text = text.rstrip("/") + "/**"
    if not text:
        raise InvalidInputError(f"The glob {_shown(glob)} is empty: use e.g. `**/*` for every file, `api/*.py`, "
                                "`tests/**`.")
    if rooted:
        text = root_anchored(text)
    _check_limits(glob, text)
    _require_unicode(text, f"The glob {_shown(glob)}")
    if len(expand_braces(text)) > MAX_BRACE_ALTERNATIVES:
        raise InvalidInputError(f"The glob {_shown(glob)} expands to more than {MAX_BRACE_ALTERNATIVES} alternatives "
                                "(each `{a,b}` multiplies them): split it into several globs.")
    if _compile(text) is None:
        raise InvalidInputError(f"The glob {_shown(glob)} is not a valid gitignore-style pattern.")
    return f"!{text}" if negated else text


def root_anchored(text: str) -> str:
    """`text` (relative to the root, no leading `/`) spelled so that it matches from the root only:
    a glob with a slash is anchored already; one without gets a leading `/` (`**` is every file anyway)."""
    if "/" in text or all(segment == "**" for segment in text.split("/")):
        return text
    return "/" + text


def normalize_globs(globs: Iterable[str] | None) -> list[str]:
    if globs is None:
        return []
    if isinstance(globs, str):
        raise InvalidInputError("`target_contexts` must be a list of globs, e.g. [\"api/*.py\", \"tests/**\"].")
    return list(dict.fromkeys(normalize_glob(g) for g in globs))


def _shown(glob: str) -> str:
    return repr(glob if len(glob) <= 60 else glob[:60] + "...")


def _check_limits(glob: str, text: str) -> None:
    if len(text) > MAX_GLOB_CHARS:
        raise InvalidInputError(f"The glob {_shown(glob)} is {len(text):,} characters long; a glob may have at most "
                                f"{MAX_GLOB_CHARS}: name a folder or a file pattern instead, e.g. `src/api/**` or "
                                "`**/*.py`.")
    wildcards = len(_WILDCARD.findall(text))
    if wildcards > MAX_GLOB_WILDCARDS:
        raise InvalidInputError(f"The glob {_shown(glob)} has {wildcards} wildcards; a glob may have at most "
                                f"{MAX_GLOB_WILDCARDS} (each `*`, `**`, `?` and `[...]` counts): use `**` for any "
                                "depth, e.g. `src/**/*.ts`, or split it into several globs.")


def _require_unicode(text: str, what: str) -> None:
    """JSON can carry lone surrogates (\\ud800); they are no file name, and RE2 reads UTF-8 only."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError(f"{what} is not valid Unicode (it holds a lone surrogate).") from None


def expand_braces(glob: str) -> list[str]:
    """The brace alternatives of a glob, left to right (`a.{ts,tsx}` -> [a.ts, a.tsx]); a glob
    without a brace group is itself. Stops counting past MAX_BRACE_ALTERNATIVES (the caller refuses)."""
    start = 0
    while (opening := glob.find("{", start)) >= 0:
        closing, commas = _brace_group(glob, opening)
        if closing is None or not commas:
            start = opening + 1  # `{x}` or an unclosed `{`: literal
            continue
        head, tail = glob[:opening], glob[closing + 1:]
        bounds = [opening, *commas, closing]
        alternatives: list[str] = []
        for left, right in itertools.pairwise(bounds):
            for middle in expand_braces(glob[left + 1:right]):
                for end in expand_braces(tail):
                    alternatives.append(head + middle + end)
                    if len(alternatives) > MAX_BRACE_ALTERNATIVES:
                        return alternatives
        return alternatives
    return [glob]


def _brace_group(glob: str, opening: int) -> tuple[int | None, list[int]]:
    """The `}` closing the `{` at `opening`, and the positions of its own (not nested) commas."""
    depth = 0
    commas: list[int] = []
    for index in range(opening, len(glob)):
        char = glob[index]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index, commas
        elif char == "," and depth == 1:
            commas.append(index)
    return None, []


@lru_cache(maxsize=_COMPILED_GLOBS_KEPT)
def _compile(glob: str, ignore_case: bool = False) -> _Matcher | None:
    """The glob (its brace alternatives) as one RE2 regex, or None if it is no valid gitignore
    pattern (or RE2 refuses it)."""
    alternatives = expand_braces(glob)
    if len(alternatives) > MAX_BRACE_ALTERNATIVES:
        return None
    regexes = []
    for alternative in alternatives:
        try:
            regex, include = GitIgnoreSpecPattern.pattern_to_regex(alternative)
        except (ValueError, TypeError):
            return None
        if regex is None or include is None:
            return None
        regexes.append(_python_classes_for_re2(regex))
    try:
        options = _RE2_OPTIONS_IGNORING_CASE if ignore_case else _RE2_OPTIONS
        matcher: _Matcher = re2.compile("|".join(f"(?:{r})" for r in regexes), options)
    except re2.error:
        return None
    return matcher


def _python_classes_for_re2(regex: str) -> str:
    """pathspec writes regexes for Python's `re`, and RE2 reads them alike (a differential test
    pins it) but for `$` (see glob_matches) and one thing: inside a bracket expression `re` takes
    `[` literally, RE2 starts a POSIX class (`[[:alpha:]]`). Escaping `[` inside brackets makes
    RE2 read what `re` reads (and did before RE2)."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(regex):
        char = regex[i]
        if char == "\\":
            out.append(regex[i:i + 2])
            i += 2
            continue
        if in_class and char == "[":
            out.append("\\[")
        elif in_class and char == "]":
            in_class = False
            out.append(char)
        elif char == "[":
            in_class = True
            start = i + 1 + (regex[i + 1:i + 2] == "^")
            end = start + (regex[start:start + 1] == "]")  # `[]a]`, `[^]a]`: a first `]` is literal
            out.append(regex[i:end])
            i = end
            continue
        else:
            out.append(char)
        i += 1
    return "".join(out)


@lru_cache(maxsize=65_536)
def canonical(glob: str) -> str | None:
    """The normalized form of a stored glob, or None if it can never match (legacy rows)."""
    try:
        return normalize_glob(glob)
    except InvalidInputError:
        return None


def glob_matches(glob: str, path: str, ignore_case: bool = False) -> bool:
    """Does `glob` match `path` (a normalize_path result: RE2's `$` is the end of the text, where
    Python's `re` would also match before a final newline, which normalize_path strips)?"""
    form = canonical(glob)
    regex = _compile(form.removeprefix("!"), ignore_case) if form else None
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


def ignores_case(metadata: Mapping[str, Any]) -> bool:
    """Whether a pattern's globs match ignoring case: its `metadata.globs_ignore_case` (Copilot's)."""
    return bool(metadata.get("globs_ignore_case"))


def match_contexts(globs: Sequence[str], path: str, ignore_case: bool = False) -> ContextMatch:
    """Does a pattern with these globs apply to `path` (gitignore order: later `!globs` exclude)?
    `ignore_case`: the pattern's `metadata.globs_ignore_case` (its globs came from Copilot).
    Only exclusions (`!generated/**`) mean every file but those, as for a pattern without globs,
    which applies everywhere (and is "always" to render.attach_mode)."""
    if not globs:
        return ContextMatch(True, [], 0.0)
    included = all(glob.startswith("!") for glob in globs)
    matched: list[str] = []
    for glob in globs:
        if glob.startswith("!"):
            if included and glob_matches(glob, path, ignore_case):
                included, matched = False, []
        elif glob_matches(glob, path, ignore_case):
            included = True
            matched.append(glob)
    if not included:
        return ContextMatch(False, [], 0.0)
    return ContextMatch(True, matched, max((specificity(g) for g in matched), default=0.0))


def glob_keys(glob: str) -> set[str]:
    """The candidate keys of a glob: one per brace alternative (`*.{ts,tsx}`: e:ts and e:tsx)."""
    form = canonical(glob)
    if form is None:
        return {CATCH_ALL_KEY}
    return {_key(alternative) for alternative in expand_braces(form.removeprefix("!"))}


def _key(text: str) -> str:
    segments = text.removeprefix("/").split("/")  # `/Makefile`: the root's, keyed by its name
    if len(segments) > 1 and not _WILDCARD.search(segments[0]):
        return f"d:{segments[0]}"  # anchored under a literal first folder
    last = segments[-1]
    if len(segments) == 1 or _WILDCARD.search(segments[0]):  # `*.py`, `**/src/**/*.py`: by the file's name
        if not _WILDCARD.search(last):
            return f"n:{last}"
        tail = _WILDCARD.split(last)[-1]  # the literal end of the name, e.g. ".py" of "test_*.py"
        if "." in tail and tail.rsplit(".", 1)[-1]:
            return f"e:{tail.rsplit('.', 1)[-1].lower()}"
    return CATCH_ALL_KEY


def context_keys(globs: Sequence[str], ignore_case: bool = False) -> list[str]:
    """Candidate keys of a pattern: its included globs' (an exclusion only narrows what they match,
    see match_contexts); an unscoped pattern, or one with exclusions alone, gets `*`.
    `ignore_case`: name and folder keys lower-cased, as path_keys also offers them."""
    included = [g for g in globs if not g.startswith("!")]
    if not included:
        return [CATCH_ALL_KEY]
    keys = set().union(*(glob_keys(g) for g in included))
    if ignore_case:
        keys = {key.lower() if key[:2] in ("n:", "d:") else key for key in keys}
    return sorted(keys)


def path_keys(path: str) -> list[str]:
    """A path's candidate keys: its first folder, each segment's name and extension (a glob can match
    the file or any folder on its way), each name and folder key also lower-cased (for patterns
    ignoring case), and `*`."""
    segments = path.split("/")
    keys = {CATCH_ALL_KEY}
    if len(segments) > 1:
        keys |= {f"d:{segments[0]}", f"d:{segments[0].lower()}"}
    for segment in segments:
        keys |= {f"n:{segment}", f"n:{segment.lower()}"}
        if "." in segment:
            keys.add(f"e:{segment.rsplit('.', 1)[-1].lower()}")
    return sorted(keys)
