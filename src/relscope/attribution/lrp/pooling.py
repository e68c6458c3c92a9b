"""Max pooling whose backward keeps two bytes per output instead of the input and an index.

Autograd's max pooling keeps its input and a 64-bit index per output until backward. The
winner-takes-all backward needs neither: the winner's offset from its window's origin
(16 bits for any window spanning fewer than 32767 flattened input positions) and the
input's shape are enough. For VGG-16 that frees the activation before every pooling layer
(a quarter of all activations) and shrinks the indices fourfold; the gradient it computes
is autograd's, bit for bit.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["max_pool_settings", "winner_takes_all"]

_MODULES = {nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3}
_FUNCTIONS = {F.max_pool1d: 1, F.max_pool2d: 2, F.max_pool3d: 3}
_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_NAMES = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")


def _signature(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
): ...


# F.max_poolNd dispatch on ``return_indices`` and hide their signature: this is it.
_SIGNATURE = inspect.signature(_signature)


def _tuple(value: Any, dims: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * dims
    value = tuple(int(v) for v in value)
    return value * dims if len(value) == 1 else value


def max_pool_settings(
    module: nn.Module | None, function: Any, args: tuple, kwargs: dict
) -> dict[str, Any] | None:
    """Kernel, stride, padding, dilation and ceil mode of a max pooling call, or ``None``
    when it is not a plain (non-adaptive, index-free) max pooling of one input."""
    if module is not None:
        dims = next((d for t, d in _MODULES.items() if type(module) is t), None)
        if dims is None or len(args) != 1 or kwargs:
            return None
        raw = {name: getattr(module, name) for name in _NAMES}
    else:
        try:
            dims = _FUNCTIONS.get(function)
        except TypeError:
            return None
        if dims is None or not args:
            return None
        try:
            bound = _SIGNATURE.bind(*args, **kwargs)
        except (TypeError, ValueError):
            return None
        bound.apply_defaults()
        raw = {name: bound.arguments.get(name) for name in _NAMES}
        raw["stride"] = raw["stride"] or raw["kernel_size"]
    if raw["return_indices"] or raw["stride"] is None:
        return None
    x = args[0]
    if not isinstance(x, torch.Tensor) or x.ndim not in (dims + 1, dims + 2):
        return None
    settings = {name: _tuple(raw[name], dims) for name in _NAMES[:4]}
    settings["ceil_mode"] = bool(raw["ceil_mode"])
    settings["dims"] = dims
    return settings


class _WinnerTakesAll(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, settings: dict[str, Any]) -> torch.Tensor:
        dims = settings["dims"]
        pool = _POOL[dims]
        output, index = pool(
            x.detach(), settings["kernel_size"], settings["stride"], settings["padding"],
            settings["dilation"], settings["ceil_mode"], return_indices=True,
        )  # fmt: skip
        ctx.settings = settings
        ctx.input_shape = x.shape
        ctx.save_for_backward(_local(index, x.shape[-dims:], settings))
        return output

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (local,) = ctx.saved_tensors
        settings, shape = ctx.settings, ctx.input_shape
        dims = settings["dims"]
        index = _global(local, shape[-dims:], settings)
        plane = math.prod(shape[-dims:])
        lead = grad.shape[:-dims]
        out = grad.new_zeros((*lead, plane))
        # scatter_add: with overlapping windows one input can win several of them.
        out.scatter_add_(-1, index.reshape(*lead, -1), grad.reshape(*lead, -1))
        return out.reshape(shape), None


def _base(settings: dict[str, Any], output_shape, spatial, device) -> torch.Tensor:
    """Flat input index of each output's window origin (may be negative with padding)."""
    dims = settings["dims"]
    base = torch.zeros((1,) * dims, dtype=torch.long, device=device)
    for axis in range(dims):
        size = output_shape[axis]
        start = torch.arange(size, device=device) * settings["stride"][axis]
        start = start - settings["padding"][axis]
        base = base * spatial[axis] + start.reshape([-1 if a == axis else 1 for a in range(dims)])
    return base


def _offset_dtype(settings: dict[str, Any], spatial: tuple[int, ...]) -> torch.dtype:
    # The largest offset of a window element from the window's origin, as a flat index.
    inner, largest = 1, 0
    for axis in reversed(range(settings["dims"])):
        largest += (settings["kernel_size"][axis] - 1) * settings["dilation"][axis] * inner
        inner *= spatial[axis]
    for dtype in (torch.int16, torch.int32):
        if largest <= torch.iinfo(dtype).max:
            return dtype
    return torch.long


def _local(index: torch.Tensor, spatial: tuple[int, ...], settings: dict[str, Any]):
    """Flat input index -> its offset from the window's origin (two passes, small dtype)."""
    dims = settings["dims"]
    base = _base(settings, tuple(index.shape[-dims:]), spatial, index.device)
    return index.sub_(base).to(_offset_dtype(settings, spatial))


def _global(local: torch.Tensor, spatial: tuple[int, ...], settings: dict[str, Any]):
    """The inverse of :func:`_local`: flat input indices (int64)."""
    dims = settings["dims"]
    base = _base(settings, tuple(local.shape[-dims:]), spatial, local.device)
    return local.long().add_(base)


def winner_takes_all(x: torch.Tensor, settings: dict[str, Any]) -> torch.Tensor:
    """Max pooling of ``x`` (``settings`` from :func:`max_pool_settings`) with the gradient
    of autograd's max pooling, keeping only the winners' in-window positions."""
    return _WinnerTakesAll.apply(x, settings)
