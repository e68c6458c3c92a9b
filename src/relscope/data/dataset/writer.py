"""Writing HDF5 dataset databases that :class:`~relscope.data.dataset.hdf5.HDF5Dataset` and
ViRelAy read: every input is validated first, and the file appears only once complete."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from relscope._atomic import atomic_path
from relscope.errors import ConfigError

_CHUNK_BYTES = 1 << 20
_WRITE_BLOCK_BYTES = 64 << 20
_COMPRESSIONS = (None, "gzip", "lzf")


def write_hdf5_dataset(
    path: str | os.PathLike[str],
    data: np.ndarray | Mapping[str, np.ndarray],
    labels: np.ndarray | Sequence[Any] | Mapping[str, Any],
    *,
    index: Mapping[str, int] | None = None,
    compression: str | None = "gzip",
    chunk_rows: int | None = None,
) -> Path:
    """Write a dataset database that :class:`HDF5Dataset` and ViRelAy read.

    All inputs are validated before anything is written, and the file appears at ``path``
    only once complete.

    Parameters
    ----------
    path:
        Target file (replaced if it exists); missing parent folders are created.
    data:
        Numeric array ``N x C x H x W`` (stored as float32, chunked by rows), or a mapping
        id -> ``C x H x W`` array (stored as groups ``data/<id>``). Without ``index`` the
        per-id samples are read back in HDF5 key order (sorted by id), not mapping order.
    labels:
        For array data: ``N`` non-negative integers or ``N x K`` booleans. For mapping data: a
        mapping with the same ids to a non-negative integer or a boolean ``K``-vector.
    index:
        Only with mapping data: id -> position, a permutation of ``0 .. N-1``.
    compression:
        ``"gzip"``, ``"lzf"`` or None.
    chunk_rows:
        Only with array data: images per HDF5 chunk (default: about 1 MiB per chunk).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ConfigError
        If the inputs are inconsistent or of the wrong shape or type.
    """
    if compression not in _COMPRESSIONS:
        raise ConfigError(f"compression must be one of gzip, lzf or None; got {compression!r}")
    if isinstance(data, Mapping):
        if chunk_rows is not None:
            raise ConfigError("chunk_rows applies only to array data, not to per-id images")
        write = _plan_groups(data, labels, index, compression)
    else:
        if index is not None:
            raise ConfigError("index applies only to per-id images (a mapping of arrays)")
        write = _plan_array(data, labels, compression, chunk_rows)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as temporary, h5py.File(temporary, "w") as h5:
        write(h5)
    return target


def _plan_array(
    data: object, labels: object, compression: str | None, chunk_rows: int | None
) -> Callable[[h5py.File], None]:
    array = np.asarray(data)
    if array.ndim != 4 or array.dtype.kind not in "fiu":
        raise ConfigError(
            f"data must be a numeric N x C x H x W array, got shape {array.shape} "
            f"and dtype {array.dtype}"
        )
    if min(array.shape) == 0:
        raise ConfigError(f"data must hold at least one non-empty image, got {array.shape}")
    n = array.shape[0]
    if isinstance(labels, Mapping):
        raise ConfigError("labels must be an array when data is an array, got a mapping")
    label_array = np.asarray(labels)
    if label_array.dtype.kind == "b":
        if label_array.ndim != 2 or label_array.shape[0] != n or label_array.shape[1] == 0:
            raise ConfigError(
                f"multi-label labels must be a boolean {n} x K array (K >= 1), "
                f"got shape {label_array.shape}"
            )
    elif label_array.dtype.kind in "iu":
        if label_array.shape != (n,):
            raise ConfigError(
                f"labels must be {n} class indices (or {n} x K booleans), "
                f"got shape {label_array.shape}"
            )
        if label_array.min() < 0:
            raise ConfigError(f"class indices must be >= 0, got {int(label_array.min())}")
        label_array = label_array.astype(np.int64)
    else:
        raise ConfigError(
            f"labels must be integer class indices or N x K booleans, got dtype {label_array.dtype}"
        )
    row_bytes = int(np.prod(array.shape[1:])) * 4
    if chunk_rows is None:
        chunk_rows = max(1, min(n, _CHUNK_BYTES // row_bytes))
    elif isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ConfigError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    chunk_rows = min(chunk_rows, n)
    # Converting in blocks keeps memory at one block of float32 rather than a full copy.
    block = max(1, _WRITE_BLOCK_BYTES // (row_bytes * chunk_rows)) * chunk_rows

    def write(h5: h5py.File) -> None:
        out = h5.create_dataset(
            "data",
            shape=array.shape,
            dtype=np.float32,
            chunks=(chunk_rows, *array.shape[1:]),
            compression=compression,
        )
        for start in range(0, n, block):
            out[start : start + block] = array[start : start + block].astype(np.float32)
        h5.create_dataset("label", data=label_array)

    return write


def _plan_groups(
    data: Mapping[str, Any],
    labels: object,
    index: Mapping[str, int] | None,
    compression: str | None,
) -> Callable[[h5py.File], None]:
    if not data:
        raise ConfigError("data must hold at least one image, got an empty mapping")
    images: dict[str, np.ndarray] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not key or "/" in key or key == ".":
            raise ConfigError(f"data ids must be non-empty strings without '/', got {key!r}")
        array = np.asarray(value)
        if array.ndim != 3 or array.dtype.kind not in "fiu" or min(array.shape) == 0:
            raise ConfigError(
                f"data[{key!r}] must be a non-empty numeric C x H x W array, got shape "
                f"{array.shape} and dtype {array.dtype}"
            )
        images[key] = array
    if not isinstance(labels, Mapping):
        raise ConfigError("labels must be a mapping id -> label when data is a mapping")
    _check_same_ids("labels", labels, images)
    label_values: dict[str, np.ndarray] = {}
    multi: bool | None = None
    for key in images:
        value = np.asarray(labels[key])
        if value.dtype.kind == "b" and value.ndim == 1 and value.shape[0] > 0:
            is_multi = True
        elif value.dtype.kind in "iu" and value.ndim == 0 and value >= 0:
            is_multi = False
            value = value.astype(np.int64)
        else:
            raise ConfigError(
                f"labels[{key!r}] must be a class index >= 0 or a boolean vector, got {value!r}"
            )
        if multi is None:
            multi, first = is_multi, value
        elif is_multi != multi or value.shape != first.shape:
            raise ConfigError(
                f"labels[{key!r}] must be of the same kind and length as the other labels"
            )
        label_values[key] = value
    positions: dict[str, np.int64] = {}
    if index is not None:
        if not isinstance(index, Mapping):
            raise ConfigError("index must be a mapping id -> position")
        _check_same_ids("index", index, images)
        for key in images:
            value = index[key]
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ConfigError(f"index[{key!r}] must be an integer, got {value!r}")
            positions[key] = np.int64(value)
        if sorted(int(p) for p in positions.values()) != list(range(len(images))):
            raise ConfigError(f"index positions must be a permutation of 0..{len(images) - 1}")

    def write(h5: h5py.File) -> None:
        data_group = h5.create_group("data")
        label_group = h5.create_group("label")
        for key, array in images.items():
            data_group.create_dataset(key, data=array.astype(np.float32), compression=compression)
            label_group.create_dataset(key, data=label_values[key])
        if positions:
            index_group = h5.create_group("index")
            for key, position in positions.items():
                index_group.create_dataset(key, data=position)

    return write


def _check_same_ids(name: str, mapping: Mapping[Any, Any], images: Mapping[str, Any]) -> None:
    missing = [key for key in images if key not in mapping]
    if missing:
        raise ConfigError(f"{name} has no entry for data id {missing[0]!r}")
    extra = [key for key in mapping if key not in images]
    if extra:
        raise ConfigError(f"{name} has an entry for {extra[0]!r}, which is not a data id")
