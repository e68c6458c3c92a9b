"""Preprocessing of attribution maps before they are compared: reduce, pool, resize, normalize.

Every processor takes an array with the samples in the first axis and returns one. Maps are
``(N, C, H, W)`` or ``(N, H, W)``; the spatial axes are always the last two.

Examples
--------
>>> import numpy as np
>>> maps = np.arange(16.0).reshape(1, 1, 4, 4)
>>> Pool(size=2, mode="max")(maps)[0, 0]
array([[ 5.,  7.],
       [13., 15.]])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from relscope.analysis.params import Param
from relscope.analysis.pipeline import Processor, register_processor
from relscope.analysis.processors._checks import choice
from relscope.errors import ConfigError

__all__ = [
    "Absolute",
    "ChannelReduce",
    "Flatten",
    "Histogram",
    "Normalize",
    "PadCrop",
    "Pool",
    "Resize",
]


def _array(processor: Processor, data: Any, min_ndim: int = 1) -> np.ndarray:
    array = np.asarray(data)
    if array.ndim < min_ndim:
        raise ConfigError(
            f"{type(processor).__name__}: expected an array with at least {min_ndim} "
            f"dimensions (samples first), found shape {array.shape}"
        )
    return array


def _spatial(processor: Processor, data: Any) -> np.ndarray:
    array = _array(processor, data)
    if array.ndim not in (3, 4):
        raise ConfigError(
            f"{type(processor).__name__}: expected maps of shape (N, C, H, W) or (N, H, W), "
            f"found shape {array.shape}"
        )
    return array


def _shape2(processor: Processor, name: str) -> tuple[int, int]:
    shape = getattr(processor, name)
    if len(shape) != 2 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ConfigError(
            f"{type(processor).__name__}: parameter {name!r} must be two positive ints "
            f"(height, width), found {shape!r}"
        )
    return int(shape[0]), int(shape[1])


@register_processor("flatten")
class Flatten(Processor):
    """Flatten every sample into one feature vector: ``(N, ...) -> (N, D)``."""

    version: ClassVar[int] = 1

    def function(self, data: Any) -> np.ndarray:
        array = _array(self, data)
        return array.reshape(array.shape[0], -1)


@register_processor("channel-reduce")
class ChannelReduce(Processor):
    """Sum or average over the channel axis: ``(N, C, H, W) -> (N, H, W)``."""

    version: ClassVar[int] = 1

    mode = Param(str, "sum", "Reduction over channels: 'sum' or 'mean'.")
    axis = Param(int, 1, "The channel axis (1 for channels-first maps).")

    def function(self, data: Any) -> np.ndarray:
        mode = choice(self, "mode", ("sum", "mean"))
        array = _array(self, data, min_ndim=2)
        if not 1 <= self.axis < array.ndim and not -array.ndim < self.axis < 0:
            raise ConfigError(
                f"ChannelReduce: axis {self.axis} is not a non-sample axis of shape {array.shape}"
            )
        return array.sum(axis=self.axis) if mode == "sum" else array.mean(axis=self.axis)


@register_processor("absolute")
class Absolute(Processor):
    """Element-wise absolute value (relevance magnitude regardless of sign)."""

    version: ClassVar[int] = 1

    def function(self, data: Any) -> np.ndarray:
        return np.abs(_array(self, data))


@register_processor("pool")
class Pool(Processor):
    """Pool the last two (spatial) axes with a square window.

    Windows that do not fit entirely at the bottom/right border are dropped, like a
    convolution without padding: the output is ``(H - size) // stride + 1`` high.
    """

    version: ClassVar[int] = 1

    mode = Param(str, "sum", "Pooling: 'sum', 'mean' or 'max'.")
    size = Param(int, 2, "Side of the square pooling window.")
    stride = Param((int, type(None)), None, "Step between windows; None uses the window size.")

    def function(self, data: Any) -> np.ndarray:
        mode = choice(self, "mode", ("sum", "mean", "max"))
        array = _spatial(self, data)
        stride = self.size if self.stride is None else self.stride
        if self.size < 1 or stride < 1:
            raise ConfigError(
                f"Pool: size and stride must be positive, found {self.size}, {stride}"
            )
        if self.size > min(array.shape[-2:]):
            raise ConfigError(f"Pool: window {self.size} exceeds the map size {array.shape[-2:]}")
        # A strided view avoids copying the windows; reducing it costs O(size^2) per output.
        windows = sliding_window_view(array, (self.size, self.size), axis=(-2, -1))
        windows = windows[..., ::stride, ::stride, :, :]
        reduce = {"sum": np.sum, "mean": np.mean, "max": np.max}[mode]
        return reduce(windows, axis=(-2, -1))


@register_processor("resize")
class Resize(Processor):
    """Resize the spatial axes to ``shape`` by spline interpolation (``scipy.ndimage.zoom``)."""

    version: ClassVar[int] = 1

    shape = Param(tuple, (32, 32), "Target (height, width).")
    order = Param(int, 1, "Spline order: 0 nearest, 1 bilinear, 3 cubic.")

    def function(self, data: Any) -> np.ndarray:
        height, width = _shape2(self, "shape")
        array = _spatial(self, data)
        factors = (1.0,) * (array.ndim - 2) + (
            height / array.shape[-2],
            width / array.shape[-1],
        )
        # grid_mode aligns pixel areas rather than pixel centres, which keeps the
        # output size exactly round(input * factor) == target.
        return ndimage.zoom(
            array.astype(np.float64, copy=False),
            factors,
            order=self.order,
            grid_mode=True,
            mode="nearest",
        )


def _pad_crop_axis(array: np.ndarray, axis: int, target: int, value: float) -> np.ndarray:
    size = array.shape[axis]
    if size > target:
        start = (size - target) // 2
        return np.take(array, np.arange(start, start + target), axis=axis)
    if size < target:
        before = (target - size) // 2
        pad = [(0, 0)] * array.ndim
        pad[axis] = (before, target - size - before)
        return np.pad(array, pad, constant_values=value)
    return array


@register_processor("pad-crop")
class PadCrop(Processor):
    """Center-pad or center-crop the spatial axes to a common ``shape``.

    The input may be one array ``(N, ..., H, W)`` or a sequence of per-sample maps of
    different spatial sizes ``(..., H_i, W_i)``; the result is one stacked array.
    """

    version: ClassVar[int] = 1

    shape = Param(tuple, (32, 32), "Target (height, width).")
    value = Param(float, 0.0, "Fill value of the padding.")

    def function(self, data: Any) -> np.ndarray:
        height, width = _shape2(self, "shape")
        samples: Sequence[Any] = data if isinstance(data, list | tuple) else _array(self, data, 3)
        out = []
        for sample in samples:
            sample = np.asarray(sample)
            if sample.ndim < 2:
                raise ConfigError(
                    f"PadCrop: a sample has shape {sample.shape}, expected (..., H, W)"
                )
            sample = _pad_crop_axis(sample, -2 % sample.ndim, height, self.value)
            out.append(_pad_crop_axis(sample, sample.ndim - 1, width, self.value))
        if not out:
            raise ConfigError("PadCrop: expected at least one sample, found none")
        return np.stack(out)


@register_processor("normalize")
class Normalize(Processor):
    """Divide every sample by its norm over all non-sample axes.

    ``norm`` is ``'l1'`` (sum of absolute values), ``'l2'`` or ``'max'`` (largest absolute
    value). A sample whose norm is zero is returned unchanged (all zeros), never NaN.
    """

    version: ClassVar[int] = 1

    norm = Param(str, "l2", "Per-sample norm: 'l1', 'l2' or 'max'.")

    def function(self, data: Any) -> np.ndarray:
        norm = choice(self, "norm", ("l1", "l2", "max"))
        array = _array(self, data).astype(np.float64, copy=False)
        flat = np.abs(array.reshape(array.shape[0], -1))
        if norm == "l1":
            scale = flat.sum(axis=1)
        elif norm == "l2":
            scale = np.sqrt((flat * flat).sum(axis=1))
        else:
            scale = flat.max(axis=1, initial=0.0)
        scale = np.where(scale > 0, scale, 1.0).reshape((-1,) + (1,) * (array.ndim - 1))
        return array / scale


@register_processor("histogram")
class Histogram(Processor):
    """Per-sample histogram of the values: ``(N, ...) -> (N, bins)``.

    All samples share the same bin edges (``value_range``, or the data's overall minimum
    and maximum) so that the histograms are comparable features.
    """

    version: ClassVar[int] = 1

    bins = Param(int, 32, "Number of equal-width bins.")
    value_range = Param((tuple, type(None)), None, "(low, high) of the bins; None: data range.")
    density = Param(bool, False, "Divide each histogram by its sample's number of values.")

    def function(self, data: Any) -> np.ndarray:
        if self.bins < 1:
            raise ConfigError(f"Histogram: bins must be positive, found {self.bins}")
        flat = _array(self, data).reshape(np.shape(data)[0], -1).astype(np.float64, copy=False)
        if self.value_range is None:
            low, high = (float(flat.min()), float(flat.max())) if flat.size else (0.0, 1.0)
        else:
            if len(self.value_range) != 2 or not self.value_range[0] < self.value_range[1]:
                raise ConfigError(
                    f"Histogram: value_range must be (low, high) with low < high, "
                    f"found {self.value_range!r}"
                )
            low, high = (float(v) for v in self.value_range)
        if high <= low:
            high = low + 1.0  # constant data: one bin takes every value
        edges = np.linspace(low, high, self.bins + 1)
        counts = np.stack([np.histogram(row, bins=edges)[0] for row in flat]).astype(np.float64)
        if self.density and flat.shape[1]:
            counts /= flat.shape[1]
        return counts
