"""Datasets: HDF5 dataset databases and image folders behind one PyTorch interface.

Two on-disk layouts are read, both compatible with the ViRelAy viewer:

HDF5 dataset database
    ``data`` is either a float array ``N x C x H x W`` (equal-size images) or a group
    ``data/<id>`` of ``C x H x W`` arrays (varying sizes). ``label`` holds ``N`` integer class
    indices or ``N x K`` booleans (multi-label); with a ``data`` group it is a group
    ``label/<id>`` of integer scalars or boolean ``K``-vectors. An optional group
    ``index/<id>`` gives each id its integer position; without it the sample order is the
    key order of ``data`` as h5py iterates it (which is what ViRelAy uses).

Image folder
    One sub-folder per class; every image file below the root is a sample, in sorted order of
    the relative POSIX paths (ViRelAy's sorted glob order).

Both are :class:`ImageDataset` objects: a :class:`torch.utils.data.Dataset` of
``(image, label)`` tensors that also offers whole-sample access (:meth:`ImageDataset.sample`),
all labels without decoding images (:meth:`ImageDataset.labels`) and fast batched reading
(:meth:`ImageDataset.batches`).
"""

from __future__ import annotations

import abc
import contextlib
import operator
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from relscope._atomic import atomic_path
from relscope.data._h5 import (
    describe,
    open_h5,
    read_rows,
    reading,
    require_array,
    require_group,
)
from relscope.data.labels import LabelMap
from relscope.errors import ConfigError, FormatError

__all__ = [
    "DATASET_KINDS",
    "DOWN_SAMPLING_METHODS",
    "IMAGE_EXTENSIONS",
    "UP_SAMPLING_METHODS",
    "Batch",
    "HDF5Dataset",
    "ImageDataset",
    "ImageFolderDataset",
    "Sample",
    "open_dataset",
    "write_hdf5_dataset",
]

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
UP_SAMPLING_METHODS = (
    "none",
    "fill_zeros",
    "fill_ones",
    "edge_repeat",
    "mirror_edge",
    "wrap_around",
    "resize",
)
DOWN_SAMPLING_METHODS = ("none", "center_crop", "resize")
DATASET_KINDS = ("hdf5", "image_directory")
IMAGE_MODES = ("RGB", "L")

# np.pad modes of the padding up-sampling methods; fill_ones is a constant pad with 1.0.
_PAD_MODES = {
    "fill_zeros": "constant",
    "fill_ones": "constant",
    "edge_repeat": "edge",
    "mirror_edge": "symmetric",
    "wrap_around": "wrap",
}
_CHUNK_BYTES = 1 << 20
_WRITE_BLOCK_BYTES = 64 << 20
_COMPRESSIONS = (None, "gzip", "lzf")

Transform = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True, eq=False)
class Sample:
    """One decoded sample.

    Attributes
    ----------
    index:
        Position of the sample in the dataset.
    data:
        The image, float32 ``C x H x W``.
    label:
        The class index (single-label) or a boolean ``K``-vector (multi-label).
    """

    index: int
    data: np.ndarray
    label: int | np.ndarray


@dataclass(frozen=True, eq=False)
class Batch:
    """Several samples stacked along a first axis.

    Attributes
    ----------
    index:
        int64 ``(B,)`` dataset positions, in the order they were asked for.
    data:
        float32 ``(B, C, H, W)`` images.
    label:
        int64 ``(B,)`` class indices or bool ``(B, K)`` multi-label vectors.
    """

    index: np.ndarray
    data: np.ndarray
    label: np.ndarray


