"""``relscope analyze``: SpRAy per class into an analysis database, resumable, ranked."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from relscope.analysis import SpRAy, spray_config
from relscope.analysis.processors import LLE, PCA
from relscope.cli.main import app
from relscope.data.analysis_db import AnalysisDatabase
from relscope.data.attribution_db import AttributionWriter
from relscope.engine import analysis as analyze_module

runner = CliRunner()
SIZE = 16


def blob(cy: float, cx: float, sigma: float) -> np.ndarray:
    yy, xx = np.mgrid[:SIZE, :SIZE]
    return np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))


def attributions(tmp_path):
    """Class 1 holds two strategies (object 80 % / corner patch 20 %), classes 0 and 2 one,
    class 3 too few samples for the pipeline."""
    rng = np.random.default_rng(0)
    maps, labels = [], []
    for label, count in ((0, 60), (1, 60), (2, 60), (3, 5)):
        for i in range(count):
            corner = label == 1 and i % 5 == 0
            base = blob(2, 2, 1.5) if corner else blob(8, 8, 3.0)
            maps.append(base * rng.uniform(0.5, 1.5) + rng.uniform(0, 0.05, (SIZE, SIZE)))
            labels.append(label)
    maps = np.stack(maps)[:, None].astype(np.float32)
    labels = np.asarray(labels)
    order = rng.permutation(len(labels))  # classes interleaved in the file
    path = tmp_path / "attribution.h5"
    with AttributionWriter(path, np.arange(len(labels)), shape=(1, SIZE, SIZE), num_outputs=4) as w:
        w.add(maps[order], labels[order], np.zeros((len(labels), 4), np.float32))
    return path, labels[order]


@pytest.fixture
def setup(tmp_path):
    path, labels = attributions(tmp_path)
    config = tmp_path / "spray.yaml"
    # PCA instead of t-SNE keeps the test fast; the YAML path is exercised on the way.
    config.write_text(spray_config(SpRAy(tsne=PCA(n_components=2), umap=None)))
    return tmp_path, path, labels, config


def run(*args):
    return runner.invoke(app, ["analyze", *map(str, args)], catch_exceptions=False)


def test_a_pipeline_configuration_can_add_an_lle_embedding(setup):
    tmp_path, path, _, _ = setup
    config = tmp_path / "spray-lle.yaml"
    pipeline = SpRAy(tsne=None, umap=None, lle=LLE(n_neighbors=8, eigen_solver="dense"))
    config.write_text(spray_config(pipeline))
    out = tmp_path / "analysis.h5"
    result = run(path, "--out", out, "--pipeline", config, "--categories", "1")
    assert result.exit_code == 0, result.output
    with AnalysisDatabase(out) as database:
        category = database.category("00000001", "spray")
        assert set(category.embeddings) == {"spectral", "lle"}
        assert category.embeddings["lle"].data.shape == (60, 2)


def test_analyze_writes_every_category_and_ranks_the_planted_one_first(setup):
    tmp_path, path, labels, config = setup
    out = tmp_path / "analysis.h5"
    result = run(path, "--out", out, "--pipeline", config)
    assert result.exit_code == 0, result.output
    with AnalysisDatabase(out) as database:
        assert database.categories("spray") == ["00000000", "00000001", "00000002"]
        taus = {}
        for name in database.categories("spray"):
            category = database.category(name, "spray")
            label = int(name)
            assert np.array_equal(np.sort(category.index), np.flatnonzero(labels == label))
            assert category.embeddings["spectral"].eigenvalue is not None
            assert category.embeddings["tsne"].data.shape == (60, 2)
            assert category.clusterings["kmeans-02"].labels.shape == (60,)
            taus[name] = category.scores["tau"]
    assert max(taus, key=taus.get) == "00000001"
    lines = result.output.splitlines()
    ranked = [line for line in lines if "0000000" in line]
    assert "00000001" in ranked[0]
    assert any("00000003" in line and "skipped" in line for line in lines)


def test_interrupted_run_keeps_finished_categories(setup, monkeypatch):
    tmp_path, path, _, config = setup
    out = tmp_path / "analysis.h5"
    calls = []
    real = analyze_module._run

    def failing(source, rows, text, cache):
        calls.append(len(rows))
        if len(calls) == 2:
            raise RuntimeError("power cut")
        return real(source, rows, text, cache)

    monkeypatch.setattr(analyze_module, "_run", failing)
    with pytest.raises(RuntimeError, match="power cut"):
        run(path, "--out", out, "--pipeline", config)
    assert not out.exists()  # nothing half-merged
    calls.clear()
    monkeypatch.setattr(analyze_module, "_run", lambda *a: calls.append(1) or real(*a))
    result = run(path, "--out", out, "--pipeline", config)
    assert result.exit_code == 0, result.output
    assert len(calls) == 3  # classes 1, 2 and the too small 3; class 0 was kept
    with AnalysisDatabase(out) as database:
        assert database.categories("spray") == ["00000000", "00000001", "00000002"]


def test_finished_analysis_is_extended_with_the_missing_categories(setup, monkeypatch):
    tmp_path, path, _, config = setup
    out = tmp_path / "analysis.h5"
    assert run(path, "--out", out, "--pipeline", config, "--categories", "0").exit_code == 0
    calls = []
    real = analyze_module._run

    def counting(source, rows, text, cache):
        calls.append(len(rows))
        return real(source, rows, text, cache)

    monkeypatch.setattr(analyze_module, "_run", counting)
    result = run(path, "--out", out, "--pipeline", config, "--categories", "0,1,2")
    assert result.exit_code == 0, result.output
    assert calls == [60, 60]  # class 0 was done before
    with AnalysisDatabase(out) as database:
        assert database.categories("spray") == ["00000000", "00000001", "00000002"]
    calls.clear()
    assert run(path, "--out", out, "--pipeline", config, "--categories", "1").exit_code == 0
    assert calls == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--categories", "7"], "class 7 has no attributions"),
        (["--categories", "x"], "'x' is not a class index"),
        (["--pipeline", "nope.yaml"], "nope.yaml: no such pipeline configuration"),
    ],
)
def test_bad_input_is_one_line(setup, args, message):
    tmp_path, path, _, _ = setup
    result = runner.invoke(app, ["analyze", str(path), "--out", str(tmp_path / "a.h5"), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1


def test_another_pipeline_does_not_mix_into_an_analysis(setup):
    tmp_path, path, _, config = setup
    out = tmp_path / "analysis.h5"
    assert run(path, "--out", out, "--pipeline", config, "--categories", "0").exit_code == 0
    other = tmp_path / "other.yaml"
    other.write_text(spray_config(SpRAy(tsne=PCA(n_components=3), umap=None)))
    result = runner.invoke(app, ["analyze", str(path), "--out", str(out), "--pipeline", str(other)])
    assert result.exit_code == 2
    assert "made with another pipeline" in result.output
