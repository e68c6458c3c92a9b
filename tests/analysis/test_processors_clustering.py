"""Clusterings recover planted clusters and equal direct scikit-learn calls."""

import numpy as np
import pytest
from sklearn import cluster
from sklearn.metrics import adjusted_rand_score

from relscope.analysis.processors import (
    DBSCAN,
    HDBSCAN,
    Agglomerative,
    KMeans,
    KNNGraph,
    SpectralClustering,
    SpectralEmbedding,
    SymmetricLaplacian,
)
from relscope.errors import ConfigError


def blobs(centres, per_cluster=40, spread=0.3, seed=0):
    """Gaussian blobs around ``centres`` and their true labels."""
    rng = np.random.default_rng(seed)
    centres = np.asarray(centres, dtype=float)
    points = np.concatenate(
        [c + spread * rng.standard_normal((per_cluster, c.size)) for c in centres]
    )
    return points, np.repeat(np.arange(len(centres)), per_cluster)


CENTRES = [[0, 0, 0], [8, 0, 0], [0, 8, 0], [0, 0, 8]]
POINTS, TRUTH = blobs(CENTRES)


def test_defaults():
    assert KMeans().n_clusters == tuple(range(2, 11))
    assert (KMeans().n_init, KMeans().seed) == (10, 0)
    assert Agglomerative().linkage == "ward"


def test_kmeans_for_a_range_of_k_recovers_the_planted_clusters():
    labels = KMeans(n_clusters=(2, 3, 4, 5))(POINTS)
    assert sorted(labels) == [2, 3, 4, 5]
    assert adjusted_rand_score(TRUTH, labels[4]) == 1.0
    for k, assigned in labels.items():
        assert len(np.unique(assigned)) == k
        expected = cluster.KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(POINTS)
        np.testing.assert_array_equal(assigned, expected)
    with pytest.raises(ConfigError, match="between 1 and N = 160"):
        KMeans(n_clusters=(2, 161))(POINTS)


def test_dbscan_and_hdbscan_recover_the_planted_clusters():
    labels = DBSCAN(eps=1.5, min_samples=5)(POINTS)
    assert adjusted_rand_score(TRUTH, labels) == 1.0
    np.testing.assert_array_equal(
        labels, cluster.DBSCAN(eps=1.5, min_samples=5).fit_predict(POINTS)
    )
    labels = HDBSCAN(min_cluster_size=10)(POINTS)
    core = labels >= 0
    assert core.mean() >= 0.95
    assert adjusted_rand_score(TRUTH[core], labels[core]) == 1.0
    with pytest.raises(ConfigError, match="eps must be positive"):
        DBSCAN(eps=0.0)(POINTS)


@pytest.mark.parametrize("linkage", ["ward", "average", "complete"])
def test_agglomerative_recovers_the_planted_clusters(linkage):
    labels = Agglomerative(n_clusters=4, linkage=linkage)(POINTS)
    assert adjusted_rand_score(TRUTH, labels) == 1.0
    sparse = Agglomerative(n_clusters=4, linkage=linkage, connectivity_neighbors=10)(POINTS)
    assert adjusted_rand_score(TRUTH, sparse) == 1.0


def test_agglomerative_refuses_large_unrestricted_inputs():
    with pytest.raises(ConfigError, match="160 samples exceed max_dense=100; set connectivity"):
        Agglomerative(max_dense=100)(POINTS)
    assert len(np.unique(Agglomerative(max_dense=100, connectivity_neighbors=10)(POINTS))) == 2
    with pytest.raises(ConfigError, match="linkage must be"):
        Agglomerative(linkage="single")(POINTS)


def test_spectral_clustering_on_the_spectral_embedding():
    # Two concentric rings: not linearly separable, but two components of the kNN graph.
    rng = np.random.default_rng(1)
    angles = rng.uniform(0, 2 * np.pi, 200)
    radius = np.repeat([1.0, 4.0], 100)
    rings = np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)
    truth = np.repeat([0, 1], 100)
    embedding = SpectralEmbedding(n_eigval=8)(SymmetricLaplacian()(KNNGraph()(rings)))
    labels = SpectralClustering(n_clusters=2)(embedding)
    assert adjusted_rand_score(truth, labels) == 1.0
    assert adjusted_rand_score(truth, KMeans(n_clusters=(2,))(rings)[2]) < 0.5
    # The other clusterings accept an embedding dict too (here: its two leading vectors).
    leading = {"eigenvectors": embedding["eigenvectors"][:, :2]}
    assert adjusted_rand_score(truth, KMeans(n_clusters=(2,))(leading)[2]) == 1.0
    assert adjusted_rand_score(truth, Agglomerative(linkage="average")(leading)) == 1.0
    with pytest.raises(ConfigError, match="exceeds the 8 eigenvectors"):
        SpectralClustering(n_clusters=9)(embedding)
    with pytest.raises(ConfigError, match="'eigenvectors'"):
        SpectralClustering()({"eigenvalues": np.zeros(3)})
