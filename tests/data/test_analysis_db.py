"""Analysis database: round trips, both layouts, ViRelAy compatibility, resume, malformed files."""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relscope._version import __version__
from relscope.data.analysis_db import (
    FORMAT,
    AnalysisDatabase,
    AnalysisWriter,
    CategoryAnalysis,
    Clustering,
    Embedding,
)
from relscope.errors import ConfigError, FormatError

# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------


def make_category(name: str, n: int, seed: int, *, eigen: int = 4) -> CategoryAnalysis:
    """A category shaped like relscope's SpRAy output: spectral + tsne, four clustering kinds."""
    rng = np.random.default_rng(seed)
    spectral = rng.normal(size=(n, eigen)).astype(np.float32)
    eigenvalue = np.sort(rng.uniform(0, 1, size=eigen)).astype(np.float32)
    tsne = rng.normal(size=(n, 2))
    dims = np.arange(eigen)
    clusterings = {
        "kmeans-02": Clustering(
            "kmeans-02", rng.integers(0, 2, n), "spectral", 2, {"n_init": 10, "seed": 0}, dims
        ),
        "kmeans-03": Clustering("kmeans-03", rng.integers(0, 3, n).astype(np.int32), "spectral", 3),
        "dbscan": Clustering(
            "dbscan", rng.integers(-1, 2, n), "spectral", None, {"eps": 0.3, "min_samples": 5}
        ),
        "hdbscan": Clustering(
            "hdbscan", rng.integers(-1, 3, n), "tsne", None, {}, np.array([0, 1])
        ),
        "agglomerative-05": Clustering(
            "agglomerative-05", rng.integers(0, 5, n), "spectral", 5, {"linkage": "ward"}, dims
        ),
    }
    return CategoryAnalysis(
        name,
        np.sort(rng.choice(10_000, size=n, replace=False)),
        {
            "spectral": Embedding("spectral", spectral, eigenvalue),
            "tsne": Embedding("tsne", tsne, None, "spectral", np.array([0, 1])),
        },
        clusterings,
        scores={"eigengap": float(rng.uniform()), "tau": 0.25},
        attrs={"label_index": seed, "label_name": f"class {seed}"},
    )


def assert_same(actual: CategoryAnalysis, expected: CategoryAnalysis) -> None:
    assert actual.name == expected.name
    np.testing.assert_array_equal(actual.index, expected.index)
    assert actual.index.dtype == np.uint32
    assert sorted(actual.embeddings) == sorted(expected.embeddings)
    for name, want in expected.embeddings.items():
        got = actual.embeddings[name]
        assert got.name == name
        np.testing.assert_array_equal(got.data, want.data)
        assert got.data.dtype == (want.data.dtype if want.data.dtype.kind == "f" else np.float64)
        for field in ("eigenvalue", "dims"):
            if getattr(want, field) is None:
                assert getattr(got, field) is None
            else:
                np.testing.assert_array_equal(getattr(got, field), getattr(want, field))
        assert got.base == want.base
    assert sorted(actual.clusterings) == sorted(expected.clusterings)
    for name, want in expected.clusterings.items():
        got = actual.clusterings[name]
        np.testing.assert_array_equal(got.labels, want.labels)
        assert got.labels.dtype == want.labels.dtype
        assert (got.embedding, got.k, got.params) == (want.embedding, want.k, want.params)
        if want.dims is None:
            assert got.dims is None
        else:
            np.testing.assert_array_equal(got.dims, want.dims)
    assert actual.scores == expected.scores
    assert sorted(actual.attrs) == sorted(expected.attrs)
    for key, value in expected.attrs.items():
        np.testing.assert_array_equal(actual.attrs[key], value)
    assert sorted(actual.extras) == sorted(expected.extras)
    for key, value in expected.extras.items():
        np.testing.assert_array_equal(actual.extras[key], value)


