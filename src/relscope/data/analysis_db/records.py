"""The in-memory model of an analysis: embeddings, clusterings and whole categories, and
their validation before writing (:class:`~relscope.errors.ConfigError` on bad input)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from relscope.data.analysis_db.layout import CLUSTER_ATTRS, INT64_MIN, UINT32_LIMIT, UINT64_LIMIT
from relscope.errors import ConfigError


def check_name(name: object, what: str) -> None:
    if not isinstance(name, str) or not name or "/" in name or name == ".":
        raise ConfigError(
            f"{what} name must be a non-empty string without '/' and not '.', got {name!r}"
        )


def _as_array(value: object, what: str) -> np.ndarray:
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{what} is not an array ({error})") from None


def _optional_array(value: object, what: str) -> np.ndarray | None:
    return None if value is None else _as_array(value, what)


def plain(value: Any) -> Any:
    """Numpy scalars and arrays as plain Python values, so parameters survive a JSON round trip."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


@dataclass(frozen=True, eq=False)
class Embedding:
    """One embedding of a category's samples.

    Parameters
    ----------
    name:
        Dataset name, e.g. ``"spectral"``, ``"tsne"``, ``"umap"``.
    data:
        Real array of shape (N, d), one row per sample of the category.
    eigenvalue:
        Eigenvalues of a spectral embedding (1-D), shown by ViRelAy's eigenvalue plot.
    base:
        Name of the embedding of the same category this one was computed from.
    dims:
        Which dimensions (columns) of ``base`` were used.
    """

    name: str
    data: np.ndarray
    eigenvalue: np.ndarray | None = None
    base: str | None = None
    dims: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", _as_array(self.data, f"embedding {self.name!r}"))
        object.__setattr__(
            self, "eigenvalue", _optional_array(self.eigenvalue, f"eigenvalue of {self.name!r}")
        )
        object.__setattr__(self, "dims", _optional_array(self.dims, f"dims of {self.name!r}"))


@dataclass(frozen=True, eq=False)
class Clustering:
    """One clustering of a category's samples.

    Parameters
    ----------
    name:
        Dataset name, e.g. ``"kmeans-03"``, ``"dbscan"``, ``"hdbscan"``, ``"agglomerative-05"``.
    labels:
        Integer cluster label per sample (N,); noise may be negative (DBSCAN's ``-1``).
    embedding:
        Name of the embedding of the same category that was clustered.
    k:
        Number of clusters requested, where meaningful.
    params:
        Further parameters (JSON-serializable). Stored as a ``params`` JSON attribute and,
        for scalar values, also as individual attributes for people browsing the file.
    dims:
        Which dimensions of ``embedding`` were used.
    """

    name: str
    labels: np.ndarray
    embedding: str | None = None
    k: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    dims: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _as_array(self.labels, f"clustering {self.name!r}"))
        object.__setattr__(self, "dims", _optional_array(self.dims, f"dims of {self.name!r}"))
        if isinstance(self.params, Mapping):
            object.__setattr__(self, "params", plain(self.params))
        if isinstance(self.k, np.integer):
            object.__setattr__(self, "k", int(self.k))


