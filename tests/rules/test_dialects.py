"""Each tool's globs keep their meaning: imported (rules/dialects.py) into the canonical form and
matched by our matcher, they answer as the tool does; converted back and imported again, they
answer the same.

The tables are written by hand from the tools' documented semantics, never produced by our
matcher:
- CURSOR: minimatch (Cursor's globs are minimatch-style), relative to the repository root, files
  only, case-sensitive, with `dot: true` (dot-files match `*`: a decision, see rules/dialects.py).
  Checked offline against minimatch 11.0.10 (node): 0 disagreements of 243.
- COPILOT: VS Code's `applyTo` (computeAutomaticInstructions: `*`, `**` and `**/*` mean every file;
  a glob not starting with `/` or `**/` gets `**/` prepended; VS Code's glob matches it against the
  file's path ignoring case; `*` matches dot-files). Checked offline against minimatch with the
  `**/` prefix, `dot` and `nocase`, and against a port of VS Code's glob regex: 0 disagreements of 207.
"""

from __future__ import annotations

import itertools

import pytest

from mcp_server.rules.dialects import (
    from_copilot,
    from_cursor,
    globs_name_files,
    to_copilot,
    to_root_relative,
)
from mcp_server.rules.globs import context_keys, match_contexts, normalize_glob, normalize_path, path_keys

