"""Visualization styles (one registration line each) and image grids: every style turns
relevance (and optionally the input) into ``uint8`` RGB images.

>>> import numpy as np
>>> heatmap(np.array([[[-2.0, 0.0], [1.0, 2.0]]]), cmap="bwr")[0, 0].tolist()
[[0, 0, 255], [255, 255, 255]]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from relscope.errors import ConfigError
from relscope.registry import Registry
from relscope.render.colormaps import ColorMap, _numpy, get_colormap
from relscope.render.maps import (
    Normalization,
    Scope,
    ValueRange,
    _prepare,
    _scaled,
    _to_uint8,
    _unbatch,
    _unit_interval,
    normalize,
)

__all__ = [
    "STYLES",
    "Background",
    "Style",
    "blend",
    "get_style",
    "graymap",
    "grid",
    "heatmap",
    "list_styles",
    "masked_input",
    "overlay",
    "projection",
    "register_style",
    "scaled_input",
]

#: The colour between grid tiles: one grey level or an RGB triple (0-255).
Background: TypeAlias = int | Sequence[int]

# ITU-R BT.601 luma weights, the usual grayscale conversion of RGB.
_LUMA = np.array([0.299, 0.587, 0.114])


def _fill_colour(fill: Background) -> npt.NDArray[np.uint8]:
    colour = np.array(fill).reshape(-1)
    if colour.size == 1:
        colour = np.repeat(colour, 3)
    if colour.size != 3 or colour.dtype.kind not in "iu" or colour.min() < 0 or colour.max() > 255:
        raise ConfigError(
            f"fill: expected an integer 0-255 or an RGB triple of them, found {fill!r}"
        )
    return colour.astype(np.uint8)


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
