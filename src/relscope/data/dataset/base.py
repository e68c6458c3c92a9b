"""The common interface of the dataset readers: samples, batches and the reader base class.

Nothing here imports PyTorch; tensors are made in :mod:`relscope.data.dataset.tensors` when a
dataset is indexed.
"""

from __future__ import annotations

import abc
import operator
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from relscope.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch.utils.data import ConcatDataset

# A callable on image tensors; the names are strings so that torch is not imported for them.
Transform = Callable[["torch.Tensor"], "torch.Tensor"]


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


class ImageDataset(abc.ABC):
    """Common interface of HDF5 dataset databases and image folders.

    Indexing yields ``(image, label)`` tensors, so a dataset can be handed to a
    :class:`torch.utils.data.DataLoader`, also with worker processes. Indices must lie in
    ``0 .. len - 1``; anything else raises :class:`IndexError`. PyTorch is imported by the
    first tensor read (:mod:`relscope.data.dataset.tensors`), not by opening a dataset:
    :meth:`sample`, :meth:`batches`, :meth:`labels` and :meth:`ids` give NumPy arrays and
    plain values without it. The class does not derive from
    :class:`torch.utils.data.Dataset` (that would import torch); a DataLoader needs only
    ``__len__`` and ``__getitem__``, and ``+`` concatenates as there.

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

    def close(self) -> None:  # noqa: B027 - a no-op unless the reader holds files
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
        from relscope.data.dataset.tensors import as_tensors

        sample = self.sample(index)
        return as_tensors(sample.data, sample.label, self.multi_label, self.transform)

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``[self[i] for i in indices]``, read as one batch.

        A :class:`torch.utils.data.DataLoader` fetches whole batches through this method, so
        an HDF5 file is read with one selection per batch rather than one per sample (with
        compressed chunks that is the difference between decompressing a chunk once and once
        per sample).
        """
        from relscope.data.dataset.tensors import as_tensors

        rows = self._check_indices(list(indices))
        if not len(rows):
            return []
        data = self._read_rows(rows)
        labels = self.labels()[rows]
        return [
            as_tensors(image, label, self.multi_label, self.transform)
            for image, label in zip(data, labels, strict=True)
        ]

    def __add__(self, other: object) -> ConcatDataset:
        """Both datasets one after the other (what ``+`` gives for a torch ``Dataset``)."""
        from torch.utils.data import ConcatDataset

        return ConcatDataset([self, other])

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
