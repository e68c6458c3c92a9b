"""The pre-built SpRAy pipeline on attributions with planted prediction strategies."""

from __future__ import annotations

import numpy as np
import pytest

from relscope.analysis import DirectoryStorage, rank_categories
from relscope.analysis import spray as spray_module
from relscope.analysis.processors import LLE, PCA, TSNE, KMeans
from relscope.analysis.spray import (
    Shrink,
    SpectralKMeans,
    SpRAy,
    analyze_category,
    load_spray_config,
    spray_config,
)
from relscope.errors import ConfigError


def planted(n: int, split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Maps (n, 1, 16, 16): relevance on a central blob, or on a corner patch (fraction split)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:16, 0:16]
    blob = np.exp(-((yy - 8.0) ** 2 + (xx - 8.0) ** 2) / 8.0)
    corner = np.zeros((16, 16))
    corner[:4, :4] = 1.0
    strategy = (rng.random(n) < split).astype(int)
    maps = np.where(strategy[:, None, None] == 1, corner, blob)
    return maps[:, None] + 0.1 * rng.standard_normal((n, 1, 16, 16)), strategy


def fast(**tasks: object) -> SpRAy:
    """SpRAy with cheap visual embedding and few k-means restarts."""
    options = {
        "kmeans": SpectralKMeans(n_init=2),
        "tsne": PCA(n_components=2),
        "umap": None,
        **tasks,
    }
    return SpRAy(**options)


def test_planted_strategies_are_separated_and_ranked_first() -> None:
    scores = {}
    for name, split, seed in (("clever-hans", 0.2, 0), ("plain-a", 0.0, 1), ("plain-b", 0.0, 2)):
        maps, strategy = planted(150, split, seed)
        result = analyze_category(maps, fast())
        scores[name] = result.scores["tau"]
        if split:
            labels = result.clusterings["kmeans-02"]
            purity = max(np.mean(labels == strategy), np.mean(labels != strategy))
            assert purity >= 0.95
            assert result.scores["eigengap_k"] == 2.0
    assert rank_categories(scores)[0][0] == "clever-hans"
    assert scores["clever-hans"] > 5 * max(scores["plain-a"], scores["plain-b"])


def test_category_result_content() -> None:
    maps, _ = planted(60, 0.3, 3)
    result = analyze_category(maps, fast(tsne=TSNE(max_iter=250, perplexity=10.0)))
    assert set(result.embeddings) == {"spectral", "tsne"}
    assert result.embeddings["spectral"].shape == (60, 32)
    assert result.embeddings["tsne"].shape == (60, 2)
    assert result.eigenvalues.shape == (32,)
    assert np.all(np.diff(result.eigenvalues) >= 0)
    expected = {f"kmeans-{k:02d}" for k in range(2, 11)} | {"dbscan", "hdbscan"}
    assert set(result.clusterings) == expected | {"agglomerative-02"}
    assert result.k["kmeans-07"] == 7 and result.k["agglomerative-02"] == 2
    assert all(labels.shape == (60,) for labels in result.clusterings.values())
    assert len(np.unique(result.clusterings["kmeans-05"])) == 5
    assert set(result.scores) == {"tau", "eigengap", "eigengap_k"}


def test_tasks_are_replaceable_and_skippable() -> None:
    maps, _ = planted(40, 0.3, 4)
    pipeline = fast(kmeans=KMeans(n_clusters=(2, 3), n_init=2), dbscan=None, tsne=None)
    output = pipeline(maps)
    assert set(output) == {"spectral", "kmeans", "hdbscan", "agglomerative", "scores"}
    assert set(output["kmeans"]) == {2, 3}


def test_umap_is_used_when_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spray_module, "_default_umap", lambda: PCA(n_components=2))
    assert SpRAy().umap == PCA(n_components=2)
    assert SpRAy(umap=None).umap is None


def test_lle_task_is_off_by_default_and_embeds_the_spectral_embedding() -> None:
    assert SpRAy().lle is None
    maps, _ = planted(60, 0.3, 6)
    pipeline = fast(lle=LLE(n_neighbors=10, eigen_solver="dense"))
    result = analyze_category(maps, pipeline)
    assert set(result.embeddings) == {"spectral", "tsne", "lle"}
    expected = LLE(n_neighbors=10, eigen_solver="dense")(result.embeddings["spectral"])
    np.testing.assert_array_equal(result.embeddings["lle"], expected)
    rebuilt = load_spray_config(spray_config(pipeline))
    assert rebuilt.lle == LLE(n_neighbors=10, eigen_solver="dense")


def test_yaml_round_trip() -> None:
    pipeline = fast(kmeans=SpectralKMeans(n_clusters=(2, 4)))
    rebuilt = load_spray_config(spray_config(pipeline))
    assert rebuilt == pipeline
    assert rebuilt.kmeans.n_clusters == (2, 4)
    assert "processor: spray" in spray_config(SpRAy(umap=None))
    with pytest.raises(ConfigError, match="expected processor 'spray'"):
        load_spray_config("processor: pca\n")


def test_storage_makes_a_rerun_free(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    maps, _ = planted(40, 0.3, 5)
    storage = DirectoryStorage(tmp_path / "cache")
    first = analyze_category(maps, fast(), io=storage)
    calls = []
    original = SpectralKMeans.function
    monkeypatch.setattr(
        SpectralKMeans, "function", lambda self, data: calls.append(1) or original(self, data)
    )
    second = analyze_category(maps, fast(), io=storage)
    assert calls == []
    np.testing.assert_array_equal(first.clusterings["kmeans-03"], second.clusterings["kmeans-03"])


def test_shrink() -> None:
    maps = np.arange(2 * 3 * 70 * 64, dtype=float).reshape(2, 3, 70, 64)
    out = Shrink(max_size=32)(maps)
    assert out.shape == (2, 3, 23, 21)  # window 3 drops the border remainder
    assert out[0, 0, 0, 0] == maps[0, 0, :3, :3].sum()
    small = np.ones((2, 8, 8))
    assert Shrink(max_size=32)(small) is small
