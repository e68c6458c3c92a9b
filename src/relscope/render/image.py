"""Heatmaps and images: normalization, palette PNGs, visualization styles and grids.

Everything works on numpy arrays; torch tensors are accepted (copied to the CPU), so
rendering never needs a GPU. Styles return ``uint8`` RGB arrays: ``(H, W, 3)`` for one
sample, ``(B, H, W, 3)`` for a batch.

Shapes
------
relevance
    A batch ``(B, C, H, W)`` or ``(B, H, W)``, or one map ``(H, W)``; with an input image
    of one sample, also ``(C, H, W)``. Channels are summed by :func:`to_map`.
image (the model input)
    Floats ``(B, C, H, W)``, ``(C, H, W)`` or ``(H, W)`` with C = 1 or 3, shown with the
    value range given (default: each image's own minimum and maximum); or ``uint8``
    ``(B, H, W, C)``, ``(H, W, C)`` or ``(H, W)``, shown with the range 0-255.

Heatmaps are stored as 8-bit palette PNGs whose indices encode the normalized relevance and
whose palette is the colour map, so :func:`recolor` can swap the colour map without touching
the index data.

>>> import numpy as np
>>> relevance = np.array([[[-2.0, 0.0], [1.0, 2.0]]])          # one (1, H, W) map
>>> normalize(relevance).tolist()
[[[0.0, 0.5], [0.75, 1.0]]]
>>> heatmap(relevance, cmap="bwr")[0, 0].tolist()
[[0, 0, 255], [255, 255, 255]]
"""

from __future__ import annotations

import io
import math
import os
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from relscope._atomic import atomic_path
from relscope.errors import ConfigError, FormatError, PathError
from relscope.registry import Registry
from relscope.render.colormaps import ColorMap, _numpy, get_colormap, to_indices

__all__ = [
    "NORMALIZATIONS",
    "SCOPES",
    "STYLES",
    "Style",
    "blend",
    "get_style",
    "graymap",
    "grid",
    "heatmap",
    "heatmap_png",
    "list_styles",
    "load_heatmap",
    "masked_input",
    "normalize",
    "overlay",
    "project",
    "projection",
    "recolor",
    "register_style",
    "save_heatmap",
    "save_image",
    "scaled_input",
    "to_map",
]

Normalization: TypeAlias = Literal["symmetric", "absolute", "minmax"]
Scope: TypeAlias = Literal["sample", "batch"]
#: The colour between grid tiles: one grey level or an RGB triple (0-255).
Background: TypeAlias = int | Sequence[int]
ValueRange: TypeAlias = tuple[float, float] | None
PathLike: TypeAlias = str | os.PathLike[str]

NORMALIZATIONS: tuple[str, ...] = ("symmetric", "absolute", "minmax")
SCOPES: tuple[str, ...] = ("sample", "batch")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PALETTE_COLOUR_TYPE = 3
# ITU-R BT.601 luma weights, the usual grayscale conversion of RGB.
_LUMA = np.array([0.299, 0.587, 0.114])


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


def _fill_colour(fill: Background) -> npt.NDArray[np.uint8]:
    colour = np.array(fill).reshape(-1)
    if colour.size == 1:
        colour = np.repeat(colour, 3)
    if colour.size != 3 or colour.dtype.kind not in "iu" or colour.min() < 0 or colour.max() > 255:
        raise ConfigError(
            f"fill: expected an integer 0-255 or an RGB triple of them, found {fill!r}"
        )
    return colour.astype(np.uint8)


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


# ----------------------------------------------------------------------------- styles
Style: TypeAlias = Callable[..., npt.NDArray[np.uint8]]
#: The visualization-style extension point: name -> style function.
STYLES: Registry[Style] = Registry("visualization style", plural="styles", module=__name__)


def register_style(name: str) -> Callable[[Style], Style]:
    """Decorator: make a visualization style available by ``name`` (one line per style).

    A style is called as ``style(relevance, image=None, **options)`` and returns ``uint8``
    RGB images ``(B, H, W, 3)``, or ``(H, W, 3)`` for one sample.
    """

    return STYLES.register(name)


def list_styles() -> list[str]:
    """Names of all registered visualization styles."""
    return STYLES.names()


