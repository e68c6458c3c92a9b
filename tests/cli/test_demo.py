"""``relscope demo`` at a reduced size: it finds the planted Clever-Hans artifact."""

import json
import os
import subprocess
import sys

import numpy as np

from relscope.data.analysis_db import AnalysisDatabase
from relscope.data.check import check_project
from relscope.data.project import load_project

# Three confusable digits keep the run short (~25 s) while the square stays a useful shortcut.
ARGS = ["--classes", "3,5,8", "--per-class", "300", "--no-umap", "--no-tsne", "--no-serve"]


def demo(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "relscope", "demo", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env=os.environ | {"COLUMNS": "250"},
    )


def test_demo_finds_the_artifact_cluster_and_writes_a_complete_project(tmp_path):
    result = demo(*ARGS, cwd=tmp_path)  # the default, relative folder, as `make demo` runs it
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "Class 3 (the one with the planted square) ranks 1 of 3 by tau." in text
    assert "kmeans-02, cluster" in text and "holds 100% of the 90 samples" in text
    assert "samples/s" in text and "valid (0 errors, 0 warnings)" in text
    folder = tmp_path / "relscope-demo"
    project = load_project(folder / "project.yaml")
    assert project.model == "relscope.data.builtin:mnist_cnn"
    assert project.model_weights == (folder / "model.pt").resolve()
    assert check_project(folder / "project.yaml").ok
    artifact = json.loads((folder / "artifact.json").read_text())
    poisoned = np.zeros(900, bool)
    poisoned[artifact["samples"]] = True
    with AnalysisDatabase(folder / "analysis.h5") as analysis:
        taus = {key: analysis.category(key, "spray").scores["tau"] for key in ("00000003",
                "00000005", "00000008")}  # fmt: skip
        category = analysis.category("00000003", "spray")
    assert max(taus, key=taus.get) == "00000003"
    # The reported cluster, checked against the ground truth independently of the demo.
    labels = category.clusterings["kmeans-02"].labels
    flags = poisoned[category.index]
    held = max((flags & (labels == c)).sum() for c in np.unique(labels))
    assert held >= 0.9 * flags.sum() and flags.sum() == 90

    # Fully seeded: the same command gives the same numbers.
    again = demo(*ARGS, "--out", tmp_path / "again", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    with AnalysisDatabase(tmp_path / "again" / "analysis.h5") as analysis:
        assert analysis.category("00000003", "spray").scores["tau"] == taus["00000003"]
    refused = demo(*ARGS, cwd=tmp_path)
    assert refused.returncode == 2 and "pass --force" in refused.stderr
