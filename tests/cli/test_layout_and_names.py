"""`relscope analyze` writes the ViRelAy layout unless asked for the nested one, and the
tables of analyze and validate name each category's class beside its key."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from relscope.analysis import SpRAy, spray_config
from relscope.analysis.processors import PCA, SpectralEmbedding
from relscope.analysis.spray import SpectralKMeans
from relscope.cli.main import app
from relscope.data.analysis_db import AnalysisDatabase
from relscope.data.attribution_db import AttributionWriter
from relscope.data.labels import LabelMap, save_label_map
from support.projects import make_project_folder

runner = CliRunner()
CLASSES = ("cat", "dog", "horse")


def invoke(*args: object):
    result = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "250"})
    result.text = " ".join(result.output.split())
    return result


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Attributions of three classes (25 samples each), a label map and a fast pipeline."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 25)
    attribution = tmp_path / "attribution.h5"
    with AttributionWriter(attribution, np.arange(75), shape=(1, 8, 8), num_outputs=3) as writer:
        writer.add(rng.random((75, 1, 8, 8)), labels, np.zeros((75, 3), np.float32))
    label_map = save_label_map(LabelMap.from_names(CLASSES), tmp_path / "labels.json")
    pipeline = tmp_path / "spray.yaml"
    spray = SpRAy(embedding=SpectralEmbedding(n_eigval=5), kmeans=SpectralKMeans(n_clusters=(2,)),
                  tsne=PCA(n_components=2), umap=None)  # fmt: skip
    pipeline.write_text(spray_config(spray))
    return attribution, label_map, pipeline


def test_analyze_writes_one_analysis_per_file_and_names_the_classes(inputs, tmp_path):
    attribution, label_map, pipeline = inputs
    out = tmp_path / "analysis.h5"
    result = invoke("analyze", attribution, "--out", out, "--pipeline", pipeline,
                    "--label-map", label_map)  # fmt: skip
    assert result.exit_code == 0, result.output
    for key, name in zip(("00000000", "00000001", "00000002"), CLASSES, strict=True):
        assert f"{key} ({name})" in result.text
    with h5py.File(out, "r") as handle:  # what ViRelAy reads: categories at the top
        assert sorted(handle.keys()) == ["00000000", "00000001", "00000002"]
        assert handle.attrs["analysis"] == "spray"
    # Another analysis goes to another file; this one holds a single analysis.
    refused = invoke("analyze", attribution, "--out", out, "--pipeline", pipeline,
                     "--name", "spray_b")  # fmt: skip
    assert refused.exit_code == 2
    assert (
        "holds the analysis 'spray'; a file in the ViRelAy layout holds one analysis, so "
        "choose another --out" in refused.text
    )
    assert len(refused.output.strip().splitlines()) == 1
    plain = invoke("analyze", attribution, "--out", out, "--pipeline", pipeline)
    assert plain.exit_code == 0, plain.output
    assert "00000001" in plain.text and "(dog)" not in plain.text  # no label map given


def test_the_nested_layout_only_on_request(inputs, tmp_path):
    attribution, _, pipeline = inputs
    out = tmp_path / "nested.h5"
    for name in ("spray", "spray_b"):
        result = invoke("analyze", attribution, "--out", out, "--pipeline", pipeline,
                        "--name", name, "--layout", "nested", "--categories", "0")  # fmt: skip
        assert result.exit_code == 0, result.output
    with AnalysisDatabase(out) as database:
        assert (database.layout, database.analyses) == ("nested", ["spray", "spray_b"])
    refused = invoke("analyze", attribution, "--out", out, "--pipeline", pipeline)
    assert refused.exit_code == 2
    assert "holds the analysis 'spray_b'" in refused.text
    assert "(or --layout nested to add to it)" in refused.text
    bad = invoke("analyze", attribution, "--out", out, "--layout", "flat")
    assert bad.exit_code == 2
    assert "--layout must be one of virelay, nested, got 'flat'" in bad.text


def test_a_nested_file_of_one_analysis_is_rewritten_in_the_virelay_layout(inputs, tmp_path):
    attribution, _, pipeline = inputs
    out = tmp_path / "analysis.h5"
    first = invoke("analyze", attribution, "--out", out, "--pipeline", pipeline,
                   "--layout", "nested", "--categories", "0")  # fmt: skip
    assert first.exit_code == 0, first.output
    with AnalysisDatabase(out) as database:
        kept = database.category("00000000", "spray")
    second = invoke("analyze", attribution, "--out", out, "--pipeline", pipeline)
    assert second.exit_code == 0, second.output
    with AnalysisDatabase(out) as database:
        assert database.layout == "virelay"
        assert database.categories("spray") == ["00000000", "00000001", "00000002"]
        again = database.category("00000000", "spray")  # carried over, not recomputed
    np.testing.assert_array_equal(
        again.embeddings["spectral"].data, kept.embeddings["spectral"].data
    )


def test_validate_names_the_classes_of_the_categories(tmp_path):
    project = make_project_folder(tmp_path)
    with h5py.File(tmp_path / "analysis.h5", "a") as handle:
        handle["00000001/index"][0] = 99  # a sample without an attribution
    result = invoke("validate", project)
    assert result.exit_code == 1, result.output
    assert "3 categories in analysis.h5: 00000000 (cat), 00000001 (dog), 00000002 (horse)" in (
        result.text
    )
    assert "analyses[0] analysis.h5 00000001 (dog) index" in result.text
    assert "ViRelAy 0.6.1 opens it" in result.text
