"""Reading one category group of an analysis database back into a
:class:`~relscope.data.analysis_db.records.CategoryAnalysis`, checking every key, dtype, shape
and attribute on the way (:class:`~relscope.errors.FormatError` naming it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from relscope.data._h5 import KIND_NAMES, describe, read_all, reading, require_array, require_group
from relscope.data.analysis_db.layout import (
    CLUSTER,
    CLUSTER_ATTRS,
    EMBEDDING,
    INDEX,
    SCORE,
    UINT32_LIMIT,
)
from relscope.data.analysis_db.records import (
    CategoryAnalysis,
    Clustering,
    Embedding,
    listing,
    plain,
)
from relscope.errors import FormatError


def member_names(group: h5py.Group, file: Path, *, kind: type | None = None) -> list[str]:
    """Sorted member names, each checked to be a ``kind`` object when given."""
    with reading(file, group.name):
        names = sorted(group.keys())
    if kind is not None:
        for name in names:
            key = key_of(group, name)
            with reading(file, key):
                obj = group.get(name)
            if obj is None:
                raise FormatError(file, key, KIND_NAMES[kind], "a dangling link")
            if not isinstance(obj, kind):
                raise FormatError(file, key, KIND_NAMES[kind], describe(obj))
    return names


def key_of(group: h5py.Group, name: str) -> str:
    return f"{group.name.rstrip('/')}/{name}"


def optional_group(group: h5py.Group, name: str, file: Path) -> h5py.Group | None:
    with reading(file, key_of(group, name)):
        present = name in group
    return require_group(group, name, file=file) if present else None


def read_attrs(obj: h5py.HLObject, file: Path) -> dict[str, Any]:
    with reading(file, obj.name):
        return {name: obj.attrs[name] for name in obj.attrs}


def attr_string(value: Any, file: Path, key: str) -> str:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, bytes | np.bytes_):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(file, key, "a UTF-8 string", "undecodable bytes") from None
    if isinstance(value, str):
        return value
    raise FormatError(file, key, "a string", show_attr(value))


def _attr_vector(value: Any, kinds: str, file: Path, key: str) -> np.ndarray:
    if (
        not isinstance(value, np.ndarray)
        or value.ndim != 1
        or value.dtype.kind not in kinds
        or value.dtype.names is not None
    ):
        wanted = "a 1-D integer array" if kinds == "iu" else "a 1-D real array"
        raise FormatError(file, key, wanted, show_attr(value))
    return value


def _attr_plain(value: Any, file: Path, key: str) -> Any:
    """An attribute as a value :class:`CategoryAnalysis` accepts (and can write back)."""
    if isinstance(value, bytes | np.bytes_ | str):
        return attr_string(value, file, key)
    if isinstance(value, np.bool_ | np.integer | np.floating):
        return value.item()
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biuf" and value.dtype.names is None:
            return value
        if value.ndim == 1 and value.dtype.kind in "OSU":
            return [attr_string(item, file, key) for item in value]
    raise FormatError(
        file, key, "a string, a real or boolean scalar or a numeric array", show_attr(value)
    )


def show_attr(value: Any) -> str:
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
    for name in member_names(group, file):
        dataset = require_array(group, name, kinds="f", ndim=2, shape=(n, None), file=file)
        data = read_all(dataset, file=file)
        if not np.isfinite(data).all():
            raise FormatError(file, dataset.name, "finite values", "NaN or infinite values")
        attrs = read_attrs(dataset, file)
        eigenvalue = base = dims = None
        if "eigenvalue" in attrs:
            eigenvalue = _attr_vector(
                attrs["eigenvalue"], "fiu", file, f"{dataset.name}@eigenvalue"
            )
        if "embedding" in attrs:
            base = attr_string(attrs["embedding"], file, f"{dataset.name}@embedding")
        if "index" in attrs:
            dims = _attr_vector(attrs["index"], "iu", file, f"{dataset.name}@index")
            _dims_in_range(dims, None, file, f"{dataset.name}@index")
        embeddings[name] = Embedding(name, data, eigenvalue, base, dims)
    for name, embedding in embeddings.items():
        if embedding.base is None:
            continue
        key = key_of(group, name)
        # ViRelAy looks the base up in the same group; a dangling name would crash its viewer.
        if embedding.base not in embeddings or embedding.base == name:
            raise FormatError(
                file,
                f"{key}@embedding",
                f"the name of another embedding ({listing(sorted(set(embeddings) - {name}))})",
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
    for name in member_names(group, file, kind=h5py.Dataset):
        key = key_of(group, name)
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
        attrs = read_attrs(dataset, file)
        embedding = k = dims = None
        if "embedding" in attrs:
            embedding = attr_string(attrs["embedding"], file, f"{key}@embedding")
            if embedding not in embeddings:
                raise FormatError(
                    file,
                    f"{key}@embedding",
                    f"the name of an embedding of the category ({listing(sorted(embeddings))})",
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
    raise FormatError(file, key, "a positive integer", show_attr(value))


def _read_params(attrs: dict[str, Any], file: Path, key: str) -> dict[str, Any]:
    if "params" in attrs:
        text = attr_string(attrs["params"], file, f"{key}@params")
        try:
            params = json.loads(text)
        except json.JSONDecodeError:
            raise FormatError(file, f"{key}@params", "a JSON object", "invalid JSON") from None
        if not isinstance(params, dict) or "" in params or CLUSTER_ATTRS & set(params):
            raise FormatError(
                file, f"{key}@params", "a JSON object of parameters", show_attr(params)
            )
        return params
    # Files without the JSON attribute (ViRelAy's, hand-written ones) keep parameters as attributes.
    return {
        name: plain(_attr_plain(value, file, f"{key}@{name}"))
        for name, value in attrs.items()
        if name not in CLUSTER_ATTRS
    }


def read_scores(group: h5py.Group, file: Path) -> dict[str, float]:
    scores: dict[str, float] = {}
    for name in member_names(group, file):
        dataset = require_array(group, name, kinds="fiu", ndim=0, file=file)
        if dataset.shape != ():
            raise FormatError(file, dataset.name, "a scalar", describe(dataset))
        scores[name] = float(read_all(dataset, file=file))
    return scores


def read_category(group: h5py.Group, name: str, file: Path) -> CategoryAnalysis:
    index_dataset = require_array(group, INDEX, kinds="iu", ndim=1, file=file)
    index = read_all(index_dataset, file=file)
    if index.size and (int(index.min()) < 0 or int(index.max()) >= UINT32_LIMIT):
        raise FormatError(
            file,
            index_dataset.name,
            "sample indices in [0, 2**32)",
            f"values from {index.min()} to {index.max()}",
        )
    n = index.shape[0]
    embedding_group = optional_group(group, EMBEDDING, file)
    embeddings = {} if embedding_group is None else _read_embeddings(embedding_group, n, file)
    cluster_group = optional_group(group, CLUSTER, file)
    clusterings, extras = (
        ({}, {}) if cluster_group is None else _read_clusters(cluster_group, n, embeddings, file)
    )
    score_group = optional_group(group, SCORE, file)
    scores = {} if score_group is None else read_scores(score_group, file)
    attrs = {
        key: _attr_plain(value, file, f"{group.name}@{key}")
        for key, value in read_attrs(group, file).items()
    }
    return CategoryAnalysis(name, index, embeddings, clusterings, scores, attrs, extras)


def looks_like_category(group: h5py.Group, file: Path) -> bool:
    with reading(file, group.name):
        if INDEX not in group or (EMBEDDING not in group and CLUSTER not in group):
            return False
        # A nested analysis may hold a category literally named "index"; that one is a group.
        return group.get(INDEX, getclass=True) is not h5py.Group


def check_category(group: h5py.Group, file: Path) -> None:
    """Cheap structural check: metadata only, no data read."""
    require_array(group, INDEX, kinds="iu", ndim=1, file=file)
    for name in (EMBEDDING, CLUSTER, SCORE):
        sub = optional_group(group, name, file)
        if sub is not None:
            member_names(sub, file, kind=h5py.Dataset)
