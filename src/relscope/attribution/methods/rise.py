"""RISE: the target score averaged over random smooth masks, per location (see
:mod:`~relscope.attribution.methods.masking`).

>>> import torch
>>> from torch import nn
>>> model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
...                       nn.Linear(4 * 8 * 8, 5))
>>> RISE(masks=32, cells=4, generator=0)(model, torch.rand(2, 3, 8, 8)).relevance.shape
torch.Size([2, 1, 8, 8])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from relscope.attribution.attributors import Attributor, register_attributor
from relscope.attribution.core import (
    Attribution,
    Seed,
    Target,
    check_seed,
    chunks,
    generator_device,
    generator_for,
)
from relscope.attribution.methods.masking import (
    Size,
    check_integer,
    check_size,
    clean_target,
    copy_rows,
    masked_scores,
    per_dim,
    spatial_shape,
)
from relscope.errors import ConfigError


# --------------------------------------------------------------------------------- RISE
def _rise_draw(
    count: int,
    cells: tuple[int, ...],
    cell: tuple[int, ...],
    probability: float,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The random part of RISE's masks: binary grids and per-dimension shifts."""
    device = generator_device(generator)
    grids = torch.rand((count, *cells), generator=generator, device=device) < probability
    shifts = torch.stack(
        [torch.randint(0, c, (count,), generator=generator, device=device) for c in cell], 1
    )
    return grids, shifts


__all__ = [
    "RISE",
    "rise_masks",
]