def dump(path: Path) -> dict[str, Any]:
    """Every object, dtype, value and attribute in a file, for comparing whole files."""
    content: dict[str, Any] = {}

    def attrs(obj: Any) -> dict[str, Any]:
        return {key: np.asarray(value).tolist() for key, value in sorted(obj.attrs.items())}

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            content[name] = (str(obj.dtype), obj[()].tolist(), attrs(obj))
        else:
            content[name] = ("group", attrs(obj))

    with h5py.File(path, "r") as handle:
        content["/"] = ("group", attrs(handle))
        handle.visititems(visit)
    return content


CATEGORIES = [make_category(f"{i:08d}", n, i) for i, n in enumerate((12, 7, 20))]


def write(path: Path, categories: list[CategoryAnalysis], **kwargs: Any) -> Path:
    with AnalysisWriter(path, **kwargs) as writer:
        for category in categories:
            writer.write(category)
    return path


# ------------------------------------------------------------------------------------------
# Round trips
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["nested", "virelay"])
def test_round_trip(tmp_path: Path, layout: str) -> None:
    path = write(
        tmp_path / "analysis.h5",
        CATEGORIES,
        analysis="spray",
        layout=layout,
        metadata={"model": "vgg16", "layer": None, "seed": 3},
    )
    assert not (tmp_path / "analysis.h5.parts").exists()
    with AnalysisDatabase(path) as database:
        assert database.layout == layout
        assert database.analyses == ["spray"]
        assert database.metadata == {"model": "vgg16", "layer": None, "seed": 3}
        assert database.categories() == ["00000000", "00000001", "00000002"]
        assert database.categories("spray") == database.categories()
        for expected in CATEGORIES:
            actual = database.category(expected.name, "spray")
            assert_same(actual, expected)
            actual.validate()
        assert database.embedding_names() == ["spectral", "tsne"]
        assert database.clustering_names(category="00000001") == [
            "agglomerative-05",
            "dbscan",
            "hdbscan",
            "kmeans-02",
            "kmeans-03",
        ]
        assert database.scores() == {c.name: c.scores for c in CATEGORIES}
    with h5py.File(path, "r") as handle:
        assert handle.attrs["format"] == FORMAT
        assert handle.attrs["layout"] == layout
        assert handle.attrs["relscope_version"] == __version__
        assert json.loads(handle.attrs["metadata"])["model"] == "vgg16"
        prefix = "/spray" if layout == "nested" else ""
        kmeans = handle[f"{prefix}/00000000/cluster/kmeans-02"]
        assert json.loads(kmeans.attrs["params"]) == {"n_init": 10, "seed": 0}
        assert kmeans.attrs["n_init"] == 10  # parameters are browsable as attributes too
        assert handle[f"{prefix}/00000000/score/eigengap"].shape == ()


def test_the_default_layout_is_virelay(tmp_path: Path) -> None:
    path = write(tmp_path / "a.h5", CATEGORIES[:1], analysis="spray")
    with AnalysisDatabase(path) as database:
        assert (database.layout, database.analyses) == ("virelay", ["spray"])
    with h5py.File(path, "r") as handle:
        assert list(handle.keys()) == ["00000000"]


def test_virelay_layout_matches_what_virelay_reads(tmp_path: Path) -> None:
    path = write(tmp_path / "a.h5", CATEGORIES, analysis="spray-abs", layout="virelay")
    with h5py.File(path, "r") as handle:
        # ViRelAy treats every top-level key as a category.
        assert sorted(handle.keys()) == [c.name for c in CATEGORIES]
        assert handle.attrs["analysis"] == "spray-abs"
        for category in CATEGORIES:
            group = handle[category.name]
            assert group["index"].dtype == np.uint32
            np.testing.assert_array_equal(group["index"][()], category.index)
            assert set(group["embedding"].keys()) == {"spectral", "tsne"}
            assert set(group["cluster"].keys()) >= {"kmeans-02", "dbscan", "hdbscan"}
            spectral = group["embedding"]["spectral"]
            assert spectral.dtype == np.float32 and spectral.shape == (category.size, 4)
            np.testing.assert_array_equal(
                spectral.attrs["eigenvalue"], category.embeddings["spectral"].eigenvalue
            )
            tsne = group["embedding"]["tsne"]
            assert tsne.shape == (category.size, 2)
            assert tsne.attrs["embedding"] == "spectral"
            # ViRelAy follows the base name to fetch its eigenvalues.
            base = group["embedding"][tsne.attrs["embedding"]]
            assert "eigenvalue" in base.attrs
            np.testing.assert_array_equal(tsne.attrs["index"], [0, 1])
            kmeans = group["cluster"]["kmeans-02"]
            assert kmeans.dtype.kind == "i" and kmeans.shape == (category.size,)
            assert kmeans.attrs["embedding"] == "spectral" and kmeans.attrs["k"] == 2
            np.testing.assert_array_equal(kmeans.attrs["index"], np.arange(4))
    with AnalysisDatabase(path) as database:
        assert database.analyses == ["spray-abs"]


