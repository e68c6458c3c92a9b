"""Relevance maps and images as arrays: checks, channel sums, normalization to [0, 1] and
the batch shapes every style accepts.

>>> import numpy as np
>>> normalize(np.array([[[-2.0, 0.0], [1.0, 2.0]]])).tolist()
[[[0.0, 0.5], [0.75, 1.0]]]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from relscope.errors import ConfigError
from relscope.render.colormaps import _numpy

__all__ = [
    "NORMALIZATIONS",
    "SCOPES",
    "Normalization",
    "Scope",
    "ValueRange",
    "normalize",
    "project",
    "to_map",
]

Normalization: TypeAlias = Literal["symmetric", "absolute", "minmax"]
Scope: TypeAlias = Literal["sample", "batch"]
ValueRange: TypeAlias = tuple[float, float] | None

NORMALIZATIONS: tuple[str, ...] = ("symmetric", "absolute", "minmax")
SCOPES: tuple[str, ...] = ("sample", "batch")


# ----------------------------------------------------------------------------- arrays
def _float_array(values: Any, what: str) -> npt.NDArray[np.float64]:
    array = _numpy(values)
    if array.dtype.kind not in "biuf":
        raise ConfigError(f"{what}: expected real numbers, found dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ConfigError(f"{what}: expected finite numbers, found NaN or inf")
    return array


def _choice(what: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        options = ", ".join(repr(choice) for choice in choices)
        raise ConfigError(f"{what}: expected one of {options}, found {value!r}")


def _unit_interval(what: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not 0.0 <= number <= 1.0:
        raise ConfigError(f"{what}: expected a number in [0, 1], found {value!r}")
    return number


def _to_uint8(values: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
    """Round values in [0, 1] to 0-255."""
    return np.floor(np.clip(values, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# ----------------------------------------------------------------------------- normalization
def to_map(relevance: Any) -> npt.NDArray[np.float64]:
    """Sum relevance over channels: ``(B, C, H, W) -> (B, H, W)``; other shapes pass through.

    Parameters
    ----------
    relevance:
        ``(B, C, H, W)``, ``(B, H, W)`` or ``(H, W)``; numpy array or torch tensor.

    Examples
    --------
    >>> to_map(np.ones((2, 3, 1, 2))).tolist()
    [[[3.0, 3.0]], [[3.0, 3.0]]]
    """
    array = _float_array(relevance, "relevance")
    if array.ndim == 4:
        return array.sum(axis=1)
    if array.ndim in (2, 3):
        return array
    raise ConfigError(
        f"relevance: expected shape (B, C, H, W), (B, H, W) or (H, W), found {array.shape}"
    )


def normalize(
    relevance: Any, mode: Normalization = "symmetric", per: Scope = "sample"
) -> npt.NDArray[np.float64]:
    """Map a batch of relevance ``(B, ...)`` into [0, 1].

    Parameters
    ----------
    relevance:
        Any batch ``(B, ...)``; finite numbers.
    mode:
        ``"symmetric"``: ``0.5 + 0.5 R / max|R|`` (zero stays at 0.5); ``"absolute"``:
        ``|R| / max|R|``; ``"minmax"``: ``(R - min R) / (max R - min R)``.
    per:
        Take the maximum/minimum per ``"sample"`` or over the whole ``"batch"``.

    Returns
    -------
    numpy.ndarray
        ``float64`` of the same shape. All-zero relevance gives 0.5 (symmetric) or 0; a
        constant sample gives 0 with ``"minmax"``; never NaN.

    Examples
    --------
    >>> r = np.array([[-1.0, 0.0, 4.0], [0.0, 0.0, 0.0]])
    >>> normalize(r, "absolute").tolist()
    [[0.25, 0.0, 1.0], [0.0, 0.0, 0.0]]
    >>> normalize(r, "minmax", per="batch").tolist()
    [[0.0, 0.2, 1.0], [0.2, 0.2, 0.2]]
    """
    _choice("normalize: mode", mode, NORMALIZATIONS)
    _choice("normalize: per", per, SCOPES)
    array = _float_array(relevance, "relevance")
    if array.ndim == 0:
        raise ConfigError("relevance: expected a batch (B, ...), found a scalar")
    if array.size == 0:
        return array
    axes = tuple(range(1, array.ndim)) if per == "sample" else None
    scale = np.abs(array).max(axis=axes, keepdims=True)
    # Dividing by max|R| first keeps every later step inside [-1, 1]: no overflow to inf
    # (and so no NaN) even for relevance near the float limits.
    unit = array / np.where(scale > 0, scale, 1.0)
    if mode == "symmetric":
        return 0.5 + 0.5 * unit
    if mode == "absolute":
        return np.abs(unit)
    low = unit.min(axis=axes, keepdims=True)
    span = unit.max(axis=axes, keepdims=True) - low
    return np.where(span > 0, (unit - low) / np.where(span > 0, span, 1.0), 0.0)


def project(
    relevance: Any,
    value_range: tuple[float, float] = (0.0, 1.0),
    *,
    mode: Normalization = "symmetric",
    per: Scope = "sample",
) -> npt.NDArray[np.float64]:
    """Project a relevance batch ``(B, ...)`` into ``value_range`` (e.g. an input's range).

    Channels are kept; ``value_range[0]`` and ``value_range[1]`` are where :func:`normalize`
    puts 0 and 1.

    Examples
    --------
    >>> project(np.array([[-1.0, 0.0, 1.0]]), (-2.0, 2.0)).tolist()
    [[-2.0, 0.0, 2.0]]
    """
    low, high = _value_range(value_range)
    return low + (high - low) * normalize(relevance, mode, per)


def _value_range(value_range: Any) -> tuple[float, float]:
    try:
        low, high = (float(value) for value in value_range)
    except (TypeError, ValueError):
        raise ConfigError(
            f"value_range: expected two numbers (low, high), found {value_range!r}"
        ) from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ConfigError(f"value_range: expected finite low < high, found {value_range!r}")
    return low, high


# ----------------------------------------------------------------------------- batches
def _image_batch(image: Any, value_range: ValueRange) -> tuple[npt.NDArray[np.float64], bool]:
    """``(B, H, W, 3)`` floats in [0, 1] and whether ``image`` was a batch."""
    array = _numpy(image)
    shape = array.shape
    is_uint8 = array.dtype == np.uint8
    if is_uint8:
        expected = "uint8 (B, H, W, C), (H, W, C) or (H, W)"
    else:
        expected = "floats (B, C, H, W), (C, H, W) or (H, W)"
    if array.ndim not in (2, 3, 4) or array.dtype.kind not in "biuf":
        raise ConfigError(f"image: expected {expected}, found {array.dtype} of shape {shape}")
    batched = array.ndim == 4
    if array.ndim == 2:
        pixels = array[None, :, :, None]
    elif is_uint8:
        pixels = array if batched else array[None]
    else:
        # Model inputs are channels-first; display wants channels last.
        pixels = np.moveaxis(array, -3, -1) if batched else np.moveaxis(array, 0, -1)[None]
    if pixels.shape[-1] not in (1, 3):
        raise ConfigError(
            f"image: expected {expected} with 1 or 3 channels, found {array.dtype} of shape {shape}"
        )
    pixels = _float_array(pixels, "image")
    if value_range is not None:
        low, high = _value_range(value_range)
        scaled = (pixels - low) / (high - low)
    elif is_uint8:
        scaled = pixels / 255.0
    else:
        low = pixels.min(axis=(1, 2, 3), keepdims=True)
        span = pixels.max(axis=(1, 2, 3), keepdims=True) - low
        scaled = np.where(span > 0, (pixels - low) / np.where(span > 0, span, 1.0), 0.0)
    scaled = np.clip(scaled, 0.0, 1.0)
    if scaled.shape[-1] == 1:
        scaled = np.repeat(scaled, 3, axis=-1)
    return scaled, batched


def _relevance_batch(
    relevance: Any, batched: bool | None, size: tuple[int, int, int] | None
) -> tuple[npt.NDArray[np.float64], bool]:
    """``(B, C, H, W)`` relevance (C = 1 where it had none) and whether it is a batch.

    ``batched`` and ``size`` (B, H, W) come from the input image, if there is one.
    """
    array = _float_array(relevance, "relevance")
    if batched is None:
        allowed, expected = (2, 3, 4), "(B, C, H, W), (B, H, W) or (H, W)"
    elif batched:
        allowed, expected = (3, 4), "(B, C, H, W) or (B, H, W) for a batch of images"
    else:
        allowed, expected = (2, 3), "(C, H, W) or (H, W) for one image"
    if array.ndim not in allowed:
        raise ConfigError(f"relevance: expected shape {expected}, found {array.shape}")
    is_batch = array.ndim == 4 or (array.ndim == 3 and batched is not False)
    if array.ndim == 2:
        batch = array[None, None]
    elif array.ndim == 3:
        batch = array[:, None] if is_batch else array[None]
    else:
        batch = array
    if size is not None and (batch.shape[0], *batch.shape[2:]) != size:
        found = (batch.shape[0], *batch.shape[2:]) if is_batch else batch.shape[2:]
        wanted = size if is_batch else size[1:]
        raise ConfigError(
            f"relevance: expected {'(B, H, W)' if is_batch else '(H, W)'} = {wanted} "
            f"like the image, found {found}"
        )
    return batch, is_batch


def _prepare(
    relevance: Any, image: Any, value_range: ValueRange, *, need_image: bool, style: str
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None, bool]:
    if image is None:
        if need_image:
            raise ConfigError(f"{style}: expected an input image, found None")
        relevance_batch, batched = _relevance_batch(relevance, None, None)
        return relevance_batch, None, batched
    pixels, batched = _image_batch(image, value_range)
    relevance_batch, _ = _relevance_batch(relevance, batched, pixels.shape[:3])
    return relevance_batch, pixels, batched


def _unbatch(images: npt.NDArray[np.uint8], batched: bool) -> npt.NDArray[np.uint8]:
    return images if batched else images[0]


def _scaled(
    maps: npt.NDArray[np.float64], mode: Normalization | None, per: Scope
) -> npt.NDArray[np.float64]:
    if mode is not None:
        return normalize(maps, mode, per)
    if maps.size and (maps.min() < 0.0 or maps.max() > 1.0):
        raise ConfigError(
            f"relevance: expected values in [0, 1] with mode=None, "
            f"found range [{maps.min():g}, {maps.max():g}]"
        )
    return maps