def get_style(name: str) -> Style:
    """The registered visualization style ``name``."""
    return STYLES.get(name)


@register_style("heatmap")
def heatmap(
    relevance: Any,
    image: Any = None,
    *,
    cmap: str | ColorMap = "bwr",
    mode: Normalization | None = "symmetric",
    per: Scope = "sample",
) -> npt.NDArray[np.uint8]:
    """Relevance (summed over channels) coloured by a colour map.

    Parameters
    ----------
    relevance:
        See the module's shapes; ``mode=None`` takes values already in [0, 1].
    image:
        Optional; only decides whether 3-D relevance is one sample and checks shapes.
    cmap:
        A colour-map name or specification (:func:`~.colormaps.get_colormap`).
    mode, per:
        Normalization (:func:`normalize`).
    """
    batch, _, batched = _prepare(relevance, image, None, need_image=False, style="heatmap")
    colours = get_colormap(cmap)(_scaled(batch.sum(axis=1), mode, per))
    return _unbatch(colours, batched)


@register_style("graymap")
def graymap(
    relevance: Any,
    image: Any = None,
    *,
    cmap: str | ColorMap = "gray",
    per: Scope = "sample",
) -> npt.NDArray[np.uint8]:
    """Absolute relevance ``|R| / max|R|`` in gray (black: none, white: most)."""
    return heatmap(relevance, image, cmap=cmap, mode="absolute", per=per)


@register_style("scaled_input")
def scaled_input(
    relevance: Any,
    image: Any,
    *,
    per: Scope = "sample",
    value_range: ValueRange = None,
) -> npt.NDArray[np.uint8]:
    """The input's pixels multiplied by absolute relevance ``|R| / max|R|``."""
    batch, pixels, batched = _prepare(
        relevance, image, value_range, need_image=True, style="scaled_input"
    )
    assert pixels is not None
    weight = normalize(batch.sum(axis=1), "absolute", per)
    return _unbatch(_to_uint8(pixels * weight[..., None]), batched)


@register_style("masked_input")
def masked_input(
    relevance: Any,
    image: Any,
    *,
    fraction: float = 0.2,
    absolute: bool = False,
    fill: Background = 0,
    value_range: ValueRange = None,
) -> npt.NDArray[np.uint8]:
    """The input where relevance is highest, ``fill`` elsewhere.

    Parameters
    ----------
    fraction:
        Share of each image's pixels shown: the ``round(fraction * H * W)`` most relevant,
        ties going to the earlier pixel in row-major order.
    absolute:
        Rank by ``|R|`` instead of ``R`` (negative relevance counts as relevant).
    fill:
        Colour of hidden pixels: a gray level 0-255 or an RGB triple.
    """
    fraction = _unit_interval("masked_input: fraction", fraction)
    colour = _fill_colour(fill)
    batch, pixels, batched = _prepare(
        relevance, image, value_range, need_image=True, style="masked_input"
    )
    assert pixels is not None
    scores = batch.sum(axis=1).reshape(len(batch), -1)
    if absolute:
        scores = np.abs(scores)
    count = math.floor(fraction * scores.shape[1] + 0.5)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :count]
    keep = np.zeros(scores.shape, dtype=bool)
    np.put_along_axis(keep, order, True, axis=1)
    keep = keep.reshape(pixels.shape[:3])
    return _unbatch(np.where(keep[..., None], _to_uint8(pixels), colour), batched)


@register_style("blend")
def blend(
    relevance: Any,
    image: Any,
    *,
    cmap: str | ColorMap = "bwr",
    mode: Normalization = "symmetric",
    per: Scope = "sample",
    alpha: float = 0.5,
    value_range: ValueRange = None,
) -> npt.NDArray[np.uint8]:
    """The heatmap blended over the input: ``(1 - alpha) * input + alpha * heatmap``."""
    alpha = _unit_interval("blend: alpha", alpha)
    batch, pixels, batched = _prepare(relevance, image, value_range, need_image=True, style="blend")
    assert pixels is not None
    colours = get_colormap(cmap)(normalize(batch.sum(axis=1), mode, per)) / 255.0
    return _unbatch(_to_uint8((1.0 - alpha) * pixels + alpha * colours), batched)


