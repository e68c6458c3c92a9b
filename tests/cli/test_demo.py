"""``relscope demo`` at a reduced size: it finds the planted Clever-Hans artifact."""

import json
import os
import re
import subprocess
import sys
import time
import urllib.request

import numpy as np

from relscope.app.links import view_fragment
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
    assert "00000003 (3)" in text  # the class name beside the category key
    folder = tmp_path / "relscope-demo"
    project = load_project(folder / "project.yaml")
    assert project.model == "relscope.data.builtin:mnist_cnn"
    assert project.model_weights == (folder / "model.pt").resolve()
    assert check_project(folder / "project.yaml").ok
    artifact = json.loads((folder / "artifact.json").read_text())
    poisoned = np.zeros(900, bool)
    poisoned[artifact["samples"]] = True
    with AnalysisDatabase(folder / "analysis.h5") as analysis:
        assert analysis.layout == "virelay"
        taus = {key: analysis.category(key, "spray").scores["tau"] for key in ("00000003",
                "00000005", "00000008")}  # fmt: skip
        category = analysis.category("00000003", "spray")
    assert max(taus, key=taus.get) == "00000003"
    # The reported cluster, checked against the ground truth independently of the demo.
    labels = category.clusterings["kmeans-02"].labels
    flags = poisoned[category.index]
    held = [(flags & (labels == c)).sum() for c in np.unique(labels)]
    assert max(held) >= 0.9 * flags.sum() and flags.sum() == 90
    # Without --serve it says which Explorer view shows the artifact cluster.
    cluster = np.flatnonzero(labels == int(np.argmax(held)))
    link = view_fragment("spray", "00000003", clustering="kmeans-02", selection=cluster,
                         size=len(labels), mode="overlay")  # fmt: skip
    assert link in text

    # Fully seeded: the same command gives the same numbers; this time it serves the project
    # and prints the Explorer's address with that view.
    url = _serve_demo(tmp_path, link)
    assert url.endswith(link)
    with AnalysisDatabase(tmp_path / "again" / "analysis.h5") as analysis:
        assert analysis.category("00000003", "spray").scores["tau"] == taus["00000003"]
    refused = demo(*ARGS, cwd=tmp_path)
    assert refused.returncode == 2 and "pass --force" in refused.stderr


def _serve_demo(tmp_path, link: str) -> str:
    """Run the demo with serving on a free port; check the printed address answers."""
    from support.browser import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "relscope", "demo", *ARGS[:-1], "--out", str(tmp_path / "again"),
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        env=os.environ | {"COLUMNS": "400"},
    )  # fmt: skip
    try:
        lines = []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            assert line or server.poll() is None, "".join(lines)
            lines.append(line)
            found = re.search(r"Explorer: (http://127\.0\.0\.1:\d+/\S*)", line)
            if found:
                break
        else:
            raise AssertionError("no Explorer address within 300 s:\n" + "".join(lines))
        url = found.group(1)
        assert url.startswith(f"http://127.0.0.1:{port}/#")
        page = None
        while page is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url.split("#")[0]) as answer:
                    page = answer.read().decode()
            except OSError:
                time.sleep(0.2)
        assert page is not None and "relscope" in page
        return url
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_demo_with_the_vit_finds_the_artifact_cluster_with_attnlrp(tmp_path):
    """``--model vit``: the small vision transformer, explained with AttnLRP, hands SpRAy the
    same finding as the CNN: the poisoned class ranks first and k-means with k = 2 puts the
    samples with the square in a cluster of their own."""
    import torch

    from relscope.data.attribution_db import AttributionSet
    from relscope.data.dataset import open_dataset
    from relscope.data.model import load_model

    result = demo(*ARGS, "--model", "vit", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "trained the ViT (8 epochs)" in text and "(AttnLRP, true label)" in text
    assert "Class 3 (the one with the planted square) ranks 1 of 3 by tau." in text
    folder = tmp_path / "relscope-demo"
    project = load_project(folder / "project.yaml")
    assert project.model == "relscope.data.builtin:mnist_vit"
    assert check_project(folder / "project.yaml").ok
    stored = AttributionSet([folder / "attribution.h5"])
    assert stored.shards[0].metadata["method"]["method"] == "attnlrp"
    # The weights in the project are the explained model: its predictions are the stored ones.
    model = load_model(project.model, project.model_weights)
    with open_dataset(folder / "dataset.h5") as dataset:
        images = torch.stack([dataset[i][0] for i in range(8)])
    with torch.no_grad():
        predicted = model(images).argmax(1).tolist()
    assert predicted == [int(stored.get(i).prediction.argmax()) for i in range(8)]
    # The artifact cluster, against the ground truth and independently of the demo's search.
    artifact = json.loads((folder / "artifact.json").read_text())
    poisoned = np.zeros(900, bool)
    poisoned[artifact["samples"]] = True
    with AnalysisDatabase(folder / "analysis.h5") as analysis:
        category = analysis.category("00000003", "spray")
    labels = category.clusterings["kmeans-02"].labels
    flags = poisoned[category.index]
    members = labels == labels[flags][0]
    held = (flags & members).sum()
    assert flags.sum() == 90 and held >= 0.9 * flags.sum() and held >= 0.9 * members.sum()
    refused = demo(*ARGS, "--model", "resnet", "--out", tmp_path / "x", cwd=tmp_path)
    assert refused.returncode == 2 and "--model must be one of cnn, vit" in refused.stderr