def write_like_virelay_script(path: Path, *, analysis_attr: str | None = None) -> dict:
    """Write a file exactly as ViRelAy's example meta-analysis script does (plain h5py)."""
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, size=30)
    expected = {}
    h5py.File(path, "w").close()
    for class_index in (0, 1):
        indices = np.nonzero(labels == class_index)[0]
        n = len(indices)
        embedding = rng.normal(size=(n, 3))
        eigenvalues = np.array([0.1, 0.5, 0.9])
        kmeans = rng.integers(0, 2, n).astype(np.int32)
        dbscan = rng.integers(-1, 2, n)
        train = rng.integers(0, 2, n).astype(bool)
        with h5py.File(path, "a") as handle:
            group = handle.require_group(f"{class_index:08d}")
            group["index"] = indices.astype("uint32")
            embeddings = group.require_group("embedding")
            embeddings["spectral"] = embedding.astype(np.float32)
            embeddings["spectral"].attrs["eigenvalue"] = eigenvalues.astype(np.float32)
            for name in ("tsne", "umap"):
                embeddings[name] = rng.normal(size=(n, 2)).astype(np.float32)
                embeddings[name].attrs["embedding"] = "spectral"
                embeddings[name].attrs["index"] = np.array([0, 1])
            clusters = group.require_group("cluster")
            clusters["kmeans-02"] = kmeans
            clusters["kmeans-02"].attrs["embedding"] = "spectral"
            clusters["kmeans-02"].attrs["k"] = 2
            clusters["kmeans-02"].attrs["index"] = np.arange(3, dtype=np.uint32)
            clusters["dbscan-eps=0.2"] = dbscan
            clusters["dbscan-eps=0.2"].attrs["embedding"] = "spectral"
            clusters["dbscan-eps=0.2"].attrs["index"] = np.arange(3, dtype=np.uint32)
            clusters["train_split"] = train
            if analysis_attr is not None:
                handle.attrs["analysis"] = analysis_attr
        expected[f"{class_index:08d}"] = (
            indices,
            embedding.astype(np.float32),
            kmeans,
            dbscan,
            train,
        )
    return expected


def test_reads_file_written_like_virelay_script(tmp_path: Path) -> None:
    path = tmp_path / "virelay.h5"
    expected = write_like_virelay_script(path)
    with AnalysisDatabase(path) as database:
        assert database.layout == "virelay"
        assert database.analyses == ["spray"]
        assert database.metadata == {}
        assert database.categories() == ["00000000", "00000001"]
        assert database.embedding_names() == ["spectral", "tsne", "umap"]
        assert database.clustering_names() == ["dbscan-eps=0.2", "kmeans-02"]
        assert database.scores() == {"00000000": {}, "00000001": {}}
        for name, (indices, spectral, kmeans, dbscan, train) in expected.items():
            category = database.category(name)
            category.validate()
            np.testing.assert_array_equal(category.index, indices)
            np.testing.assert_array_equal(category.embeddings["spectral"].data, spectral)
            assert category.embeddings["spectral"].data.dtype == np.float32
            np.testing.assert_allclose(category.embeddings["spectral"].eigenvalue, [0.1, 0.5, 0.9])
            assert category.embeddings["umap"].base == "spectral"
            np.testing.assert_array_equal(category.embeddings["umap"].dims, [0, 1])
            kmeans_clustering = category.clusterings["kmeans-02"]
            np.testing.assert_array_equal(kmeans_clustering.labels, kmeans)
            assert (kmeans_clustering.embedding, kmeans_clustering.k) == ("spectral", 2)
            assert kmeans_clustering.params == {}
            np.testing.assert_array_equal(category.clusterings["dbscan-eps=0.2"].labels, dbscan)
            assert category.clusterings["dbscan-eps=0.2"].k is None
            assert "train_split" not in category.clusterings
            np.testing.assert_array_equal(category.extras["train_split"], train)
    with AnalysisDatabase(path, default_analysis="absspectral") as database:
        assert database.analyses == ["absspectral"]
        assert database.categories("absspectral") == ["00000000", "00000001"]