# glob: (paths it matches, paths it does not)
CURSOR: dict[str, tuple[list[str], list[str]]] = {
    "Makefile": (["Makefile"], ["sub/Makefile", "a/b/Makefile", "Makefile.am", "makefile"]),
    "*.cmake": (["x.cmake", "CMakeLists.cmake"], ["sub/x.cmake", "cmake/x.cmake", "x.cmake.in", "x.CMAKE"]),
    "*.py": (["a.py", ".hidden.py", "setup.py"], ["pkg/a.py", "a/b/c.py", "a.pyc", "a.py.txt"]),
    "**/*.py": (["a.py", "pkg/a.py", "a/b/c/d.py", ".venv/lib/x.py"], ["a.pyc", "pkg/a.py.bak", "py"]),
    "src/**/*.ts": (["src/a.ts", "src/x/y/z.ts"], ["lib/src/a.ts", "src.ts", "src/a.tsx", "srcx/a.ts", "a.ts"]),
    "src/*": (["src/a.ts", "src/Makefile", "src/.env"], ["src/a/b.ts", "lib/src/a.ts", "src/a/b/c", "a.ts"]),
    "*": (["README.md", "Makefile", ".gitignore"], ["src/a.ts", "a/b/c", ".github/ci.yml"]),
    "**": (["a", "a/b/c.txt", ".github/workflows/ci.yml", "src/deep/er/x.rs"], []),
    "**/*": (["a", "a/b/c.txt", ".github/workflows/ci.yml"], []),
    "src/**": (["src/a", "src/a/b/c.ts", "src/.env"], ["lib/src/a", "srcx/a", "a/src/b.ts"]),
    "docs/*.md": (["docs/a.md", "docs/README.md"], ["docs/x/a.md", "a.md", "docs/a.mdx", "x/docs/a.md"]),
    "**/test_*.py": (["test_a.py", "tests/test_a.py", "a/b/test_.py"], ["tests/a_test.py", "test_a.pyc"]),
    "**/*.{ts,tsx}": (["a.ts", "src/b.tsx", "x/y/z.ts"], ["a.js", "a.ts.map", "src/b.jsx"]),
    "*.{js,mjs,cjs}": (["a.js", "b.mjs", "c.cjs"], ["src/a.js", "a.jsx", "a.ts"]),
    "{src,lib}/**/*.js": (["src/a.js", "lib/x/y.js"], ["test/a.js", "a.js", "pkg/src/a.js"]),
    "**/components/**/*.tsx": (["components/a.tsx", "src/components/ui/b.tsx"],
                               ["src/component/a.tsx", "src/components.tsx", "components/a.ts"]),
    "?.txt": (["a.txt", "Z.txt"], ["ab.txt", "d/a.txt", ".txt"]),
    "file[0-9].log": (["file1.log", "file0.log"], ["filea.log", "file10.log", "logs/file1.log"]),
    "[!a]*.md": (["b.md", "README.md"], ["a.md", "abc.md", "x/b.md"]),
    "**/__tests__/**": (["__tests__/a.js", "src/__tests__/x/y.ts"], ["src/tests/a.js", "src/__tests__.js"]),
    "src/**/index.ts": (["src/index.ts", "src/a/b/index.ts"], ["index.ts", "src/a/index.tsx", "lib/index.ts"]),
    ".github/workflows/*.yml": ([".github/workflows/ci.yml"],
                                [".github/workflows/a/ci.yml", ".github/ci.yml", "github/workflows/ci.yml",
                                 "x/.github/workflows/ci.yml"]),
    "Dockerfile*": (["Dockerfile", "Dockerfile.dev"], ["docker/Dockerfile", "dockerfile", "x.Dockerfile"]),
    "**/Dockerfile": (["Dockerfile", "svc/api/Dockerfile"], ["Dockerfile.dev", "svc/Dockerfile.prod"]),
    "*.config.{js,ts}": (["vite.config.ts", "jest.config.js"], ["src/vite.config.ts", "config.ts",
                                                                 "vite.config.mjs"]),
    "app/**/page.tsx": (["app/page.tsx", "app/(shop)/cart/page.tsx"], ["page.tsx", "src/app/page.tsx",
                                                                         "app/pages.tsx"]),
    "tests/**/*_test.go": (["tests/a_test.go", "tests/x/y_test.go"], ["a_test.go", "tests/a.go",
                                                                        "pkg/tests/a_test.go"]),
    "**/*.test.ts": (["a.test.ts", "src/x/b.test.ts"], ["a.spec.ts", "a.test.tsx", "a.test.ts.snap"]),
    "package.json": (["package.json"], ["apps/web/package.json", "package.json5"]),
    "**/package.json": (["package.json", "apps/web/package.json"], ["package.jsonc", "apps/web/package-lock.json"]),
    "db/migrations/**/*.sql": (["db/migrations/0001.sql", "db/migrations/2024/01.sql"],
                               ["migrations/0001.sql", "db/0001.sql", "x/db/migrations/1.sql"]),
    "src/*.ts": (["src/a.ts", "src/.b.ts"], ["src/a/b.ts", "a.ts", "src/a.tsx"]),
    "*.md": (["README.md", "CHANGELOG.md"], ["docs/a.md", "README.mdx", "readme.MD"]),
    "**/*.md": (["README.md", "docs/a/b.md"], ["README.mdx", "docs/a.markdown"]),
    "a/**/b/*.c": (["a/b/x.c", "a/q/r/b/y.c"], ["a/b/c/x.c", "b/x.c", "a/b.c"]),
    "src/**/*.{test,spec}.{ts,tsx}": (["src/a.test.ts", "src/x/b.spec.tsx", "src/c.spec.ts"],
                                      ["src/a.ts", "a.test.ts", "src/a.test.js"]),
    "{Makefile,*.mk}": (["Makefile", "rules.mk"], ["sub/Makefile", "sub/rules.mk", "rules.mkx"]),
    "lib/**": (["lib/a.rb", "lib/x/y/z.rb"], ["lib.rb", "src/lib/a.rb"]),
    "*.TS": (["a.TS"], ["a.ts", "x/a.TS"]),
    "docs/**/*.md": (["docs/a.md", "docs/x/y/b.md"], ["a.md", "docs/a.txt", "x/docs/a.md"]),
    "**/.env*": ([".env", "app/.env.local", ".env.production"], ["env", "app/env.local", "app/x.env"]),
    "scripts/*.sh": (["scripts/build.sh"], ["scripts/ci/build.sh", "build.sh", "scripts/build.bash"]),
    "src/components/*": (["src/components/Button.tsx"], ["src/components/ui/Button.tsx", "src/Button.tsx"]),
    "*.{yml,yaml}": (["ci.yml", "config.yaml"], [".github/ci.yml", "ci.yml.bak"]),
    "**/*.generated.*": (["a.generated.ts", "x/y.generated.cs"], ["a.generated", "generated.ts", "a.gen.ts"]),
    "src/**/*": (["src/a", "src/a/b/c.ts"], ["a", "lib/a.ts"]),
    "*/*.go": (["cmd/main.go", "pkg/util.go"], ["main.go", "cmd/x/main.go"]),
    "**/src/*": (["src/a.ts", "pkg/src/b.ts"], ["src/a/b.ts", "pkg/src/a/b.ts", "src.ts"]),
    "**/{src,lib}/*.{ts,js}": (["src/a.ts", "pkg/lib/b.js"], ["src/x/a.ts", "test/a.ts", "src/a.tsx"]),
}

