"""Analysis databases: per-category embeddings, clusterings and scores of a meta-analysis (HDF5).

Every category (usually a class, keyed like ViRelAy by WordNet id or ``%08d``) is a group::

    <category>/index             uint32 (N,)   samples of the category (attribution rows)
    <category>/embedding/<name>  float (N, d)  attrs: eigenvalue (1-D), embedding (str), index
    <category>/cluster/<name>    int (N,)      attrs: embedding (str), k, index, params (JSON)
    <category>/cluster/<flag>    bool (N,)     per-sample flags like ``train_split`` ("extras")
    <category>/score/<name>      float ()      relscope only, e.g. ``eigengap``; ViRelAy ignores it

Two physical layouts are read transparently:

``virelay``
    The default: category groups directly at the top level, one analysis per file, which is
    what ViRelAy's viewer reads and its example scripts write; the analysis name lives in the
    project file (relscope also keeps it in the file attribute ``analysis``).
``nested``
    Written only on request: top-level groups are analyses (``spray``, ``spray_abs``, ...),
    each holding category groups, so several analyses can share one file. ViRelAy cannot open
    such a file.

Errors about attributes name the key as ``<HDF5 path>@<attribute>``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import h5py
import numpy as np

from relscope._atomic import atomic_path
from relscope._version import __version__
from relscope.data._h5 import describe, open_h5, read_all, reading, require_array, require_group
from relscope.data._parts import PartStore
from relscope.errors import ConfigError, FormatError

__all__ = [
    "FORMAT",
    "LAYOUTS",
    "AnalysisDatabase",
    "AnalysisWriter",
    "CategoryAnalysis",
    "Clustering",
    "Embedding",
]

FORMAT = "relscope-analysis"
LAYOUTS = ("virelay", "nested")
Layout = Literal["virelay", "nested"]

_INDEX, _EMBEDDING, _CLUSTER, _SCORE = "index", "embedding", "cluster", "score"
# Clustering attributes with a fixed meaning; parameters may not shadow them.
_CLUSTER_ATTRS = frozenset({"embedding", "k", "index", "params"})
_UINT32_LIMIT = 2**32
_INT64_MIN, _UINT64_LIMIT = -(2**63), 2**64


# --------------------------------------------------------------------------------------------
# In-memory model
# --------------------------------------------------------------------------------------------


def _check_name(name: object, what: str) -> None:
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


def _plain(value: Any) -> Any:
    """Numpy scalars and arrays as plain Python values, so parameters survive a JSON round trip."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
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
            object.__setattr__(self, "params", _plain(self.params))
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
        _check_name(self.name, "category")
        index = self.index
        if index.ndim != 1 or index.dtype.kind not in "iu":
            raise ConfigError(f"{where}: index must be a 1-D integer array, got {_show(index)}")
        if index.size and (int(index.min()) < 0 or int(index.max()) >= _UINT32_LIMIT):
            raise ConfigError(f"{where}: index values must lie in [0, 2**32)")
        n = index.shape[0]
        for key, embedding in self.embeddings.items():
            self._validate_embedding(key, embedding, n)
        for key, clustering in self.clusterings.items():
            self._validate_clustering(key, clustering, n)
        for key, extra in self.extras.items():
            _check_name(key, f"{where}: extra")
            if key in self.clusterings:
                raise ConfigError(f"{where}: {key!r} is both a clustering and an extra")
            if extra.dtype.kind not in "bf" or extra.shape != (n,):
                raise ConfigError(
                    f"{where}: extra {key!r} must be a boolean or float array of shape ({n},), "
                    f"got {_show(extra)}"
                )
        for key, score in self.scores.items():
            _check_name(key, f"{where}: score")
            if isinstance(score, bool | np.bool_) or not isinstance(
                score, int | float | np.integer | np.floating
            ):
                raise ConfigError(f"{where}: score {key!r} must be a real number, got {score!r}")
        for key, value in self.attrs.items():
            _check_name(key, f"{where}: attribute")
            if not _storable_attr(value):
                raise ConfigError(
                    f"{where}: attribute {key!r} must be a string, a real or boolean scalar, a "
                    f"list of strings or a numeric array, got {type(value).__name__}"
                )

    def _validate_embedding(self, key: str, embedding: Embedding, n: int) -> None:
        where = f"category {self.name!r}: embedding {key!r}"
        if not isinstance(embedding, Embedding):
            raise ConfigError(f"{where}: expected an Embedding, got {type(embedding).__name__}")
        _check_name(key, "embedding")
        if embedding.name != key:
            raise ConfigError(f"{where}: stored under a different name {embedding.name!r}")
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
                    f"({_listing(sorted(set(self.embeddings) - {key}))})"
                )
            limit = self.embeddings[embedding.base].data.shape[-1]
        _validate_dims(where, embedding.dims, limit)

    def _validate_clustering(self, key: str, clustering: Clustering, n: int) -> None:
        where = f"category {self.name!r}: clustering {key!r}"
        if not isinstance(clustering, Clustering):
            raise ConfigError(f"{where}: expected a Clustering, got {type(clustering).__name__}")
        _check_name(key, "clustering")
        if clustering.name != key:
            raise ConfigError(f"{where}: stored under a different name {clustering.name!r}")
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
                    f"category ({_listing(sorted(self.embeddings))})"
                )
            limit = self.embeddings[clustering.embedding].data.shape[-1]
        _validate_dims(where, clustering.dims, limit)
        params = clustering.params
        if not isinstance(params, dict):
            raise ConfigError(f"{where}: params must be a dict, got {type(params).__name__}")
        for name in params:
            if not isinstance(name, str) or not name or name in _CLUSTER_ATTRS:
                raise ConfigError(
                    f"{where}: parameter names must be non-empty strings other than "
                    f"{', '.join(sorted(_CLUSTER_ATTRS))}, got {name!r}"
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
        return _INT64_MIN <= value < _UINT64_LIMIT
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biuf" and value.dtype.names is None
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _show(array: np.ndarray) -> str:
    return f"shape {tuple(array.shape)} and dtype {array.dtype}"


def _listing(names: list[str]) -> str:
    return "available: " + (", ".join(names) if names else "none")


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _write_category(group: h5py.Group, category: CategoryAnalysis) -> None:
    # ViRelAy's scripts store the index as uint32; validate() guarantees it fits.
    group.create_dataset(_INDEX, data=category.index.astype(np.uint32))
    embeddings = group.create_group(_EMBEDDING)
    for name in sorted(category.embeddings):
        embedding = category.embeddings[name]
        data = embedding.data
        dataset = embeddings.create_dataset(
            name, data=data if data.dtype.kind == "f" else data.astype(np.float64)
        )
        if embedding.eigenvalue is not None:
            eigenvalue = embedding.eigenvalue
            dataset.attrs["eigenvalue"] = (
                eigenvalue if eigenvalue.dtype.kind == "f" else eigenvalue.astype(np.float64)
            )
        if embedding.base is not None:
            dataset.attrs["embedding"] = embedding.base
        if embedding.dims is not None:
            dataset.attrs["index"] = embedding.dims.astype(np.int64)
    # ViRelAy lists clusterings from this group, so it exists even when empty.
    clusters = group.create_group(_CLUSTER)
    for name in sorted(category.clusterings):
        clustering = category.clusterings[name]
        dataset = clusters.create_dataset(name, data=clustering.labels)
        if clustering.embedding is not None:
            dataset.attrs["embedding"] = clustering.embedding
        if clustering.k is not None:
            dataset.attrs["k"] = np.int64(clustering.k)
        if clustering.dims is not None:
            dataset.attrs["index"] = clustering.dims.astype(np.uint32)
        dataset.attrs["params"] = json.dumps(clustering.params, sort_keys=True)
        for key in sorted(clustering.params):
            value = clustering.params[key]
            if isinstance(value, str | bool | float) or (
                isinstance(value, int) and _INT64_MIN <= value < 2**63
            ):
                dataset.attrs[key] = value
    for name in sorted(category.extras):
        clusters.create_dataset(name, data=category.extras[name])
    if category.scores:
        scores = group.create_group(_SCORE)
        for name in sorted(category.scores):
            scores.create_dataset(name, data=np.float64(category.scores[name]))
    for key in sorted(category.attrs):
        value = category.attrs[key]
        if isinstance(value, int) and not isinstance(value, bool) and value >= 2**63:
            value = np.uint64(value)
        group.attrs[key] = value


def _check_metadata(metadata: object) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping) or not all(isinstance(key, str) for key in metadata):
        raise ConfigError(f"metadata must be a dict with string keys, got {metadata!r}")
    try:
        return json.loads(json.dumps(_plain(metadata)))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"metadata must be JSON-serializable ({error})") from None