def test_virelay_file_analysis_attribute_names_the_analysis(tmp_path: Path) -> None:
    path = tmp_path / "virelay.h5"
    write_like_virelay_script(path, analysis_attr="fullspectral")
    with AnalysisDatabase(path) as database:
        assert database.analyses == ["fullspectral"]


def test_extras_round_trip_and_empty_file(tmp_path: Path) -> None:
    base = CATEGORIES[1]
    flags = np.arange(base.size) % 2 == 0
    category = CategoryAnalysis(
        base.name, base.index, base.embeddings, base.clusterings, extras={"train_split": flags}
    )
    path = write(tmp_path / "a.h5", [category], layout="virelay")
    with AnalysisDatabase(path) as database:
        assert_same(database.category(base.name), category)
    empty = tmp_path / "empty.h5"
    h5py.File(empty, "w").close()  # what ViRelAy's script leaves before its first class
    with AnalysisDatabase(empty) as database:
        assert (database.layout, database.analyses) == ("nested", [])
        with pytest.raises(KeyError, match="no analyses"):
            database.categories()
    no_categories = write(tmp_path / "none.h5", [], layout="virelay", analysis="x")
    with AnalysisDatabase(no_categories) as database:
        assert (database.layout, database.analyses, database.categories()) == ("virelay", ["x"], [])


def test_unknown_names_raise_key_error_listing_available(tmp_path: Path) -> None:
    path = write(tmp_path / "a.h5", CATEGORIES[:2])
    with AnalysisDatabase(path) as database:
        with pytest.raises(KeyError, match="available: spray"):
            database.categories("nope")
        with pytest.raises(KeyError, match="available: 00000000, 00000001"):
            database.category("n01440764")


# ------------------------------------------------------------------------------------------
# Resume, append, overwrite
# ------------------------------------------------------------------------------------------


def test_resume_after_interruption_gives_same_file(tmp_path: Path) -> None:
    categories = [*CATEGORIES, make_category("n01440764", 9, 7)]
    path = tmp_path / "resumed.h5"
    with pytest.raises(RuntimeError, match="killed"), AnalysisWriter(path, layout="virelay") as w:
        for category in categories[:2]:
            w.write(category)
        raise RuntimeError("killed")
    assert not path.exists()
    writer = AnalysisWriter(path, layout="virelay")
    assert writer.completed() == ["00000000", "00000001"]
    assert [writer.done(c.name) for c in categories] == [True, True, False, False]
    with writer:
        for category in categories:
            if not writer.done(category.name):
                writer.write(category)
    assert writer.close() == path  # idempotent
    reference = write(tmp_path / "reference.h5", list(reversed(categories)), layout="virelay")
    assert dump(path) == dump(reference)
    assert not (tmp_path / "resumed.h5.parts").exists()


def test_resume_with_other_settings_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    with pytest.raises(RuntimeError), AnalysisWriter(path, metadata={"seed": 1}) as writer:
        writer.write(CATEGORIES[0])
        raise RuntimeError
    with pytest.raises(ConfigError, match="metadata"):
        AnalysisWriter(path, metadata={"seed": 2})


