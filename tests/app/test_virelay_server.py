"""Projects relscope writes open in the real ViRelAy 0.6.1 server; what it cannot open, validate
warns about.

The server runs from its own environment (``support.virelay_server``); the tests skip only
when that environment is missing, which ``make test`` never leaves it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from relscope.analysis import SpRAy, spray_config
from relscope.analysis.processors import PCA, SpectralEmbedding
from relscope.analysis.spray import SpectralKMeans
from relscope.cli.main import app
from relscope.data.attribution_db import AttributionDatabase
from relscope.data.check import check_project
from relscope.data.dataset import write_hdf5_dataset
from relscope.data.labels import LabelMap, save_label_map
from relscope.data.project import load_project, save_project
from support.projects import make_project_folder
from support.virelay_server import VirelayStartError, missing_reason, running_virelay

pytestmark = pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))

runner = CliRunner()
CLASSES = ("cat", "dog", "horse")
PER_CLASS = 20
CHANNELS, HEIGHT, WIDTH = 3, 12, 16  # not square, so a swapped axis shows
COLOUR_MAPS = 8  # ViRelAy 0.6.1's


def invoke(*args: object) -> None:
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`relscope run` (attributions, the spray analysis, the project file), a second analysis
    by `relscope analyze` in its own file, and `relscope project` naming both: all defaults."""
    root = tmp_path_factory.mktemp("interop")
    folder = root / "project"
    folder.mkdir()
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(len(CLASSES)), PER_CLASS))
    images = rng.random((len(labels), CHANNELS, HEIGHT, WIDTH)).astype(np.float32)
    write_hdf5_dataset(folder / "dataset.h5", images, labels)
    save_label_map(LabelMap.from_names(CLASSES), folder / "labels.json")
    small = {"embedding": {"n_eigval": 6}, "kmeans": {"n_clusters": [2, 3]}, "umap": None,
             "tsne": {"perplexity": 5.0, "max_iter": 250}}  # fmt: skip
    config = {
        "project": {"folder": "project", "name": "relscope in ViRelAy"},
        "model": {"factory": "support.virelay_server:rgb_cnn"},
        "dataset": {"path": "project/dataset.h5", "label_map": "project/labels.json"},
        "attribution": {"method": "epsilon_plus", "batch_size": 32},
        "analysis": {"set": small},
    }
    (root / "run.yaml").write_text(yaml.safe_dump(config))
    invoke("run", root / "run.yaml")
    pipeline = root / "pca.yaml"
    pipeline.write_text(
        spray_config(
            SpRAy(
                embedding=SpectralEmbedding(n_eigval=6),
                kmeans=SpectralKMeans(n_clusters=(2, 4)),
                tsne=PCA(n_components=2),
                umap=None,
            )
        )
    )
    invoke("analyze", folder / "attribution.h5", "--out", folder / "analysis-pca.h5",
           "--name", "spray_pca", "--pipeline", pipeline)  # fmt: skip
    invoke("project", "--force", "--out", folder / "project.yaml", "--name", "relscope in ViRelAy",
           "--model", "support.virelay_server:rgb_cnn", "--label-map", folder / "labels.json",
           "--dataset", folder / "dataset.h5", "-a", folder / "attribution.h5",
           "--analysis", folder / "analysis.h5",
           "--analysis", folder / "analysis-pca.h5")  # fmt: skip
    return folder / "project.yaml"


def jpeg(answer) -> Image.Image:
    assert answer.status_code == 200, (answer.url, answer.text[:300])
    assert answer.headers["content-type"] == "image/jpeg"
    return Image.open(io.BytesIO(answer.content))


