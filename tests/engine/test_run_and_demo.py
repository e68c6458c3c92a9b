"""``relscope.engine.run`` and ``relscope.engine.demo`` as a library: results returned,
parts reported through the progress callbacks, nothing printed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from relscope.data.builtin import mnist_cnn
from relscope.data.check import ProjectReport, check_project
from relscope.data.dataset import write_hdf5_dataset
from relscope.data.model import save_weights
from relscope.engine import (
    AnalysisSummary,
    AttributionRun,
    DemoResult,
    RunResult,
    demo,
    load_run_config,
    run,
    write_project,
)
from relscope.errors import ConfigError


@pytest.fixture
def config(tmp_path):
    rng = np.random.default_rng(2)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    write_hdf5_dataset(inputs / "data.h5", rng.random((60, 1, 28, 28), dtype=np.float32),
                       np.arange(60) % 3)  # fmt: skip
    torch.manual_seed(0)
    save_weights(mnist_cnn(), inputs / "cnn.pt")
    body = {
        "project": {"folder": "out", "name": "engine run"},
        "model": {"factory": "relscope.data.builtin:mnist_cnn", "weights": "inputs/cnn.pt"},
        "dataset": {"path": "inputs/data.h5"},
        "attribution": {"method": "epsilon_plus", "batch_size": 16, "device": "cpu"},
        "analysis": {
            "set": {
                "embedding": {"n_eigval": 8},
                "kmeans": {"n_clusters": [2, 3]},
                "tsne": None,
                "umap": None,
            }
        },
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_run_returns_and_reports_its_three_parts(config, recorder, capsys):
    result = run(config, progress=recorder)
    assert capsys.readouterr().out == ""
    out = config.parent / "out"
    assert isinstance(result, RunResult) and result.project == out / "project.yaml"
    assert check_project(result.project, allowed_roots=[config.parent / "inputs"]).ok
    assert [type(call[1]) for call in recorder.of("report")] == [
        AttributionRun,
        AnalysisSummary,
        ProjectReport,
    ]
    assert recorder.reports(AttributionRun) == [result.attribution]
    assert result.attribution.samples == 60 and result.report.ok
    assert recorder.of("start") == [("start", "attribute", 60, 0), ("start", "analyze", 3, 0)]
    assert recorder.advanced("attribute") == 60 and recorder.advanced("analyze") == 3
    assert recorder.of("finish") == [("finish", "attribute"), ("finish", "analyze")]
    assert sorted(name for name, _ in result.analysis.ranking) == [
        "00000000",
        "00000001",
        "00000002",
    ]
    assert any("--allow-root" in text for text in recorder.messages())
    # Again: the attributions are kept and every category is done.
    again = type(recorder)()
    second = run(config, progress=again)
    assert second.attribution.resumed == 60 and not again.of("start", "attribute")
    assert again.of("start", "analyze") == [("start", "analyze", 0, 0)]
    assert load_run_config(config)["project"]["name"] == "engine run"


def test_write_project_raises_instead_of_printing(tmp_path, capsys):
    labels = tmp_path / "labels.json"
    labels.write_text('{"0": "zero"}')
    write_hdf5_dataset(tmp_path / "d.h5", np.zeros((2, 1, 4, 4), np.float32), np.array([0, 0]))
    with pytest.raises(ConfigError, match="--up-sampling must be one of"):
        write_project(tmp_path / "p.yaml", name="p", model="m:f", label_map=labels,
                      dataset=tmp_path / "d.h5", up_sampling="sideways")  # fmt: skip
    assert not (tmp_path / "p.yaml").exists() and capsys.readouterr().out == ""


def test_demo_finds_the_artifact_and_reports_its_steps(tmp_path, recorder, capsys):
    result = demo(tmp_path / "demo", classes=[3, 8], per_class=60, epochs=2, umap=False,
                  tsne=False, progress=recorder)  # fmt: skip
    assert capsys.readouterr().out == ""
    assert isinstance(result, DemoResult) and result.project == tmp_path / "demo" / "project.yaml"
    assert check_project(result.project).ok
    assert result.poisoned_category == "00000003" and result.poisoned_samples == 18
    assert [name for name, _ in result.ranking].index("00000003") + 1 == result.poisoned_rank
    assert result.category_size == 60
    if result.artifact is not None:
        assert len(result.cluster_members) == result.artifact.size
    messages = recorder.messages()
    assert len(messages) == 4 and messages[0].startswith("task: 120 MNIST training digits")
    assert messages[-1] == "SpRAy per class"
    assert [type(call[1]) for call in recorder.of("report")] == [
        AttributionRun,
        AnalysisSummary,
        ProjectReport,
    ]
    assert recorder.of("start") == [("start", "attribute", 120, 0), ("start", "analyze", 2, 0)]
    with pytest.raises(ConfigError, match="--poisoned-class 4 is not among"):
        demo(tmp_path / "refused", classes=[3, 8], poisoned_class=4)
    _opens_in_the_designer(result.project)


def _opens_in_the_designer(project):
    """The demo project opens in the Designer with the demo CNN and its trained weights: the
    designer's prediction of a sample is the one the attribution run stored."""
    from fastapi.testclient import TestClient

    from relscope.app import create_app
    from relscope.data.attribution_db import AttributionSet

    client = TestClient(create_app([project]))
    (designer,) = client.get("/api/designer").json()
    assert designer["project"] == 0 and designer["problem"] is None
    assert client.get("/api/designer/0").json()["input_shape"] == [1, 28, 28]
    stored = AttributionSet(sorted(project.parent.glob("attribution*.h5")))
    for index in (0, 5):
        answer = client.post("/api/designer/0/predict", json={"input": {"sample": index}})
        assert answer.json()["predictions"][0]["index"] == int(
            stored.get(index).prediction.argmax()
        )
    explained = client.post(
        "/api/designer/0/explain", json={"input": {"sample": 0}, "config": "epsilon_plus_flat"}
    )
    assert explained.status_code == 200 and explained.json()["warnings"] == []