@register_style("overlay")
def overlay(
    relevance: Any,
    image: Any,
    *,
    cmap: str | ColorMap = "bwr",
    mode: Normalization = "symmetric",
    per: Scope = "sample",
    alpha: float = 1.0,
    value_range: ValueRange = None,
) -> npt.NDArray[np.uint8]:
    """The heatmap over a grayscale input, opaque where relevance is strong.

    Each pixel's opacity is ``alpha * |R| / max|R|``, so irrelevant regions show the gray
    input and the most relevant pixel shows the heatmap colour (at ``alpha=1``).
    """
    alpha = _unit_interval("overlay: alpha", alpha)
    batch, pixels, batched = _prepare(
        relevance, image, value_range, need_image=True, style="overlay"
    )
    assert pixels is not None
    maps = batch.sum(axis=1)
    gray = (pixels @ _LUMA)[..., None]
    colours = get_colormap(cmap)(normalize(maps, mode, per)) / 255.0
    opacity = alpha * normalize(maps, "absolute", per)[..., None]
    return _unbatch(_to_uint8((1.0 - opacity) * gray + opacity * colours), batched)


@register_style("projection")
def projection(
    relevance: Any,
    image: Any = None,
    *,
    mode: Normalization = "symmetric",
    per: Scope = "sample",
    value_range: ValueRange = None,
) -> npt.NDArray[np.uint8]:
    """Relevance per channel projected into the input's range and shown like the input.

    Relevance with 3 channels gives a colour image, with 1 (or none) a gray one. Each
    sample's relevance is normalized (``mode``) onto the range its input image spans, then
    displayed with the input's ``value_range``; without an image the range is [0, 1].
    """
    batch, pixels, batched = _prepare(
        relevance, image, value_range, need_image=False, style="projection"
    )
    if batch.shape[1] not in (1, 3):
        raise ConfigError(
            f"projection: expected relevance with 1 or 3 channels, found {batch.shape[1]}"
        )
    unit = np.moveaxis(normalize(batch, mode, per), 1, -1)
    if pixels is not None:
        low = pixels.min(axis=(1, 2, 3), keepdims=True)
        high = pixels.max(axis=(1, 2, 3), keepdims=True)
        # A constant image spans no range; fall back to the full one rather than a blank image.
        flat = high <= low
        low, high = np.where(flat, 0.0, low), np.where(flat, 1.0, high)
        unit = low + (high - low) * unit
    if unit.shape[-1] == 1:
        unit = np.repeat(unit, 3, axis=-1)
    return _unbatch(_to_uint8(unit), batched)


