"""Keeping a personal file of ours out of git: Claude Code's `.claude/settings.local.json` names this
machine's path of aletheia-mcp, so it must never reach a commit.

Claude Code git-ignores that file when Claude Code creates it ("Claude Code will configure git to
ignore .claude/settings.local.json when it is created", https://docs.anthropic.com/en/docs/claude-code/settings);
when `connect` creates it, nothing does, so unless git already ignores it (`git check-ignore`) it goes
into the clone's own `info/exclude`, which is never committed and touches no file of the team's.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from mcp_server.connect import files
from mcp_server.connect.files import FileChange

GIT_TIMEOUT_S = 10  # a guard against a hung git


def exclusion(root: Path, path: Path) -> FileChange | str | None:
    """The change to the repository's info/exclude that makes git ignore `path` (None when git does
    already), or why it cannot be made (a note for the user: then they must keep it out themselves)."""
    relative = path.relative_to(root).as_posix()
    try:
        ignored = _git(root, "check-ignore", "--quiet", "--no-index", relative)
        if ignored.returncode == 0:
            return None
        found = _git(root, "rev-parse", "--git-path", "info/exclude")
    except (OSError, subprocess.SubprocessError) as exc:
        return f"could not run git ({exc})"
    if ignored.returncode != 1 or found.returncode != 0:
        return f"git failed: {(ignored.stderr or found.stderr).strip()}"
    exclude = (root / found.stdout.strip()).resolve()
    before = files.read(exclude)
    text = before or ""
    line = f"/{relative}\n"
    return FileChange(exclude, before, text + ("" if text.endswith("\n") or not text else "\n") + line)


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=GIT_TIMEOUT_S,
                          check=False)
