"""The HTTP API over projects written the way ViRelAy's own example scripts write them.

Expected values come from the raw files (h5py, json, PIL), never from relscope's readers.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from urllib.parse import quote

import h5py
import numpy as np
import pytest
from PIL import Image

from relscope.app import create_app
from relscope.app.store import category_label
from relscope.data.analysis_db import CategoryAnalysis
from relscope.data.labels import load_label_map
from relscope.render import overlay
from support.projects import CLASSES, make_project_folder
from support.virelay_project import ANALYSIS, HEIGHT, WIDTH, make_virelay_project, word_net_id

with warnings.catch_warnings():
    # Starlette's note that a later httpx major version is preferred.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

N = 30
BASE = f"/api/projects/0/analyses/{quote(ANALYSIS)}"
CLUSTERINGS = [
    "agglomerative-02", "agglomerative-03", "dbscan-eps=0.2", "dbscan-eps=0.3", "hdbscan",
    "kmeans-02", "kmeans-03",
]  # fmt: skip


class Raw:
    """What the ViRelAy-style files hold, read with h5py, json and PIL only."""

    def __init__(self, project: Path, kind: str) -> None:
        root = project.parent
        self.kind = kind
        self.label_map = json.loads((root / "label-map.json").read_text(encoding="utf-8"))
        with h5py.File(root / "attribution.h5", "r") as handle:
            self.attribution = handle["attribution"][()]
            self.prediction = handle["prediction"][()]
        self.categories: dict[str, dict] = {}
        with h5py.File(root / "analysis.h5", "r") as handle:
            for name, group in handle.items():
                self.categories[name] = {"index": group["index"][()]}
                for sub in ("embedding", "cluster"):
                    items = group[sub].items()
                    self.categories[name][sub] = {k: (v[()], dict(v.attrs)) for k, v in items}
        if kind == "hdf5":
            with h5py.File(root / "input.h5", "r") as handle:
                self.images = handle["data"][()]
                self.labels = handle["label"][()].astype(int)
        else:
            files = sorted((root / "images").glob("*/*.png"))
            pixels = [np.asarray(Image.open(file)) for file in files]
            self.images = np.stack([p.transpose(2, 0, 1) / 255.0 for p in pixels])
            wnids = {entry["word_net_id"]: entry["index"] for entry in self.label_map}
            self.labels = np.array([wnids[file.parent.name] for file in files])

    def pixels(self, index: int) -> np.ndarray:
        """The PNG pixels ``H x W x 3`` of a sample (its values lie in [0, 1])."""
        scaled = np.rint(np.moveaxis(self.images[index].astype(np.float64), 0, -1) * 255.0)
        return np.clip(scaled, 0, 255).astype(np.uint8)


@pytest.fixture(
    scope="module", params=[("hdf5", True), ("image_directory", False)], ids=["hdf5", "images"]
)
def served(request, tmp_path_factory):
    kind, train_split = request.param
    project = make_virelay_project(
        tmp_path_factory.mktemp("virelay") / "test-project",
        n=N,
        dataset_type=kind,
        train_split=train_split,
    )
    with TestClient(create_app([project])) as client:
        yield client, Raw(project, kind)


def test_project_summary_and_label_map(served):
    client, raw = served
    assert client.get("/api/projects").json() == [
        {
            "id": 0,
            "name": "Test Project",
            "model": "No Model",
            "dataset": {"name": "Random Data", "type": raw.kind, "samples": N},
            "attribution": {"method": "Random Attribution", "strategy": "true_label"},
            "analyses": [ANALYSIS],
        }
    ]
    assert client.get("/api/projects/0/labels").json() == raw.label_map


def test_categories_are_named_by_word_net_id_and_resolved_to_classes(served):
    client, raw = served
    rows = client.get(f"{BASE}/categories").json()
    # No scores in ViRelAy files: the ranking falls back to the names.
    assert rows == [
        {
            "name": word_net_id(k),
            "label_index": k,
            "label_name": CLASSES[k],
            "size": len(raw.categories[word_net_id(k)]["index"]),
            "scores": {},
        }
        for k in range(len(CLASSES))
    ]
    assert [row["size"] for row in rows] == [10, 10, 10]


@pytest.mark.parametrize("k", [0, 2])
def test_category_detail_lists_embeddings_eigenvalues_and_cluster_sizes(served, k):
    client, raw = served
    name = word_net_id(k)
    stored = raw.categories[name]
    detail = client.get(f"{BASE}/categories/{name}").json()
    assert detail["name"] == name and detail["size"] == 10 and detail["scores"] == {}
    assert detail["index"] == stored["index"].tolist()
    np.testing.assert_array_equal(raw.labels[detail["index"]], k)
    spectral, attrs = stored["embedding"]["spectral"]
    assert detail["embeddings"] == [
        {
            "name": "spectral",
            "dims": spectral.shape[1],
            "base": None,
            "eigenvalues": attrs["eigenvalue"].tolist(),
        },
        {"name": "tsne", "dims": 2, "base": "spectral", "eigenvalues": None},
        {"name": "umap", "dims": 2, "base": "spectral", "eigenvalues": None},
    ]
    expected = []
    for clustering in CLUSTERINGS:
        labels, attrs = stored["cluster"][clustering]
        values, counts = np.unique(labels, return_counts=True)
        sizes = [{"label": int(v), "size": int(c)} for v, c in zip(values, counts, strict=True)]
        expected.append({"name": clustering, "k": attrs.get("k"), "clusters": sizes})
    # The per-sample train_split flags that meta_analysis.py stores are not a clustering.
    assert detail["clusterings"] == expected
    assert {c["name"]: c["k"] for c in expected} == {
        "agglomerative-02": 2, "agglomerative-03": 3, "dbscan-eps=0.2": None,
        "dbscan-eps=0.3": None, "hdbscan": None, "kmeans-02": 2, "kmeans-03": 3,
    }  # fmt: skip
    assert ("train_split" in stored["cluster"]) == (raw.kind == "hdf5")


def test_embedding_points_as_json_and_binary(served):
    client, raw = served
    name = word_net_id(1)
    url = f"{BASE}/categories/{name}/embeddings"
    spectral = raw.categories[name]["embedding"]["spectral"][0]
    points = client.get(f"{url}/spectral?dims=3,0").json()
    assert points["count"] == 10
    np.testing.assert_allclose(points["points"], spectral[:, [3, 0]].T, atol=5e-6)
    answer = client.get(f"{url}/spectral?dims=0,2,1&format=binary")
    assert answer.headers["content-type"] == "application/octet-stream"
    assert (answer.headers["x-count"], answer.headers["x-dims"]) == ("10", "3")
    assert answer.content == np.ascontiguousarray(spectral[:, [0, 2, 1]], "<f4").tobytes()
    tsne = raw.categories[name]["embedding"]["tsne"][0]
    answer = client.get(f"{url}/tsne?format=binary")
    assert answer.content == np.ascontiguousarray(tsne, "<f4").tobytes()
    assert client.get(f"{url}/tsne?dims=2").status_code == 422


def test_clustering_labels_as_json_and_binary(served):
    client, raw = served
    name = word_net_id(2)
    url = f"{BASE}/categories/{name}/clusterings"
    for clustering in CLUSTERINGS:
        labels = raw.categories[name]["cluster"][clustering][0]
        assert client.get(f"{url}/{clustering}").json() == {
            "count": 10,
            "labels": labels.tolist(),
        }
        raw_bytes = client.get(f"{url}/{clustering}?format=binary").content
        assert raw_bytes == labels.astype("<i4").tobytes()
    missing = client.get(f"{url}/train_split")
    assert missing.status_code == 404 and "kmeans-02" in missing.json()["detail"]


@pytest.mark.parametrize("index", [0, 13, 29])
def test_sample_labels_and_top_predictions(served, index):
    client, raw = served
    label = int(raw.labels[index])
    assert label == index // 10
    scores = raw.prediction[index]
    order = np.argsort(-scores.astype(np.float64), kind="stable")
    assert client.get(f"/api/projects/0/samples/{index}").json() == {
        "index": index,
        "labels": [{"index": label, "name": CLASSES[label]}],
        "prediction": [
            {"index": int(i), "name": CLASSES[i], "score": float(scores[i])} for i in order
        ],
    }


@pytest.mark.parametrize("index", [4, 21])
def test_image_heatmap_and_overlay_pngs(served, index):
    client, raw = served
    image = Image.open(io.BytesIO(client.get(f"/api/projects/0/samples/{index}/image.png").content))
    assert image.mode == "RGB" and image.size == (WIDTH, HEIGHT)
    np.testing.assert_array_equal(np.asarray(image), raw.pixels(index))

    heat = client.get(f"/api/projects/0/samples/{index}/heatmap.png?cmap=coldnhot")
    heatmap = Image.open(io.BytesIO(heat.content))
    assert heatmap.mode == "P" and heatmap.size == (WIDTH, HEIGHT)
    # Indices: channel sum, 0.5 + 0.5 R / max|R|, to 0..255; palette: the colour map.
    relevance = raw.attribution[index].astype(np.float64).sum(axis=0)
    unit = 0.5 + 0.5 * (relevance / np.abs(relevance).max())
    np.testing.assert_array_equal(np.asarray(heatmap), np.floor(unit * 255.0 + 0.5))
    maps = {c["name"]: c["palette"] for c in client.get("/api/colormaps").json()}
    palette = bytes.fromhex("".join(maps["coldnhot"]))
    assert bytes(heatmap.getpalette()[: 3 * 256]) == palette

    answer = client.get(f"/api/projects/0/samples/{index}/overlay.png?alpha=0.25")
    picture = Image.open(io.BytesIO(answer.content))
    assert picture.mode == "RGB" and picture.size == (WIDTH, HEIGHT)
    expected = overlay(raw.attribution[index], raw.images[index], alpha=0.25, value_range=(0, 1))
    np.testing.assert_array_equal(np.asarray(picture), expected)


def test_sample_page_follows_the_selection(served):
    client, raw = served
    selection = [29, 0, 14, 3, 21]
    page = client.post(
        "/api/projects/0/samples/page", json={"indices": selection, "offset": 1, "limit": 3}
    ).json()
    assert page == {
        "total": 5,
        "offset": 1,
        "samples": [
            {
                "index": i,
                "labels": [int(raw.labels[i])],
                "predicted": int(np.argmax(raw.prediction[i])),
            }
            for i in (0, 14, 3)
        ],
    }
    answer = client.post("/api/projects/0/samples/page", json={"indices": [N]})
    assert answer.status_code == 422 and f"out of range 0..{N - 1}" in answer.text


def test_relscope_and_virelay_projects_in_one_app(tmp_path: Path):
    ours = make_project_folder(tmp_path / "relscope")
    theirs = make_virelay_project(tmp_path / "virelay", seed=3)
    raw = Raw(theirs, "hdf5")
    client = TestClient(create_app([ours, theirs]))
    projects = client.get("/api/projects").json()
    assert [(p["id"], p["name"], p["analyses"]) for p in projects] == [
        (0, "fixture", ["spray"]),
        (1, "Test Project", [ANALYSIS]),
    ]
    assert [p["dataset"]["samples"] for p in projects] == [36, N]

    virelay = f"/api/projects/1/analyses/{quote(ANALYSIS)}/categories"
    assert [row["name"] for row in client.get(virelay).json()] == [word_net_id(k) for k in range(3)]
    spray = client.get("/api/projects/0/analyses/spray/categories").json()
    assert sorted(row["name"] for row in spray) == ["00000000", "00000001", "00000002"]
    assert client.get("/api/projects/1/analyses/spray/categories").status_code == 404
    assert client.get(f"/api/projects/0/analyses/{quote(ANALYSIS)}/categories").status_code == 404

    detail = client.get(f"{virelay}/{word_net_id(1)}").json()
    assert detail["index"] == raw.categories[word_net_id(1)]["index"].tolist()
    sample = client.get("/api/projects/1/samples/17").json()
    assert sample["labels"] == [{"index": 1, "name": "dog"}]
    assert sample["prediction"][0]["index"] == int(np.argmax(raw.prediction[17]))
    png = client.get("/api/projects/1/samples/17/image.png").content
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), raw.pixels(17))
    with h5py.File(tmp_path / "relscope" / "dataset.h5", "r") as handle:
        ours_label = int(handle["label"][17])
    first = client.get("/api/projects/0/samples/17").json()
    assert first["labels"] == [{"index": ours_label, "name": CLASSES[ours_label]}]


def test_test_project_label_map_with_index_word_net_ids(tmp_path: Path):
    """``make_test_data.py`` gives class ``i`` the WordNet id ``f"{i:08d}"``."""
    ids = [f"{i:08d}" for i in range(3)]
    project = make_virelay_project(tmp_path / "p", word_net_ids=ids)
    client = TestClient(create_app([project]))
    rows = client.get(f"{BASE}/categories").json()
    assert [(r["name"], r["label_index"], r["label_name"]) for r in rows] == [
        (ids[k], k, CLASSES[k]) for k in range(3)
    ]


def test_category_label_prefers_the_attribute_then_resolves_the_name(tmp_path: Path):
    project = make_virelay_project(tmp_path / "p")
    labels = load_label_map(project.parent / "label-map.json")

    def category(name: str, **attrs: object) -> CategoryAnalysis:
        return CategoryAnalysis(name, np.arange(2), attrs=attrs)

    assert category_label(labels, category(word_net_id(2))) == 2
    assert category_label(labels, category("00000001")) == 1  # %08d without a WordNet id
    assert category_label(labels, category("dog")) == 1
    assert category_label(labels, category(word_net_id(2), label_index=0)) == 0
    assert category_label(labels, category("n99999999")) is None
    assert category_label(labels, category("00000007")) is None
