"""Bringing an uploaded image to the model's input, the way the project's dataset does it.

An upload is PNG or JPEG bytes, at most :data:`MAX_UPLOAD_BYTES` long and
:data:`MAX_UPLOAD_PIXELS` large; it is decoded with
:func:`~relscope.data.dataset.sampling.image_array` (what image folders use) with the
dataset's size, sampling methods and colour mode, then passed through the dataset's
transform (its normalization), as indexing the dataset would.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from relscope.data.dataset import ImageDataset, ImageFolderDataset
from relscope.data.dataset.sampling import (
    DOWN_SAMPLING_METHODS,
    UP_SAMPLING_METHODS,
    check_size,
    image_array,
)
from relscope.errors import ConfigError

__all__ = [
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_PIXELS",
    "UPLOAD_FORMATS",
    "ImageFiles",
    "InputSettings",
]

#: Uploads larger than this many bytes are refused.
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
#: Uploads with more pixels than this (width x height) are refused before decoding.
MAX_UPLOAD_PIXELS = 40_000_000
#: The image formats an upload may have (PIL's names).
UPLOAD_FORMATS = ("PNG", "JPEG")
_MODES = {1: "L", 3: "RGB"}


@dataclass(frozen=True)
class InputSettings:
    """How an image becomes a model input: ``size`` ``(height, width)`` (None: as it is),
    the up-/down-sampling methods of image folders, the colour ``mode`` (``"RGB"`` or
    ``"L"``) and an optional ``transform`` of the ``C x H x W`` tensor (normalization)."""

    size: tuple[int, int] | None = None
    up_sampling: str = "resize"
    down_sampling: str = "resize"
    mode: str = "RGB"
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", check_size(self.size))
        if self.up_sampling not in UP_SAMPLING_METHODS:
            raise ConfigError(f"up_sampling must be one of {', '.join(UP_SAMPLING_METHODS)}")
        if self.down_sampling not in DOWN_SAMPLING_METHODS:
            raise ConfigError(f"down_sampling must be one of {', '.join(DOWN_SAMPLING_METHODS)}")
        if self.mode not in _MODES.values():
            raise ConfigError(f"mode must be RGB or L, got {self.mode!r}")

    @classmethod
    def for_shape(
        cls,
        shape: Sequence[int],
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> InputSettings:
        """Images resized to a ``C x H x W`` input (``C`` 1: grayscale, 3: RGB)."""
        if len(shape) != 3 or shape[0] not in _MODES:
            raise ConfigError(
                f"uploads need a 1- or 3-channel C x H x W model input, got {tuple(shape)}"
            )
        return cls((int(shape[1]), int(shape[2])), "resize", "resize", _MODES[shape[0]], transform)

    @classmethod
    def of_dataset(cls, dataset: ImageDataset, shape: Sequence[int]) -> InputSettings:
        """The settings of ``dataset``: an image folder's own size, sampling methods and
        mode; for other datasets (HDF5 arrays) images are resized to its sample ``shape``.
        The dataset's transform is kept either way."""
        if isinstance(dataset, ImageFolderDataset):
            return cls(
                dataset.size, dataset.up_sampling, dataset.down_sampling, dataset.mode,
                dataset.transform,
            )  # fmt: skip
        return cls.for_shape(shape, dataset.transform)

    def decode(
        self,
        data: bytes,
        *,
        max_bytes: int = MAX_UPLOAD_BYTES,
        max_pixels: int = MAX_UPLOAD_PIXELS,
    ) -> torch.Tensor:
        """The float32 ``C x H x W`` input made from the PNG/JPEG ``data``."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ConfigError(f"upload: expected image bytes, got {type(data).__name__}")
        if len(data) > max_bytes:
            raise ConfigError(f"upload: {len(data)} bytes, more than the limit of {max_bytes}")
        if not data:
            raise ConfigError("upload: empty; expected a PNG or JPEG image")
        try:
            with Image.open(io.BytesIO(bytes(data)), formats=UPLOAD_FORMATS) as opened:
                pixels = opened.width * opened.height
                if pixels > max_pixels:
                    raise ConfigError(
                        f"upload: {opened.width} x {opened.height} pixels, more than the "
                        f"limit of {max_pixels}"
                    )
                array = image_array(
                    opened, self.size, self.up_sampling, self.down_sampling, self.mode
                )
        except ConfigError:
            raise
        except UnidentifiedImageError:
            raise ConfigError("upload: not a PNG or JPEG image") from None
        except MemoryError:
            raise
        except Exception as error:  # truncated or corrupt files raise many types in PIL
            message = " ".join(str(error).split())[:120]
            raise ConfigError(
                f"upload: not a decodable PNG or JPEG image ({type(error).__name__}: {message})"
            ) from None
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        return self.transform(tensor) if self.transform is not None else tensor


#: File name endings :class:`ImageFiles` takes.
IMAGE_FILE_ENDINGS = (".png", ".jpg", ".jpeg")


class ImageFiles(Sequence[torch.Tensor]):
    """The PNG/JPEG files below a folder (any layout, sorted by relative path, hidden ones
    skipped) as model inputs, decoded on access with ``settings``: a sample source for a
    designer without a project (``relscope design --images``)."""

    def __init__(self, folder: str | os.PathLike[str], settings: InputSettings) -> None:
        root = Path(folder)
        if not root.is_dir():
            raise ConfigError(f"--images {root}: not a folder")
        self.settings = settings
        self.files = sorted(
            (
                path
                for path in root.rglob("*")
                if path.suffix.lower() in IMAGE_FILE_ENDINGS
                and path.is_file()
                and not any(part.startswith(".") for part in path.relative_to(root).parts)
            ),
            key=lambda path: path.relative_to(root).as_posix(),
        )
        if not self.files:
            raise ConfigError(f"--images {root}: no PNG or JPEG files in it")
        self.root = root

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:  # type: ignore[override]
        path = self.files[index]
        try:
            return self.settings.decode(path.read_bytes(), max_bytes=1 << 30)
        except ConfigError as error:
            raise ConfigError(f"{path.relative_to(self.root)}: {error}") from None

    def name(self, index: int) -> str:
        """The file of sample ``index``, relative to the folder."""
        return self.files[index].relative_to(self.root).as_posix()
