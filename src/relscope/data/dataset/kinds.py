"""Opening a dataset by kind: ``"hdf5"`` (a dataset database) or ``"image_directory"``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from relscope.data.dataset.base import ImageDataset
from relscope.data.dataset.folder import ImageFolderDataset
from relscope.data.dataset.hdf5 import HDF5Dataset
from relscope.errors import ConfigError, FormatError

DATASET_KINDS = ("hdf5", "image_directory")


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