def _rise_upsample(
    grids: torch.Tensor,
    shifts: torch.Tensor,
    spatial: tuple[int, ...],
    cell: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """Smooth masks ``(n, *spatial)``: grids (multi)linearly upsampled to ``(cells + 1) *
    cell`` and cropped at ``shifts``."""
    cells = grids.shape[1:]
    up = tuple((c + 1) * s for c, s in zip(cells, cell, strict=True))
    mode = ("linear", "bilinear", "trilinear")[len(spatial) - 1]
    grids = grids.to(device=device, dtype=dtype)[:, None]
    smooth = F.interpolate(grids, size=up, mode=mode, align_corners=False)[:, 0]
    n, dims = smooth.shape[0], len(spatial)
    shifts = shifts.to(device)
    # Advanced indexing with broadcast (n, 1, ..), (n, size_1, 1, ..), ...: one crop per mask.
    index = [torch.arange(n, device=device).reshape(n, *[1] * dims)]
    for d, size in enumerate(spatial):
        shape = [n] + [1] * dims
        shape[d + 1] = size
        index.append((shifts[:, d, None] + torch.arange(size, device=device)).reshape(shape))
    return smooth[tuple(index)]


def _rise_geometry(
    cells: int | tuple[int, ...], spatial: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    cells = per_dim("cells", cells, spatial)
    cell = tuple(-(-s // c) for s, c in zip(spatial, cells, strict=True))
    return cells, cell


def rise_masks(
    count: int,
    size: Sequence[int],
    cells: Size = 7,
    probability: float = 0.5,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """RISE's masks ``(count, *size)`` in ``[0, 1]``, exactly those :class:`RISE` uses.

    Per mask: a binary grid of ``cells`` cells per dimension, each 1 with probability
    ``probability`` (``torch.rand(...) < p``, one draw for all masks), then one random shift
    per dimension, uniform in ``0 .. cell - 1`` with the cell size ``cell =
    ceil(size / cells)`` (one ``torch.randint`` per dimension). The grid is upsampled
    (linear / bilinear / trilinear, ``align_corners=False``) to ``(cells + 1) * cell`` and
    cropped to ``size`` starting at the shift.
    """
    spatial = tuple(size)
    if not 1 <= len(spatial) <= 3:
        raise ConfigError(f"size must have 1 to 3 dimensions, got {spatial}")
    count = check_integer("count", count, 1)
    probability = _probability(probability)
    cells, cell = _rise_geometry(check_size("cells", cells), spatial)
    grids, shifts = _rise_draw(count, cells, cell, probability, generator)
    device = torch.device(device) if device is not None else grids.device
    return _rise_upsample(grids, shifts, spatial, cell, dtype, device)


def _probability(p: Any) -> float:
    bad = isinstance(p, bool) or not isinstance(p, Real) or not math.isfinite(p)
    if bad or not 0 < p <= 1:
        raise ConfigError(f"probability must be in (0, 1], got {p!r}")
    return float(p)


@register_attributor("rise")
class RISE(Attributor):
    """RISE: the target score of randomly masked copies, averaged per location.

    With ``N`` random smooth masks ``M_i`` in ``[0, 1]`` (:func:`rise_masks`: binary grids
    with cells kept with probability ``p``, upsampled and randomly shifted, shared by all
    samples of the batch)::

        A(x)_l = 1 / (N p) * sum_i s(x * M_i) M_i[l]

    the Monte-Carlo estimate of ``E[s(x * M) M_l] / p``. Masked-out locations are 0 (the
    masks multiply the input, all channels alike). The attribution is
    ``(batch, 1, *spatial)``.

    Parameters
    ----------
    masks:
        Number of masks ``N`` (the RISE paper uses 4000 to 8000 for ImageNet models).
    cells:
        Grid cells per spatial dimension (int or one per dimension); cell size
        ``ceil(size / cells)``.
    probability:
        ``p``, the probability of keeping a cell, in ``(0, 1]``.
    batch_size:
        Masked copies (rows, stacked across samples) per forward pass; 0: all at once.
    generator:
        Source of the masks: a ``torch.Generator`` (advanced by each call), an int seed (a
        fresh generator per call: repeated calls agree) or ``None`` (torch's global
        generator).
    """

    def __init__(
        self,
        masks: int = 1000,
        cells: Size = 7,
        probability: float = 0.5,
        batch_size: int = 64,
        generator: Seed = None,
    ) -> None:
        self.masks = check_integer("masks", masks, 1)
        self.cells = check_size("cells", cells)
        self.probability = _probability(probability)
        self.batch_size = check_integer("batch_size", batch_size, 0)
        self._generator = check_seed(generator)
        # An int seed is a plain parameter (it rebuilds the attributor); a Generator is state.
        self.generator = generator if isinstance(generator, int) else None

    @torch.no_grad()
    def attribute(self, model: nn.Module, inputs: torch.Tensor, target: Target) -> Attribution:
        """``(f(x), 1 / (N p) sum_i s(x * M_i) M_i)``."""
        spatial = spatial_shape(inputs)
        device, batch = inputs.device, inputs.shape[0]
        cells, cell = _rise_geometry(self.cells, spatial)
        output, weights, _ = clean_target(model, inputs, target)
        # Only the small grids and shifts are kept for all masks; the full-size masks are
        # made per chunk, so memory is bounded by batch_size, not by the number of masks.
        grids, shifts = _rise_draw(
            self.masks, cells, cell, self.probability, generator_for(self._generator)
        )
        total = torch.zeros(batch, math.prod(spatial), dtype=output.dtype, device=device)
        for part in chunks(self.masks * batch, self.batch_size):
            mask_index, sample = copy_rows(part, batch, device)
            first, last = int(mask_index[0]), int(mask_index[-1]) + 1
            masks = _rise_upsample(
                grids[first:last], shifts[first:last], spatial, cell, inputs.dtype, device
            )[mask_index - first]
            score = masked_scores(model, inputs[sample] * masks.unsqueeze(1), weights[sample])
            total.index_add_(0, sample, score[:, None] * masks.flatten(1).to(score.dtype))
        attribution = total / (self.masks * self.probability)
        return Attribution(output, attribution.reshape(batch, 1, *spatial).to(inputs.dtype))
