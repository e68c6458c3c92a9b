"""Clusterings of features or of a spectral embedding into prediction strategies.

Every processor accepts features ``(N, D)`` or the dict of ``spectral-embedding`` (its
eigenvectors are used) and returns integer labels ``(N,)``; DBSCAN and HDBSCAN mark noise
with ``-1``. :class:`KMeans` returns one labelling per number of clusters.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
from sklearn import cluster
from sklearn.neighbors import kneighbors_graph

from relscope.analysis.params import Param
from relscope.analysis.pipeline import Processor, register_processor
from relscope.analysis.processors._checks import below_samples
from relscope.analysis.processors.embedding import embedding_features
from relscope.errors import ConfigError

__all__ = ["DBSCAN", "HDBSCAN", "Agglomerative", "KMeans", "SpectralClustering"]


def _check_k(processor: Processor, k: int, n: int) -> None:
    if not 1 <= k <= n:
        raise ConfigError(
            f"{type(processor).__name__}: number of clusters must be between 1 and N = {n}, "
            f"found {k}"
        )


@register_processor("kmeans")
class KMeans(Processor):
    """k-means (scikit-learn) for every ``k`` in ``n_clusters``: returns ``{k: labels}``."""

    version: ClassVar[int] = 1

    n_clusters = Param(tuple, tuple(range(2, 11)), "The numbers of clusters to try.")
    n_init = Param(int, 10, "Restarts per k; the best (lowest inertia) is kept.")
    max_iter = Param(int, 300, "Iteration limit of one run.")
    seed = Param(int, 0, "Random seed of the initializations.")

    def function(self, data: Any) -> dict[int, np.ndarray]:
        features = embedding_features(self, data)
        labels: dict[int, np.ndarray] = {}
        for k in self.n_clusters:
            if not isinstance(k, int) or isinstance(k, bool):
                raise ConfigError(f"KMeans: n_clusters must hold ints, found {k!r}")
            _check_k(self, k, features.shape[0])
            model = cluster.KMeans(
                n_clusters=k, n_init=self.n_init, max_iter=self.max_iter, random_state=self.seed
            )
            labels[k] = model.fit_predict(features)
        return labels


@register_processor("dbscan")
class DBSCAN(Processor):
    """DBSCAN (scikit-learn): density clusters of radius ``eps``; noise is ``-1``."""

    version: ClassVar[int] = 1

    eps = Param(float, 0.5, "Neighbourhood radius.")
    min_samples = Param(int, 5, "Neighbours (itself included) that make a core sample.")
    metric = Param(str, "euclidean", "Distance metric.")

    def function(self, data: Any) -> np.ndarray:
        if not self.eps > 0:
            raise ConfigError(f"DBSCAN: eps must be positive, found {self.eps}")
        model = cluster.DBSCAN(eps=self.eps, min_samples=self.min_samples, metric=self.metric)
        return model.fit_predict(embedding_features(self, data))


@register_processor("hdbscan")
class HDBSCAN(Processor):
    """HDBSCAN (scikit-learn): hierarchical density clusters without a radius; noise is -1."""

    version: ClassVar[int] = 1

    min_cluster_size = Param(int, 5, "Smallest group that counts as a cluster.")
    min_samples = Param((int, type(None)), None, "Core-distance neighbours; None: as above.")
    metric = Param(str, "euclidean", "Distance metric.")

    def function(self, data: Any) -> np.ndarray:
        if self.min_cluster_size < 2:
            raise ConfigError(
                f"HDBSCAN: min_cluster_size must be at least 2, found {self.min_cluster_size}"
            )
        model = cluster.HDBSCAN(
            min_cluster_size=self.min_cluster_size,
            min_samples=self.min_samples,
            metric=self.metric,
            copy=True,
        )
        return model.fit_predict(embedding_features(self, data))


@register_processor("agglomerative")
class Agglomerative(Processor):
    """Agglomerative (hierarchical) clustering (scikit-learn) with ward/average/complete linkage.

    Unrestricted merging needs all pairwise distances, so above ``max_dense`` samples it is
    refused unless ``connectivity_neighbors`` restricts merges to a sparse kNN graph
    (scikit-learn joins the graph's components if it is disconnected).
    """

    version: ClassVar[int] = 1

    n_clusters = Param(int, 2, "Number of clusters.")
    linkage = Param(str, "ward", "Linkage: 'ward', 'average' or 'complete'.")
    connectivity_neighbors = Param(
        (int, type(None)), None, "Merge only along a kNN graph with this k; None: all pairs."
    )
    max_dense = Param(int, 4096, "Largest N clustered without a connectivity graph.")

    def function(self, data: Any) -> np.ndarray:
        if self.linkage not in ("ward", "average", "complete"):
            raise ConfigError(
                f"Agglomerative: linkage must be 'ward', 'average' or 'complete', "
                f"found {self.linkage!r}"
            )
        features = embedding_features(self, data)
        n = features.shape[0]
        _check_k(self, self.n_clusters, n)
        connectivity = None
        if self.connectivity_neighbors is not None:
            below_samples(self, "connectivity_neighbors", n)
            connectivity = kneighbors_graph(features, self.connectivity_neighbors)
        elif n > self.max_dense:
            raise ConfigError(
                f"Agglomerative: {n} samples exceed max_dense={self.max_dense}; "
                f"set connectivity_neighbors"
            )
        model = cluster.AgglomerativeClustering(
            n_clusters=self.n_clusters, linkage=self.linkage, connectivity=connectivity
        )
        with warnings.catch_warnings():
            # A kNN graph of well-separated groups is often disconnected; sklearn then joins
            # the components itself, which is the intended behaviour, not a problem.
            warnings.filterwarnings("ignore", "the number of connected components", UserWarning)
            return model.fit_predict(features)


@register_processor("spectral-clustering")
class SpectralClustering(Processor):
    """Spectral clustering on a spectral embedding: k-means on its first ``n_clusters`` vectors.

    With ``normalize_rows`` each sample's row is scaled to unit length first (the
    Ng-Jordan-Weiss algorithm, for eigenvectors of the symmetric normalized Laplacian).
    An array input is taken as the eigenvectors, smallest eigenvalue first.
    """

    version: ClassVar[int] = 1

    n_clusters = Param(int, 2, "Number of clusters (and of eigenvectors used).")
    normalize_rows = Param(bool, True, "Scale every row of the embedding to unit length.")
    n_init = Param(int, 10, "k-means restarts.")
    seed = Param(int, 0, "Random seed of k-means.")

    def function(self, data: Any) -> np.ndarray:
        vectors = embedding_features(self, data)
        _check_k(self, self.n_clusters, vectors.shape[0])
        if self.n_clusters > vectors.shape[1]:
            raise ConfigError(
                f"SpectralClustering: n_clusters={self.n_clusters} exceeds the "
                f"{vectors.shape[1]} eigenvectors of the embedding"
            )
        vectors = vectors[:, : self.n_clusters]
        if self.normalize_rows:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.where(norms > 0, norms, 1.0)
        model = cluster.KMeans(
            n_clusters=self.n_clusters, n_init=self.n_init, random_state=self.seed
        )
        return model.fit_predict(vectors)