class ImageDataset(Dataset[tuple[torch.Tensor, torch.Tensor]], abc.ABC):
    """Common interface of HDF5 dataset databases and image folders.

    Indexing yields ``(image, label)`` tensors, so a dataset can be handed to a
    :class:`torch.utils.data.DataLoader`, also with worker processes. Indices must lie in
    ``0 .. len - 1``; anything else raises :class:`IndexError`.

    Attributes
    ----------
    path:
        The file or folder the samples come from.
    multi_label:
        Whether labels are boolean ``K``-vectors rather than class indices.
    num_classes:
        Number of classes where known, else None.
    transform:
        Callable applied to the image tensor in ``__getitem__`` (not in :meth:`sample` or
        :meth:`batches`).
    """

    path: Path
    multi_label: bool
    num_classes: int | None
    # Appended to the error raised when a batch mixes image sizes.
    _size_hint = "read such samples one at a time (batch_size=1)"

    def __init__(self, path: str | os.PathLike[str], transform: Transform | None = None) -> None:
        if transform is not None and not callable(transform):
            raise ConfigError(f"transform must be callable, got {type(transform).__name__}")
        self.path = Path(path)
        self.transform = transform
        self.multi_label = False
        self.num_classes = None

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of samples."""

    @abc.abstractmethod
    def _read_data(self, index: int) -> np.ndarray:
        """The float32 ``C x H x W`` image at a validated position."""

    @abc.abstractmethod
    def _read_label(self, index: int) -> int | np.ndarray:
        """The label at a validated position."""

    @abc.abstractmethod
    def labels(self) -> np.ndarray:
        """All labels, int64 ``(N,)`` or bool ``(N, K)``, without decoding any image."""

    @abc.abstractmethod
    def ids(self) -> list[str]:
        """The identifier of every sample, in dataset order."""

    def close(self) -> None:
        """Release open files (a later read opens them again)."""

    def __enter__(self) -> ImageDataset:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        kind = "multi-label" if self.multi_label else "single-label"
        return f"{type(self).__name__}({str(self.path)!r}, {len(self)} samples, {kind})"

    def _check_index(self, index: Any) -> int:
        try:
            position = operator.index(index)
        except TypeError:
            raise TypeError(
                f"dataset indices must be integers, not {type(index).__name__}"
            ) from None
        if not 0 <= position < len(self):
            raise IndexError(
                f"{self.path}: sample index {position} is out of range 0..{len(self) - 1}"
                if len(self)
                else f"{self.path}: sample index {position} is out of range (no samples)"
            )
        return position

    def _check_indices(self, indices: Sequence[int] | np.ndarray | None) -> np.ndarray:
        if indices is None:
            return np.arange(len(self), dtype=np.int64)
        array = np.asarray(indices)
        if array.size == 0:
            return np.zeros(0, dtype=np.int64)
        if array.ndim != 1 or array.dtype.kind not in "iu":
            raise TypeError(
                f"indices must be a 1-D sequence of integers, got shape {array.shape} "
                f"and dtype {array.dtype}"
            )
        outside = (array < 0) | (array >= len(self))
        if outside.any():
            raise IndexError(
                f"{self.path}: sample index {int(array[outside][0])} is out of range "
                f"0..{len(self) - 1}"
            )
        return array.astype(np.int64)

    def sample(self, index: int) -> Sample:
        """The sample at position ``index`` with its decoded image and label."""
        position = self._check_index(index)
        return Sample(position, self._read_data(position), self._read_label(position))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        sample = self.sample(index)
        image = torch.from_numpy(sample.data)
        if self.multi_label:
            label = torch.from_numpy(np.asarray(sample.label, dtype=bool).copy())
        else:
            label = torch.tensor(int(sample.label), dtype=torch.int64)
        if self.transform is not None:
            image = self.transform(image)
        return image, label

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``[self[i] for i in indices]``, read as one batch.

        A :class:`torch.utils.data.DataLoader` fetches whole batches through this method, so
        an HDF5 file is read with one selection per batch rather than one per sample (with
        compressed chunks that is the difference between decompressing a chunk once and once
        per sample).
        """
        rows = self._check_indices(list(indices))
        if not len(rows):
            return []
        data = self._read_rows(rows)
        labels = self.labels()[rows]
        items = []
        for image, label in zip(data, labels, strict=True):
            tensor = torch.from_numpy(np.ascontiguousarray(image))
            if self.transform is not None:
                tensor = self.transform(tensor)
            if self.multi_label:
                target = torch.from_numpy(np.asarray(label, dtype=bool).copy())
            else:
                target = torch.tensor(int(label), dtype=torch.int64)
            items.append((tensor, target))
        return items

    def batches(
        self, batch_size: int, indices: Sequence[int] | np.ndarray | None = None
    ) -> Iterator[Batch]:
        """Read samples in batches of ``batch_size`` (the last one may be smaller).

        Parameters
        ----------
        batch_size:
            Number of samples per batch, at least 1.
        indices:
            Positions to read, in this order (repetitions allowed); all samples when None.

        Raises
        ------
        ConfigError
            If a batch would mix images of different sizes.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size}")
        # Checked here rather than in the generator so bad indices fail at the call.
        order = self._check_indices(indices)
        return self._iter_batches(int(batch_size), order)

    def _iter_batches(self, batch_size: int, order: np.ndarray) -> Iterator[Batch]:
        all_labels = self.labels() if len(order) else None
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            data = self._read_rows(rows)
            yield Batch(rows.copy(), data, all_labels[rows])

    def _read_rows(self, rows: np.ndarray) -> np.ndarray:
        images = [self._read_data(int(row)) for row in rows]
        first = images[0].shape
        for row, image in zip(rows, images, strict=True):
            if image.shape != first:
                raise ConfigError(
                    f"{self.path}: cannot batch images of different sizes (sample "
                    f"{int(rows[0])} is {_shape_text(first)}, sample {int(row)} is "
                    f"{_shape_text(image.shape)}); {self._size_hint}"
                )
        return np.stack(images)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in shape)


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
        try:
            self._inspect(self._handle())
        except BaseException:
            self.close()
            raise

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


class ImageFolderDataset(ImageDataset):
    """A folder of image files with one sub-folder per class.

    Every file with an image extension (png, jpg, jpeg, bmp, gif, tif, tiff, webp; any case)
    below ``path`` is a sample, in sorted order of the relative POSIX paths. Hidden files and
    folders (names starting with ``.``) are skipped, as ViRelAy's glob skips them.

    Parameters
    ----------
    path:
        The root folder.
    label_map:
        Resolves class folder names (WordNet id, zero-padded index or name) to labels. Without
        one, the sorted names of the folders that contain images become classes 0..K-1.
    size:
        ``(height, width)`` every image is brought to with the sampling methods; None keeps
        native sizes (batching then needs equal sizes).
    up_sampling:
        Method for dimensions smaller than ``size``: one of :data:`UP_SAMPLING_METHODS`.
        Padding methods centre the image (an odd remainder goes to the bottom/right).
    down_sampling:
        Method for dimensions larger than ``size``: one of :data:`DOWN_SAMPLING_METHODS`.
    mode:
        ``"RGB"`` (3 channels) or ``"L"`` (1 channel).
    label_index_regex, label_word_net_id_regex:
        A regular expression matched (``re.match``) against the relative path, or failing that
        against the full path (``path`` joined with it, which is what ViRelAy matches), whose
        first group is the class index or WordNet id; at most one may be given, and the
        WordNet id form needs a label map. It replaces the class-folder rule.
    transform:
        Optional callable applied to image tensors in ``__getitem__``.

    Raises
    ------
    ConfigError
        For invalid options.
    FormatError
        If the folder is missing, has no images, or a sample gets no label.
    """

    _size_hint = "set size=(height, width) with up-/down-sampling methods other than 'none'"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        label_map: LabelMap | None = None,
        size: tuple[int, int] | None = None,
        up_sampling: str = "none",
        down_sampling: str = "none",
        mode: str = "RGB",
        label_index_regex: str | None = None,
        label_word_net_id_regex: str | None = None,
        transform: Transform | None = None,
    ) -> None:
        super().__init__(path, transform)
        if label_map is not None and not isinstance(label_map, LabelMap):
            raise ConfigError(f"label_map must be a LabelMap, got {type(label_map).__name__}")
        self.label_map = label_map
        self.size = _check_size(size)
        self.up_sampling = _check_choice("up_sampling", up_sampling, UP_SAMPLING_METHODS)
        self.down_sampling = _check_choice("down_sampling", down_sampling, DOWN_SAMPLING_METHODS)
        self.mode = _check_choice("mode", mode, IMAGE_MODES)
        if label_index_regex is not None and label_word_net_id_regex is not None:
            raise ConfigError("give at most one of label_index_regex and label_word_net_id_regex")
        if label_word_net_id_regex is not None and label_map is None:
            raise ConfigError("label_word_net_id_regex needs a label map to resolve WordNet ids")
        self._index_regex = _compile("label_index_regex", label_index_regex)
        self._wnid_regex = _compile("label_word_net_id_regex", label_word_net_id_regex)
        self._wnid_lookup: dict[str, int] | None = None

        if not self.path.is_dir():
            found = "a file" if self.path.exists() else "no such folder"
            raise FormatError(self.path, "/", "an image folder", found)
        self._files = _find_images(self.path)
        if not self._files:
            extensions = ", ".join(sorted(e[1:] for e in IMAGE_EXTENSIONS))
            raise FormatError(self.path, "/", f"image files ({extensions})", "none")
        self.classes: list[str] | None = None
        self._labels = self._assign_labels()
        if label_map is not None:
            self.num_classes = max(label_map.indices) + 1
        elif self.classes is not None:
            self.num_classes = len(self.classes)

    def _assign_labels(self) -> np.ndarray:
        regex = self._index_regex or self._wnid_regex
        if regex is not None:
            return np.asarray([self._regex_label(regex, rel) for rel in self._files], np.int64)
        folders = []
        for rel in self._files:
            if "/" not in rel:
                raise FormatError(
                    self.path,
                    rel,
                    "images inside one sub-folder per class (or a label regex)",
                    "an image directly in the root folder",
                )
            folders.append(rel.split("/", 1)[0])
        self.classes = sorted(set(folders))
        if self.label_map is None:
            lookup = {name: i for i, name in enumerate(self.classes)}
        else:
            lookup = {}
            for name in self.classes:
                try:
                    lookup[name] = self.label_map.resolve(name).index
                except KeyError:
                    raise FormatError(
                        self.path,
                        name,
                        f"a class folder named by a WordNet id, zero-padded index or name "
                        f"in label map {self.label_map.source}",
                        f"folder {name!r} that matches no label",
                    ) from None
        return np.asarray([lookup[name] for name in folders], dtype=np.int64)

    def _regex_label(self, regex: re.Pattern[str], rel: str) -> int:
        option = "label_index_regex" if regex is self._index_regex else "label_word_net_id_regex"
        match = regex.match(rel)
        if match is None:
            # ViRelAy matches against <project folder>/<dataset path>/<file>, so regexes written
            # for it start with a prefix like ".*/" that the relative path alone cannot match.
            match = regex.match((self.path / rel).as_posix())
        value = match.group(1) if match is not None else None
        if value is None:
            raise FormatError(
                self.path, rel, f"a path matching {option} {regex.pattern!r}", "no match"
            )
        if regex is self._index_regex:
            if not value.isdigit():
                raise FormatError(self.path, rel, f"a class index from {option}", repr(value))
            index = int(value)
            if self.label_map is not None and index not in self.label_map:
                raise FormatError(
                    self.path, rel, f"a class index in label map {self.label_map.source}", value
                )
            return index
        assert self.label_map is not None
        if self._wnid_lookup is None:
            self._wnid_lookup = {
                label.word_net_id: label.index for label in self.label_map if label.word_net_id
            }
        if value not in self._wnid_lookup:
            raise FormatError(
                self.path, rel, f"a WordNet id in label map {self.label_map.source}", repr(value)
            )
        return self._wnid_lookup[value]

    def __len__(self) -> int:
        return len(self._files)

    def ids(self) -> list[str]:
        """Relative POSIX paths of the image files, in dataset order."""
        return list(self._files)

    def labels(self) -> np.ndarray:
        """All class indices, int64 ``(N,)``, derived from paths only."""
        return self._labels.copy()

    def _read_label(self, index: int) -> int:
        return int(self._labels[index])

    def _read_data(self, index: int) -> np.ndarray:
        file = self.path / self._files[index]
        try:
            with Image.open(file) as opened:
                image = opened.convert(self.mode)
            image = self._resize(image)
        except MemoryError:
            raise
        except Exception as error:
            # Broken files make PIL raise many types (OSError, SyntaxError, struct.error ...).
            raise FormatError(
                file, "/", "a decodable image file", f"{type(error).__name__}: {error}"
            ) from None
        array = np.asarray(image, dtype=np.float32) / np.float32(255.0)
        array = array[np.newaxis] if array.ndim == 2 else array.transpose(2, 0, 1)
        return np.ascontiguousarray(self._crop_and_pad(array), dtype=np.float32)

    def _resize(self, image: Image.Image) -> Image.Image:
        if self.size is None:
            return image
        height, width = image.height, image.width
        new = [height, width]
        for axis, (have, want) in enumerate(zip((height, width), self.size, strict=True)):
            if (have > want and self.down_sampling == "resize") or (
                have < want and self.up_sampling == "resize"
            ):
                new[axis] = want
        if (new[0], new[1]) == (height, width):
            return image
        return image.resize((new[1], new[0]), Image.Resampling.BILINEAR)

    def _crop_and_pad(self, array: np.ndarray) -> np.ndarray:
        if self.size is None:
            return array
        if self.down_sampling == "center_crop":
            slices = [slice(None)]
            for have, want in zip(array.shape[1:], self.size, strict=True):
                start = (have - want) // 2 if have > want else 0
                slices.append(slice(start, start + min(have, want)))
            array = array[tuple(slices)]
        pad_mode = _PAD_MODES.get(self.up_sampling)
        if pad_mode is not None:
            widths = [(0, 0)]
            for have, want in zip(array.shape[1:], self.size, strict=True):
                missing = max(want - have, 0)
                widths.append((missing // 2, missing - missing // 2))
            if any(before or after for before, after in widths):
                if pad_mode == "constant":
                    fill = 1.0 if self.up_sampling == "fill_ones" else 0.0
                    array = np.pad(array, widths, mode="constant", constant_values=fill)
                else:
                    array = np.pad(array, widths, mode=pad_mode)
        return array


def _check_size(size: object) -> tuple[int, int] | None:
    if size is None:
        return None
    if (
        not isinstance(size, Sequence)
        or isinstance(size, str)
        or len(size) != 2
        or any(isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1 for n in size)
    ):
        raise ConfigError(f"size must be (height, width) with positive integers, got {size!r}")
    return int(size[0]), int(size[1])


def _check_choice(option: str, value: object, valid: Sequence[str]) -> str:
    if value not in valid:
        raise ConfigError(f"{option} must be one of {', '.join(valid)}; got {value!r}")
    return str(value)


def _compile(option: str, pattern: str | None) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        compiled = re.compile(pattern)
    except (re.error, TypeError) as error:
        raise ConfigError(f"{option} is not a valid regular expression: {error}") from None
    if compiled.groups < 1:
        raise ConfigError(f"{option} must have a group capturing the label, got {pattern!r}")
    return compiled


def _find_images(root: Path) -> list[str]:
    found = []
    seen: set[str] = set()
    for directory, folders, files in os.walk(root, followlinks=True):
        # Following links (as glob's ** does) could loop; visit each real folder once.
        real = os.path.realpath(directory)
        if real in seen:
            folders[:] = []
            continue
        seen.add(real)
        folders[:] = [name for name in folders if not name.startswith(".")]
        relative = Path(directory).relative_to(root)
        for name in files:
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
                continue
            found.append((relative / name).as_posix())
    return sorted(found)


_OPTIONS = {
    "hdf5": frozenset({"transform"}),
    "image_directory": frozenset(
        {
            "label_map",
            "size",
            "up_sampling",
            "down_sampling",
            "mode",
            "label_index_regex",
            "label_word_net_id_regex",
            "transform",
        }
    ),
}


def open_dataset(
    path: str | os.PathLike[str], *, kind: str | None = None, **options: Any
) -> ImageDataset:
    """Open an HDF5 dataset database or an image folder.

    Parameters
    ----------
    path:
        The HDF5 file or the image folder.
    kind:
        ``"hdf5"`` or ``"image_directory"``; None picks by path (folder or file).
    **options:
        Keyword arguments of :class:`HDF5Dataset` or :class:`ImageFolderDataset`.
    """
    path = Path(path)
    if kind is None:
        if path.is_dir():
            kind = "image_directory"
        elif path.is_file():
            kind = "hdf5"
        else:
            raise FormatError(path, "/", "a dataset file or image folder", "no such path")
    if kind not in _OPTIONS:
        raise ConfigError(f"dataset kind must be one of {', '.join(DATASET_KINDS)}; got {kind!r}")
    unknown = sorted(set(options) - _OPTIONS[kind])
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} for a {kind} dataset; valid: "
            f"{', '.join(sorted(_OPTIONS[kind]))}"
        )
    if kind == "hdf5":
        return HDF5Dataset(path, **options)
    return ImageFolderDataset(path, **options)


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