def test_append_second_analysis_and_overwrite(tmp_path: Path) -> None:
    nested = {"layout": "nested"}
    path = write(tmp_path / "a.h5", CATEGORIES, analysis="spray", metadata={"model": "m"}, **nested)
    absolute = [make_category(c.name, c.size, 10 + i) for i, c in enumerate(CATEGORIES[:2])]
    write(path, absolute, analysis="spray-abs", metadata={"variant": "abs"}, **nested)
    with AnalysisDatabase(path) as database:
        assert database.analyses == ["spray", "spray-abs"]
        assert database.metadata == {"model": "m", "variant": "abs"}
        assert database.categories("spray-abs") == ["00000000", "00000001"]
        assert_same(database.category("00000002", "spray"), CATEGORIES[2])
        assert_same(database.category("00000001", "spray-abs"), absolute[1])
    with pytest.raises(ConfigError, match="already contains the analysis 'spray'"):
        AnalysisWriter(path, "spray", layout="nested")
    with pytest.raises(ConfigError, match="single analysis"):
        AnalysisWriter(path, "spray")  # the default layout never adds to a file
    assert not (tmp_path / "a.h5.parts").exists()
    write(path, CATEGORIES[:1], analysis="spray", overwrite=True, **nested)
    with AnalysisDatabase(path) as database:
        assert database.analyses == ["spray", "spray-abs"]
        assert database.categories("spray") == ["00000000"]
        assert_same(database.category("00000000", "spray-abs"), absolute[0])


def test_virelay_layout_holds_one_analysis(tmp_path: Path) -> None:
    path = write(tmp_path / "a.h5", CATEGORIES[:1], layout="virelay")
    with pytest.raises(ConfigError, match="single analysis"):
        AnalysisWriter(path, "other", layout="virelay")
    with pytest.raises(ConfigError, match="ViRelAy layout"):
        AnalysisWriter(path, "other", layout="nested")
    write(path, CATEGORIES[1:], analysis="other", layout="virelay", overwrite=True)
    with AnalysisDatabase(path) as database:
        assert database.analyses == ["other"]
        assert database.categories() == ["00000001", "00000002"]


# ------------------------------------------------------------------------------------------
# Invalid input
# ------------------------------------------------------------------------------------------


def _replace(category: CategoryAnalysis, **changes: Any) -> CategoryAnalysis:
    fields = {
        "name": category.name,
        "index": category.index,
        "embeddings": category.embeddings,
        "clusterings": category.clusterings,
        "scores": category.scores,
        "attrs": category.attrs,
    }
    return CategoryAnalysis(**{**fields, **changes})