COPILOT: dict[str, tuple[list[str], list[str]]] = {
    "**/*.py": (["a.py", "pkg/a.py", "A.PY", ".venv/lib/x.py", "a/b/c/d.Py"], ["a.pyc", "pkg/a.py.bak"]),
    "*.py": (["a.py", "pkg/sub/a.py", "X/Y.PY", ".hidden.py"], ["a.pyx", "py", "a.py.txt"]),
    "src/**/*.ts": (["src/a.ts", "pkg/src/a.ts", "SRC/A.TS", "a/b/src/c/d.ts"],
                    ["src/a.tsx", "srcx/a.ts", "src.ts", "lib/a.ts"]),
    "src/**/*.TS": (["pkg/src/a.ts", "src/x/y.Ts", "src/A.TS"], ["pkg/a.ts", "src/a.tsx"]),
    "Makefile": (["Makefile", "sub/Makefile", "makefile", "a/b/MAKEFILE"], ["Makefile.am", "sub/GNUmakefile"]),
    "*": (["a", "a/b/c.txt", ".github/x.yml", "README.md"], []),
    "**": (["a", "a/b/c.txt", ".github/workflows/ci.yml"], []),
    "**/*": (["a", "x/y/z", ".env"], []),
    "src/*": (["src/a.ts", "pkg/src/a.ts", "Src/B.md"], ["src/a/b.ts", "pkg/src/a/b.ts", "src.ts"]),
    "docs/**": (["docs/a.md", "x/docs/a/b.md", "DOCS/c.txt"], ["docs.md", "documentation/a.md"]),
    "**/*.{ts,tsx}": (["a.ts", "src/b.TSX", "x/y/z.tsx"], ["a.js", "a.ts.map"]),
    "{src,lib}/**/*.js": (["src/a.js", "lib/x/y.js", "pkg/src/a.js", "LIB/A.JS"], ["test/a.js", "a.js"]),
    "tests/**/test_*.py": (["tests/test_a.py", "pkg/tests/unit/test_b.py", "Tests/Test_C.py"],
                           ["tests/a_test.py", "test_a.py", "tests/test_a.pyc"]),
    "*.instructions.md": (["a.instructions.md", ".github/instructions/py.instructions.md", "X.INSTRUCTIONS.MD"],
                          ["instructions.md", "a.instructions.mdx"]),
    ".github/workflows/*.yml": ([".github/workflows/ci.yml", "sub/.github/workflows/ci.YML",
                                 ".GitHub/Workflows/CI.yml"],
                                [".github/workflows/a/ci.yml", ".github/ci.yml", "github/workflows/ci.yml"]),
    "[abc].txt": (["a.txt", "x/b.txt", "C.TXT"], ["d.txt", "ab.txt", "a.text"]),
    "file?.log": (["file1.log", "logs/fileA.log", "FILEx.LOG"], ["file.log", "file10.log", "logs/file1.log.1"]),
    "**/migrations/*.sql": (["migrations/0001.sql", "db/migrations/0002.sql", "DB/Migrations/3.SQL"],
                            ["migrations/x/1.sql", "migration/1.sql", "migrations/1.sqlx"]),
    "apps/web/**": (["apps/web/a.ts", "x/apps/web/b/c.ts", "Apps/Web/D.ts"], ["apps/webx/a.ts", "apps/a.ts"]),
    "package.json": (["package.json", "apps/web/package.json", "PACKAGE.JSON"],
                     ["package-lock.json", "package.json5"]),
    "**/Dockerfile": (["Dockerfile", "svc/api/dockerfile"], ["Dockerfile.dev", "svc/Dockerfile.prod"]),
    "*.test.{js,ts}": (["a.test.js", "src/x/b.test.ts", "C.TEST.TS"], ["a.test.jsx", "a.spec.ts", "test.ts"]),
    "README.md": (["README.md", "docs/readme.md", "a/b/ReadMe.MD"], ["README.mdx", "README"]),
    "src/components/**/*.tsx": (["src/components/a.tsx", "web/src/components/ui/b.tsx"],
                                ["src/components/a.ts", "src/component/a.tsx", "components/a.tsx"]),
    "**/*.{yml,yaml}": (["ci.yml", ".github/workflows/release.YAML", "k8s/deploy.yaml"], ["ci.yml.bak", "yml"]),
    "**/test/**": (["test/a.js", "pkg/test/b/c.py", "TEST/x"], ["tests/a.js", "test.js", "contest/a.js"]),
    "*.md": (["README.md", "docs/guide/intro.MD"], ["README.mdx", "notes.txt"]),
    "src/*.ts": (["src/a.ts", "pkg/src/b.ts", "SRC/C.TS"], ["src/x/a.ts", "a.ts"]),
    "**/*.spec.ts": (["a.spec.ts", "src/x/b.spec.ts", "B.SPEC.TS"], ["a.spec.tsx", "a.test.ts"]),
    "backend/**/*.py": (["backend/app.py", "backend/api/v1/users.py", "mono/backend/x.py"],
                        ["frontend/app.py", "backend.py"]),
    "{Makefile,*.mk}": (["Makefile", "sub/rules.mk", "build/MAKEFILE"], ["rules.mkx", "Makefile.am"]),
    "[!a]*.md": (["b.md", "x/README.md"], ["a.md", "x/abc.md", "A.md"]),
    "**/src/**": (["src/a.ts", "x/src/y/z.ts"], ["srcx/a.ts", "lib/a.ts"]),
    "docs/*.md": (["docs/a.md", "x/docs/b.md", "Docs/C.MD"], ["docs/x/a.md", "a.md"]),
    "*.{js,jsx,ts,tsx}": (["a.js", "b/c.jsx", "d/e/f.TS", "g.tsx"], ["a.json", "a.mjs"]),
    "infra/**/*.tf": (["infra/main.tf", "live/infra/prod/vars.TF"], ["infra/main.tfvars", "main.tf"]),
    "**/*.cs": (["Program.cs", "src/App/Startup.CS"], ["a.csx", "a.cshtml"]),
    "**/.env*": ([".env", "app/.env.local", ".ENV.production"], ["env", "app/x.env"]),
    "lib/*": (["lib/a.rb", "gems/lib/b.rb", "LIB/C"], ["lib/x/a.rb", "lib.rb"]),
    "**/*.generated.*": (["a.generated.ts", "x/y.GENERATED.cs"], ["a.generated", "generated.ts"]),
}