@dataclass(frozen=True, eq=False)
class CategoryAnalysis:
    """Everything stored for one category of one analysis.

    Parameters
    ----------
    name:
        Category key (ViRelAy: WordNet id, else ``%08d`` of the class index).
    index:
        Non-negative sample indices (N,) into the attribution database.
    embeddings, clusterings:
        By name; every array has one row per entry of ``index``.
    scores:
        Scalar per-category scores such as ``eigengap`` or ``tau``.
    attrs:
        Attributes of the category group (scalars, strings, numeric arrays), e.g. ``label_index``.
    extras:
        Non-clustering per-sample arrays stored under ``cluster/`` (boolean or float), e.g. the
        ``train_split`` flag of ViRelAy's example script.
    """

    name: str
    index: np.ndarray
    embeddings: dict[str, Embedding] = field(default_factory=dict)
    clusterings: dict[str, Clustering] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", _as_array(self.index, f"index of {self.name!r}"))
        for attribute in ("embeddings", "clusterings", "scores", "attrs", "extras"):
            value = getattr(self, attribute)
            if not isinstance(value, Mapping):
                kind = type(value).__name__
                raise ConfigError(f"category {self.name!r}: {attribute} must be a dict, got {kind}")
            object.__setattr__(self, attribute, dict(value))
        extras = {
            key: _as_array(value, f"extra {key!r}") for key, value in dict(self.extras).items()
        }
        object.__setattr__(self, "extras", extras)

    @property
    def size(self) -> int:
        """Number of samples N."""
        return int(self.index.shape[0]) if self.index.ndim else 0

    def validate(self) -> None:
        """Check names, shapes, dtypes and cross references; raise :class:`ConfigError`."""
        where = f"category {self.name!r}"
        check_name(self.name, "category")
        index = self.index
        if index.ndim != 1 or index.dtype.kind not in "iu":
            raise ConfigError(f"{where}: index must be a 1-D integer array, got {_show(index)}")
        if index.size and (int(index.min()) < 0 or int(index.max()) >= UINT32_LIMIT):
            raise ConfigError(f"{where}: index values must lie in [0, 2**32)")
        n = index.shape[0]
        for key, embedding in self.embeddings.items():
            self._validate_embedding(key, embedding, n)
        for key, clustering in self.clusterings.items():
            self._validate_clustering(key, clustering, n)
        for key, extra in self.extras.items():
            check_name(key, f"{where}: extra")
            if key in self.clusterings:
                raise ConfigError(f"{where}: {key!r} is both a clustering and an extra")
            if extra.dtype.kind not in "bf" or extra.shape != (n,):
                raise ConfigError(
                    f"{where}: extra {key!r} must be a boolean or float array of shape ({n},), "
                    f"got {_show(extra)}"
                )
        for key, score in self.scores.items():
            check_name(key, f"{where}: score")
            if isinstance(score, bool | np.bool_) or not isinstance(
                score, int | float | np.integer | np.floating
            ):
                raise ConfigError(f"{where}: score {key!r} must be a real number, got {score!r}")
        for key, value in self.attrs.items():
            check_name(key, f"{where}: attribute")
            if not _storable_attr(value):
                raise ConfigError(
                    f"{where}: attribute {key!r} must be a string, a real or boolean scalar, a "
                    f"list of strings or a numeric array, got {type(value).__name__}"
                )

    def _check_entry(self, kind: str, key: str, entry: object, cls: type) -> str:
        """Check that ``entry`` is a ``cls`` stored under its own valid name ``key``; return
        the message prefix that names it."""
        where = f"category {self.name!r}: {kind} {key!r}"
        if not isinstance(entry, cls):
            article = "an" if cls.__name__[0] in "AEIOU" else "a"
            raise ConfigError(
                f"{where}: expected {article} {cls.__name__}, got {type(entry).__name__}"
            )
        check_name(key, kind)
        if entry.name != key:
            raise ConfigError(f"{where}: stored under a different name {entry.name!r}")
        return where

    def _validate_embedding(self, key: str, embedding: Embedding, n: int) -> None:
        where = self._check_entry("embedding", key, embedding, Embedding)
        data = embedding.data
        if data.ndim != 2 or data.dtype.kind not in "fiu" or data.shape[0] != n:
            raise ConfigError(f"{where}: must be a real array of shape ({n}, d), got {_show(data)}")
        if data.dtype.kind == "f" and not np.isfinite(data).all():
            raise ConfigError(f"{where}: contains NaN or infinite values")
        eigenvalue = embedding.eigenvalue
        if eigenvalue is not None and (eigenvalue.ndim != 1 or eigenvalue.dtype.kind not in "fiu"):
            raise ConfigError(
                f"{where}: eigenvalue must be a 1-D real array, got {_show(eigenvalue)}"
            )
        limit = None
        if embedding.base is not None:
            if embedding.base not in self.embeddings or embedding.base == key:
                raise ConfigError(
                    f"{where}: base {embedding.base!r} must be another embedding of the category "
                    f"({listing(sorted(set(self.embeddings) - {key}))})"
                )
            limit = self.embeddings[embedding.base].data.shape[-1]
        _validate_dims(where, embedding.dims, limit)

    def _validate_clustering(self, key: str, clustering: Clustering, n: int) -> None:
        where = self._check_entry("clustering", key, clustering, Clustering)
        labels = clustering.labels
        if labels.dtype.kind not in "iu" or labels.shape != (n,):
            raise ConfigError(
                f"{where}: labels must be an integer array of shape ({n},), got {_show(labels)}"
            )
        if clustering.k is not None and (
            isinstance(clustering.k, bool) or not isinstance(clustering.k, int) or clustering.k < 1
        ):
            raise ConfigError(f"{where}: k must be a positive integer, got {clustering.k!r}")
        limit = None
        if clustering.embedding is not None:
            if clustering.embedding not in self.embeddings:
                raise ConfigError(
                    f"{where}: embedding {clustering.embedding!r} is not an embedding of the "
                    f"category ({listing(sorted(self.embeddings))})"
                )
            limit = self.embeddings[clustering.embedding].data.shape[-1]
        _validate_dims(where, clustering.dims, limit)
        params = clustering.params
        if not isinstance(params, dict):
            raise ConfigError(f"{where}: params must be a dict, got {type(params).__name__}")
        for name in params:
            if not isinstance(name, str) or not name or name in CLUSTER_ATTRS:
                raise ConfigError(
                    f"{where}: parameter names must be non-empty strings other than "
                    f"{', '.join(sorted(CLUSTER_ATTRS))}, got {name!r}"
                )
        try:
            json.dumps(params)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{where}: params must be JSON-serializable ({error})") from None


def _validate_dims(where: str, dims: np.ndarray | None, limit: int | None) -> None:
    if dims is None:
        return
    if dims.ndim != 1 or dims.dtype.kind not in "iu":
        raise ConfigError(f"{where}: dims must be a 1-D integer array, got {_show(dims)}")
    if dims.size and (int(dims.min()) < 0 or (limit is not None and int(dims.max()) >= limit)):
        bound = f"[0, {limit})" if limit is not None else ">= 0"
        raise ConfigError(f"{where}: dims must lie in {bound}, got {dims.tolist()}")


def _storable_attr(value: object) -> bool:
    if isinstance(value, str | bool | np.bool_ | float | np.floating | np.integer):
        return True
    if isinstance(value, int):
        return INT64_MIN <= value < UINT64_LIMIT
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biuf" and value.dtype.names is None
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _show(array: np.ndarray) -> str:
    return f"shape {tuple(array.shape)} and dtype {array.dtype}"


def listing(names: list[str]) -> str:
    return "available: " + (", ".join(names) if names else "none")