GOOD = CATEGORIES[0]
N = GOOD.size
INVALID = {
    "empty name": _replace(GOOD, name=""),
    "slash name": _replace(GOOD, name="a/b"),
    "dot name": _replace(GOOD, name="."),
    "2-D index": _replace(GOOD, index=np.zeros((N, 1), dtype=int)),
    "float index": _replace(GOOD, index=np.arange(N, dtype=float)),
    "negative index": _replace(GOOD, index=np.arange(N) - 1),
    "rows": _replace(
        GOOD, embeddings={**GOOD.embeddings, "umap": Embedding("umap", np.zeros((N + 1, 2)))}
    ),
    "nan": _replace(
        GOOD, embeddings={**GOOD.embeddings, "umap": Embedding("umap", np.full((N, 2), np.nan))}
    ),
    "1-D embedding": _replace(GOOD, embeddings={"e": Embedding("e", np.zeros(N))}, clusterings={}),
    "missing base": _replace(
        GOOD,
        embeddings={"tsne": Embedding("tsne", np.zeros((N, 2)), base="spectral")},
        clusterings={},
    ),
    "dims out of range": _replace(
        GOOD,
        embeddings={
            **GOOD.embeddings,
            "umap": Embedding("umap", np.zeros((N, 2)), base="spectral", dims=np.array([0, 4])),
        },
    ),
    "float labels": _replace(
        GOOD, clusterings={"kmeans-02": Clustering("kmeans-02", np.zeros(N), "spectral")}
    ),
    "label length": _replace(GOOD, clusterings={"k": Clustering("k", np.zeros(N - 1, dtype=int))}),
    "unknown embedding": _replace(
        GOOD, clusterings={"k": Clustering("k", np.zeros(N, dtype=int), "umap")}
    ),
    "bad k": _replace(GOOD, clusterings={"k": Clustering("k", np.zeros(N, dtype=int), k=0)}),
    "reserved param": _replace(
        GOOD, clusterings={"k": Clustering("k", np.zeros(N, dtype=int), params={"k": 3})}
    ),
    "unserializable param": _replace(
        GOOD, clusterings={"k": Clustering("k", np.zeros(N, dtype=int), params={"f": object()})}
    ),
    "key mismatch": _replace(GOOD, clusterings={"a": Clustering("b", np.zeros(N, dtype=int))}),
    "string score": _replace(GOOD, scores={"tau": "high"}),
    "bad attr": _replace(GOOD, attrs={"label": {"nested": 1}}),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_category_is_refused_before_writing(tmp_path: Path, case: str) -> None:
    path = tmp_path / "a.h5"
    with pytest.raises(ConfigError), AnalysisWriter(path) as writer:
        writer.write(INVALID[case])
    assert not path.exists()
    assert not any(tmp_path.glob("**/*.h5"))


def test_invalid_writer_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="layout"):
        AnalysisWriter(tmp_path / "a.h5", layout="flat")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="analysis name"):
        AnalysisWriter(tmp_path / "a.h5", "a/b")
    with pytest.raises(ConfigError, match="JSON"):
        AnalysisWriter(tmp_path / "a.h5", metadata={"x": object()})
    writer = AnalysisWriter(tmp_path / "a.h5")
    writer.close()
    with pytest.raises(ConfigError, match="closed"):
        writer.write(GOOD)


# ------------------------------------------------------------------------------------------
# Malformed files
# ------------------------------------------------------------------------------------------


def _malformed(path: Path, edit: Any) -> Path:
    write(path, CATEGORIES[:2], layout="nested")
    with h5py.File(path, "a") as handle:
        edit(handle)
    return path


def _read_everything(path: Path) -> None:
    with AnalysisDatabase(path) as database:
        for analysis in database.analyses:
            database.scores(analysis)
            database.embedding_names(analysis)
            database.clustering_names(analysis)
            for name in database.categories(analysis):
                database.category(name, analysis).validate()


def _set(handle: h5py.File, key: str, data: Any) -> None:
    del handle[key]
    handle[key] = data


