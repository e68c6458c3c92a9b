"""``relscope.engine.analyze`` as a library: the same analysis as the command, progress in
categories, the same results on one process and on two."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from relscope.analysis import SpRAy, spray_config
from relscope.analysis.processors import PCA, SpectralEmbedding
from relscope.cli.main import app
from relscope.data.analysis_db import AnalysisDatabase
from relscope.engine import AnalysisSummary, LocalBackend, analyze

PIPELINE = spray_config(
    SpRAy(embedding=SpectralEmbedding(n_eigval=12), tsne=PCA(n_components=2), umap=None)
)
CATEGORIES = ["00000000", "00000001", "00000002"]


def contents(path):
    """Every category of analysis ``spray`` in ``path`` as plain arrays and numbers."""
    with AnalysisDatabase(path) as database:
        found = {}
        for key in database.categories("spray"):
            category = database.category(key, "spray")
            found[key] = {
                "index": np.asarray(category.index),
                **{f"e:{k}": np.asarray(e.data) for k, e in category.embeddings.items()},
                **{f"c:{k}": np.asarray(c.labels) for k, c in category.clusterings.items()},
                **{f"s:{k}": v for k, v in category.scores.items()},
            }
        return found, database.metadata.get("pipeline")


def assert_same(left, right):
    (a, pipeline_a), (b, pipeline_b) = contents(left), contents(right)
    assert pipeline_a == pipeline_b
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].keys() == b[key].keys(), key
        for name, value in a[key].items():
            np.testing.assert_array_equal(value, b[key][name], err_msg=f"{key} {name}")


def test_the_library_writes_what_the_command_writes(tmp_path, attribution_file, recorder):
    config = tmp_path / "pipeline.yaml"
    config.write_text(PIPELINE)
    command = tmp_path / "command.h5"
    result = CliRunner().invoke(
        app, ["analyze", str(attribution_file), "--out", str(command), "--pipeline", str(config)]
    )
    assert result.exit_code == 0, result.output
    summary = analyze(attribution_file, tmp_path / "library.h5", config=PIPELINE,
                      progress=recorder)  # fmt: skip
    assert_same(tmp_path / "library.h5", command)
    assert isinstance(summary, AnalysisSummary) and summary.path == tmp_path / "library.h5"
    assert sorted(name for name, _ in summary.ranking) == CATEGORIES
    assert summary.ranking[0][0] == "00000001"  # the category with two strategies
    assert [c.size for c in summary.categories if c.name == "00000001"] == [30]
    assert list(summary.skipped) == ["00000003"] and summary.skipped["00000003"][0] == 4
    assert summary.skipped["00000003"][1].startswith("skipped: ")
    # One task in categories: 4 to do (one of them skipped), advanced one by one.
    assert recorder.calls[0] == ("start", "analyze", 4, 0)
    assert recorder.of("advance") == [("advance", "analyze", 1)] * 4
    assert recorder.calls[-2:] == [("finish", "analyze"), ("report", summary)]


def test_a_rerun_has_only_the_missing_categories_to_do(tmp_path, attribution_file, recorder):
    out = tmp_path / "a.h5"
    analyze(attribution_file, out, config=PIPELINE, categories=[0])
    summary = analyze(attribution_file, out, config=PIPELINE, categories=[0, 2], progress=recorder)
    assert recorder.calls[0] == ("start", "analyze", 1, 0)
    assert recorder.advanced("analyze") == 1
    assert sorted(name for name, _ in summary.ranking) == ["00000000", "00000002"]


def test_two_processes_give_the_results_of_one(tmp_path, attribution_file, recorder):
    one = analyze(attribution_file, tmp_path / "one.h5", config=PIPELINE,
                  backend=LocalBackend(jobs=1))  # fmt: skip
    two = analyze(attribution_file, tmp_path / "two.h5", config=PIPELINE,
                  backend=LocalBackend(jobs=2), progress=recorder)  # fmt: skip
    assert_same(tmp_path / "one.h5", tmp_path / "two.h5")
    assert one.ranking == two.ranking and one.skipped == two.skipped
    assert recorder.advanced("analyze") == 4


def test_jobs_is_the_local_backend_when_none_is_given(tmp_path, attribution_file):
    analyze(attribution_file, tmp_path / "j.h5", config=PIPELINE, categories=[0, 1], jobs=2)
    assert contents(tmp_path / "j.h5")[0].keys() == {"00000000", "00000001"}


def test_errors_are_raised_not_printed(tmp_path, attribution_file, capsys):
    from relscope.errors import ConfigError

    with pytest.raises(ConfigError, match="class 7 has no attributions"):
        analyze(attribution_file, tmp_path / "e.h5", config=PIPELINE, categories=[7])
    assert capsys.readouterr().out == ""
