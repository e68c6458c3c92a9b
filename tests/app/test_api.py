"""The HTTP API: every endpoint's answer against the project files, and 4xx for bad input."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from relscope.app import create_app
from relscope.data.analysis_db import AnalysisDatabase
from relscope.data.attribution_db import AttributionSet
from relscope.data.dataset import HDF5Dataset
from relscope.render import overlay
from support.projects import CLASSES, make_project_folder

with warnings.catch_warnings():
    # Starlette's note that a later httpx major version is preferred.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    project = make_project_folder(root)
    client = TestClient(create_app([project]))
    return client, root


def test_projects_labels_and_ranked_categories(served):
    client, root = served
    (info,) = client.get("/api/projects").json()
    assert info["id"] == 0 and info["analyses"] == ["spray"]
    assert info["dataset"]["samples"] == 36
    assert info["attribution"] == {"method": "epsilon", "strategy": "true_label"}
    labels = client.get("/api/projects/0/labels").json()
    assert [label["name"] for label in labels] == list(CLASSES)
    ranked = client.get("/api/projects/0/analyses/spray/categories").json()
    with AnalysisDatabase(root / "analysis.h5") as database:
        taus = {k: database.category(k, "spray").scores["tau"] for k in database.categories()}
        sizes = {k: database.category(k, "spray").size for k in database.categories()}
    assert [row["name"] for row in ranked] == sorted(taus, key=lambda k: -taus[k])
    for row in ranked:
        assert row["scores"]["tau"] == pytest.approx(taus[row["name"]])
        assert row["size"] == sizes[row["name"]]
        assert row["label_name"] == CLASSES[row["label_index"]]


def test_category_embedding_and_clustering_match_the_file(served):
    client, root = served
    with AnalysisDatabase(root / "analysis.h5") as database:
        category = database.category("00000001", "spray")
    detail = client.get("/api/projects/0/analyses/spray/categories/00000001").json()
    assert detail["index"] == category.index.tolist()
    spectral = next(e for e in detail["embeddings"] if e["name"] == "spectral")
    assert spectral["dims"] == category.embeddings["spectral"].data.shape[1]
    np.testing.assert_allclose(spectral["eigenvalues"], category.embeddings["spectral"].eigenvalue)
    clusters = {c["name"]: c for c in detail["clusterings"]}
    name = next(iter(category.clusterings))
    labels = category.clusterings[name].labels
    assert sum(c["size"] for c in clusters[name]["clusters"]) == labels.size

    base = "/api/projects/0/analyses/spray/categories/00000001"
    points = client.get(f"{base}/embeddings/spectral?dims=2,0").json()
    data = category.embeddings["spectral"].data
    np.testing.assert_allclose(points["points"], data[:, [2, 0]].T, atol=1e-5)
    binary = client.get(f"{base}/embeddings/spectral?dims=1,3&format=binary")
    assert binary.headers["x-count"] == str(len(data)) and binary.headers["x-dims"] == "2"
    decoded = np.frombuffer(binary.content, dtype="<f4").reshape(-1, 2)
    np.testing.assert_allclose(decoded, data[:, [1, 3]], rtol=1e-6)
    assert client.get(f"{base}/clusterings/{name}").json()["labels"] == labels.tolist()
    raw = client.get(f"{base}/clusterings/{name}?format=binary").content
    assert np.frombuffer(raw, dtype="<i4").tolist() == labels.tolist()


def test_sample_labels_predictions_image_and_heatmap(served):
    client, root = served
    with HDF5Dataset(root / "dataset.h5") as dataset:
        image = dataset.sample(7).data
        label = dataset.sample(7).label
    detail = client.get("/api/projects/0/samples/7").json()
    assert detail["labels"] == [{"index": label, "name": CLASSES[label]}]
    sources = sorted(root.glob("attribution-*.h5"))
    with AttributionSet(sources) as attributions:
        record = attributions.get(7)
    assert detail["prediction"][0]["index"] == int(np.argmax(record.prediction))
    png = Image.open(io.BytesIO(client.get("/api/projects/0/samples/7/image.png").content))
    expected = np.clip(np.rint(np.moveaxis(image, 0, -1) * 255), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(png), expected)
    heat = Image.open(io.BytesIO(client.get("/api/projects/0/samples/7/heatmap.png").content))
    assert heat.mode == "P" and heat.size == (8, 8)
    maps = {c["name"]: c["palette"] for c in client.get("/api/colormaps").json()}
    assert len(maps["bwr"]) == 256 and all(len(colour) == 6 for colour in maps["bwr"])


def test_overlay_equals_the_library_overlay_of_the_stored_rows(served):
    client, root = served
    with HDF5Dataset(root / "dataset.h5") as dataset:
        image = dataset.sample(4).data
    with AttributionSet(sorted(root.glob("attribution-*.h5"))) as attributions:
        relevance = attributions.get(4).attribution
    answer = client.get("/api/projects/0/samples/4/overlay.png?cmap=coldnhot&alpha=0.5")
    expected = overlay(relevance, image, cmap="coldnhot", alpha=0.5, value_range=(0.0, 1.0))
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(answer.content))), expected)
    assert client.get("/api/projects/0/samples/4/overlay.png?alpha=2").status_code == 422


def test_sample_pages_follow_the_selection_order(served):
    client, root = served
    with HDF5Dataset(root / "dataset.h5") as dataset:
        labels = dataset.labels()
    selection = [30, 2, 17, 5, 11]
    page = client.post(
        "/api/projects/0/samples/page", json={"indices": selection, "offset": 1, "limit": 3}
    ).json()
    assert page["total"] == 5 and page["offset"] == 1
    assert [s["index"] for s in page["samples"]] == [2, 17, 5]
    assert [s["labels"] for s in page["samples"]] == [[int(labels[i])] for i in (2, 17, 5)]
    with AttributionSet(sorted(root.glob("attribution-*.h5"))) as attributions:
        predicted = [int(np.argmax(attributions.get(i).prediction)) for i in (2, 17, 5)]
    assert [s["predicted"] for s in page["samples"]] == predicted
    for body, text in (
        ({"indices": [1, 36]}, "sample 36 is out of range 0..35"),
        ({"indices": [-1]}, "greater than or equal to 0"),
        ({"indices": [1], "limit": 0}, "greater than or equal to 1"),
        ({"indices": "1,2"}, "valid list"),
    ):
        answer = client.post("/api/projects/0/samples/page", json=body)
        assert answer.status_code == 422 and text in answer.text, answer.text


@pytest.mark.parametrize(
    ("url", "status", "text"),
    [
        ("/api/projects/1/labels", 404, "no project 1"),
        ("/api/projects/-1/labels", 422, "greater than or equal to 0"),
        ("/api/projects/x/labels", 422, "valid integer"),
        ("/api/projects/0/analyses/nope/categories", 404, "unknown analysis 'nope'"),
        ("/api/projects/0/analyses/spray/categories/zz", 404, "unknown category 'zz'"),
        ("/api/projects/0/analyses/spray/categories/00000001/embeddings/umap", 404,
         "unknown embedding 'umap'"),
        ("/api/projects/0/analyses/spray/categories/00000001/embeddings/spectral?dims=0,9", 422,
         "dims must be 1 to 3 dimensions"),
        ("/api/projects/0/analyses/spray/categories/00000001/embeddings/spectral?dims=a", 422,
         "comma-separated integers"),
        ("/api/projects/0/analyses/spray/categories/00000001/embeddings/spectral?format=xml", 422,
         "json"),
        ("/api/projects/0/analyses/spray/categories/00000001/clusterings/none", 404,
         "unknown clustering"),
        ("/api/projects/0/samples/36", 404, "out of range 0..35"),
        ("/api/projects/0/samples/36/image.png", 404, "out of range"),
        ("/api/projects/0/samples/3/heatmap.png?cmap=nope", 422, "unknown colour map"),
        ("/api/projects/0/analyses/..%2F..%2Fetc%2Fpasswd/categories", 404, ""),
        ("/api/projects/0/analyses/spray/categories/..%5C..%5Cx", 422, "pattern"),
    ],
)  # fmt: skip
def test_bad_parameters_get_4xx_with_a_reason(served, url, status, text):
    client, _ = served
    answer = client.get(url)
    assert answer.status_code == status, answer.text
    assert text in answer.text


def test_openapi_schema_lists_every_endpoint(served):
    client, _ = served
    paths = client.get("/api/openapi.json").json()["paths"]
    assert {
        "/api/projects", "/api/projects/{project}/labels", "/api/colormaps",
        "/api/projects/{project}/samples/{index}/heatmap.png",
        "/api/projects/{project}/analyses/{analysis}/categories/{category}/embeddings/{embedding}",
    } <= set(paths)  # fmt: skip


@pytest.mark.parametrize(
    ("values", "shown"),
    [
        ([0.0, 0.25, 1.0], [0.0, 0.25, 1.0]),  # already in [0, 1]
        ([0.0, 51.0, 255.0], [0.0, 0.2, 1.0]),  # 8-bit values stored as floats
        ([-2.0, 0.0, 2.0], [0.0, 0.5, 1.0]),  # normalized input: min-max
        ([0.0, 0.75, 1.5], [0.0, 0.5, 1.0]),  # a little past 1: min-max, not 8-bit
        ([-1.0, -1.0, -1.0], [0.0, 0.0, 0.0]),  # constant outside [0, 1]
    ],
)
def test_image_values_are_brought_to_the_unit_range(values, shown):
    from relscope.render import unit_image

    np.testing.assert_allclose(unit_image(np.array(values)), shown)
