"""What the masking attributors (Occlusion, LIME, RISE) share: argument checks, window and
cell sizes, and scoring masked copies of the inputs in batches.

These methods only evaluate the model (no gradients): they perturb the input, watch the
target score change and turn the changes into a score per *location*. Their attribution is
therefore ``(batch, 1, *spatial)`` for inputs ``(batch, channels, *spatial)`` with one to
three spatial dimensions (signals, images, volumes); a location is perturbed in all its
channels at once.

The target score of a perturbed copy ``x'`` of sample ``b`` is ``s(x') = sum_k t_bk f_k(x')``
with the output weights ``t`` of the clean input (one-hot of the target class, the predicted
class for ``target=None``, or the given output weights): every copy explains the same class.
All perturbed copies are stacked across the samples of the batch and evaluated ``batch_size``
rows at a time under ``torch.no_grad()`` on the inputs' device; the result does not depend on
``batch_size``. Random draws (LIME's on/off masks, RISE's masks) come from ``generator`` and
are made on the generator's device (the CPU by default), so results are reproducible and the
same on every device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real
from typing import Any

import torch
from torch import nn

from relscope.attribution.core import (
    Fill,
    Target,
    forward,
    target_weights,
)
from relscope.errors import ConfigError

__all__ = [
    "DETERMINISTIC_FILLS",
    "Size",
    "check_integer",
    "check_number",
    "check_size",
    "clean_target",
    "copy_rows",
    "default_size",
    "fill_params",
    "masked_scores",
    "outer",
    "per_dim",
    "spatial_shape",
]

#: A window or cell size: one for every spatial dimension, or one per dimension.
Size = int | Sequence[int]

#: Occlusion and LIME are deterministic: no random fills.
DETERMINISTIC_FILLS = ("mean",)

#: Spatial extent of the default window / superpixel: about an eighth of each dimension.
_DEFAULT_PARTS = 8


# ------------------------------------------------------------------------------ checks
def check_integer(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_number(name: str, value: Any, *, positive: bool) -> float:
    bad = isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value)
    if bad or value < 0 or (positive and value == 0):
        raise ConfigError(
            f"{name} must be a finite number {'>' if positive else '>='} 0, got {value!r}"
        )
    return float(value)


def check_size(name: str, value: Any, *, optional: bool = False) -> int | tuple[int, ...] | None:
    """A positive int or a tuple of them (one per spatial dimension), checked early."""
    if value is None and optional:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return check_integer(name, value, 1)
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0:
        return tuple(check_integer(name, v, 1) for v in value)
    raise ConfigError(f"{name} must be a positive integer or a tuple of them, got {value!r}")


def per_dim(name: str, value: int | tuple[int, ...], spatial: tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * len(spatial)
    if len(value) != len(spatial):
        raise ConfigError(
            f"{name} {value} needs one entry per spatial dimension of the input {spatial}"
        )
    return value


def default_size(spatial: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(max(1, s // _DEFAULT_PARTS) for s in spatial)


def spatial_shape(inputs: torch.Tensor) -> tuple[int, ...]:
    if not 3 <= inputs.ndim <= 5:
        raise ConfigError(
            "inputs must be (batch, channels, *spatial) with 1 to 3 spatial dimensions, "
            f"got shape {tuple(inputs.shape)}"
        )
    return tuple(inputs.shape[2:])


def fill_params(params: dict[str, Any], fill: Fill) -> dict[str, Any]:
    if isinstance(fill, torch.Tensor):
        params["fill"] = fill.tolist() if fill.numel() <= 16 else "tensor"
    return params


def clean_target(
    model: nn.Module, inputs: torch.Tensor, target: Target
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The clean output, the output weights ``t`` and the clean target score ``t . f(x)``."""
    output = forward(model, inputs)
    weights = target_weights(output, target)
    return output, weights, (output * weights).sum(1)


def masked_scores(model: nn.Module, copies: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``t_b . f(x')`` for each perturbed row (``weights`` holds each row's ``t_b``)."""
    return (forward(model, copies) * weights).sum(1)


def copy_rows(part: slice, batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Copy-major rows ``r = copy * batch + sample`` as (copy, sample) index pairs."""
    rows = torch.arange(part.start, part.stop, device=device)
    return rows // batch, rows % batch


def outer(factors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-dimension factors ``(n, size_d)`` multiplied into ``(n, *sizes)``."""
    dims = len(factors)
    out = factors[0].reshape(factors[0].shape[0], -1, *[1] * (dims - 1))
    for d in range(1, dims):
        shape = [factors[d].shape[0]] + [1] * dims
        shape[d + 1] = -1
        out = out * factors[d].reshape(shape)
    return out