def flatten(table: dict[str, tuple[list[str], list[str]]]) -> list[tuple[str, str, bool]]:
    return [(glob, path, expected) for glob, (yes, no) in table.items()
            for expected, paths in ((True, yes), (False, no)) for path in paths]


CURSOR_CASES = flatten(CURSOR)
COPILOT_CASES = flatten(COPILOT)
CURSOR_PATHS = sorted({path for yes, no in CURSOR.values() for path in [*yes, *no]})
COPILOT_PATHS = sorted({path for yes, no in COPILOT.values() for path in [*yes, *no]})


def stored(globs: list[str]) -> list[str]:
    """What the service stores (PatternInput.build normalizes every glob)."""
    return list(dict.fromkeys(normalize_glob(g) for g in globs))


def applies(globs: list[str], path: str, ignore_case: bool = False) -> bool:
    return match_contexts(globs, normalize_path(path), ignore_case=ignore_case).applies


def copilot_applies(apply_to: list[str], path: str) -> bool:
    """Does a Copilot file with this `applyTo` apply to `path`, as imported (every file: always)?"""
    globs, every_file = from_copilot(apply_to)
    return every_file or (bool(globs) and applies(stored(globs), path, ignore_case=True))


def test_the_tables_are_large_enough() -> None:
    assert len(CURSOR_CASES) >= 200 and len(COPILOT_CASES) >= 200


@pytest.mark.parametrize(("glob", "path", "expected"), CURSOR_CASES)
def test_an_imported_cursor_glob_matches_as_minimatch_does(glob: str, path: str, expected: bool) -> None:
    globs = stored(from_cursor([glob]))
    assert applies(globs, path) is expected
    if expected:  # the SQL prefilter keeps it
        assert set(context_keys(globs)) & set(path_keys(normalize_path(path)))


