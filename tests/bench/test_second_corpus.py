"""bench.second_corpus picks the rule files a known-item query can be made from, named apart."""

from __future__ import annotations

from pathlib import Path

from bench.quality import load_rules
from bench.second_corpus import build


def fake_packages(root: Path) -> dict[str, Path]:
    """Two unpacked packages laid out like the pinned ones (no registry in tests)."""
    files = {
        "mal/package/configs/flask/rules/security.md": "---\ndescription: \"Flask security patterns\"\n---\nHash it.\n",
        "mal/package/configs/fastapi/rules/security.md": "---\ndescription: FastAPI security\n---\nUse OAuth2.\n",
        "mal/package/configs/flask/README.md": "---\ndescription: not a rule\n---\nInstall.\n",
        "ecc/package/skills/tdd/SKILL.md": "---\nname: tdd\ndescription: Test first.\n---\nRed, green.\n",
        "ecc/package/agents/planner.md": "---\nname: planner\n---\nNo description here.\n",
        "ecc/package/commands/plan.md": "---\nname: plan\n---\ndescription: in the body, not the front matter\n",
        "ecc/package/commands/todo.md": "Plain markdown without front matter.\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return {"@malamute/ai-rules@1.11.0": root / "mal", "ecc-universal@2.0.0": root / "ecc"}


def test_only_rule_files_with_a_description_are_written_each_under_its_own_name(tmp_path: Path) -> None:
    packages = fake_packages(tmp_path / "packages")
    asked: list[str] = []

    def unpack(spec: str, tmp: Path) -> Path:
        asked.append(spec)
        return packages[spec]

    out = tmp_path / "corpus"
    assert build(out, unpack) == 3
    assert sorted(p.name for p in out.iterdir()) == [
        "mal-fastapi-rules-security.mdc", "mal-flask-rules-security.mdc", "skill-tdd-SKILL.mdc"]
    assert asked == ["@malamute/ai-rules@1.11.0", "ecc-universal@2.0.0"]  # each package fetched once
    rules, left_out = load_rules(out)  # what `python -m bench quality --corpus` reads
    assert {r.description for r in rules} == {"Flask security patterns", "FastAPI security", "Test first."}
    assert left_out == []