MALFORMED = {
    "missing index": (lambda h: h.__delitem__("/spray/00000000/index"), "/spray/00000000/index"),
    "embedding rows": (
        lambda h: _set(h, "/spray/00000001/embedding/tsne", np.zeros((3, 2))),
        "/spray/00000001/embedding/tsne",
    ),
    "string cluster": (
        lambda h: _set(h, "/spray/00000000/cluster/kmeans-03", np.array(["a"] * 12, dtype="S1")),
        "/spray/00000000/cluster/kmeans-03",
    ),
    "object string cluster": (
        lambda h: _set(h, "/spray/00000000/cluster/dbscan", ["a"] * 12),
        "/spray/00000000/cluster/dbscan",
    ),
    "2-D eigenvalue": (
        lambda h: h["/spray/00000000/embedding/spectral"].attrs.__setitem__(
            "eigenvalue", np.ones((2, 2))
        ),
        "/spray/00000000/embedding/spectral@eigenvalue",
    ),
    "dangling base": (
        lambda h: h["/spray/00000000/embedding/tsne"].attrs.__setitem__("embedding", "pca"),
        "/spray/00000000/embedding/tsne@embedding",
    ),
    "float index": (
        lambda h: _set(h, "/spray/00000000/index", np.zeros(12)),
        "/spray/00000000/index",
    ),
    "negative index": (
        lambda h: _set(h, "/spray/00000000/index", -np.ones(12, dtype=int)),
        "/spray/00000000/index",
    ),
    "nan embedding": (
        lambda h: _set(h, "/spray/00000000/embedding/tsne", np.full((12, 2), np.nan)),
        "/spray/00000000/embedding/tsne",
    ),
    "embedding is a dataset": (
        lambda h: _set(h, "/spray/00000001/embedding", np.zeros(3)),
        "/spray/00000001/embedding",
    ),
    "scores not scalar": (
        lambda h: _set(h, "/spray/00000001/score/tau", np.zeros(3)),
        "/spray/00000001/score/tau",
    ),
    "bad metadata": (lambda h: h.attrs.__setitem__("metadata", "{oops"), "/@metadata"),
    "foreign format": (lambda h: h.attrs.__setitem__("format", "relscope-attribution"), "/@format"),
    "top-level dataset": (lambda h: h.create_dataset("stray", data=1), "/stray"),
    "mixed layouts": (lambda h: h.copy(h["/spray/00000000"], h, name="00000009"), "/"),
    "bad k": (
        lambda h: h["/spray/00000000/cluster/kmeans-02"].attrs.__setitem__("k", 2.5),
        "/spray/00000000/cluster/kmeans-02@k",
    ),
    "bad params": (
        lambda h: h["/spray/00000000/cluster/kmeans-02"].attrs.__setitem__("params", "[1]"),
        "/spray/00000000/cluster/kmeans-02@params",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_raises_format_error_naming_key(tmp_path: Path, case: str) -> None:
    edit, key = MALFORMED[case]
    path = _malformed(tmp_path / "bad.h5", edit)
    with pytest.raises(FormatError) as caught:
        _read_everything(path)
    assert caught.value.key == key
    assert caught.value.file == str(path)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.02])
def test_truncated_file_raises_format_error(tmp_path: Path, fraction: float) -> None:
    path = write(tmp_path / "a.h5", CATEGORIES, layout="virelay")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(FormatError):
        _read_everything(path)