@pytest.mark.parametrize(("glob", "path", "expected"), COPILOT_CASES)
def test_an_imported_copilot_glob_matches_as_vs_code_does(glob: str, path: str, expected: bool) -> None:
    assert copilot_applies([glob], path) is expected
    globs, every_file = from_copilot([glob])
    if expected and not every_file:
        assert set(context_keys(stored(globs), ignore_case=True)) & set(path_keys(normalize_path(path)))


@pytest.mark.parametrize("files_only", [True, False])
@pytest.mark.parametrize("glob", list(CURSOR))
def test_cursor_globs_round_trip(glob: str, files_only: bool) -> None:
    """Cursor -> canonical -> Cursor -> canonical answers as the first import on every path of the table."""
    first = stored(from_cursor([glob]))
    back = to_root_relative(first, files_only=files_only)
    assert (back.excluded, back.widened) == ([], [])  # every Cursor glob can be said again
    again = stored(from_cursor(back.globs))
    for path in CURSOR_PATHS:
        assert applies(again, path) is applies(first, path), (glob, back.globs, path)


@pytest.mark.parametrize("glob", list(COPILOT))
def test_copilot_globs_round_trip(glob: str) -> None:
    """Copilot -> canonical -> Copilot -> canonical answers as the first import on every path of the table."""
    first, every_file = from_copilot([glob])
    if every_file:  # no glob: the renderer writes `applyTo: "**"`
        assert first == [] and copilot_applies(["**"], "any/file.txt")
        return
    back = to_copilot(stored(first), files_only=True)
    assert (back.excluded, back.widened) == ([], [])  # nothing anchored at the root comes from Copilot
    for path in COPILOT_PATHS:
        assert copilot_applies(back.globs, path) is copilot_applies([glob], path), (glob, back.globs, path)


def test_a_list_of_cursor_globs_means_their_union() -> None:
    """A lone `*` brings an exclusion (`src/*` -> `src/*`, `!src/*/**`); exclusions act on what came before
    them, so the conversion orders the pairs (shallowest first) to keep every pair of globs a union."""
    single = {glob: stored(from_cursor([glob])) for glob in CURSOR}
    for first, second in itertools.product(list(CURSOR), repeat=2):
        both = stored(from_cursor([first, second]))
        for path in {*CURSOR[first][0], *CURSOR[first][1], *CURSOR[second][0], *CURSOR[second][1]}:
            expected = applies(single[first], path) or applies(single[second], path)
            assert applies(both, path) is expected, (first, second, path)


@pytest.mark.parametrize(("globs", "path", "expected"), [
    (["src/a/*", "src/*"], "src/a/b.ts", True),  # a deeper lone `*`: `src/*`'s exclusion must not undo it
    (["src/a/*", "src/*"], "src/a/b/c.ts", False),
    (["src/*", "*"], "src/a.ts", True),
    (["src/*", "*"], "src/a/b.ts", False),
    (["*", "src/**/*.ts"], "src/a/b.ts", True),
])
def test_nested_lone_stars_keep_their_union(globs: list[str], path: str, expected: bool) -> None:
    assert applies(stored(from_cursor(globs)), path) is expected


# An exclusion in a tool's list excludes from the whole list, wherever it is written (rules/dialects.py:
# the author's evident meaning, as fast-glob and globby read a list). list: (paths it applies to, not).
CURSOR_LISTS: dict[tuple[str, ...], tuple[list[str], list[str]]] = {
    ("!src/gen/**", "src/**"): (["src/a.ts", "src/x/b.ts", "src/generated.ts"], ["src/gen/a.ts", "src/gen/x/b.ts",
                                                                                 "lib/a.ts"]),
    ("src/**", "!src/gen/**"): (["src/a.ts", "src/x/b.ts"], ["src/gen/a.ts", "lib/a.ts"]),
    ("!**/*.d.ts", "src/*"): (["src/a.ts", "src/Makefile"], ["src/a.d.ts", "src/x/a.ts", "a.ts"]),
    ("!src/*.d.ts", "*.ts", "src/*"): (["a.ts", "a.d.ts", "src/a.ts"], ["src/a.d.ts", "src/x/a.ts", "lib/a.ts"]),
    ("src/**", "!src/gen/**", "src/gen/keep.ts"): (["src/a.ts"], ["src/gen/keep.ts", "src/gen/a.ts"]),
    ("!a/*/**", "a/*", "**/x.ts"): (["a/b.ts", "x.ts", "b/c/x.ts"], ["a/b/x.ts", "a/b/c.ts"]),
    ("!**/test/**", "**/*.py", "!**/conftest.py"): (["a.py", "pkg/b.py"], ["test/a.py", "pkg/test/b.py",
                                                                           "conftest.py", "pkg/conftest.py"]),
}
COPILOT_LISTS: dict[tuple[str, ...], tuple[list[str], list[str]]] = {
    ("!**/gen/**", "src/**"): (["src/a.ts", "pkg/src/b.ts", "SRC/C.TS"], ["src/gen/a.ts", "pkg/src/gen/b.ts",
                                                                          "SRC/GEN/C.TS", "lib/a.ts"]),
    ("!src/*.d.ts", "src/*"): (["src/a.ts", "pkg/src/b.ts"], ["src/a.d.ts", "pkg/src/b.d.ts", "src/x/a.ts"]),
}


