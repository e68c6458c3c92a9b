"""Images through the whole product with a vision transformer: ``relscope attribute`` with
the demo's ViT and the ``attnlrp`` composite, ``relscope analyze`` (SpRAy), ``relscope
project``, and the Explorer's API serving the project's heatmaps."""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from PIL import Image
from typer.testing import CliRunner

from relscope.analysis import SpRAy, spray_config
from relscope.analysis.processors import PCA, SpectralEmbedding
from relscope.analysis.spray import SpectralKMeans
from relscope.app import create_app
from relscope.attribution import get_attributor
from relscope.cli.main import app
from relscope.data.analysis_db import AnalysisDatabase
from relscope.data.attribution_db import AttributionSet
from relscope.data.builtin import MNIST_CLASSES, mnist_vit
from relscope.data.dataset import write_hdf5_dataset
from relscope.data.labels import LabelMap, save_label_map
from relscope.data.model import load_model, save_weights
from relscope.engine.clever_hans import make_task, train_classifier
from relscope.render import heatmap_png

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

runner = CliRunner()
MODEL = "relscope.data.builtin:mnist_vit"


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_vit_attribute_analyze_project_serve(tmp_path):
    # Two digits, the square on 30% of the 3s: small enough to train in about a second.
    task = make_task([3, 8], per_class=100, poisoned_class=3, fraction=0.3, seed=1)
    write_hdf5_dataset(tmp_path / "data.h5", task.images, task.labels)
    save_label_map(LabelMap.from_names(MNIST_CLASSES), tmp_path / "labels.json")
    trained = train_classifier(task.images, task.labels, num_classes=10, epochs=8, lr=1e-3,
                               seed=0, factory=mnist_vit)  # fmt: skip
    save_weights(trained, tmp_path / "vit.pt")

    text = invoke("attribute", tmp_path / "data.h5", "--model", MODEL, "--weights",
                  tmp_path / "vit.pt", "--method", "attnlrp", "--out", tmp_path / "a.h5",
                  "--batch-size", 50, "--device", "cpu")  # fmt: skip
    assert "attnlrp" in text and "200 samples" in text
    # What was stored is AttnLRP of the trained ViT, computed here directly.
    model = load_model(MODEL, tmp_path / "vit.pt")
    rows = [0, 7, 150]
    with AttributionSet([tmp_path / "a.h5"]) as stored:
        relevance = np.stack([stored.get(i).attribution for i in rows])
        assert stored.shards[0].metadata["method"]["method"] == "attnlrp"
    x = torch.from_numpy(task.images[rows])
    _, expected = get_attributor("lrp", composite="attnlrp")(model, x, torch.from_numpy(
        task.labels[rows]))  # fmt: skip
    np.testing.assert_allclose(relevance, expected.numpy(), rtol=1e-4, atol=1e-6)
    assert relevance.shape == (3, 1, 28, 28) and np.abs(relevance).sum() > 0

    pipeline = tmp_path / "spray.yaml"
    pipeline.write_text(spray_config(SpRAy(embedding=SpectralEmbedding(n_eigval=8),
                                           kmeans=SpectralKMeans(n_clusters=(2, 3)),
                                           tsne=PCA(n_components=2), umap=None)))  # fmt: skip
    invoke("analyze", tmp_path / "a.h5", "--out", tmp_path / "analysis.h5", "--pipeline",
           pipeline, "--label-map", tmp_path / "labels.json")  # fmt: skip
    with AnalysisDatabase(tmp_path / "analysis.h5") as analysis:
        assert analysis.categories("spray") == ["00000003", "00000008"]
        category = analysis.category("00000003", "spray")
        clusters = category.clusterings["kmeans-02"].labels
    # SpRAy on the ViT's AttnLRP heatmaps separates the 3s with the square.
    flags = task.poisoned[category.index]
    members = clusters == np.bincount(clusters[flags]).argmax()
    held = int((flags & members).sum())
    assert flags.sum() == 30 and held >= 27 and held >= 0.9 * members.sum()

    invoke("project", "--out", tmp_path / "project.yaml", "--name", "vit", "--model", MODEL,
           "--model-weights", tmp_path / "vit.pt", "--label-map", tmp_path / "labels.json",
           "--dataset", tmp_path / "data.h5", "--attribution", tmp_path / "a.h5",
           "--analysis", tmp_path / "analysis.h5")  # fmt: skip
    client = TestClient(create_app([tmp_path / "project.yaml"]))
    (info,) = client.get("/api/projects").json()
    assert info["attribution"] == {"method": "attnlrp", "strategy": "true_label"}
    ranked = client.get("/api/projects/0/analyses/spray/categories").json()
    assert {c["name"] for c in ranked} >= {"00000003", "00000008"}
    answer = client.get("/api/projects/0/samples/7/heatmap.png")
    assert answer.status_code == 200
    with AttributionSet([tmp_path / "a.h5"]) as stored:
        assert answer.content == heatmap_png(stored.get(7).attribution)
    heat = Image.open(io.BytesIO(answer.content))
    assert heat.mode == "P" and heat.size == (28, 28)
    overlay = client.get("/api/projects/0/samples/7/overlay.png")
    assert overlay.status_code == 200 and Image.open(io.BytesIO(overlay.content)).size == (28, 28)