def test_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="no such file"):
        AnalysisDatabase(tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(FormatError, match="HDF5"):
        AnalysisDatabase(tmp_path / "text.h5")


# ------------------------------------------------------------------------------------------
# Property test: random malformed category layouts
# ------------------------------------------------------------------------------------------

# Each part of a category is valid by default and broken by one of a few targeted mutations
# with some probability, so that both accepted and refused files are common.
_MUTATIONS = ["dtype", "string", "complex", "rows", "rank", "scalar", "nonfinite", "negative"]


@st.composite
def arrays(draw: st.DrawFn, valid: np.ndarray) -> np.ndarray:
    if draw(st.integers(0, 4)):
        return valid
    mutation = draw(st.sampled_from(_MUTATIONS))
    if mutation == "dtype":
        return valid.astype(draw(st.sampled_from(["bool", "float32", "int8", "uint64", "S3"])))
    if mutation == "string":
        return np.array(["ab"] * valid.size, dtype=h5py.string_dtype()).reshape(valid.shape)
    if mutation == "complex":
        return valid.astype(np.complex64)
    if mutation == "rows":
        rows = draw(st.sampled_from([0, 1, len(valid) + 1] if valid.ndim else [1]))
        return np.resize(valid, (rows, *valid.shape[1:]))
    if mutation == "rank":
        return valid.reshape(*valid.shape, 1)
    if mutation == "scalar":
        return np.asarray(valid.flat[0] if valid.size else 0, dtype=valid.dtype)
    if mutation == "nonfinite":
        return np.full(valid.shape, draw(st.sampled_from([np.nan, np.inf])))
    return valid.astype(np.int64) - 1  # negative


attribute_values = st.one_of(
    st.sampled_from(["spectral", "tsne", "missing", b"spectral", b"\xff"]),
    st.integers(-3, 5),
    st.floats(allow_nan=True),
    st.sampled_from(
        [
            np.array([0, 1]),
            np.array([0, 9]),
            np.array([-1]),
            np.ones((2, 2)),
            np.array([0.5, 1.5]),
            np.array(["a", "b"], dtype="S1"),
            np.array([True]),
            h5py.Empty("f"),
            "{}",
            '{"eps": 0.5}',
            '{"k": 2}',
            "[",
        ]
    ),
)
_GOOD_ATTRS = {
    "embedding": {
        "spectral": {"eigenvalue": np.array([0.5, 0.9])},
        "tsne": {"embedding": "spectral", "index": np.array([0, 1])},
    },
    "cluster": {"kmeans-02": {"embedding": "spectral", "k": 2, "index": np.array([0, 1])}},
}


@st.composite
def category_layouts(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(0, 4))
    layout: dict[str, Any] = {"n": n}
    if draw(st.integers(0, 9)):  # mostly present
        layout["index"] = draw(arrays(np.arange(n, dtype=np.uint32)))
    valid = {
        "embedding": {"spectral": np.ones((n, 2)), "tsne": np.zeros((n, 2), dtype=np.float32)},
        "cluster": {
            "kmeans-02": np.arange(n) % 2,
            "dbscan": np.arange(n) - 1,
            "train_split": np.arange(n) % 2 == 0,
        },
        "score": {"eigengap": np.float64(0.5), "tau": np.int64(2)},
    }
    for group, members in valid.items():
        choice = draw(st.sampled_from(["group"] * 12 + ["dataset", "absent"]))
        if choice == "dataset":
            layout[group] = np.zeros(2)
        elif choice == "group":
            names = draw(st.lists(st.sampled_from(sorted(members)), max_size=3, unique=True))
            content = {}
            for name in names:
                attrs = dict(_GOOD_ATTRS.get(group, {}).get(name, {}))
                if not draw(st.integers(0, 3)):
                    attrs.update(
                        draw(
                            st.dictionaries(
                                st.sampled_from(
                                    ["eigenvalue", "embedding", "index", "k", "params"]
                                ),
                                attribute_values,
                                max_size=2,
                            )
                        )
                    )
                content[name] = (draw(arrays(members[name])), attrs)
            layout[group] = content
    layout["attrs"] = draw(
        st.dictionaries(st.sampled_from(["label_index", "note"]), attribute_values, max_size=2)
    )
    return layout


def _build(path: Path, layouts: list[dict[str, Any]], nested: bool) -> None:
    with h5py.File(path, "w") as handle:
        root = handle.create_group("spray") if nested else handle
        for number, layout in enumerate(layouts):
            group = root.create_group(f"{number:08d}")
            for key, value in layout["attrs"].items():
                group.attrs[key] = value
            if "index" in layout:
                group["index"] = layout["index"]
            for sub in ("embedding", "cluster", "score"):
                content = layout.get(sub)
                if isinstance(content, np.ndarray):
                    group[sub] = content
                elif content is not None:
                    subgroup = group.create_group(sub)
                    for name, (data, attrs) in content.items():
                        subgroup[name] = data
                        for key, value in attrs.items():
                            subgroup[name].attrs[key] = value


_counter = itertools.count()


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(category_layouts(), min_size=1, max_size=3), st.booleans())
def test_random_layouts_read_consistently_or_raise_format_error(
    layouts: list[dict[str, Any]], nested: bool
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"random-{next(_counter)}.h5"
        _build(path, layouts, nested)
        try:
            with AnalysisDatabase(path) as database:
                for analysis in database.analyses:
                    database.scores(analysis)
                    database.clustering_names(analysis)
                    for name in database.categories(analysis):
                        category = database.category(name, analysis)
                        n = category.size
                        assert category.index.ndim == 1 and category.index.dtype.kind in "iu"
                        for embedding in category.embeddings.values():
                            assert embedding.data.ndim == 2 and embedding.data.shape[0] == n
                            assert np.isfinite(embedding.data).all()
                        for clustering in category.clusterings.values():
                            assert clustering.labels.shape == (n,)
                            assert clustering.labels.dtype.kind in "iu"
                        for extra in category.extras.values():
                            assert extra.shape == (n,)
                        # Whatever the reader accepts can be written back unchanged.
                        category.validate()
        except FormatError as error:
            assert "\n" not in str(error)
