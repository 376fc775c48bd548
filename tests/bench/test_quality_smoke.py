"""`python -m bench quality` on a tiny corpus of this test's own, through the real MCP client with the
hashing embedder: the machinery and sane figures (a query naming a rule's unique phrase finds it first),
not the quality of any ranking (that is the command's job on the real corpus)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO_ROOT, clean_env

# name -> (description, the rule's unique phrase in its body). The description, the query, is held
# out of what is stored: only the body carries the phrase.
RULES = {
    "alpha": "quokka marmalade reconciliation ledger",
    "bravo": "zeppelin turnip checksum quarantine",
    "charlie": "walrus saxophone migration embargo",
    "delta": "narwhal origami deployment freeze",
}
FILLER = "Keep functions short, name things plainly and review every change before it is merged."


def write_corpus(folder: Path) -> None:
    folder.mkdir()
    for name, phrase in RULES.items():
        # `globs: **/*.py` unquoted is not valid YAML (an alias): rule files are written so, and read leniently.
        (folder / f"{name}.mdc").write_text(
            f"---\ndescription: {phrase.capitalize()}\nglobs: **/*.py\n---\n# {name.title()} rules\n\n"
            f"Always apply the {phrase} procedure.\n\n{FILLER}\n", encoding="utf-8")
    (folder / "no-description.mdc").write_text("---\nglobs: '*.md'\n---\n# Docs\n\nWrite docs.\n", encoding="utf-8")


def test_quality_runs_known_item_search_through_the_server_and_writes_sane_figures(tmp_path: Path) -> None:
    write_corpus(tmp_path / "corpus")
    result = subprocess.run(
        [sys.executable, "-m", "bench", "quality", "--corpus", str(tmp_path / "corpus"), "--embedders", "hashing",
         "--resamples", "200", "--out", str(tmp_path / "out")],
        cwd=REPO_ROOT, env=clean_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    [path] = list((tmp_path / "out").glob("quality-*.json"))
    results = json.loads(path.read_text())
    assert results["queries"] == len(RULES) and sorted(results["rules"]) == sorted(RULES)
    assert [line.split(":")[0] for line in results["left_out"]] == ["no-description.mdc"]
    modes = results["embedders"]["hashing"]["modes"]
    assert set(modes) == {"hybrid", "vector", "keywords", "exact vector"}
    measured = {mode: figures for mode, figures in modes.items() if "skipped" not in figures}
    assert set(measured) == set(modes), modes  # vector alone too: recall(mode="vector")
    for mode, figures in measured.items():
        assert figures["ranks"] == [1] * len(RULES), mode  # each unique phrase finds its own rule first
        for metric in ("mrr@10", "r@1", "r@10"):
            low, high = figures[metric]["ci95"]
            assert low == figures[metric]["value"] == high == 1.0, (mode, metric)
        assert figures["vs_exact_vector"] == {"better": 0, "worse": 0, "sign_test_p": 1.0}
    # Four short rules fit any response; keywords alone find only the rule sharing the query's words.
    assert modes["hybrid"]["short_pages"] == 0 and modes["exact vector"]["short_pages"] is None
    fusion = results["embedders"]["hashing"]["fusion_cv"]
    # Two folds (the file names' hashes split the four rules two and two), each tuned on one half and
    # tested on the other; every query's target comes first whatever the weight.
    assert [(f["tuned_on"], f["tested_on"], f["queries"]) for f in fusion["folds"]] == [(1, 0, 2), (0, 1, 2)]
    assert all(f["best_weight"] == fusion["weights"][0] and f["test_mrr@10"] == 1.0 for f in fusion["folds"])
    assert fusion["held_out"]["ranks"] == fusion["shipped_offline"]["ranks"] == [1] * len(RULES)
    assert fusion["server_hybrid"]["value"] == 1.0 and fusion["vector_rank@40"] == [1] * len(RULES)
    assert "2-fold cross-validated" in result.stdout and "held out 1.000" in result.stdout
    assert "hybrid" in result.stdout and "keywords" in result.stdout and "MRR@10" in result.stdout
    assert str(path) in result.stdout


def test_quality_rejects_an_unknown_embedder_and_a_missing_corpus(tmp_path: Path) -> None:
    write_corpus(tmp_path / "corpus")
    unknown = subprocess.run([sys.executable, "-m", "bench", "quality", "--corpus", str(tmp_path / "corpus"),
                              "--embedders", "hashing,word2vec"],
                             cwd=REPO_ROOT, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert unknown.returncode != 0 and "unknown embedder(s) word2vec" in unknown.stderr
    missing = subprocess.run([sys.executable, "-m", "bench", "quality", "--corpus", str(tmp_path / "nowhere")],
                             cwd=REPO_ROOT, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and "pass --corpus DIR" in missing.stderr
