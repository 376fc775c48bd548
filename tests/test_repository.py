"""Which repository a directory belongs to, read from real git repositories made here (no network,
no `git` process at detection time), and the project keys they give."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest

from mcp_server.errors import InvalidInputError
from mcp_server.repository import check_project_name, find_repository, normalize_remote
from tests.helpers import make_repository


@pytest.mark.parametrize("url", [
    "git@github.com:Org/Repo.git",
    "https://github.com/org/repo",
    "https://github.com/org/repo.git/",
    "ssh://git@github.com/org/repo.git",
    "ssh://git@GitHub.com:22/org/repo.git",
    "https://alice:ghp_token123@github.com/Org/Repo.git",
    "git://github.com/org/repo",
    "git@github.com:/org/repo.git",
])
def test_every_spelling_of_one_remote_is_one_key(url: str) -> None:
    assert normalize_remote(url) == "github.com/org/repo"


def test_a_local_remote_keeps_its_path() -> None:
    assert normalize_remote("/srv/git/Shared.git") == "/srv/git/Shared"
    assert normalize_remote("file:///srv/git/Shared.git") == "/srv/git/Shared"
    assert normalize_remote("../upstream.git", Path("/work/clone")) == "/work/upstream"  # where, not how named


def test_a_repository_is_found_from_any_folder_inside_it(tmp_path: Path) -> None:
    root = make_repository(tmp_path / "app", "git@gitlab.example.com:Team/App.git")
    (root / "src" / "api").mkdir(parents=True)
    found = find_repository(root / "src" / "api")
    assert found is not None
    assert (found.key, found.root, found.detection) == ("gitlab.example.com/team/app", root.resolve(), "git remote")


def test_without_a_remote_the_root_path_is_the_key(tmp_path: Path) -> None:
    root = make_repository(tmp_path / "scratch")
    found = find_repository(root)
    assert found is not None and (found.key, found.detection) == (root.resolve().as_posix(), "git root")


def test_worktrees_and_submodules_resolve_to_their_own_repository(tmp_path: Path) -> None:
    main = make_repository(tmp_path / "main", "https://github.com/org/main")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "protocol.file.allow=always"]
    subprocess.run([*git, "-C", str(main), "commit", "-q", "--allow-empty", "-m", "first"], check=True)
    subprocess.run([*git, "-C", str(main), "worktree", "add", "-q", str(tmp_path / "feature")], check=True)
    library = make_repository(tmp_path / "library", "https://github.com/org/library")
    subprocess.run([*git, "-C", str(library), "commit", "-q", "--allow-empty", "-m", "first"], check=True)
    subprocess.run([*git, "-C", str(main), "submodule", "add", "-q", str(library), "vendor/library"], check=True)

    worktree = find_repository(tmp_path / "feature")
    assert worktree is not None and (worktree.key, worktree.root) == ("github.com/org/main", tmp_path / "feature")
    submodule = find_repository(main / "vendor" / "library")
    assert submodule is not None
    assert (submodule.key, submodule.root) == (library.as_posix(), main / "vendor" / "library")


def test_outside_any_repository_there_is_none(tmp_path: Path) -> None:
    assert find_repository(tmp_path) is None


def test_an_unreadable_repository_means_no_project_and_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / ".git").write_text("gitdir: /nowhere/at/all\n")
    with caplog.at_level(logging.WARNING):
        assert find_repository(broken) is None
    assert "could not read the git repository" in caplog.text


@pytest.mark.parametrize(("name", "reason"), [
    ("   ", "blank"),
    ("x" * 201, "201 characters; a project name has at most 200"),
    ("org/\x07repo", "control character"),
    ("org/repo\u200e", "control character"),
])
def test_a_bad_project_name_says_what_is_wrong(name: str, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason):
        check_project_name(name)
    assert check_project_name("  github.com/org/repo ") == "github.com/org/repo"
