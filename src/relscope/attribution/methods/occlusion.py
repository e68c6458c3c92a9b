"""Occlusion: slide a window over the input, replace it by ``fill`` and score the drop in
the target score per location (see :mod:`~relscope.attribution.methods.masking`).

>>> import torch
>>> from torch import nn
>>> model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
...                       nn.Linear(4 * 8 * 8, 5))
>>> output, attribution = Occlusion(window=4, stride=2)(model, torch.rand(2, 3, 8, 8), target=1)
>>> attribution.shape
torch.Size([2, 1, 8, 8])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from relscope.attribution.attributors import Attributor, register_attributor
from relscope.attribution.core import (
    Attribution,
    Fill,
    Target,
    check_fill,
    chunks,
    fill_values,
)
from relscope.attribution.methods.masking import (
    DETERMINISTIC_FILLS,
    Size,
    check_integer,
    check_size,
    clean_target,
    copy_rows,
    default_size,
    fill_params,
    masked_scores,
    outer,
    per_dim,
    spatial_shape,
)
from relscope.errors import ConfigError


# ---------------------------------------------------------------------------- Occlusion
def _starts(size: int, window: int, stride: int) -> list[int]:
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] + window < size:
        # Without a window flush with the far edge the last elements would never be
        # occluded and would get no attribution at all.
        starts.append(size - window)
    return starts


__all__ = [
    "Occlusion",
]


@register_attributor("occlusion")
class Occlusion(Attributor):
    """Occlusion: the drop of the target score when a window of the input is replaced.

    A window (all channels of a box of locations) slides over the input; for each window
    position ``w`` the occluded copy ``x_w`` has the window replaced by ``fill``. The
    attribution of a location is the mean over the windows covering it::

        A(x)_l = 1 / |{w : l in w}| * sum_{w : l in w} (s(x) - s(x_w))

    Window positions start at ``0, stride, 2 * stride, ...`` along each spatial dimension;
    where the last of them does not reach the end of the input, one more window flush with
    the far edge is added, so that every location is covered. The attribution is
    ``(batch, 1, *spatial)``.

    Parameters
    ----------
    window:
        Window size in locations, an int (the same for every spatial dimension) or one int
        per spatial dimension. ``None``: an eighth of each dimension (at least 1).
    stride:
        Step between window positions, an int or one per spatial dimension (``>= 1``).
        ``None``: the window size (non-overlapping windows).
    fill:
        Replacement values: a number, ``"mean"`` (each sample's mean per channel over its
        locations) or a tensor broadcastable to the inputs (a baseline image).
    batch_size:
        Occluded copies (rows, stacked across samples) per forward pass; 0: all at once.
    """

    def __init__(
        self,
        window: Size | None = None,
        stride: Size | None = None,
        fill: Fill = 0.0,
        batch_size: int = 64,
    ) -> None:
        self.window = check_size("window", window, optional=True)
        self.stride = check_size("stride", stride, optional=True)
        self.fill = check_fill(fill, DETERMINISTIC_FILLS, functions=False)
        self.batch_size = check_integer("batch_size", batch_size, 0)

    def params(self) -> dict[str, Any]:
        return fill_params(super().params(), self.fill)

    def windows(self, spatial: Sequence[int]) -> list[list[int]]:
        """The window start positions along each spatial dimension (their product is used)."""
        spatial = tuple(spatial)
        window = self._window(spatial)
        stride = per_dim("stride", self.stride or window, spatial)
        return [_starts(s, w, t) for s, w, t in zip(spatial, window, stride, strict=True)]

    def _window(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        if self.window is None:
            return default_size(spatial)
        window = per_dim("window", self.window, spatial)
        if any(w > s for w, s in zip(window, spatial, strict=True)):
            raise ConfigError(f"window {window} is larger than the input's spatial size {spatial}")
        return window

    @torch.no_grad()
    def attribute(self, model: nn.Module, inputs: torch.Tensor, target: Target) -> Attribution:
        """``(f(x), A)`` with ``A_l`` the mean score drop over the windows covering ``l``."""
        spatial = spatial_shape(inputs)
        window = self._window(spatial)
        starts = self.windows(spatial)
        device, batch = inputs.device, inputs.shape[0]
        output, weights, clean = clean_target(model, inputs, target)
        fill = fill_values(self.fill, inputs)
        grid = tuple(len(s) for s in starts)
        start_of = [torch.tensor(s, device=device) for s in starts]
        ranges = [torch.arange(s, device=device) for s in spatial]
        total = torch.zeros(batch, math.prod(spatial), dtype=clean.dtype, device=device)
        for part in chunks(math.prod(grid) * batch, self.batch_size):
            position, sample = copy_rows(part, batch, device)
            index = torch.unravel_index(position, grid)
            inside = []
            for r, st, i, w in zip(ranges, start_of, index, window, strict=True):
                first = st[i][:, None]
                inside.append((r >= first) & (r < first + w))
            mask = outer(inside)
            occluded = torch.where(mask.unsqueeze(1), fill[sample], inputs[sample])
            drop = clean[sample] - masked_scores(model, occluded, weights[sample])
            total.index_add_(0, sample, drop[:, None] * mask.flatten(1).to(drop.dtype))
        # The windows are a product of per-dimension positions, so the number covering a
        # location is the product of the per-dimension coverage counts.
        counts = []
        for size, w, st in zip(spatial, window, starts, strict=True):
            count = torch.zeros(size, dtype=total.dtype, device=device)
            for s in st:
                count[s : s + w] += 1
            counts.append(count[None])
        coverage = outer(counts).flatten()
        attribution = (total / coverage).reshape(batch, 1, *spatial).to(inputs.dtype)
        return Attribution(output, attribution)
