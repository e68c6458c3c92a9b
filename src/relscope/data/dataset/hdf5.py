"""HDF5 dataset databases (the ViRelAy layout), read lazily and validated on opening.

``data`` is either a float array ``N x C x H x W`` (equal-size images) or a group
``data/<id>`` of ``C x H x W`` arrays (varying sizes). ``label`` holds ``N`` integer class
indices or ``N x K`` booleans (multi-label); with a ``data`` group it is a group ``label/<id>``
of integer scalars or boolean ``K``-vectors. An optional group ``index/<id>`` gives each id
its integer position; without it the sample order is the key order of ``data`` as h5py
iterates it (which is what ViRelAy uses).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import h5py
import numpy as np

from relscope.data._h5 import (
    closed_on_error,
    describe,
    open_h5,
    read_rows,
    reading,
    require_array,
    require_group,
)
from relscope.data.dataset.base import ImageDataset, Transform
from relscope.errors import FormatError


class HDF5Dataset(ImageDataset):
    """A dataset database in HDF5 (the ViRelAy layout), read lazily.

    The layout is validated when the dataset is opened, without reading image data; per-id
    entries other than the first are checked when they are read. The file is opened once per
    process, so the dataset can be used by DataLoader workers.

    Parameters
    ----------
    path:
        The HDF5 file.
    transform:
        Optional callable applied to image tensors in ``__getitem__``.

    Raises
    ------
    FormatError
        If the file is missing, not HDF5, damaged or has another layout.
    """

    _size_hint = "read samples of different sizes with batch_size=1 or store them resized"

    def __init__(self, path: str | os.PathLike[str], *, transform: Transform | None = None) -> None:
        super().__init__(path, transform)
        self._file: h5py.File | None = None
        self._pid: int | None = None
        self._images: h5py.Dataset | None = None
        self._labels: np.ndarray | None = None
        self._grouped = False
        self._ids: list[str] = []
        self._length = 0
        self._num_labels = 0  # K of multi-label per-id labels
        with closed_on_error(self):
            self._inspect(self._handle())

    # Handles are per process: a forked DataLoader worker must not share the parent's.
    def _handle(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            self._file = open_h5(self.path)
            self._pid = os.getpid()
            self._images = None
        return self._file

    def _image_array(self) -> h5py.Dataset:
        """The open ``/data`` array, kept: reopening it per read drops its chunk cache, so
        every single-sample read (a gallery image) decompressed a whole chunk again."""
        file = self._handle()
        if self._images is None:
            self._images = file["data"]
        return self._images

    def close(self) -> None:
        """Close the file if this process opened it."""
        if self._file is not None and self._pid == os.getpid():
            with contextlib.suppress(Exception):
                self._file.close()
        self._file = None
        self._pid = None
        self._images = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None
        state["_pid"] = None
        state["_images"] = None
        return state

    def __len__(self) -> int:
        return self._length

    def ids(self) -> list[str]:
        """Per-id group keys in dataset order, or ``"0" .. "N-1"`` for an array ``data``."""
        if self._grouped:
            return list(self._ids)
        return [str(i) for i in range(self._length)]

    def _inspect(self, h5: h5py.File) -> None:
        file = self.path
        with reading(file, "/"):
            if "data" not in h5:
                raise FormatError(file, "/data", "a dataset or group of images", "nothing")
            data = h5["data"]
            if "label" not in h5:
                raise FormatError(file, "/label", "a dataset or group of labels", "nothing")
        if isinstance(data, h5py.Group):
            self._inspect_grouped(h5)
        else:
            self._inspect_array(h5)

    def _inspect_array(self, h5: h5py.File) -> None:
        file = self.path
        with reading(file, "/data"):
            data = require_array(h5, "data", kinds="fiu", ndim=4, file=file)
            if min(data.shape) == 0:
                raise FormatError(
                    file, "/data", "at least one non-empty image", f"shape {data.shape}"
                )
        n = int(data.shape[0])
        with reading(file, "/label"):
            label = h5["label"]
            if not isinstance(label, h5py.Dataset):
                raise FormatError(file, "/label", f"a label dataset of length {n}", "a group")
            if label.ndim == 2 or label.dtype.kind == "b":
                label = require_array(h5, "label", kinds="b", ndim=2, shape=(n, None), file=file)
                if label.shape[1] == 0:
                    raise FormatError(file, "/label", "at least one class", f"shape {label.shape}")
                self.multi_label = True
                self.num_classes = int(label.shape[1])
            else:
                require_array(h5, "label", kinds="iu", ndim=1, shape=(n,), file=file)
        self._length = n

    def _inspect_grouped(self, h5: h5py.File) -> None:
        file = self.path
        with reading(file, "/data"):
            data = h5["data"]
            ids = list(data.keys())
        if not ids:
            raise FormatError(file, "/data", "at least one image", "an empty group")
        with reading(file, "/label"):
            label = require_group(h5, "label", file=file)
            label_ids = set(label.keys())
        missing = [i for i in ids if i not in label_ids]
        if missing:
            raise FormatError(file, f"/label/{missing[0]}", "a label for every image", "nothing")
        extra = sorted(label_ids.difference(ids))
        if extra:
            raise FormatError(
                file, f"/label/{extra[0]}", "labels only for ids present in /data", "an extra id"
            )
        if "index" in h5:
            ids = self._read_index(h5, ids)
        self._grouped = True
        self._ids = ids
        self._length = len(ids)
        # Only the first entries are checked now; the others when they are read.
        self._group_dataset(ids[0])
        with reading(file, f"/label/{ids[0]}"):
            first = label[ids[0]]
            if isinstance(first, h5py.Dataset) and first.dtype.kind == "b" and first.ndim == 1:
                self.multi_label = True
                self._num_labels = int(first.shape[0])
                if self._num_labels == 0:
                    raise FormatError(file, f"/label/{ids[0]}", "at least one class", "shape (0,)")
                self.num_classes = self._num_labels
        self._read_label(0)

    def _read_index(self, h5: h5py.File, ids: list[str]) -> list[str]:
        file = self.path
        with reading(file, "/index"):
            group = require_group(h5, "index", file=file)
            index_ids = set(group.keys())
        if index_ids != set(ids):
            odd = sorted(index_ids.symmetric_difference(ids))[0]
            found = "an id missing from /data" if odd in index_ids else "no entry for it"
            raise FormatError(file, f"/index/{odd}", "exactly the ids of /data", found)
        positions: dict[int, str] = {}
        for key in ids:
            name = f"/index/{key}"
            with reading(file, name):
                value = require_array(group, key, kinds="iu", ndim=0, file=file)[()]
            position = int(value)
            if not 0 <= position < len(ids) or position in positions:
                raise FormatError(
                    file,
                    name,
                    f"a distinct position in 0..{len(ids) - 1}",
                    f"{position}" + (" twice" if position in positions else ""),
                )
            positions[position] = key
        return [positions[p] for p in range(len(ids))]

    def _group_dataset(self, key: str) -> h5py.Dataset:
        file = self.path
        name = f"/data/{key}"
        with reading(file, name):
            dataset = require_array(self._handle()["data"], key, kinds="fiu", ndim=3, file=file)
            if min(dataset.shape) == 0:
                raise FormatError(file, name, "a non-empty C x H x W image", describe(dataset))
        return dataset

    def _group_image(self, key: str) -> np.ndarray:
        dataset = self._group_dataset(key)
        with reading(self.path, f"/data/{key}"):
            return dataset[()]

    def _read_data(self, index: int) -> np.ndarray:
        if self._grouped:
            array = self._group_image(self._ids[index])
        else:
            with reading(self.path, "/data"):
                array = self._image_array()[index]
        return np.ascontiguousarray(array, dtype=np.float32)

    def _read_label(self, index: int) -> int | np.ndarray:
        if self._labels is not None:
            value = self._labels[index]
        elif self._grouped:
            value = self._group_label(self._ids[index])
        else:
            value = self.labels()[index]
        return value.copy() if self.multi_label else int(value)

    def _group_label(self, key: str) -> np.ndarray:
        file = self.path
        name = f"/label/{key}"
        with reading(file, name):
            group = self._handle()["label"]
            if self.multi_label:
                dataset = require_array(
                    group, key, kinds="b", ndim=1, shape=(self._num_labels,), file=file
                )
            else:
                dataset = require_array(group, key, kinds="iu", ndim=0, file=file)
            value = np.asarray(dataset[()])
        if not self.multi_label:
            _check_class_indices(file, name, value)
            value = value.astype(np.int64)
        return value

    def labels(self) -> np.ndarray:
        """All labels: int64 ``(N,)`` class indices or bool ``(N, K)``."""
        if self._labels is None:
            if self._grouped:
                values = [self._group_label(key) for key in self._ids]
                labels = np.stack(values) if self.multi_label else np.asarray(values, np.int64)
            else:
                with reading(self.path, "/label"):
                    labels = np.asarray(self._handle()["label"][()])
                if not self.multi_label:
                    _check_class_indices(self.path, "/label", labels)
                    labels = labels.astype(np.int64)
            self._labels = labels
        return self._labels.copy()

    def _read_rows(self, rows: np.ndarray) -> np.ndarray:
        if self._grouped:
            return super()._read_rows(rows)
        with reading(self.path, "/data"):
            block = read_rows(self._image_array(), rows)
        return np.ascontiguousarray(block, dtype=np.float32)


def _check_class_indices(file: str | os.PathLike[str], key: str, values: np.ndarray) -> None:
    if values.size == 0:
        return
    if values.min() < 0:
        raise FormatError(file, key, "class indices >= 0", f"{int(values.min())}")
    if values.dtype.kind == "u" and values.max() > np.iinfo(np.int64).max:
        raise FormatError(file, key, "class indices below 2**63", f"{int(values.max())}")