@pytest.mark.parametrize(("tool", "path", "expected"), [
    (list(globs), path, expected) for globs, (yes, no) in CURSOR_LISTS.items()
    for expected, paths in ((True, yes), (False, no)) for path in paths])
def test_an_exclusion_in_a_cursor_list_excludes_from_the_whole_list(tool: list[str], path: str,
                                                                     expected: bool) -> None:
    assert applies(stored(from_cursor(tool)), path) is expected


@pytest.mark.parametrize(("apply_to", "path", "expected"), [
    (list(globs), path, expected) for globs, (yes, no) in COPILOT_LISTS.items()
    for expected, paths in ((True, yes), (False, no)) for path in paths])
def test_an_exclusion_in_a_copilot_list_excludes_from_the_whole_list(apply_to: list[str], path: str,
                                                                      expected: bool) -> None:
    assert copilot_applies(apply_to, path) is expected


@pytest.mark.parametrize("files_only", [True, False])
@pytest.mark.parametrize("tool", list(CURSOR_LISTS))
def test_cursor_lists_with_exclusions_round_trip(tool: tuple[str, ...], files_only: bool) -> None:
    """Cursor list -> canonical -> Cursor (the exclusions it cannot say written back as `!` items, as a
    person would from the generated body's "Does not apply to") -> canonical answers as the first import."""
    first = stored(from_cursor(tool))
    back = to_root_relative(first, files_only=files_only)
    again = stored(from_cursor([*back.globs, *(f"!{glob}" for glob in back.excluded)]))
    for path in {*CURSOR_PATHS, *(p for yes, no in CURSOR_LISTS.values() for p in [*yes, *no])}:
        assert applies(again, path) is applies(first, path), (tool, back, path)


# --- what the conversions write ------------------------------------------------------------------

@pytest.mark.parametrize(("tool", "canonical"), [
    (["Makefile", "*.cmake"], ["/Makefile", "/*.cmake"]),
    (["src/**/*.ts"], ["src/**/*.ts"]),
    (["src/*"], ["src/*", "!src/*/**"]),
    (["*"], ["/*", "!*/**"]),
    (["**", "**/*"], ["**", "**/*"]),
    (["docs/"], ["docs/**"]),
    (["./scripts/*.sh", "/Makefile"], ["scripts/*.sh", "/Makefile"]),  # `./` and `/`: the root (a decision)
    (["{Makefile,src/*.ts}"], ["/Makefile", "src/*.ts"]),  # alternatives anchored differently: one by one
    (["*.{ts,tsx}"], ["/*.{ts,tsx}"]),
    (["!src/gen/**", "  "], ["!src/gen/**"]),
    (["!src/gen/**", "src/**"], ["src/**", "!src/gen/**"]),  # an exclusion acts on the whole list: last
    (["!**/*.d.ts", "src/*", "*.md"], ["src/*", "!src/*/**", "/*.md", "!**/*.d.ts"]),
    (["src/**", "!src/gen/**", "src/gen/keep.ts"], ["src/**", "src/gen/keep.ts", "!src/gen/**"]),
])
def test_from_cursor_writes(tool: list[str], canonical: list[str]) -> None:
    assert stored(from_cursor(tool)) == canonical


