"""Each peer in its own virtualenv under bench/.venvs/ (git-ignored), installed from PyPI with exact pins.

A venv is reused when the pinned packages are installed at the pinned versions; otherwise it is
rebuilt from scratch. pip's output goes to bench/.venvs/<name>-install.log, never the terminal.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from functools import partial
from pathlib import Path

import anyio.to_thread

VENVS = Path(__file__).resolve().parents[1] / ".venvs"
HANG_LIMIT_S = 600.0  # no answer for this long (one MCP request, an install) means a hung peer: killed

_VERSIONS = """
import importlib.metadata as m, json, platform, sys
found = {"python": platform.python_version()}
for name in sys.argv[1:]:
    try:
        found[name] = m.version(name)
    except m.PackageNotFoundError:
        found[name] = None
print(json.dumps(found))
"""


class PeerError(Exception):
    """A peer could not be installed, loaded or measured; the message is the one-line reason."""


def last_line(log: Path, limit: int = 240) -> str:
    """The last non-blank line of a log, to quote in a one-line error."""
    try:
        with log.open("rb") as handle:
            handle.seek(max(0, log.stat().st_size - 8192))
            lines = [line.strip() for line in handle.read().decode("utf-8", "replace").splitlines()]
    except OSError:
        return ""
    text = next((line for line in reversed(lines) if line), "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _run_blocking(command: list[str], log: Path, capture: bool, env: dict[str, str] | None, timeout: float) -> str:
    with log.open("a") as sink:
        sink.write(f"$ {shlex.join(command)}\n")
        sink.flush()
        try:
            done = subprocess.run(command, stdout=subprocess.PIPE if capture else sink, stderr=sink, env=env,
                                  timeout=timeout, text=True, check=False)
        except subprocess.TimeoutExpired as exc:  # subprocess.run has already killed it
            raise PeerError(f"`{' '.join(Path(part).name for part in command[:3])}` took over {timeout:.0f} s, "
                            f"killed (log: {log})") from exc
    if done.returncode != 0:
        raise PeerError(f"`{shlex.join(command[:3])}` exited with {done.returncode}: {last_line(log)} (log: {log})")
    return done.stdout or ""


async def run_logged(command: list[str], log: Path, *, capture: bool = False, env: dict[str, str] | None = None,
                     timeout: float = HANG_LIMIT_S) -> str:
    """Run a command with stderr (and stdout unless captured) appended to `log`; PeerError on failure."""
    return await anyio.to_thread.run_sync(partial(_run_blocking, command, log, capture, env, timeout))


def _pin(requirement: str) -> tuple[str, str]:
    name, _, version = requirement.partition("==")
    return name.strip(), version.strip()


def _satisfies(installed: str | None, pinned: str) -> bool:
    if installed is None:
        return False
    return installed.startswith(pinned[:-1]) if pinned.endswith(".*") else installed == pinned


def unmet(requirements: tuple[str, ...], versions: dict[str, str | None]) -> list[str]:
    return [r for r in requirements if not _satisfies(versions.get(_pin(r)[0]), _pin(r)[1])]


async def installed_versions(python: Path, names: list[str], log: Path) -> dict[str, str | None]:
    out = await run_logged([str(python), "-c", _VERSIONS, *names], log, capture=True, timeout=120)
    return json.loads(out)


async def ensure_venv(name: str, requirements: tuple[str, ...], reported: tuple[str, ...]) -> tuple[Path, dict]:
    """The venv's python and the versions of `reported` packages (plus python), installing if needed."""
    directory = VENVS / name
    python = directory / "bin" / "python"
    log = VENVS / f"{name}-install.log"
    names = list(dict.fromkeys([_pin(r)[0] for r in requirements] + list(reported)))
    VENVS.mkdir(parents=True, exist_ok=True)
    if python.exists():
        try:
            versions = await installed_versions(python, names, log)
            if not unmet(requirements, versions):
                return python, versions
        except PeerError:
            pass  # a broken venv: rebuilt below
    shutil.rmtree(directory, ignore_errors=True)
    log.write_text("")
    await run_logged([sys.executable, "-m", "venv", str(directory)], log)
    await run_logged([str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
                      *requirements], log, env={**os.environ, "PIP_NO_COLOR": "1"})
    versions = await installed_versions(python, names, log)
    if missing := unmet(requirements, versions):
        raise PeerError(f"installed, but {', '.join(missing)} not satisfied (log: {log})")
    return python, versions