def test_every_virelay_endpoint_answers_for_a_relscope_project(project: Path) -> None:
    report = check_project(project)
    assert report.ok and not report.warnings, report.findings
    assert ("ViRelAy 0.6.1", "opens it") in report.facts
    with AttributionDatabase(project.parent / "attribution.h5") as database:
        attributed = [int(i) for i in database.indices]
    with running_virelay([project]) as client:
        projects = client.get("/api/projects")
        assert projects.status_code == 200
        assert [p["name"] for p in projects.json()] == ["relscope in ViRelAy"]
        answer = client.get("/api/projects/0")
        assert answer.status_code == 200, answer.text[:300]
        methods = answer.json()["analysisMethods"]
        # ViRelAy shows '_' as '-' and maps it back in its analysis URLs.
        assert sorted(m["name"] for m in methods) == ["spray", "spray-pca"]

        combinations = 0
        for method in methods:
            assert {c["name"] for c in method["categories"]} == {"00000000", "00000001", "00000002"}
            assert method["embeddings"] and method["clusterings"]
            for category in method["categories"]:
                for embedding in method["embeddings"]:
                    for clustering in method["clusterings"]:
                        answer = client.get(
                            f"/api/projects/0/analyses/{method['name']}",
                            params={"category": category["name"], "embedding": embedding,
                                    "clustering": clustering},
                        )  # fmt: skip
                        assert answer.status_code == 200, (answer.url, answer.text[:300])
                        points = answer.json()["embedding"]
                        assert len(points) == PER_CLASS
                        combinations += 1
        assert combinations >= 2 * 3 * 2 * 2

        for index in range(len(CLASSES) * PER_CLASS):
            sample = client.get(f"/api/projects/0/dataset/{index}")
            assert sample.status_code == 200, sample.text[:300]
            assert sample.json()["labels"][0]["name"] in CLASSES
            image = jpeg(client.get(sample.json()["url"]))
            assert (image.size, image.mode) == ((WIDTH, HEIGHT), "RGB")

        every = ",".join(map(str, attributed))
        for mode in ("input", "attribution", "overlay"):
            query = {"indices": every, "imageMode": mode}
            listed = client.get("/api/projects/0/attributions", params=query)
            assert listed.status_code == 200, listed.text[:300]
            assert [a["index"] for a in listed.json()] == attributed
        for index in attributed:
            answer = client.get(f"/api/projects/0/attributions/{index}")
            assert answer.status_code == 200, answer.text[:300]
            assert len(answer.json()["prediction"]) == len(CLASSES)
            for superimpose in ("False", "True"):
                url = f"/api/projects/0/attributions/{index}/heatmap"
                jpeg(client.get(url, params={"superimpose": superimpose}))
        # Every picture URL ViRelAy hands out, in every colour map, plain and superimposed.
        for mode in ("attribution", "overlay"):
            for index in attributed[:2]:
                answer = client.get(
                    f"/api/projects/0/attributions/{index}", params={"imageMode": mode}
                )
                urls = answer.json()["urls"]
                assert len(urls) == COLOUR_MAPS
                for url in urls.values():
                    assert jpeg(client.get(url)).size == (WIDTH, HEIGHT)
        assert client.get("/api/color-maps").status_code == 200


def _renamed(project: Path, name: str) -> Path:
    loaded = load_project(project)
    loaded.name = name
    return save_project(loaded, project)


def _warnings(project: Path) -> str:
    report = check_project(project)
    assert report.ok
    return " ".join(f"{w.where}: {w.message}" for w in report.warnings)


def test_what_validate_warns_about_fails_in_virelay(tmp_path: Path) -> None:
    # Nested layout: ViRelAy takes the analysis group for a category.
    nested = _renamed(make_project_folder(tmp_path / "nested", layout="nested"), "nested")
    assert "not this nested file" in _warnings(nested)
    # A '-' in the analysis name: ViRelAy looks up 'spray_abs' instead.
    dashed = make_project_folder(tmp_path / "dashed")
    with h5py.File(dashed.parent / "analysis.h5", "a") as handle:
        handle.attrs["analysis"] = "spray-abs"
    loaded = load_project(dashed)
    loaded.name, loaded.analyses[0].analysis_method = "dashed", "spray-abs"
    save_project(loaded, dashed)
    assert "never finds the analysis 'spray-abs'" in _warnings(dashed)
    # A category without an embedding the first category has.
    uneven = _renamed(make_project_folder(tmp_path / "uneven"), "uneven")
    with h5py.File(uneven.parent / "analysis.h5", "a") as handle:
        del handle["00000001/embedding/tsne"]
    assert "00000001 (dog) lacks tsne" in _warnings(uneven)
    good = _renamed(make_project_folder(tmp_path / "good"), "good")
    assert _warnings(good) == ""

    query = {"category": "00000001", "clustering": "kmeans-02", "embedding": "tsne"}
    with running_virelay([nested, dashed, uneven, good]) as client:
        names = [p["name"] for p in client.get("/api/projects").json()]
        assert names == ["nested", "dashed", "uneven", "good"]
        assert client.get("/api/projects/0").status_code == 500
        assert client.get("/api/projects/1").status_code == 200
        assert client.get("/api/projects/1/analyses/spray-abs", params=query).status_code == 404
        assert client.get("/api/projects/2/analyses/spray", params=query).status_code == 404
        assert client.get("/api/projects/3/analyses/spray", params=query).status_code == 200


def test_a_label_map_without_word_net_ids_stops_virelay(tmp_path: Path) -> None:
    project = make_project_folder(tmp_path)
    entries = json.loads((tmp_path / "labels.json").read_text())
    bare = [{"index": e["index"], "name": e["name"]} for e in entries]
    (tmp_path / "labels.json").write_text(json.dumps(bare))
    assert "lacking the word_net_id key ([0], [1], [2])" in _warnings(project)
    with pytest.raises(VirelayStartError, match="word_net_id"), running_virelay([project]):
        pass
