"""A tiny dataset through the whole command line: attribute (interrupted, resumed), analyze,
project, validate."""

from __future__ import annotations

import numpy as np
import torch
from typer.testing import CliRunner

from relscope.analysis import SpRAy, spray_config
from relscope.analysis.processors import PCA, SpectralEmbedding
from relscope.analysis.spray import SpectralKMeans
from relscope.cli.main import app
from relscope.data.analysis_db import AnalysisDatabase
from relscope.data.attribution_db import AttributionDatabase
from relscope.data.builtin import mnist_cnn, plant_artifact
from relscope.data.dataset import write_hdf5_dataset
from relscope.data.labels import LabelMap, save_label_map
from relscope.data.model import save_weights
from relscope.engine import attribution as attribute_module

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    result.text = " ".join(result.output.split())
    return result


def test_attribute_interrupted_and_resumed_then_analyze_project_validate(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    images = (rng.random((96, 1, 28, 28)) * 0.2).astype(np.float32)
    labels = np.arange(96) % 2
    images = plant_artifact(images, np.flatnonzero(labels == 1)[::4], size=4, value=1.0)
    write_hdf5_dataset(tmp_path / "data.h5", images, labels)
    save_label_map(LabelMap.from_names(["even", "odd"]), tmp_path / "labels.json")
    torch.manual_seed(0)
    save_weights(mnist_cnn(num_classes=2), tmp_path / "cnn.pt")
    attribute = ["attribute", tmp_path / "data.h5", "--model", "relscope.data.builtin:mnist_cnn",
                 "--model-param", "num_classes=2", "--weights", tmp_path / "cnn.pt",
                 "--method", "epsilon_plus",
                 "--out", tmp_path / "attribution.h5", "--batch-size", 8,
                 "--segment-rows", 16, "--device", "cpu"]  # fmt: skip

    real_loader = attribute_module.DataLoader
    batches = []

    def interrupting_loader(*args, **kwargs):
        for batch in real_loader(*args, **kwargs):
            if len(batches) == 5:
                raise KeyboardInterrupt
            batches.append(len(batch[0]))
            yield batch

    monkeypatch.setattr(attribute_module, "DataLoader", interrupting_loader)
    interrupted = runner.invoke(app, list(map(str, attribute)))
    assert interrupted.exit_code == 130, interrupted.output
    assert not (tmp_path / "attribution.h5").exists()
    monkeypatch.setattr(attribute_module, "DataLoader", real_loader)
    resumed = invoke(*attribute)
    assert resumed.exit_code == 0, resumed.output
    assert "96 samples, 32 kept from an earlier run" in resumed.text  # 5 batches: 2 segments
    with AttributionDatabase(tmp_path / "attribution.h5") as database:
        np.testing.assert_array_equal(database.indices, np.arange(96))
        assert database.metadata["method"]["name"] == "epsilon_plus"

    pipeline = tmp_path / "spray.yaml"
    pipeline.write_text(
        spray_config(
            SpRAy(
                embedding=SpectralEmbedding(n_eigval=8),
                kmeans=SpectralKMeans(n_clusters=(2, 3)),
                tsne=PCA(n_components=2),
                umap=None,
            )
        )
    )
    analyzed = invoke("analyze", tmp_path / "attribution.h5", "--out", tmp_path / "analysis.h5",
                      "--pipeline", pipeline, "--cache", tmp_path / "cache.h5")  # fmt: skip
    assert analyzed.exit_code == 0, analyzed.output
    with AnalysisDatabase(tmp_path / "analysis.h5") as analysis:
        assert analysis.categories("spray") == ["00000000", "00000001"]
        category = analysis.category("00000001", "spray")
        np.testing.assert_array_equal(np.sort(category.index), np.flatnonzero(labels == 1))

    project = invoke("project", "--out", tmp_path / "project.yaml", "--name", "tiny",
                     "--model", "relscope.data.builtin:mnist_cnn",
                     "--model-weights", tmp_path / "cnn.pt",
                     "--label-map", tmp_path / "labels.json", "--dataset", tmp_path / "data.h5",
                     "--attribution", tmp_path / "attribution.h5",
                     "--analysis", tmp_path / "analysis.h5")  # fmt: skip
    assert project.exit_code == 0, project.output
    validated = invoke("validate", tmp_path / "project.yaml")
    assert validated.exit_code == 0, validated.output
    assert "valid (0 errors, 0 warnings)" in validated.text
    assert "epsilon_plus" in validated.text
