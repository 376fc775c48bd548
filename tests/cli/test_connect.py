"""`aletheia-mcp connect|disconnect CLIENT` through the real command, HOME pointed at a temporary
folder and the project a real git repository: what each client's files hold afterwards, that
everyone else's entries and formatting are kept, idempotence, dry runs, malformed files, symlinks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mcp_server.connect import HOOKS_NEED_POSIX, Places, plan, running_executable
from mcp_server.errors import ConfigurationError
from tests.helpers import clean_env, make_repository

EXE = str(Path(sys.executable).parent / "aletheia-mcp")
CLIENTS = ["claude-code", "claude-desktop", "cursor", "codex", "gemini", "vscode"]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repository(tmp_path / "repo")


def run(args: list[str], cwd: Path, home: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(HOME=str(home), COLUMNS="300", **extra)
    for name in ("XDG_CONFIG_HOME", "CLAUDE_CONFIG_DIR", "CODEX_HOME", "GEMINI_CLI_HOME", "APPDATA"):
        env.pop(name, None)
    return subprocess.run([EXE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def snapshot(*folders: Path) -> dict[str, bytes]:
    """Every file under `folders` (but .git), byte for byte."""
    return {str(p): p.read_bytes() for folder in folders for p in sorted(folder.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(folder).parts}


def hook(event: str, client: str = "claude-code") -> str:
    return f'"{EXE}" hook {event} --client {client}'


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=60, check=False)


def test_claude_code_project_writes_server_and_the_contracts_hooks(repo: Path, home: Path) -> None:
    (repo / "src").mkdir()
    result = run(["connect", "claude-code"], repo / "src", home)  # from a subfolder: the repository's root
    assert result.returncode == 0, result.stderr
    assert json.loads((repo / ".mcp.json").read_text()) == {
        "mcpServers": {"aletheia": {"command": EXE, "args": ["serve"], "env": {}}}}
    # The hooks name this machine's path: in the personal settings file, which git ignores, never in
    # the team's .claude/settings.json.
    hooks = json.loads((repo / ".claude" / "settings.local.json").read_text())["hooks"]
    assert not (repo / ".claude" / "settings.json").exists()
    assert git(repo, "check-ignore", ".claude/settings.local.json").returncode == 0
    assert git(repo, "status", "--porcelain", "--untracked-files=all").stdout == "?? .mcp.json\n"
    assert hooks == {
        "SessionStart": [{"hooks": [{"type": "command", "command": hook("session-start")}]}],
        "UserPromptSubmit": [{"hooks": [{"type": "command", "command": hook("prompt")}]}],
        "PreToolUse": [{"matcher": "Read|Write|Edit|MultiEdit",
                        "hooks": [{"type": "command", "command": hook("file")}]}],
        "Stop": [{"hooks": [{"type": "command", "command": hook("stop")}]}],
    }
    assert "only when `claude` starts at the repository root" in result.stdout
    assert "--scope user" in result.stdout
    assert (repo / ".mcp.json").read_text().endswith("}\n")
    assert (f"note: {repo / '.mcp.json'} names this machine's path of aletheia-mcp ({EXE}): commit it only if "
            "everyone on the team installs aletheia-mcp at that same path") in result.stderr
    again = run(["connect", "claude-code"], repo / "src", home)
    assert "already connected" in again.stdout  # the exclusion too: git ignores the file now


def test_dry_run_shows_the_diff_and_writes_nothing(repo: Path, home: Path) -> None:
    (repo / ".mcp.json").write_text('{\n  "mcpServers": {}\n}\n')
    before = snapshot(repo, home)
    result = run(["connect", "claude-code", "--dry-run"], repo, home)
    assert result.returncode == 0, result.stderr
    assert f"+++ {repo / '.mcp.json'}" in result.stdout
    assert f'+      "command": "{EXE}",' in result.stdout
    assert f"+++ {repo / '.claude' / 'settings.local.json'}" in result.stdout
    assert "nothing was written" in result.stdout
    assert snapshot(repo, home) == before


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("scope", ["project", "user"])
def test_connecting_twice_changes_nothing_and_disconnect_removes_it(
    client: str, scope: str, repo: Path, home: Path
) -> None:
    if client == "claude-desktop" and scope == "project":
        result = run(["connect", client, "--scope", scope], repo, home)
        assert result.returncode == 1 and "has no project scope; use --scope user" in result.stderr
        return
    first = run(["connect", client, "--scope", scope], repo, home)
    assert first.returncode == 0, first.stderr
    written = snapshot(repo, home)
    assert written, "connect wrote no file"
    assert any(EXE in text.decode() for text in written.values())
    second = run(["connect", client, "--scope", scope], repo, home)
    assert second.returncode == 0, second.stderr
    assert "already connected" in second.stdout
    assert snapshot(repo, home) == written  # byte-identical
    listed = run(["connect", "--list"], repo, home)
    assert any(line.split()[:2] == [client, scope] and "server" in line for line in listed.stdout.splitlines()), \
        listed.stdout
    gone = run(["disconnect", client, "--scope", scope], repo, home)
    assert gone.returncode == 0, gone.stderr
    assert not any(EXE in text.decode() for text in snapshot(repo, home).values())
    again = run(["disconnect", client, "--scope", scope], repo, home)
    assert "not connected" in again.stdout


def test_claude_code_keeps_other_entries_their_formatting_and_their_hooks(repo: Path, home: Path) -> None:
    mcp = ('{\n    "mcpServers": {\n        "other": { "command": "other-server", "args": ["--x"] }\n    },\n'
           '    "zeta": [1, 2]\n}')  # 4 spaces, an inline entry, a later key, no trailing newline
    settings = json.dumps({
        "permissions": {"allow": ["Bash(ls)"]},
        "hooks": {
            "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
            "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "guard.sh"}]}],
        },
    }, indent="\t") + "\n"
    (repo / ".mcp.json").write_text(mcp)
    (repo / ".claude").mkdir()
    (repo / ".claude" / "settings.local.json").write_text(settings)  # the user's own, with their hooks

    assert run(["connect", "claude-code"], repo, home).returncode == 0
    text = (repo / ".mcp.json").read_text()
    assert '        "other": { "command": "other-server", "args": ["--x"] }' in text
    assert f'        "aletheia": {{\n            "command": "{EXE}",' in text  # the file's own 4-space step
    assert list(json.loads(text)) == ["mcpServers", "zeta"] and not text.endswith("\n")
    merged = json.loads((repo / ".claude" / "settings.local.json").read_text())
    assert merged["permissions"] == {"allow": ["Bash(ls)"]}
    assert merged["hooks"]["Stop"][0] == {"hooks": [{"type": "command", "command": "notify-send done"}]}
    assert merged["hooks"]["Stop"][1] == {"hooks": [{"type": "command", "command": hook("stop")}]}
    assert merged["hooks"]["PreToolUse"][0]["matcher"] == "Bash"
    assert "\t\t\"Stop\"" in (repo / ".claude" / "settings.local.json").read_text()  # tabs kept

    assert run(["disconnect", "claude-code"], repo, home).returncode == 0
    assert (repo / ".mcp.json").read_text() == mcp
    assert (repo / ".claude" / "settings.local.json").read_text() == settings


def test_disconnect_leaves_other_hooks_in_a_shared_group(repo: Path, home: Path) -> None:
    (repo / ".claude").mkdir()
    group = {"hooks": [{"type": "command", "command": hook("stop")}, {"type": "command", "command": "theirs.sh"}]}
    (repo / ".claude" / "settings.json").write_text(json.dumps({"hooks": {"Stop": [group]}}, indent=2) + "\n")
    assert run(["disconnect", "claude-code"], repo, home).returncode == 0
    assert json.loads((repo / ".claude" / "settings.json").read_text()) == {
        "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "theirs.sh"}]}]}}


def test_an_old_command_path_is_replaced_not_duplicated(repo: Path, home: Path) -> None:
    old = '"/old/venv/bin/aletheia-mcp" hook stop --client claude-code'
    (repo / ".claude").mkdir()
    (repo / ".claude" / "settings.json").write_text(json.dumps(
        {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": old}]}]}}))
    listed = run(["connect", "--list"], repo, home).stdout
    assert "through /old/venv/bin/aletheia-mcp (not this aletheia-mcp" in listed
    moved = run(["connect", "claude-code"], repo, home)
    assert moved.returncode == 0, moved.stderr
    assert (f"note: our hooks were removed from {repo / '.claude' / 'settings.json'}, which the team shares: "
            f"they are in {repo / '.claude' / 'settings.local.json'} now.") in moved.stderr
    stop = json.loads((repo / ".claude" / "settings.local.json").read_text())["hooks"]["Stop"]
    assert stop == [{"hooks": [{"type": "command", "command": hook("stop")}]}]
    assert json.loads((repo / ".claude" / "settings.json").read_text()) == {}  # moved, not duplicated


def test_vscode_keeps_jsonc_comments_and_trailing_commas(repo: Path, home: Path) -> None:
    original = ('{\n  // my servers\n  "servers": {\n    "github": {"type": "http", "url": "https://x/mcp/"}, '
                '/* keep */\n  },\n  "inputs": [],\n}\n')
    (repo / ".vscode").mkdir()
    (repo / ".vscode" / "mcp.json").write_text(original)
    assert run(["connect", "vscode"], repo, home).returncode == 0
    text = (repo / ".vscode" / "mcp.json").read_text()
    assert "// my servers" in text and "/* keep */" in text and '"url": "https://x/mcp/"' in text
    assert f'"type": "stdio",\n      "command": "{EXE}"' in text
    assert run(["connect", "vscode"], repo, home).stdout.count("already connected") == 1
    assert run(["disconnect", "vscode"], repo, home).returncode == 0
    assert (repo / ".vscode" / "mcp.json").read_text() == original


def test_codex_toml_keeps_comments_and_other_servers(repo: Path, home: Path) -> None:
    original = ('# my codex settings\nmodel = "o4"  # the model\n\n[mcp_servers.docs]\ncommand = "docs-mcp"\n'
                'args = ["--stdio"]\n')
    (home / ".codex").mkdir()
    (home / ".codex" / "config.toml").write_text(original)
    assert run(["connect", "codex", "--scope", "user"], repo, home).returncode == 0
    text = (home / ".codex" / "config.toml").read_text()
    assert text.startswith(original)  # everything there before, untouched, first
    config = tomllib.loads(text)
    assert config["mcp_servers"]["aletheia"] == {"command": EXE, "args": ["serve"], "env": {}}
    assert config["mcp_servers"]["docs"] == {"command": "docs-mcp", "args": ["--stdio"]}
    assert config["features"]["codex_hooks"] is True
    hooks = json.loads((home / ".codex" / "hooks.json").read_text())["hooks"]
    assert hooks["UserPromptSubmit"] == [{"hooks": [{"type": "command", "command": hook("prompt", "codex")}]}]
    assert hooks["PreToolUse"] == [{"matcher": "apply_patch",
                                    "hooks": [{"type": "command", "command": hook("file", "codex")}]}]
    assert run(["disconnect", "codex", "--scope", "user"], repo, home).returncode == 0
    after = tomllib.loads((home / ".codex" / "config.toml").read_text())
    assert "aletheia" not in after["mcp_servers"] and after["mcp_servers"]["docs"]["command"] == "docs-mcp"


def test_cursor_and_gemini_hook_formats(repo: Path, home: Path) -> None:
    assert run(["connect", "cursor"], repo, home).returncode == 0
    cursor = json.loads((repo / ".cursor" / "hooks.json").read_text())
    assert cursor["version"] == 1
    # Only sessionStart can add context in Cursor: its other hooks are not registered.
    assert cursor["hooks"] == {"sessionStart": [{"command": hook("session-start", "cursor")}]}
    (repo / ".gemini").mkdir()
    (repo / ".gemini" / "settings.json").write_text('{\n  // theme\n  "theme": "dark"\n}\n')
    assert run(["connect", "gemini"], repo, home).returncode == 0
    text = (repo / ".gemini" / "settings.json").read_text()
    assert "// theme" in text
    assert f'"command": "{EXE}"' in text and json.dumps(hook("stop", "gemini")) in text
    assert '"AfterAgent"' in text and '"BeforeAgent"' in text
    hooks = json.loads("\n".join(line for line in text.splitlines() if "//" not in line))["hooks"]
    # A new file's first write can be refused before it runs; conventions come with a read's result.
    assert [group["matcher"] for group in hooks["BeforeTool"]] == ["write_file"]
    assert [group["matcher"] for group in hooks["AfterTool"]] == ["read_file|replace"]


@pytest.mark.parametrize("content", ['{"mcpServers": {', "[1, 2]", '{"a": 1, // no comments here\n}'])
def test_a_malformed_file_is_a_clear_error_and_stays_untouched(content: str, repo: Path, home: Path) -> None:
    path = repo / ".mcp.json"
    path.write_text(content)
    os.utime(path, (1_000_000_000, 1_000_000_000))
    result = run(["connect", "claude-code"], repo, home)
    assert result.returncode == 1
    assert str(path) in result.stderr and "nothing was written" in result.stderr
    assert "Traceback" not in result.stderr
    assert path.read_text() == content and path.stat().st_mtime == 1_000_000_000
    assert not (repo / ".claude").exists()  # nothing else written either


def test_a_symlinked_file_is_written_at_its_target_and_said_so(repo: Path, home: Path, tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "claude.json"
    real.parent.mkdir()
    real.write_text('{"numStartups": 3}\n')
    (home / ".claude.json").symlink_to(real)
    result = run(["connect", "claude-code", "--scope", "user"], repo, home)
    assert result.returncode == 0, result.stderr
    assert f"{home / '.claude.json'} is a symlink: the change goes to {real}" in result.stderr
    assert (home / ".claude.json").is_symlink()
    assert json.loads(real.read_text())["mcpServers"]["aletheia"]["command"] == EXE


def test_project_scope_outside_a_repository_says_what_to_do(tmp_path: Path, home: Path) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    result = run(["connect", "cursor"], outside, home)
    assert result.returncode == 1 and "not inside a git repository" in result.stderr
    assert "--scope user" in result.stderr
    unknown = run(["connect", "emacs"], outside, home)
    assert unknown.returncode == 1 and "unknown client 'emacs'" in unknown.stderr


def test_no_secret_reaches_a_project_file_and_shell_only_settings_are_named(repo: Path, home: Path) -> None:
    url = "postgresql://alice:hunter2@db.example/aletheia"
    result = run(["connect", "claude-code"], repo, home, DATABASE_URL=url, OPENAI_API_KEY="sk-secret")
    assert result.returncode == 0, result.stderr
    written = b"".join(snapshot(repo).values()).decode()
    assert "hunter2" not in written and "sk-secret" not in written
    assert "DATABASE_URL, OPENAI_API_KEY are set in this shell but not in" in result.stderr
    assert str(home / ".config" / "aletheia" / ".env") in result.stderr


# --- an earlier connect: hooks in the team's .claude/settings.json --------------------------------


def test_hooks_an_earlier_connect_put_in_settings_json_are_listed_and_disconnected(repo: Path, home: Path) -> None:
    theirs = {"matcher": "Bash", "hooks": [{"type": "command", "command": "guard.sh"}]}
    earlier = {"hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": hook("session-start")}]}],
                         "PreToolUse": [theirs, {"matcher": "Read|Write|Edit|MultiEdit",
                                                 "hooks": [{"type": "command", "command": hook("file")}]}]}}
    (repo / ".claude").mkdir()
    (repo / ".claude" / "settings.json").write_text(json.dumps(earlier, indent=2) + "\n")
    listed = run(["connect", "--list"], repo, home).stdout
    assert f"{repo / '.claude' / 'settings.json'}  hooks for SessionStart, PreToolUse" in listed, listed
    gone = run(["disconnect", "claude-code"], repo, home)
    assert gone.returncode == 0, gone.stderr
    assert json.loads((repo / ".claude" / "settings.json").read_text()) == {"hooks": {"PreToolUse": [theirs]}}


# --- the note on project files that name this machine's path -------------------------------------


@pytest.mark.parametrize(("client", "files"), [
    ("cursor", [".cursor/mcp.json", ".cursor/hooks.json"]), ("codex", [".codex/config.toml", ".codex/hooks.json"]),
    ("gemini", [".gemini/settings.json"]), ("vscode", [".vscode/mcp.json"])])
def test_project_files_naming_this_machines_path_come_with_a_note(
    client: str, files: list[str], repo: Path, home: Path
) -> None:
    result = run(["connect", client], repo, home)
    assert result.returncode == 0, result.stderr
    named = ", ".join(str(repo / f) for f in files)
    assert f"note: {named} name{'s' if len(files) == 1 else ''} this machine's path of aletheia-mcp ({EXE})" \
        in result.stderr
    assert f"use `aletheia-mcp connect {client} --scope user` instead" in result.stderr
    user = run(["connect", client, "--scope", "user"], repo, home)
    assert "this machine's path" not in user.stderr  # the user's own files: nothing to commit


# --- Windows, and paths a shell would misread ---------------------------------------------------

WINDOWS_EXE = r"C:\Users\Ann\venv\Scripts\aletheia-mcp.exe"


@pytest.mark.parametrize("client", ["claude-code", "codex", "gemini", "cursor"])
def test_on_windows_connect_writes_the_server_entry_only_and_says_why(client: str, tmp_path: Path) -> None:
    places = Places(tmp_path / "home", None, {"APPDATA": str(tmp_path / "roaming")}, "win32")
    planned = plan(client, "user", places, WINDOWS_EXE, remove=False)
    texts = "".join(change.after for change in planned.changes)
    assert json.dumps(WINDOWS_EXE) in texts or f"'{WINDOWS_EXE}'" in texts  # JSON, or a TOML literal string
    assert " hook " not in texts and '"hooks"' not in texts and "codex_hooks" not in texts
    assert [n for n in planned.notes if n.startswith(f"{client}'s hooks are not registered: {HOOKS_NEED_POSIX}")]


def test_on_windows_a_backslash_path_is_a_fine_server_entry(tmp_path: Path) -> None:
    places = Places(tmp_path / "home", None, {"APPDATA": str(tmp_path / "roaming")}, "win32")
    [change] = plan("claude-desktop", "user", places, WINDOWS_EXE, remove=False).changes
    assert change.path == tmp_path / "roaming" / "Claude" / "claude_desktop_config.json"
    assert json.loads(change.after)["mcpServers"]["aletheia"]["command"] == WINDOWS_EXE


def test_only_hook_commands_refuse_what_a_shell_would_misread(tmp_path: Path) -> None:
    odd = tmp_path / "we\\ird$dir" / "bin" / "aletheia-mcp"  # a backslash and a dollar: fine in argv
    odd.parent.mkdir(parents=True)
    odd.symlink_to(EXE)
    assert running_executable(str(odd)) == str(odd)
    places = Places(tmp_path / "home", None, {}, "linux")
    [change] = plan("vscode", "user", places, str(odd), remove=False).changes
    assert json.loads(change.after)["servers"]["aletheia"]["command"] == str(odd)
    with pytest.raises(ConfigurationError, match="a hook is a shell command line; nothing was written"):
        plan("claude-code", "user", places, str(odd), remove=False)


def test_a_command_path_with_a_backslash_connects_clients_without_hooks(repo: Path, home: Path, tmp_path: Path) -> None:
    odd = tmp_path / "we\\ird" / "aletheia-mcp"
    odd.parent.mkdir()
    odd.symlink_to(EXE)  # the command runs under that path (argv[0]), as if installed there
    env = clean_env(HOME=str(home), COLUMNS="300")
    vscode = subprocess.run([str(odd), "connect", "vscode"], cwd=repo, env=env, capture_output=True, text=True,
                            timeout=120)
    assert vscode.returncode == 0, vscode.stderr
    assert json.loads((repo / ".vscode" / "mcp.json").read_text())["servers"]["aletheia"]["command"] == str(odd)
    claude = subprocess.run([str(odd), "connect", "claude-code"], cwd=repo, env=env, capture_output=True, text=True,
                            timeout=120)
    assert claude.returncode == 1 and "a hook is a shell command line" in claude.stderr
    assert not (repo / ".mcp.json").exists() and not (repo / ".claude").exists()


# --- symlinks a cloned repository may plant -------------------------------------------------------


@pytest.mark.parametrize("link", [".mcp.json", ".claude"])
def test_a_project_symlink_leading_outside_is_refused(link: str, repo: Path, home: Path, tmp_path: Path) -> None:
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "settings.local.json").write_text('{"mine": 1}\n')
    target = outside / ("settings.local.json" if link == ".mcp.json" else "")
    (repo / link).symlink_to(target)
    before = snapshot(repo, home, outside)
    for command in (["connect", "claude-code"], ["connect", "claude-code", "--dry-run"], ["disconnect", "claude-code"]):
        result = run(command, repo, home)
        assert result.returncode == 1, (command, result.stdout)
        assert f"{repo / link} is a symlink that leads outside the repository {repo}" in result.stderr
        assert f"would be written at {outside / 'settings.local.json'}; nothing was written" in result.stderr
        assert "--follow-symlinks" in result.stderr and "Traceback" not in result.stderr
        assert snapshot(repo, home, outside) == before
    listed = run(["connect", "--list"], repo, home)
    assert f"not read: {repo / link} is a symlink that leads outside the repository" in listed.stdout


def test_follow_symlinks_writes_at_the_target_and_says_so(repo: Path, home: Path, tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "mcp.json"
    real.parent.mkdir()
    real.write_text('{"mcpServers": {}}\n')
    (repo / ".mcp.json").symlink_to(real)
    result = run(["connect", "claude-code", "--follow-symlinks"], repo, home)
    assert result.returncode == 0, result.stderr
    assert f"{repo / '.mcp.json'} is a symlink: the change goes to {real}" in result.stderr
    assert (repo / ".mcp.json").is_symlink()
    assert json.loads(real.read_text())["mcpServers"]["aletheia"]["command"] == EXE


def test_a_symlink_inside_the_repository_is_followed(repo: Path, home: Path) -> None:
    (repo / "config").mkdir()
    (repo / "config" / "mcp.json").write_text("{}\n")
    (repo / ".mcp.json").symlink_to("config/mcp.json")
    result = run(["connect", "claude-code"], repo, home)
    assert result.returncode == 0, result.stderr
    assert json.loads((repo / "config" / "mcp.json").read_text())["mcpServers"]["aletheia"]["command"] == EXE
