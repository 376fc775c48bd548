"""Glob semantics of target_contexts (gitignore-style, relative to the repository root)."""

from __future__ import annotations

import pytest

from mcp_server.errors import InvalidInputError
from mcp_server.rules.globs import (
    context_keys,
    glob_matches,
    match_contexts,
    normalize_glob,
    normalize_path,
    path_keys,
    specificity,
)

CASES = [
    ("*.py", "app.py", True),
    ("*.py", "api/routes/users.py", True),  # no slash: any depth
    ("*.py", "api/users.pyc", False),
    ("api/*.py", "api/users.py", True),
    ("api/*.py", "api/routes/users.py", False),  # only directly under api/
    ("api/*.py", "other/api/users.py", False),  # anchored at the root
    ("src/**/*.ts", "src/a.ts", True),
    ("src/**/*.ts", "src/a/b/c.ts", True),
    ("src/**/*.ts", "lib/src/a.ts", False),
    ("docs/", "docs/guide/intro.md", True),  # trailing slash: everything under the folder
    ("docs/", "src/docs/intro.md", False),
    ("docs/**", "docs/intro.md", True),
    ("./api/*.py", "api/users.py", True),  # leading ./ ignored
    ("/api/*.py", "api/users.py", True),  # leading / ignored
    ("**/*", "anything/at/all.txt", True),
    ("Makefile", "tools/Makefile", True),
    ("tests/**", "tests/unit/test_x.py", True),
    ("**/test_*.py", "pkg/tests/test_x.py", True),
    ("*.tsx", "src/app/page.tsx", True),
]


@pytest.mark.parametrize(("glob", "path", "expected"), CASES)
def test_glob_semantics(glob: str, path: str, expected: bool) -> None:
    assert glob_matches(normalize_glob(glob), normalize_path(path)) is expected


@pytest.mark.parametrize(("glob", "path", "expected"), CASES)
def test_candidate_keys_never_miss_a_match(glob: str, path: str, expected: bool) -> None:
    """The SQL prefilter (context_keys && path_keys) must keep every pattern that matches."""
    if expected:
        assert set(context_keys([normalize_glob(glob)])) & set(path_keys(normalize_path(path)))


@pytest.mark.parametrize("raw", ["api\\routes\\users.py", ".\\api\\routes\\users.py", "/api/routes/users.py",
                                 "./api//routes/users.py"])
def test_client_paths_are_normalized(raw: str) -> None:
    assert normalize_path(raw) == "api/routes/users.py"


def test_windows_style_globs_are_normalized() -> None:
    assert normalize_glob("api\\*.py") == "api/*.py"
    assert normalize_glob("docs\\") == "docs/**"


@pytest.mark.parametrize(("glob", "message"), [("", "empty"), ("   ", "empty"), ("./", "empty"),
                                                ("api/\x00*.py", "NUL")])
def test_bad_globs_are_refused(glob: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        normalize_glob(glob)


def test_negation_excludes() -> None:
    globs = [normalize_glob("src/**"), normalize_glob("!src/generated/**")]
    assert match_contexts(globs, "src/app.py").applies
    assert not match_contexts(globs, "src/generated/models.py").applies


def test_specific_globs_score_above_catch_alls() -> None:
    ordered = ["**/*", "*.py", "api/*.py", "api/routes/*.py", "api/routes/users.py"]
    scores = [specificity(normalize_glob(g)) for g in ordered]
    assert scores == sorted(scores) and len(set(scores)) == len(scores)
    assert scores[0] == 0


def test_unscoped_pattern_applies_everywhere() -> None:
    match = match_contexts([], "any/file.go")
    assert match.applies and match.matched == [] and match.specificity == 0