@pytest.mark.parametrize(("apply_to", "canonical", "every_file"), [
    (["src/**/*.TS"], ["**/src/**/*.TS"], False),
    (["*.py", "**/*.md"], ["**/*.py", "**/*.md"], False),
    (["src/*"], ["**/src/*", "!**/src/*/**"], False),
    (["docs/"], ["**/docs/**"], False),
    (["/api/*.py", "/Makefile", "./x.md"], ["api/*.py", "/Makefile", "/x.md"], False),  # the workspace root
    (["**/*.py", "*"], [], True),  # `*` among them: every file
    (["**/*"], [], True),
    ([], [], False),
    (["!**/gen/**", "src/**"], ["**/src/**", "!**/gen/**"], False),  # an exclusion acts on the whole list: last
])
def test_from_copilot_writes(apply_to: list[str], canonical: list[str], every_file: bool) -> None:
    globs, every = from_copilot(apply_to)
    assert (stored(globs), every) == (canonical, every_file)


@pytest.mark.parametrize(("canonical", "written", "excluded"), [
    (["*.py"], ["**/*.py"], []),
    (["/Makefile"], ["Makefile", "Makefile/**"], []),  # a folder-like name: its folder's files too
    (["api/*.py", "docs/**"], ["api/*.py", "docs/**"], []),
    (["**/src/**/*.ts"], ["**/src/**/*.ts"], []),
    (["tests", "src/web"], ["**/tests", "**/tests/**", "src/web", "src/web/**"], []),
    (["src/*"], ["src/*", "src/*/**"], []),  # git's `src/*` is everything under src/
    (["src/*", "!src/*/**"], ["src/*"], []),
    (["/*", "!*/**"], ["*"], []),
    (["src/**", "!src/generated/**"], ["src/**"], ["src/generated/**"]),
    (["*", "**", "**/*"], ["**/*", "**"], []),
])
def test_to_root_relative_writes(canonical: list[str], written: list[str], excluded: list[str]) -> None:
    converted = to_root_relative(canonical)
    assert (converted.globs, converted.excluded, converted.widened) == (written, excluded, [])


def test_files_only_globs_get_no_folder_contents() -> None:
    assert to_root_relative(["/Makefile", "tests"], files_only=True).globs == ["Makefile", "**/tests"]
    assert globs_name_files({"format": "cursor_mdc"}) and globs_name_files({"format": "copilot_instructions"})
    assert not globs_name_files({"format": "markdown"}) and not globs_name_files(None)


@pytest.mark.parametrize(("canonical", "written", "widened"), [
    (["*.py"], ["**/*.py"], []),
    (["**/src/**/*.TS"], ["**/src/**/*.TS"], []),  # imported from Copilot: written back as it means
    (["*", "**", "**/*"], ["*", "**", "**/*"], []),  # every file, in VS Code too
    (["api/*.py"], ["api/*.py"], ["api/*.py"]),  # VS Code: at any depth (a `/api` would never match)
    (["/Makefile"], ["Makefile", "Makefile/**"], ["/Makefile"]),
    (["**/src/*", "!**/src/*/**"], ["**/src/*"], []),
    (["tests"], ["**/tests", "**/tests/**"], []),
])
def test_to_copilot_writes(canonical: list[str], written: list[str], widened: list[str]) -> None:
    converted = to_copilot(canonical)
    assert (converted.globs, converted.excluded, converted.widened) == (written, [], widened)


def test_an_exclusion_copilot_cannot_say_is_returned() -> None:
    assert to_copilot(["**/*.ts", "!**/*.d.ts"]).excluded == ["**/*.d.ts"]


def test_a_widened_copilot_glob_still_covers_what_it_meant() -> None:
    """Written for Copilot, `api/*.py` also applies to `x/api/a.py` (reported as widened), never less."""
    back = to_copilot(["api/*.py"]).globs
    assert copilot_applies(back, "api/a.py") and copilot_applies(back, "x/api/a.py")


# --- documented deviations -----------------------------------------------------------------------

def test_documented_deviations() -> None:
    # A folder named like a file: the canonical glob matches its files (the tools match files only).
    assert applies(stored(from_cursor(["**/*.ts"])), "x.ts/readme.md")
    # Copilot's `docs/` in VS Code names a file `docs`; imported, it is the folder's files (its author's meaning).
    assert copilot_applies(["docs/"], "docs/a.md")
    # A `src/` folder inside a `src/` folder: `src/*`'s exclusion (`!**/src/*/**`) reaches it.
    assert not copilot_applies(["src/*"], "src/src/a.ts")