# ----------------------------------------------------------------------------- grids
def grid(
    images: Any, nrow: int = 8, padding: int = 2, fill: Background = 0
) -> npt.NDArray[np.uint8]:
    """Tile a batch of images into one image, row by row.

    Parameters
    ----------
    images:
        ``uint8`` ``(B, H, W, 3)``, ``(B, H, W, 1)`` or ``(B, H, W)``.
    nrow:
        Images per row.
    padding:
        Pixels between images and around the border.
    fill:
        Colour of the padding and of empty cells: a gray level 0-255 or an RGB triple.

    Returns
    -------
    numpy.ndarray
        ``uint8`` of shape ``(rows * (H + padding) + padding, cols * (W + padding) + padding, 3)``
        with ``cols = min(nrow, B)`` and ``rows = ceil(B / cols)``.

    Examples
    --------
    >>> tiles = np.full((3, 1, 1, 3), 9, dtype=np.uint8)
    >>> grid(tiles, nrow=2, padding=1)[..., 0].tolist()
    [[0, 0, 0, 0, 0], [0, 9, 0, 9, 0], [0, 0, 0, 0, 0], [0, 9, 0, 0, 0], [0, 0, 0, 0, 0]]
    """
    array = _numpy(images)
    if array.dtype != np.uint8 or array.ndim not in (3, 4):
        raise ConfigError(
            f"grid: expected uint8 images (B, H, W, 3) or (B, H, W), "
            f"found {array.dtype} of shape {array.shape}"
        )
    if array.ndim == 3:
        array = array[..., None]
    if array.shape[-1] not in (1, 3) or array.shape[0] == 0:
        raise ConfigError(
            f"grid: expected at least one image with 1 or 3 channels, found shape {array.shape}"
        )
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    if isinstance(nrow, bool) or not isinstance(nrow, int | np.integer) or nrow < 1:
        raise ConfigError(f"grid: nrow: expected a positive integer, found {nrow!r}")
    if isinstance(padding, bool) or not isinstance(padding, int | np.integer) or padding < 0:
        raise ConfigError(f"grid: padding: expected an integer >= 0, found {padding!r}")
    colour = _fill_colour(fill)
    count, height, width, _ = array.shape
    cols = min(int(nrow), count)
    rows = -(-count // cols)
    shape = (rows * (height + padding) + padding, cols * (width + padding) + padding, 3)
    out = np.empty(shape, dtype=np.uint8)
    out[...] = colour
    for index in range(count):
        row, col = divmod(index, cols)
        top, left = padding + row * (height + padding), padding + col * (width + padding)
        out[top : top + height, left : left + width] = array[index]
    return out


# ----------------------------------------------------------------------------- files
def _write_atomically(path: PathLike, write: Callable[[BinaryIO], None]) -> Path:
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise ConfigError(f"{target}: expected a file name ending in .png")
    if not target.parent.is_dir():
        raise PathError(f"{target}: directory {target.parent} does not exist")
    try:
        with atomic_path(target) as temporary, open(temporary, "xb") as handle:
            write(handle)
    except OSError as error:
        raise PathError(f"{target}: cannot write: {error.strerror or error}") from error
    return target


def save_image(path: PathLike, image: Any) -> Path:
    """Write a ``uint8`` image ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)`` as a PNG, atomically.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    array = _numpy(image)
    if array.dtype != np.uint8 or not (
        array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (3, 4))
    ):
        raise ConfigError(
            f"save_image: expected uint8 (H, W), (H, W, 3) or (H, W, 4), "
            f"found {array.dtype} of shape {array.shape}"
        )
    picture = Image.fromarray(np.ascontiguousarray(array))
    return _write_atomically(path, lambda handle: picture.save(handle, format="PNG"))


def _heatmap_indices(relevance: Any, mode: Normalization | None) -> npt.NDArray[np.uint8]:
    array = _numpy(relevance)
    if array.ndim not in (2, 3):
        raise ConfigError(
            f"heatmap: expected one relevance map (H, W) or (C, H, W), found shape {array.shape}"
        )
    if mode is None and array.dtype == np.uint8:
        if array.ndim != 2:
            raise ConfigError(f"heatmap: expected uint8 indices (H, W), found shape {array.shape}")
        return np.ascontiguousarray(array)
    maps = _float_array(array, "relevance")
    if maps.ndim == 3:
        maps = maps.sum(axis=0)
    return to_indices(_scaled(maps[None], mode, "sample")[0])


def _palette_image(indices: npt.NDArray[np.uint8], cmap: str | ColorMap) -> Image.Image:
    height, width = indices.shape
    picture = Image.frombytes("P", (width, height), np.ascontiguousarray(indices).tobytes())
    picture.putpalette(get_colormap(cmap).palette.tobytes(), rawmode="RGB")
    return picture


def heatmap_png(
    relevance: Any, cmap: str | ColorMap = "bwr", *, mode: Normalization | None = "symmetric"
) -> bytes:
    """An 8-bit palette PNG of one relevance map, as bytes (see :func:`save_heatmap`)."""
    picture = _palette_image(_heatmap_indices(relevance, mode), cmap)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", bits=8)
    return buffer.getvalue()


def save_heatmap(
    path: PathLike,
    relevance: Any,
    cmap: str | ColorMap = "bwr",
    *,
    mode: Normalization | None = "symmetric",
) -> Path:
    """Write one relevance map as an 8-bit palette PNG, atomically.

    The PNG's indices are the normalized relevance (0-255) and its palette is ``cmap``, so
    :func:`recolor` can change the colour map later without touching the indices.

    Parameters
    ----------
    path:
        Target file, ending in ``.png``.
    relevance:
        A map ``(H, W)`` or ``(C, H, W)`` (channels summed). With ``mode=None``: values
        already in [0, 1], or ``uint8`` palette indices ``(H, W)`` stored as they are.
    cmap:
        Colour-map name or specification.
    mode:
        Normalization of the map (:func:`normalize`), or ``None``.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    data = heatmap_png(relevance, cmap, mode=mode)
    return _write_atomically(path, lambda handle: handle.write(data))


def load_heatmap(path: PathLike) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Read a palette PNG: its ``uint8`` indices ``(H, W)`` and its palette ``(N, 3)``.

    Raises
    ------
    PathError
        If the file does not exist.
    FormatError
        If it is not a palette PNG.
    """
    target = Path(path)
    try:
        with Image.open(target) as picture:
            if picture.format != "PNG" or picture.mode != "P":
                raise FormatError(
                    target,
                    "/",
                    "an 8-bit palette PNG (mode 'P')",
                    f"{picture.format} image of mode {picture.mode!r}",
                )
            indices = np.array(picture, dtype=np.uint8)
            palette = np.array(picture.getpalette("RGB"), dtype=np.uint8).reshape(-1, 3)
    except FileNotFoundError:
        raise PathError(f"{target}: heatmap file does not exist") from None
    except (UnidentifiedImageError, OSError) as error:
        raise FormatError(target, "/", "a PNG image", type(error).__name__) from None
    return indices, palette


def _swap_palette(data: bytes, palette: bytes, source: str) -> bytes:
    """``data`` (a palette PNG) with only its PLTE chunk replaced."""
    if not data.startswith(_PNG_SIGNATURE):
        raise FormatError(source, "/", "a PNG file", "another kind of data")
    chunks = [_PNG_SIGNATURE]
    position = len(_PNG_SIGNATURE)
    replaced = False
    while position < len(data):
        header = data[position : position + 8]
        if len(header) < 8:
            raise FormatError(source, f"byte {position}", "a PNG chunk", "end of file")
        length = int.from_bytes(header[:4], "big")
        kind = header[4:]
        end = position + 12 + length
        if end > len(data):
            raise FormatError(source, f"chunk {kind!r}", f"{length} bytes", "end of file")
        if kind == b"IHDR":
            bit_depth, colour_type = data[position + 16], data[position + 17]
            if colour_type != _PALETTE_COLOUR_TYPE or bit_depth != 8:
                raise FormatError(
                    source,
                    "IHDR",
                    "an 8-bit palette PNG",
                    f"colour type {colour_type}, bit depth {bit_depth}",
                )
        if kind == b"PLTE":
            crc = zlib.crc32(kind + palette).to_bytes(4, "big")
            chunks.append(len(palette).to_bytes(4, "big") + kind + palette + crc)
            replaced = True
        else:
            chunks.append(data[position:end])
        position = end
        if kind == b"IEND":
            break
    if not replaced:
        raise FormatError(source, "PLTE", "a palette chunk", "none")
    chunks.append(data[position:])
    return b"".join(chunks)


def recolor(
    source: PathLike | bytes | Image.Image,
    cmap: str | ColorMap,
    out: PathLike | None = None,
) -> Path | bytes | Image.Image:
    """Swap the palette of a heatmap for another colour map; the index data stay untouched.

    Parameters
    ----------
    source:
        A palette PNG file (rewritten in place unless ``out`` is given), its bytes, or a
        Pillow image of mode ``P``.
    cmap:
        The new colour map.
    out:
        For a file source: where to write the result instead.

    Returns
    -------
    pathlib.Path or bytes or PIL.Image.Image
        The path written, the new PNG bytes, or a new image: like ``source``. File and
        bytes keep every chunk but the palette byte for byte, including the compressed
        indices.
    """
    colormap = get_colormap(cmap)
    palette = colormap.palette.tobytes()
    if isinstance(source, Image.Image):
        if source.mode != "P":
            raise ConfigError(
                f"recolor: expected a palette image (mode 'P'), found {source.mode!r}"
            )
        recoloured = source.copy()
        recoloured.putpalette(palette, rawmode="RGB")
        return recoloured
    if isinstance(source, bytes | bytearray):
        return _swap_palette(bytes(source), palette, "<bytes>")
    target = Path(source)
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        raise PathError(f"{target}: heatmap file does not exist") from None
    result = _swap_palette(data, palette, str(target))
    return _write_atomically(target if out is None else out, lambda handle: handle.write(result))
