"""Bringing images to one size: the up- and down-sampling methods of image folders.

The methods are ViRelAy's: sides smaller than the target are padded (centred) or resized,
larger ones centre-cropped or resized; ``"none"`` leaves a side as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from relscope.errors import ConfigError

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

# np.pad modes of the padding up-sampling methods; fill_ones is a constant pad with 1.0.
PAD_MODES = {
    "fill_zeros": "constant",
    "fill_ones": "constant",
    "edge_repeat": "edge",
    "mirror_edge": "symmetric",
    "wrap_around": "wrap",
}


def check_size(size: object) -> tuple[int, int] | None:
    """``size`` as ``(height, width)`` of ints, or None; raise :class:`ConfigError`."""
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


def resize(
    image: Image.Image, size: tuple[int, int] | None, up_sampling: str, down_sampling: str
) -> Image.Image:
    """``image`` with each side that ``size`` asks to resize (per the methods) resized,
    bilinearly; unchanged without a ``size``."""
    if size is None:
        return image
    height, width = image.height, image.width
    new = [height, width]
    for axis, (have, want) in enumerate(zip((height, width), size, strict=True)):
        if (have > want and down_sampling == "resize") or (have < want and up_sampling == "resize"):
            new[axis] = want
    if (new[0], new[1]) == (height, width):
        return image
    return image.resize((new[1], new[0]), Image.Resampling.BILINEAR)


def crop_and_pad(
    array: np.ndarray, size: tuple[int, int] | None, up_sampling: str, down_sampling: str
) -> np.ndarray:
    """The ``C x H x W`` ``array`` centre-cropped and padded towards ``size`` as the methods
    say (sides the methods leave alone keep their length)."""
    if size is None:
        return array
    if down_sampling == "center_crop":
        slices = [slice(None)]
        for have, want in zip(array.shape[1:], size, strict=True):
            start = (have - want) // 2 if have > want else 0
            slices.append(slice(start, start + min(have, want)))
        array = array[tuple(slices)]
    pad_mode = PAD_MODES.get(up_sampling)
    if pad_mode is not None:
        widths = [(0, 0)]
        for have, want in zip(array.shape[1:], size, strict=True):
            missing = max(want - have, 0)
            widths.append((missing // 2, missing - missing // 2))
        if any(before or after for before, after in widths):
            if pad_mode == "constant":
                fill = 1.0 if up_sampling == "fill_ones" else 0.0
                array = np.pad(array, widths, mode="constant", constant_values=fill)
            else:
                array = np.pad(array, widths, mode=pad_mode)
    return array


def image_array(
    image: Image.Image,
    size: tuple[int, int] | None,
    up_sampling: str,
    down_sampling: str,
    mode: str = "RGB",
) -> np.ndarray:
    """An opened ``image`` as an image folder yields it: converted to ``mode``, resized,
    scaled to ``[0, 1]``, centre-cropped and padded per the methods; float32 ``C x H x W``."""
    image = resize(image.convert(mode), size, up_sampling, down_sampling)
    array = np.asarray(image, dtype=np.float32) / np.float32(255.0)
    array = array[np.newaxis] if array.ndim == 2 else array.transpose(2, 0, 1)
    array = crop_and_pad(array, size, up_sampling, down_sampling)
    return np.ascontiguousarray(array, dtype=np.float32)
