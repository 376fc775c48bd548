"""Glob semantics of target_contexts (the canonical form: gitignore-style, relative to the repository root)."""

from __future__ import annotations

import re
import warnings

import pytest
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern

from mcp_server.errors import InvalidInputError
from mcp_server.rules.globs import (
    MAX_BRACE_ALTERNATIVES,
    MAX_GLOB_CHARS,
    MAX_GLOB_WILDCARDS,
    MAX_PATH_CHARS,
    ContextMatch,
    canonical,
    context_keys,
    expand_braces,
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
    ("/api/*.py", "api/users.py", True),  # a glob with a slash is anchored already: its leading / is dropped
    ("/api/*.py", "x/api/users.py", False),
    ("/Makefile", "Makefile", True),  # a leading / anchors a slashless glob at the root, as in git
    ("/Makefile", "tools/Makefile", False),
    ("/*.cmake", "x.cmake", True),
    ("/*.cmake", "sub/x.cmake", False),
    ("tests", "pkg/tests/unit/test_x.py", True),  # a folder at any depth, and everything in it
    ("**/src/**/*.ts", "pkg/src/a/b.ts", True),
    ("**/src/**/*.ts", "pkg/lib/a.ts", False),
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


@pytest.mark.parametrize(("glob", "form"), [
    ("/Makefile", "/Makefile"), ("!/Makefile", "!/Makefile"), ("//Makefile", "/Makefile"), ("/*.cmake", "/*.cmake"),
    ("/api/*.py", "api/*.py"), ("/docs/", "docs/**"), ("/**", "**"), ("./Makefile", "Makefile"),
])
def test_a_leading_slash_is_kept_only_where_it_anchors(glob: str, form: str) -> None:
    """One spelling a meaning: `/Makefile` (the root's) differs from `Makefile` (any depth); `/api/*.py`
    means `api/*.py`."""
    assert normalize_glob(glob) == form


def test_windows_style_globs_are_normalized() -> None:
    assert normalize_glob("api\\*.py") == "api/*.py"
    assert normalize_glob("docs\\") == "docs/**"


@pytest.mark.parametrize(("glob", "message"), [("", "empty"), ("   ", "empty"), ("./", "empty"),
                                                ("api/\x00*.py", "NUL"),
                                                ("[z-a].py", "not a valid"), ("[a-[:alpha:]]", "not a valid")])
def test_bad_globs_are_refused(glob: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        normalize_glob(glob)


@pytest.mark.parametrize("glob", ["src/**\nalwaysApply: true\nx: ", "src/**\n---\nx", "a\rb/*.py", "a\tb",
                                  "src/\x1b[31m*.py", "a\x7fb", "a\x85b", "a\u2028b", "a\u2029b"])
def test_globs_with_control_or_line_break_characters_are_refused(glob: str) -> None:
    """A glob is written on one front-matter line (Cursor's `globs:` is bare): a line break in it
    would add keys (`alwaysApply: true`) or close the front matter."""
    with pytest.raises(InvalidInputError, match="contains a control or line-break character"):
        normalize_glob(glob)
    assert normalize_glob("\tsrc/**\n") == "src/**"  # (around it: only the spaces a paste left, stripped)


def test_negation_excludes() -> None:
    globs = [normalize_glob("src/**"), normalize_glob("!src/generated/**")]
    assert match_contexts(globs, "src/app.py").applies
    assert not match_contexts(globs, "src/generated/models.py").applies


def test_only_exclusions_mean_every_file_but_those() -> None:
    """A pattern with only `!globs` renders as always-on (render.attach_mode), so it must apply to
    every file the exclusions leave, not to none."""
    globs = [normalize_glob("!src/generated/**")]
    assert match_contexts(globs, "src/app.py") == ContextMatch(True, [], 0.0)
    assert not match_contexts(globs, "src/generated/models.py").applies


def test_specific_globs_score_above_catch_alls() -> None:
    ordered = ["**/*", "*.py", "api/*.py", "api/routes/*.py", "api/routes/users.py"]
    scores = [specificity(normalize_glob(g)) for g in ordered]
    assert scores == sorted(scores) and len(set(scores)) == len(scores)
    assert scores[0] == 0


def test_unscoped_pattern_applies_everywhere() -> None:
    match = match_contexts([], "any/file.go")
    assert match.applies and match.matched == [] and match.specificity == 0


# --- the matching engine (RE2) and its limits ------------------------------------------------------

HOSTILE = "*a*a*a*a*a*a*a*a*a*ab"  # Python's `re` backtracks for minutes on it against "a" * 80


def old_engine_matches(glob: str, path: str) -> bool | None:
    """What a glob meant before RE2: Python's `re` on pathspec's regex of the canonical form, as
    glob_matches did (None: not a valid glob)."""
    form = canonical(glob)
    if form is None:
        return None
    try:
        regex, include = GitIgnoreSpecPattern.pattern_to_regex(form.removeprefix("!"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "possible nested set" in `[[...]`
            compiled = re.compile(regex) if regex is not None and include is not None else None
    except (ValueError, re.error):
        return None
    return None if compiled is None else compiled.search(path) is not None


GLOB_PIECES = st.sampled_from(["a", "b", "é", "/", ".", "*", "**", "?", "[", "]", "!", "^", "-", "\\", "{", "}",
                               ",", " ", "\t", "[:alpha:]", "[[]", "#", "~"])
PATH_TEXT = st.text(alphabet="ab/.-]{},[\\! \té:\n#", min_size=1, max_size=12)


@hypothesis_settings(max_examples=3000, deadline=None, derandomize=True, database=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(GLOB_PIECES, min_size=1, max_size=8), raw_path=PATH_TEXT)
def test_every_glob_means_what_it_meant_before_re2(pieces: list[str], raw_path: str) -> None:
    """The old engine is the oracle, on globs too short to backtrack for long: brackets (`[[]`,
    `[!a]`, `[[:alpha:]]`), Windows separators and odd characters keep their meaning; a glob with
    braces means what any of its alternatives meant."""
    try:
        glob = normalize_glob("".join(pieces))
        path = normalize_path(raw_path)
    except InvalidInputError:
        assume(False)
        return
    prefix = "!" if glob.startswith("!") else ""
    expected = any(old_engine_matches(prefix + alternative, path)
                   for alternative in expand_braces(glob.removeprefix("!")))
    assert glob_matches(glob, path) is expected, (glob, path)


@pytest.mark.parametrize(("glob", "path", "expected"), [
    ("[[]x].md", "[x].md", True),  # `[` inside brackets is literal, as it was for Python's `re`
    ("[!a]b", "cb", True),
    ("[!a]b", "ab", False),
    ("file\\*.py", "file/x.py", True),  # a backslash is a Windows separator, not an escape
    ("*.py", "dir/na\u00efve.py", True),
    ("?.py", "\u00e9.py", True),  # `?` is one character, not one byte
])
def test_edge_semantics_kept(glob: str, path: str, expected: bool) -> None:
    assert glob_matches(normalize_glob(glob), normalize_path(path)) is expected
    assert old_engine_matches(normalize_glob(glob), normalize_path(path)) is expected


@pytest.mark.parametrize(("glob", "path", "expected"), [
    # Braces are alternatives, as in minimatch (Cursor) and VS Code (Copilot's applyTo).
    ("src/**/*.{ts,tsx}", "src/a.tsx", True),
    ("src/**/*.{ts,tsx}", "src/ui/a.ts", True),
    ("src/**/*.{ts,tsx}", "src/a.js", False),
    ("**/*.{ts,tsx,js}", "lib/x.js", True),
    ("{a,b}.py", "a.py", True),
    ("{a,b}.py", "{a,b}.py", False),
    ("{api,web}/**", "web/index.html", True),
    ("a{b,{c,d}}e.md", "ade.md", True),  # nested
    ("{x}.py", "{x}.py", True),  # no comma: literal
    ("*.{ts", "a.{ts", True),  # unclosed: literal
    ("!src/**/*.{gen,min}.js", "src/a.min.js", True),  # (a negation matches what it excludes)
])
def test_braces_are_alternatives(glob: str, path: str, expected: bool) -> None:
    assert glob_matches(normalize_glob(glob), normalize_path(path)) is expected


def test_brace_globs_get_the_candidate_keys_of_each_alternative() -> None:
    # The key decides which patterns are checked at all: a brace glob must be found by each of its
    # alternatives' files (`e:{ts,tsx}` would find none).
    assert context_keys(["**/*.{ts,tsx}"]) == ["e:ts", "e:tsx"]
    assert context_keys(["{api,web}/**"]) == ["d:api", "d:web"]
    for glob, path in (("**/*.{ts,tsx}", "src/a.tsx"), ("{api,web}/**", "web/x.html")):
        assert set(context_keys([glob])) & set(path_keys(path))


@pytest.mark.parametrize(("globs", "keys"), [
    (["/Makefile"], ["n:Makefile"]),
    (["/*.cmake"], ["e:cmake"]),
    (["**/src/**/*.ts"], ["e:ts"]),  # by its file's extension, like `**/*.ts`
    (["**/src/Makefile"], ["n:Makefile"]),
    (["src/**", "!src/generated/**"], ["d:src"]),  # an exclusion only narrows: the included globs' keys
    (["!src/generated/**"], ["*"]),
])
def test_candidate_keys(globs: list[str], keys: list[str]) -> None:
    assert context_keys([normalize_glob(g) for g in globs]) == keys


def test_a_path_offers_the_keys_of_each_folder_on_its_way() -> None:
    """`tests` (git: the folder at any depth, and what it holds) is keyed `n:tests`: found for its files."""
    assert {"n:tests", "n:unit", "n:x.py", "e:py", "d:pkg"} <= set(path_keys("pkg/tests/unit/x.py"))
    assert set(context_keys(["tests"])) & set(path_keys("pkg/tests/unit/x.py"))


def test_globs_can_match_ignoring_case() -> None:
    """Copilot's globs (metadata.globs_ignore_case) match ignoring case; others keep it."""
    glob = normalize_glob("**/src/**/*.TS")
    assert glob_matches(glob, "pkg/src/a.ts", ignore_case=True)
    assert not glob_matches(glob, "pkg/src/a.ts")  # compiled apart: the case-sensitive regex is not reused
    assert glob_matches(glob, "pkg/src/a.ts", ignore_case=True)
    assert match_contexts([glob], "Pkg/SRC/b.Ts", ignore_case=True).applies
    assert not match_contexts([glob], "Pkg/SRC/b.Ts").applies
    assert not match_contexts([glob, "!**/*.d.ts"], "src/x.D.TS", ignore_case=True).applies


def test_keys_of_a_pattern_ignoring_case_meet_the_path_in_any_case() -> None:
    keys = context_keys([normalize_glob("Src/*.py"), normalize_glob("**/ReadMe.md")], ignore_case=True)
    assert keys == ["d:src", "n:readme.md"]
    assert set(keys) & set(path_keys("SRC/a.py")) and set(keys) & set(path_keys("docs/README.md"))
    assert context_keys([normalize_glob("Src/*.py")]) == ["d:Src"]


def test_a_glob_expanding_to_too_many_alternatives_is_refused() -> None:
    with pytest.raises(InvalidInputError, match=f"more than {MAX_BRACE_ALTERNATIVES} alternatives"):
        normalize_glob("{a,b}" * 6 + ".py")
    assert len(expand_braces(normalize_glob("{a,b}" * 5 + ".py"))) == 32


def test_hostile_glob_still_means_what_it_says() -> None:
    """RE2 cannot backtrack (tests/tools/test_hostile_globs.py guards the time through the server);
    the answers stay those of the glob."""
    glob = normalize_glob(HOSTILE)
    assert glob_matches(glob, "x/" + "a" * 20 + "b")
    assert not glob_matches(glob, "a" * 12)
    assert not glob_matches(glob, "a" * 9 + "b")  # needs ten `a`s before the `b`
    assert glob_matches(normalize_glob("*" + "a" * (MAX_GLOB_CHARS - 1)), "a" * MAX_PATH_CHARS)


def test_limits_accept_up_to_the_maximum() -> None:
    normalize_glob("a" * MAX_GLOB_CHARS)
    normalize_glob("*a" * MAX_GLOB_WILDCARDS)
    normalize_path("a" * MAX_PATH_CHARS)


@pytest.mark.parametrize(("glob", "message"), [
    ("a" * (MAX_GLOB_CHARS + 1), f"is {MAX_GLOB_CHARS + 1} characters long; a glob may have at most {MAX_GLOB_CHARS}"),
    ("src/" + "a" * MAX_GLOB_CHARS + "/**", f"a glob may have at most {MAX_GLOB_CHARS}"),
    ("*a" * (MAX_GLOB_WILDCARDS + 1), f"has {MAX_GLOB_WILDCARDS + 1} wildcards; a glob may have at most "
                                      f"{MAX_GLOB_WILDCARDS}"),
    ("?" * 9 + "[ab]" * 8, f"has 17 wildcards; a glob may have at most {MAX_GLOB_WILDCARDS}"),
    ("api/\ud800.py", "not valid Unicode"),
])
def test_globs_beyond_the_limits_are_refused(glob: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(message)) as refused:
        normalize_glob(glob)
    assert len(str(refused.value)) < 400  # the glob is shown shortened


@pytest.mark.parametrize(("path", "message"), [
    ("a" * (MAX_PATH_CHARS + 1), f"`file_path` is {MAX_PATH_CHARS + 1:,} characters long; at most {MAX_PATH_CHARS:,}"),
    ("api/\udc80.py", "not valid Unicode"),
])
def test_paths_beyond_the_limits_are_refused(path: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        normalize_path(path)


def test_a_stored_glob_beyond_the_limits_never_matches() -> None:
    """Rows written before the limits keep their globs; such a glob matches nothing, the others work."""
    legacy, path = "?" * (MAX_GLOB_WILDCARDS + 1) + ".py", "a" * (MAX_GLOB_WILDCARDS + 1) + ".py"
    assert re.search(str(GitIgnoreSpecPattern.pattern_to_regex(legacy)[0]), path)  # it matched before the limits
    assert not glob_matches(legacy, path)
    match = match_contexts([legacy, normalize_glob("src/**")], "src/app.py")
    assert match.applies and match.matched == ["src/**"]
    assert context_keys([legacy]) == ["*"]