class AnalysisWriter:
    """Write one analysis into an analysis database, resumably and atomically.

    Each category is written to its own completed part file, so an interrupted run keeps every
    finished category; :meth:`close` merges the parts (sorted by category) into ``path`` in one
    atomic step. Leaving the ``with`` block through an exception merges nothing and keeps the
    parts, so a new writer with the same settings resumes (``done()`` is true for them).

    Parameters
    ----------
    path:
        The analysis database to create or extend.
    analysis:
        Name of the analysis (``"spray"``, ``"spray_abs"``, ...; ViRelAy's server cannot
        reach a name with a ``-``).
    layout:
        ``"virelay"`` (the default: categories at the top level, one analysis per file, as
        ViRelAy reads it) or ``"nested"`` (analyses as top-level groups; other analyses already
        in ``path`` are kept; ViRelAy cannot open it).
    metadata:
        JSON-serializable user metadata, stored as the ``metadata`` file attribute; when
        extending a nested file it is merged over the metadata already there.
    overwrite:
        Replace an existing analysis of the same name (nested) or the existing file (virelay).
        A nested writer keeps the other analyses of a readable nested file either way.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        analysis: str = "spray",
        *,
        layout: Layout = "virelay",
        metadata: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        self.analysis = analysis
        self.layout = layout
        self.overwrite = overwrite
        _check_name(analysis, "analysis")
        if layout not in LAYOUTS:
            raise ConfigError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        self.metadata = _check_metadata(metadata)
        if self.path.is_dir():
            raise ConfigError(f"{self.path}: is a directory, expected an analysis database file")
        # Refuse before any part is written rather than after hours of computation.
        self._existing_analyses()
        self._store = PartStore(
            self.path,
            {
                "format": FORMAT,
                "analysis": analysis,
                "layout": layout,
                "metadata": self.metadata,
            },
        )
        self._closed = False

    def __repr__(self) -> str:
        return f"AnalysisWriter({str(self.path)!r}, {self.analysis!r}, layout={self.layout!r})"

    def __enter__(self) -> AnalysisWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abandon()

    def done(self, category: str) -> bool:
        """Whether ``category`` was written completely (in this or an interrupted earlier run)."""
        return self._store.has(category)

    def completed(self) -> list[str]:
        """Completed categories, sorted."""
        return self._store.keys()

    def write(self, category: CategoryAnalysis) -> None:
        """Validate ``category`` and store it; writing a category again replaces it."""
        if self._closed:
            raise ConfigError(f"{self.path}: the analysis writer is already closed")
        if not isinstance(category, CategoryAnalysis):
            raise ConfigError(f"expected a CategoryAnalysis, got {type(category).__name__}")
        category.validate()
        with self._store.write(category.name) as part:
            _write_category(part.create_group(category.name), category)

    def close(self) -> Path:
        """Merge all completed categories into ``path`` atomically and remove the parts."""
        if self._closed:
            return self.path
        existing = self._existing_analyses()
        with atomic_path(self.path) as temporary, h5py.File(temporary, "w") as out:
            metadata = dict(self.metadata)
            if existing:
                with AnalysisDatabase(self.path) as old:
                    metadata = {**old.metadata, **self.metadata}
                    for name in existing:
                        old._file.copy(old._file[name], out, name=name)
            out.attrs["format"] = FORMAT
            out.attrs["layout"] = self.layout
            out.attrs["relscope_version"] = __version__
            out.attrs["metadata"] = json.dumps(metadata, sort_keys=True)
            if self.layout == "virelay":
                out.attrs["analysis"] = self.analysis
                target = out
            else:
                target = out.create_group(self.analysis)
            for name in self.completed():
                with self._store.read(name) as part:
                    source = require_group(part, name, file=self._store.directory / name)
                    part.copy(source, target, name=name)
        self._store.remove()
        self._closed = True
        return self.path

    def abandon(self) -> None:
        """Stop without merging; completed categories stay on disk for a later resume."""
        if not self._closed and not self._store.keys():
            self._store.remove()
        self._closed = True

    def _existing_analyses(self) -> list[str]:
        """Analyses of the file at ``path`` to carry over; raises if ours may not replace it."""
        if not self.path.exists():
            return []
        if self.layout == "virelay":
            if not self.overwrite:
                raise ConfigError(
                    f"{self.path}: exists; a ViRelAy-layout file holds a single analysis, pass "
                    "overwrite=True to replace it"
                )
            return []
        try:
            with AnalysisDatabase(self.path) as old:
                layout, analyses = old.layout, old.analyses
        except FormatError:
            if self.overwrite:
                return []
            raise
        if layout != "nested":
            if self.overwrite:
                return []
            raise ConfigError(
                f"{self.path}: exists in the ViRelAy layout and cannot take a second analysis; "
                "pass overwrite=True to replace it"
            )
        if self.analysis in analyses and not self.overwrite:
            raise ConfigError(
                f"{self.path}: already contains the analysis {self.analysis!r}; pass "
                "overwrite=True to replace it"
            )
        return [name for name in analyses if name != self.analysis]


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _members(group: h5py.Group, file: Path, *, kind: type | None = None) -> list[str]:
    """Sorted member names, each checked to be a ``kind`` object when given."""
    with reading(file, group.name):
        names = sorted(group.keys())
    if kind is not None:
        for name in names:
            key = _key(group, name)
            with reading(file, key):
                obj = group.get(name)
            if obj is None:
                raise FormatError(file, key, _KIND_NAMES[kind], "a dangling link")
            if not isinstance(obj, kind):
                raise FormatError(file, key, _KIND_NAMES[kind], describe(obj))
    return names


_KIND_NAMES = {h5py.Group: "a group", h5py.Dataset: "a dataset"}


def _key(group: h5py.Group, name: str) -> str:
    return f"{group.name.rstrip('/')}/{name}"


def _optional_group(group: h5py.Group, name: str, file: Path) -> h5py.Group | None:
    with reading(file, _key(group, name)):
        present = name in group
    return require_group(group, name, file=file) if present else None


def _attrs(obj: h5py.HLObject, file: Path) -> dict[str, Any]:
    with reading(file, obj.name):
        return {name: obj.attrs[name] for name in obj.attrs}


def _attr_string(value: Any, file: Path, key: str) -> str:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, bytes | np.bytes_):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(file, key, "a UTF-8 string", "undecodable bytes") from None
    if isinstance(value, str):
        return value
    raise FormatError(file, key, "a string", _show_attr(value))


def _attr_vector(value: Any, kinds: str, file: Path, key: str) -> np.ndarray:
    if (
        not isinstance(value, np.ndarray)
        or value.ndim != 1
        or value.dtype.kind not in kinds
        or value.dtype.names is not None
    ):
        wanted = "a 1-D integer array" if kinds == "iu" else "a 1-D real array"
        raise FormatError(file, key, wanted, _show_attr(value))
    return value


def _attr_plain(value: Any, file: Path, key: str) -> Any:
    """An attribute as a value :class:`CategoryAnalysis` accepts (and can write back)."""
    if isinstance(value, bytes | np.bytes_ | str):
        return _attr_string(value, file, key)
    if isinstance(value, np.bool_ | np.integer | np.floating):
        return value.item()
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biuf" and value.dtype.names is None:
            return value
        if value.ndim == 1 and value.dtype.kind in "OSU":
            return [_attr_string(item, file, key) for item in value]
    raise FormatError(
        file, key, "a string, a real or boolean scalar or a numeric array", _show_attr(value)
    )


def _show_attr(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:120]


def _dims_in_range(dims: np.ndarray | None, limit: int | None, file: Path, key: str) -> None:
    if dims is None or not dims.size:
        return
    if int(dims.min()) < 0 or (limit is not None and int(dims.max()) >= limit):
        bound = f"in [0, {limit})" if limit is not None else "non-negative"
        raise FormatError(file, key, f"dimensions {bound}", f"{dims.tolist()}"[:120])


def _read_embeddings(group: h5py.Group, n: int, file: Path) -> dict[str, Embedding]:
    embeddings: dict[str, Embedding] = {}
    for name in _members(group, file):
        dataset = require_array(group, name, kinds="f", ndim=2, shape=(n, None), file=file)
        data = read_all(dataset, file=file)
        if not np.isfinite(data).all():
            raise FormatError(file, dataset.name, "finite values", "NaN or infinite values")
        attrs = _attrs(dataset, file)
        eigenvalue = base = dims = None
        if "eigenvalue" in attrs:
            eigenvalue = _attr_vector(
                attrs["eigenvalue"], "fiu", file, f"{dataset.name}@eigenvalue"
            )
        if "embedding" in attrs:
            base = _attr_string(attrs["embedding"], file, f"{dataset.name}@embedding")
        if "index" in attrs:
            dims = _attr_vector(attrs["index"], "iu", file, f"{dataset.name}@index")
            _dims_in_range(dims, None, file, f"{dataset.name}@index")
        embeddings[name] = Embedding(name, data, eigenvalue, base, dims)
    for name, embedding in embeddings.items():
        if embedding.base is None:
            continue
        key = _key(group, name)
        # ViRelAy looks the base up in the same group; a dangling name would crash its viewer.
        if embedding.base not in embeddings or embedding.base == name:
            raise FormatError(
                file,
                f"{key}@embedding",
                f"the name of another embedding ({_listing(sorted(set(embeddings) - {name}))})",
                repr(embedding.base),
            )
        limit = embeddings[embedding.base].data.shape[1]
        _dims_in_range(embedding.dims, limit, file, f"{key}@index")
    return embeddings


def _read_clusters(
    group: h5py.Group, n: int, embeddings: dict[str, Embedding], file: Path
) -> tuple[dict[str, Clustering], dict[str, np.ndarray]]:
    clusterings: dict[str, Clustering] = {}
    extras: dict[str, np.ndarray] = {}
    for name in _members(group, file, kind=h5py.Dataset):
        key = _key(group, name)
        with reading(file, key):
            dtype = group[name].dtype
        if dtype.names is not None or dtype.kind not in "iubf":
            raise FormatError(
                file, key, "integer cluster labels (or a boolean/float flag per sample)", str(dtype)
            )
        if dtype.kind in "bf":
            dataset = require_array(group, name, kinds=dtype.kind, ndim=1, shape=(n,), file=file)
            extras[name] = read_all(dataset, file=file)
            continue
        dataset = require_array(group, name, kinds="iu", ndim=1, shape=(n,), file=file)
        labels = read_all(dataset, file=file)
        attrs = _attrs(dataset, file)
        embedding = k = dims = None
        if "embedding" in attrs:
            embedding = _attr_string(attrs["embedding"], file, f"{key}@embedding")
            if embedding not in embeddings:
                raise FormatError(
                    file,
                    f"{key}@embedding",
                    f"the name of an embedding of the category ({_listing(sorted(embeddings))})",
                    repr(embedding),
                )
        if "k" in attrs:
            k = _read_k(attrs["k"], file, f"{key}@k")
        if "index" in attrs:
            dims = _attr_vector(attrs["index"], "iu", file, f"{key}@index")
            limit = None if embedding is None else embeddings[embedding].data.shape[1]
            _dims_in_range(dims, limit, file, f"{key}@index")
        clusterings[name] = Clustering(
            name, labels, embedding, k, _read_params(attrs, file, key), dims
        )
    return clusterings, extras


def _read_k(value: Any, file: Path, key: str) -> int:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, np.integer | int) and not isinstance(value, bool) and value >= 1:
        return int(value)
    raise FormatError(file, key, "a positive integer", _show_attr(value))


def _read_params(attrs: dict[str, Any], file: Path, key: str) -> dict[str, Any]:
    if "params" in attrs:
        text = _attr_string(attrs["params"], file, f"{key}@params")
        try:
            params = json.loads(text)
        except json.JSONDecodeError:
            raise FormatError(file, f"{key}@params", "a JSON object", "invalid JSON") from None
        if not isinstance(params, dict) or "" in params or _CLUSTER_ATTRS & set(params):
            raise FormatError(
                file, f"{key}@params", "a JSON object of parameters", _show_attr(params)
            )
        return params
    # Files without the JSON attribute (ViRelAy's, hand-written ones) keep parameters as attributes.
    return {
        name: _plain(_attr_plain(value, file, f"{key}@{name}"))
        for name, value in attrs.items()
        if name not in _CLUSTER_ATTRS
    }


def _read_scores(group: h5py.Group, file: Path) -> dict[str, float]:
    scores: dict[str, float] = {}
    for name in _members(group, file):
        dataset = require_array(group, name, kinds="fiu", ndim=0, file=file)
        if dataset.shape != ():
            raise FormatError(file, dataset.name, "a scalar", describe(dataset))
        scores[name] = float(read_all(dataset, file=file))
    return scores


def _read_category(group: h5py.Group, name: str, file: Path) -> CategoryAnalysis:
    index_dataset = require_array(group, _INDEX, kinds="iu", ndim=1, file=file)
    index = read_all(index_dataset, file=file)
    if index.size and (int(index.min()) < 0 or int(index.max()) >= _UINT32_LIMIT):
        raise FormatError(
            file,
            index_dataset.name,
            "sample indices in [0, 2**32)",
            f"values from {index.min()} to {index.max()}",
        )
    n = index.shape[0]
    embedding_group = _optional_group(group, _EMBEDDING, file)
    embeddings = {} if embedding_group is None else _read_embeddings(embedding_group, n, file)
    cluster_group = _optional_group(group, _CLUSTER, file)
    clusterings, extras = (
        ({}, {}) if cluster_group is None else _read_clusters(cluster_group, n, embeddings, file)
    )
    score_group = _optional_group(group, _SCORE, file)
    scores = {} if score_group is None else _read_scores(score_group, file)
    attrs = {
        key: _attr_plain(value, file, f"{group.name}@{key}")
        for key, value in _attrs(group, file).items()
    }
    return CategoryAnalysis(name, index, embeddings, clusterings, scores, attrs, extras)


def _looks_like_category(group: h5py.Group, file: Path) -> bool:
    with reading(file, group.name):
        if _INDEX not in group or (_EMBEDDING not in group and _CLUSTER not in group):
            return False
        # A nested analysis may hold a category literally named "index"; that one is a group.
        return group.get(_INDEX, getclass=True) is not h5py.Group


def _check_category(group: h5py.Group, file: Path) -> None:
    """Cheap structural check: metadata only, no data read."""
    require_array(group, _INDEX, kinds="iu", ndim=1, file=file)
    for name in (_EMBEDDING, _CLUSTER, _SCORE):
        sub = _optional_group(group, name, file)
        if sub is not None:
            _members(sub, file, kind=h5py.Dataset)


class AnalysisDatabase:
    """Read an analysis database of either layout; data is read only when asked for.

    Parameters
    ----------
    path:
        The HDF5 file.
    default_analysis:
        Name reported for the single analysis of a ViRelAy-layout file without an ``analysis``
        attribute (ViRelAy keeps the name in the project file only).

    Raises
    ------
    FormatError
        If the file is missing, damaged or not laid out as an analysis database.
    """

    def __init__(self, path: str | os.PathLike[str], *, default_analysis: str = "spray") -> None:
        self.path = Path(path)
        self.default_analysis = default_analysis
        self._file = open_h5(self.path)
        try:
            self._scan()
        except BaseException:
            self._file.close()
            raise

    def _scan(self) -> None:
        file, root = self.path, self._file
        attrs = _attrs(root, file)
        if "format" in attrs and _attr_string(attrs["format"], file, "/@format") != FORMAT:
            raise FormatError(file, "/@format", repr(FORMAT), repr(attrs["format"]))
        self._metadata: dict[str, Any] = {}
        if "metadata" in attrs:
            text = _attr_string(attrs["metadata"], file, "/@metadata")
            try:
                self._metadata = json.loads(text)
            except json.JSONDecodeError:
                raise FormatError(file, "/@metadata", "a JSON object", "invalid JSON") from None
            if not isinstance(self._metadata, dict):
                raise FormatError(file, "/@metadata", "a JSON object", _show_attr(self._metadata))
        names = _members(root, file, kind=h5py.Group)
        groups = {name: root[name] for name in names}
        categories = [name for name in names if _looks_like_category(groups[name], file)]
        others = [name for name in names if name not in categories]
        stated = attrs.get("layout")
        if categories and others:
            raise FormatError(
                file,
                "/",
                "either only category groups (ViRelAy layout) or only analysis groups (nested)",
                f"category {categories[0]!r} next to non-category group {others[0]!r}",
            )
        # Category paths per analysis; the groups themselves are looked up again when read.
        self._analyses: dict[str, dict[str, str]] = {}
        self.layout: Layout
        if categories or (not names and isinstance(stated, str) and stated == "virelay"):
            self.layout = "virelay"
            name = self.default_analysis
            if "analysis" in attrs:
                name = _attr_string(attrs["analysis"], file, "/@analysis")
            for category in categories:
                _check_category(groups[category], file)
            self._analyses[name] = {category: f"/{category}" for category in categories}
        else:
            self.layout = "nested"
            for analysis in names:
                members = _members(groups[analysis], file, kind=h5py.Group)
                for category in members:
                    _check_category(groups[analysis][category], file)
                self._analyses[analysis] = {
                    category: f"/{analysis}/{category}" for category in members
                }

    def __repr__(self) -> str:
        return f"AnalysisDatabase({str(self.path)!r}, layout={self.layout!r})"

    def __enter__(self) -> AnalysisDatabase:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._file.close()

    @property
    def analyses(self) -> list[str]:
        """Names of the analyses in the file, sorted."""
        return sorted(self._analyses)

    @property
    def metadata(self) -> dict[str, Any]:
        """User metadata stored by the writer (empty for files from other tools)."""
        return dict(self._metadata)

    def _analysis(self, analysis: str | None) -> dict[str, str]:
        if analysis is None:
            if not self._analyses:
                raise KeyError(f"{self.path}: contains no analyses")
            analysis = self.analyses[0]
        try:
            return self._analyses[analysis]
        except KeyError:
            raise KeyError(
                f"{self.path}: no analysis {analysis!r}; {_listing(self.analyses)}"
            ) from None

    def _group(self, category: str, analysis: str | None) -> h5py.Group:
        paths = self._analysis(analysis)
        if category not in paths:
            raise KeyError(f"{self.path}: no category {category!r}; {_listing(sorted(paths))}")
        if not self._file:
            raise ConfigError(f"{self.path}: the analysis database is closed")
        return self._file[paths[category]]

    def categories(self, analysis: str | None = None) -> list[str]:
        """Category names of ``analysis`` (default: the first analysis), sorted."""
        return sorted(self._analysis(analysis))

    def category(self, name: str, analysis: str | None = None) -> CategoryAnalysis:
        """Read and validate one category completely."""
        return _read_category(self._group(name, analysis), name, self.path)

    def _names(self, sub: str, analysis: str | None, category: str | None) -> list[str]:
        names: set[str] = set()
        for each in self.categories(analysis) if category is None else [category]:
            group = _optional_group(self._group(each, analysis), sub, self.path)
            if group is None:
                continue
            for name in _members(group, self.path, kind=h5py.Dataset):
                if sub == _CLUSTER:
                    with reading(self.path, _key(group, name)):
                        kind = group[name].dtype.kind
                    if kind not in "iu":
                        continue
                names.add(name)
        return sorted(names)

    def embedding_names(
        self, analysis: str | None = None, category: str | None = None
    ) -> list[str]:
        """Embedding names of ``category``, or of all categories of ``analysis`` together."""
        return self._names(_EMBEDDING, analysis, category)

    def clustering_names(
        self, analysis: str | None = None, category: str | None = None
    ) -> list[str]:
        """Clustering names (integer datasets only, no extras), like :meth:`embedding_names`."""
        return self._names(_CLUSTER, analysis, category)

    def scores(self, analysis: str | None = None) -> dict[str, dict[str, float]]:
        """Scores per category of ``analysis``; categories without scores map to ``{}``."""
        result: dict[str, dict[str, float]] = {}
        for category in self.categories(analysis):
            group = _optional_group(self._group(category, analysis), _SCORE, self.path)
            result[category] = {} if group is None else _read_scores(group, self.path)
        return result
