"""Spectral Relevance Analysis (SpRAy), pre-built: one category of attributions at a time.

:class:`SpRAy` is a :class:`~relscope.analysis.pipeline.Pipeline` whose tasks are the steps of
the analysis, each replaceable by keyword::

    preprocessing   channel sum -> shrink to at most 32 x 32 (sum pooling) -> L2 norm -> flatten
    affinity        symmetric kNN graph, k = 10
    laplacian       symmetric normalized Laplacian
    embedding       spectral embedding, 32 smallest eigenpairs
    kmeans          k-means for k = 2 .. 10 (on     } on the spectral embedding
                    the k leading eigenvectors)     }
    dbscan, hdbscan, agglomerative                  }
    tsne, umap, lle visual embeddings of the spectral embedding (umap: only if a processor
                    named "umap" is registered when the pipeline is built; lle: skipped
                    unless given, e.g. ``SpRAy(lle=LLE())``)
    scores          eigengap and separability "tau" (see :mod:`relscope.analysis.scores`)

:func:`analyze_category` runs it and returns a :class:`CategoryResult`; :func:`spray_config` and
:func:`load_spray_config` write and read a pipeline as YAML.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from relscope.analysis.cache import Storage
from relscope.analysis.params import Param
from relscope.analysis.pipeline import (
    Pipeline,
    Processor,
    Sequential,
    Task,
    get_processor,
    register_processor,
)
from relscope.analysis.processors.affinity import KNNGraph, SymmetricLaplacian
from relscope.analysis.processors.clustering import DBSCAN, HDBSCAN, Agglomerative, KMeans
from relscope.analysis.processors.embedding import TSNE, SpectralEmbedding, embedding_features
from relscope.analysis.processors.preprocessing import ChannelReduce, Flatten, Normalize, Pool
from relscope.analysis.scores import eigengap, separability
from relscope.errors import ConfigError

__all__ = [
    "CLUSTERING_TASKS",
    "EMBEDDING_TASKS",
    "CategoryResult",
    "Shrink",
    "SpRAy",
    "SpectralKMeans",
    "SprayScores",
    "analyze_category",
    "load_spray_config",
    "spray_config",
]

#: Tasks whose results are clusterings / visual embeddings of the spectral embedding.
CLUSTERING_TASKS = ("kmeans", "dbscan", "hdbscan", "agglomerative")
EMBEDDING_TASKS = ("tsne", "umap", "lle")


@register_processor("shrink")
class Shrink(Processor):
    """Pool maps ``(N, ..., H, W)`` with one square window so that no side exceeds ``max_size``.

    The window is ``ceil(max(H, W) / max_size)`` (at most ``min(H, W)``); maps already small
    enough are returned unchanged. Border rows/columns that do not fill a window are dropped.
    """

    version: ClassVar[int] = 1

    max_size = Param(int, 32, "Largest height and width of the result.")
    mode = Param(str, "sum", "Pooling: 'sum', 'mean' or 'max'.")

    def function(self, data: Any) -> np.ndarray:
        array = np.asarray(data)
        if self.max_size < 1:
            raise ConfigError(f"Shrink: max_size must be positive, found {self.max_size}")
        if array.ndim < 3:
            raise ConfigError(f"Shrink: expected maps (N, ..., H, W), found shape {array.shape}")
        height, width = array.shape[-2:]
        if max(height, width) <= self.max_size:
            return array
        size = min(math.ceil(max(height, width) / self.max_size), height, width)
        return Pool(mode=self.mode, size=size)(array)


@register_processor("spectral-kmeans")
class SpectralKMeans(Processor):
    """k-means with ``k`` clusters on the first ``k`` eigenvectors, per ``k``: ``{k: labels}``.

    This is spectral clustering (Shi-Malik style, rows not normalized unless asked): the
    trailing eigenvectors of a large embedding describe fine structure that would otherwise
    drown the few leading ones k-means needs. An array input is taken as the eigenvectors,
    smallest eigenvalue first.
    """

    version: ClassVar[int] = 1

    n_clusters = Param(tuple, tuple(range(2, 11)), "The numbers of clusters to try.")
    normalize_rows = Param(bool, False, "Scale every row to unit length (Ng-Jordan-Weiss).")
    n_init = Param(int, 10, "Restarts per k; the best (lowest inertia) is kept.")
    seed = Param(int, 0, "Random seed of the initializations.")

    def function(self, data: Any) -> dict[int, np.ndarray]:
        vectors = embedding_features(self, data)
        labels: dict[int, np.ndarray] = {}
        for k in self.n_clusters:
            if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= vectors.shape[1]:
                raise ConfigError(
                    f"SpectralKMeans: n_clusters must hold ints between 1 and the "
                    f"{vectors.shape[1]} eigenvectors, found {k!r}"
                )
            features = leading(vectors, k, self.normalize_rows)
            model = KMeans(n_clusters=(k,), n_init=self.n_init, seed=self.seed)
            labels[k] = model(features)[k]
        return labels


def leading(vectors: np.ndarray, k: int, normalize_rows: bool = False) -> np.ndarray:
    """The first ``k`` columns of ``vectors``, rows scaled to unit length if asked."""
    features = np.asarray(vectors, dtype=np.float64)[:, :k]
    if normalize_rows:
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        features = features / np.where(norms > 0, norms, 1.0)
    return features


@register_processor("spray-scores")
class SprayScores(Processor):
    """Scores of one category from ``{"spectral": {...}, "kmeans": {k: labels}}``.

    Returns ``eigengap`` (largest gap among the first ``max_k`` gaps), ``eigengap_k`` (the
    suggested number of clusters) and ``tau``: the separability of the 2-means clustering
    measured on the features it was computed from, the first ``tau_dims`` spectral
    eigenvectors (0 if the clustering has fewer than 2 clusters). Few leading dimensions keep
    the discriminant from overfitting noise: in 32 dimensions and ~100 samples any split
    looks fairly separable.
    """

    version: ClassVar[int] = 1

    tau_k = Param(int, 2, "The k-means clustering whose separability is tau (must be 2).")
    max_k = Param(int, 10, "Largest number of clusters the eigengap may suggest.")
    tau_dims = Param(int, 2, "Leading eigenvectors the discriminant sees (as 2-means does).")
    ridge = Param(float, 1e-6, "Relative ridge of the Fisher discriminant.")

    def function(self, data: Any) -> dict[str, float]:
        if not isinstance(data, Mapping) or "spectral" not in data:
            raise ConfigError("SprayScores: expected a dict with 'spectral' (and 'kmeans')")
        if self.tau_k != 2:
            raise ConfigError(f"SprayScores: tau is defined for k = 2 only, found {self.tau_k}")
        spectral = data["spectral"]
        gaps, k = eigengap(spectral["eigenvalues"], max_k=self.max_k)
        scores = {"eigengap": float(gaps[k - 1]), "eigengap_k": float(k)}
        labels = data.get("kmeans", {}).get(self.tau_k)
        if labels is not None:
            labels = np.asarray(labels)
            if np.unique(labels[labels >= 0]).size < 2:
                scores["tau"] = 0.0
            else:
                features = leading(spectral["eigenvectors"], self.tau_dims)
                scores["tau"] = separability(features, labels, ridge=self.ridge)
        return scores


def _default_umap() -> Processor | None:
    """A default instance of the processor registered as "umap", if any."""
    try:
        target = get_processor("umap")
    except ConfigError:
        return None
    return target() if isinstance(target, type) else target


@register_processor("spray")
class SpRAy(Pipeline):
    """Spectral Relevance Analysis of one category: attribution maps ``(N, C, H, W)`` in.

    Returns a dict: ``"spectral"`` (``{"eigenvalues", "eigenvectors"}``), one entry per
    clustering and visual-embedding task that is not ``None`` (``"kmeans"`` is ``{k:
    labels}``), and ``"scores"``. Every step after ``embedding`` gets the spectral embedding;
    ``is_output`` flags are not used. Give a task ``None`` to skip it.
    """

    version: ClassVar[int] = 1

    preprocessing = Task(
        Sequential(
            [ChannelReduce(mode="sum"), Shrink(max_size=32), Normalize(norm="l2"), Flatten()]
        ),
        doc="Turn attribution maps into feature vectors.",
    )
    affinity = Task(KNNGraph(n_neighbors=10, symmetrize="max"), doc="Sparse affinity graph.")
    laplacian = Task(SymmetricLaplacian(), doc="Normalized graph Laplacian.")
    embedding = Task(SpectralEmbedding(n_eigval=32), doc="Smallest eigenpairs of the Laplacian.")
    kmeans = Task(SpectralKMeans(), doc="k-means on k leading eigenvectors, {k: labels}.")
    dbscan = Task(DBSCAN(), doc="DBSCAN labels.")
    hdbscan = Task(HDBSCAN(), doc="HDBSCAN labels.")
    agglomerative = Task(Agglomerative(n_clusters=2), doc="Agglomerative labels.")
    tsne = Task(TSNE(), doc="t-SNE of the spectral embedding.")
    umap = Task(None, doc="UMAP of the spectral embedding (default: registered 'umap').")
    lle = Task(None, doc="Locally linear embedding of the spectral embedding (default: off).")
    scores = Task(SprayScores(), doc="Eigengap and tau of the category.")

    def __init__(self, **kwargs: Any) -> None:
        if "umap" not in kwargs:
            kwargs["umap"] = _default_umap()
        super().__init__(**kwargs)

    def function(self, data: Any) -> dict[str, Any]:
        tasks = self._tasks
        for name in ("preprocessing", "affinity", "laplacian", "embedding"):
            if tasks[name] is not None:
                data = tasks[name](data)
        if not isinstance(data, Mapping) or not {"eigenvalues", "eigenvectors"} <= set(data):
            raise ConfigError(
                "SpRAy: the embedding task must return {'eigenvalues', 'eigenvectors'}, "
                f"found {type(data).__name__}"
            )
        result: dict[str, Any] = {"spectral": dict(data)}
        for name in (*CLUSTERING_TASKS, *EMBEDDING_TASKS):
            if tasks[name] is not None:
                result[name] = tasks[name](result["spectral"])
        if tasks["scores"] is not None:
            result["scores"] = tasks["scores"](
                {"spectral": result["spectral"], "kmeans": result.get("kmeans", {})}
            )
        return result


@dataclass
class CategoryResult:
    """Results of SpRAy for one category, ready to be stored in an analysis database.

    Attributes
    ----------
    embeddings:
        Name -> ``(N, d)``: ``"spectral"`` (eigenvectors) and the visual embeddings.
    clusterings:
        Name -> labels ``(N,)``: ``kmeans-02`` .. ``kmeans-10``, ``dbscan``, ``hdbscan``,
        ``agglomerative-02``.
    eigenvalues:
        Eigenvalues of the spectral embedding, ascending.
    scores:
        ``tau``, ``eigengap``, ``eigengap_k``.
    k:
        Requested number of clusters of the clusterings that have one.
    """

    embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    clusterings: dict[str, np.ndarray] = field(default_factory=dict)
    eigenvalues: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scores: dict[str, float] = field(default_factory=dict)
    k: dict[str, int] = field(default_factory=dict)


def _give_storage(processor: Processor | None, io: Storage) -> None:
    if processor is None:
        return
    if isinstance(processor, Pipeline):
        for child in processor.tasks().values():
            _give_storage(child, io)
    children = getattr(processor, "children", None)
    if isinstance(children, list):
        for child in children:
            _give_storage(child, io)
    elif not isinstance(processor, Pipeline) and processor.io is None:
        processor.io = io


def analyze_category(
    attributions: np.ndarray, pipeline: SpRAy | None = None, io: Storage | None = None
) -> CategoryResult:
    """Run SpRAy on one category's attributions ``(N, C, H, W)``.

    Parameters
    ----------
    attributions:
        The category's attribution maps, samples first.
    pipeline:
        The pipeline; ``None`` builds :class:`SpRAy` with its defaults.
    io:
        Storage given to every step that has none (modifies ``pipeline``), so that a rerun
        with the same data and params recomputes nothing.
    """
    pipeline = SpRAy() if pipeline is None else pipeline
    if not isinstance(pipeline, SpRAy):
        raise ConfigError(f"analyze_category: expected a SpRAy pipeline, found {type(pipeline)}")
    if io is not None:
        _give_storage(pipeline, io)
    output = pipeline(np.asarray(attributions))
    spectral = output["spectral"]
    result = CategoryResult(
        eigenvalues=np.asarray(spectral["eigenvalues"], dtype=np.float64),
        scores={name: float(value) for name, value in output.get("scores", {}).items()},
    )
    result.embeddings["spectral"] = np.asarray(spectral["eigenvectors"], dtype=np.float64)
    for name in EMBEDDING_TASKS:
        if name in output:
            result.embeddings[name] = np.asarray(output[name], dtype=np.float64)
    for k, labels in sorted(output.get("kmeans", {}).items()):
        result.clusterings[f"kmeans-{k:02d}"] = np.asarray(labels, dtype=np.int64)
        result.k[f"kmeans-{k:02d}"] = int(k)
    for name in ("dbscan", "hdbscan"):
        if name in output:
            result.clusterings[name] = np.asarray(output[name], dtype=np.int64)
    if "agglomerative" in output:
        k = int(getattr(pipeline.agglomerative, "n_clusters", 0)) or len(
            np.unique(output["agglomerative"])
        )
        result.clusterings[f"agglomerative-{k:02d}"] = np.asarray(
            output["agglomerative"], dtype=np.int64
        )
        result.k[f"agglomerative-{k:02d}"] = k
    return result


def spray_config(pipeline: SpRAy | None = None) -> str:
    """YAML configuration of ``pipeline`` (default: :class:`SpRAy` with its defaults)."""
    return (SpRAy() if pipeline is None else pipeline).to_yaml()


def load_spray_config(text: str) -> SpRAy:
    """Rebuild a :class:`SpRAy` pipeline from :func:`spray_config`'s YAML."""
    pipeline = Processor.from_yaml(text)
    if not isinstance(pipeline, SpRAy):
        raise ConfigError(
            f"pipeline configuration: expected processor 'spray', found {type(pipeline).__name__}"
        )
    return pipeline
