"""``relscope run CONFIG``: one file drives attribute + analyze + project; reruns reuse work."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from relscope.analysis.processors import TSNE, KNNGraph
from relscope.cli.main import app
from relscope.data.analysis_db import AnalysisDatabase
from relscope.data.builtin import mnist_cnn
from relscope.data.check import check_project
from relscope.data.dataset import write_hdf5_dataset
from relscope.data.model import save_weights

runner = CliRunner()


@pytest.fixture
def config(tmp_path):
    rng = np.random.default_rng(2)
    images = rng.random((90, 1, 28, 28)).astype(np.float32)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    write_hdf5_dataset(inputs / "data.h5", images, np.arange(90) % 3)
    torch.manual_seed(0)
    save_weights(mnist_cnn(), inputs / "cnn.pt")
    body = {
        "project": {"folder": "out", "name": "run test"},
        "model": {"factory": "relscope.data.builtin:mnist_cnn", "weights": "inputs/cnn.pt"},
        "dataset": {"path": "inputs/data.h5"},
        "attribution": {"method": "epsilon_plus", "params": {"eps": 0.001}, "batch_size": 16},
        "analysis": {
            "set": {
                "embedding": {"n_eigval": 8},
                "kmeans": {"n_clusters": [2, 3]},
                "tsne": {"perplexity": 5.0, "max_iter": 250},
                "umap": None,
            }
        },
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(body))
    return path, body


def invoke(path):
    result = runner.invoke(app, ["run", str(path)], catch_exceptions=False)
    result.text = " ".join(result.output.split())
    return result


def counting(monkeypatch, cls):
    calls = []
    original = cls.function

    def wrapped(self, data):
        calls.append(1)
        return original(self, data)

    monkeypatch.setattr(cls, "function", wrapped)
    return calls


def test_one_config_writes_a_valid_project_and_reruns_reuse_the_unchanged_work(config, monkeypatch):
    path, body = config
    knn, tsne = counting(monkeypatch, KNNGraph), counting(monkeypatch, TSNE)
    first = invoke(path)
    assert first.exit_code == 0, first.output
    out = path.parent / "out"
    # Inputs outside the project folder are referenced through an allowed root.
    assert check_project(out / "project.yaml", allowed_roots=[path.parent / "inputs"]).ok
    assert (len(knn), len(tsne)) == (3, 3)
    with AnalysisDatabase(out / "analysis.h5") as analysis:
        assert analysis.layout == "virelay"  # one analysis per file, as ViRelAy reads it
        assert analysis.categories("spray") == ["00000000", "00000001", "00000002"]
        before = analysis.category("00000001", "spray")
    # Classes are named by their index here (no label map given); the names stand beside keys.
    assert "00000001 (1)" in first.text
    assert "ViRelAy 0.6.1 opens it" in first.text
    assert before.embeddings["tsne"].data.shape == (30, 2)
    stamp = (out / "attribution.h5").stat().st_mtime_ns

    # A changed t-SNE parameter: the attributions and every step before t-SNE are reused.
    knn.clear(), tsne.clear()
    body["analysis"]["set"]["tsne"]["perplexity"] = 6.0
    path.write_text(yaml.safe_dump(body))
    second = invoke(path)
    assert second.exit_code == 0, second.output
    assert "complete already" in second.text
    assert (out / "attribution.h5").stat().st_mtime_ns == stamp
    assert (len(knn), len(tsne)) == (0, 3)
    with AnalysisDatabase(out / "analysis.h5") as analysis:
        after = analysis.category("00000001", "spray")
        assert "perplexity: 6.0" in analysis.metadata["pipeline"]
    np.testing.assert_array_equal(
        after.embeddings["spectral"].data, before.embeddings["spectral"].data
    )
    assert not np.array_equal(after.embeddings["tsne"].data, before.embeddings["tsne"].data)

    # A changed attribution parameter: the attributions are made again.
    body["attribution"]["params"]["eps"] = 0.01
    path.write_text(yaml.safe_dump(body))
    third = invoke(path)
    assert third.exit_code == 0, third.output
    assert "attributing again" in third.text
    assert (out / "attribution.h5").stat().st_mtime_ns != stamp


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"extra": {}}, "unknown section\\(s\\) extra"),
        ({"model": {"factory": "relscope.data.builtin:mnist_cnn", "wieghts": "x"}},
         "unknown key\\(s\\) wieghts in 'model'"),
        ({"model": {}}, "model.factory is required"),
        ({"analysis": {"set": {"clusters": {"k": 2}}}}, "unknown task 'clusters'"),
        ({"analysis": {"set": {"tsne": {"perplexity": "high"}}}}, "perplexity"),
        ({"attribution": {"strategy": "best"}}, "attribution.strategy must be one of"),
        ({"dataset": {"path": "inputs/missing.h5"}}, "missing.h5"),
        ({"analysis": {"layout": "flat"}}, "analysis.layout must be one of virelay, nested"),
    ],
)  # fmt: skip
def test_bad_configurations_fail_in_one_line_before_any_work(config, change, message):
    path, body = config
    path.write_text(yaml.safe_dump({**body, **change}))
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert message.replace("\\", "") in text or __import__("re").search(message, text), text
    assert not (path.parent / "out" / "attribution.h5").exists()


def test_the_documented_example_configuration_is_valid():
    from pathlib import Path

    from relscope.engine.runner import _pipeline, load_run_config

    path = Path(__file__).resolve().parents[2] / "docs" / "run-config.yaml"
    config = load_run_config(path)
    assert config["model"]["factory"] == "relscope.data.builtin:mnist_cnn"
    pipeline = _pipeline(path.parent, config["analysis"])
    assert "umap: null" in pipeline and "perplexity: 30.0" in pipeline
