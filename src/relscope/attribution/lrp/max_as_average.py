"""Max pooling explained as if it were average pooling (the spec's option for max pooling).

The forward value stays the max pooling's output; only the backward changes. Relevance of
an output ``j`` is split over the inputs of its window in proportion to their values, the
norm rule of an average pooling with the same windows::

    R_i = a_i * sum_{j: i in window j} R_j / stab(sum_{k in window j} a_k)

Window sums are computed rather than window means so that the stabilizer acts on the same
denominator as the spec's norm rule; the kernel-size factor would otherwise scale ``eps``.
Padded positions are not inputs: they add nothing to a sum and receive nothing (max pooling
pads with ``-inf``, so no average-pooling padding convention could reproduce it). Adaptive
max pooling uses the windows adaptive average pooling uses (``floor(i L / n)`` to
``ceil((i + 1) L / n)``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from relscope.attribution.lrp.functions import normalize, tie
from relscope.attribution.lrp.layers import Operation
from relscope.attribution.lrp.pooling import max_pool_settings
from relscope.attribution.lrp.rules import Norm, register_rule
from relscope.errors import ConfigError

__all__ = ["MaxAsAverage", "adaptive_window_sums", "window_sums"]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_ADAPTIVE_AVG = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}
_ADAPTIVE_MODULES = {nn.AdaptiveMaxPool1d: 1, nn.AdaptiveMaxPool2d: 2, nn.AdaptiveMaxPool3d: 3}
_ADAPTIVE_FUNCTIONS = {F.adaptive_max_pool1d: 1, F.adaptive_max_pool2d: 2, F.adaptive_max_pool3d: 3}


def window_sums(
    x: torch.Tensor, settings: dict[str, Any], output_shape: torch.Size
) -> torch.Tensor:
    """The sum of ``x`` over every max pooling window (``settings`` from
    :func:`~relscope.attribution.lrp.pooling.max_pool_settings`), shaped like the pooling's
    output ``output_shape``; differentiable in ``x``."""
    dims = settings["dims"]
    spatial = x.shape[-dims:]
    wanted = output_shape[-dims:]
    pads = []
    for axis in reversed(range(dims)):
        left = settings["padding"][axis]
        extent = (wanted[axis] - 1) * settings["stride"][axis]
        extent += (settings["kernel_size"][axis] - 1) * settings["dilation"][axis] + 1
        # ceil_mode windows may reach past the right padding: zeros stand in for them too.
        pads += [left, max(0, extent - left - spatial[axis])]
    planes = F.pad(x.reshape(-1, 1, *spatial), pads)
    ones = x.new_ones((1, 1, *settings["kernel_size"]))
    sums = _CONV[dims](planes, ones, None, settings["stride"], 0, settings["dilation"])
    crop = (..., *(slice(0, size) for size in wanted))
    return sums[crop].reshape(output_shape)


def adaptive_window_sums(x: torch.Tensor, output_size: tuple[int, ...]) -> torch.Tensor:
    """The sum of ``x`` over every window of adaptive pooling to ``output_size``."""
    dims = len(output_size)
    counts = x.new_ones(())
    for axis, (length, size) in enumerate(zip(x.shape[-dims:], output_size, strict=True)):
        index = torch.arange(size, device=x.device)
        start = torch.div(index * length, size, rounding_mode="floor")
        stop = torch.div((index + 1) * length + size - 1, size, rounding_mode="floor")
        shape = [-1 if a == axis else 1 for a in range(dims)]
        counts = counts * (stop - start).to(x.dtype).reshape(shape)
    return _ADAPTIVE_AVG[dims](x, output_size) * counts


def _adaptive_output_size(
    module: nn.Module | None, function: Any, args: tuple, kwargs: dict
) -> tuple[int, ...] | None:
    """The resolved output size of an index-free adaptive max pooling call, else ``None``."""
    if module is not None:
        dims = next((d for t, d in _ADAPTIVE_MODULES.items() if isinstance(module, t)), None)
        if dims is None or len(args) != 1 or kwargs or module.return_indices:
            return None
        size = module.output_size
    else:
        try:
            dims = _ADAPTIVE_FUNCTIONS.get(function)
        except TypeError:  # unhashable callables
            return None
        options = dict(zip(("input", "output_size", "return_indices"), args, strict=False))
        if dims is None or set(options) & set(kwargs):
            return None
        options.update(kwargs)
        if set(options) - {"input", "output_size", "return_indices"}:
            return None
        if options.get("return_indices") or "output_size" not in options:
            return None
        size = options["output_size"]
    x = args[0]
    if not isinstance(x, torch.Tensor) or x.ndim not in (dims + 1, dims + 2):
        return None
    sizes = (size,) * dims if isinstance(size, int) or size is None else tuple(size)
    if len(sizes) == 1:
        sizes *= dims
    spatial = x.shape[-dims:]
    # None keeps the input's size along that axis (nn.AdaptiveMaxPool2d((None, 7))).
    return tuple(int(s) if s is not None else spatial[a] for a, s in enumerate(sizes))


@register_rule("max_as_average")
class MaxAsAverage(Norm):
    """Max pooling explained as average pooling: the norm rule over each pooling window.

    ``R_i = a_i * sum_j R_j / stab(sum_{k in window j} a_k)`` with the windows of the max
    pooling (kernel, stride, padding, dilation, ceil mode; adaptive pooling: the adaptive
    windows); the output value is the max pooling's. On any other operation it is the
    :class:`~relscope.attribution.lrp.rules.Norm` rule, which is the same thing for average
    pooling. A max pooling whose windows cannot be read (one returning indices) is refused
    rather than silently explained by its winners.
    """

    kinds = frozenset({"maxpool"})

    def apply(self, op: Operation, *args: Any, **kwargs: Any) -> Any:
        settings = max_pool_settings(op.module, op.function, args, kwargs)
        adaptive = None if settings else _adaptive_output_size(op.module, op.function, args, kwargs)
        if settings is None and adaptive is None:
            if op.kind == "maxpool":
                raise ConfigError(
                    f"max_as_average on {op.name}: only max pooling of one input that returns "
                    "no indices can be explained as average pooling"
                )
            return super().apply(op, *args, **kwargs)
        with torch.no_grad():
            value = op(*args, **kwargs)
        source = tie(args[0])
        if settings is not None:
            sums = window_sums(source, settings, value.shape)
        else:
            sums = adaptive_window_sums(source, adaptive)
        return normalize(value, [sums], [1.0], self.eps)
