"""Perturbation attributors: Occlusion, LIME and RISE.

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

Examples
--------
>>> import torch
>>> from torch import nn
>>> model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
...                       nn.Linear(4 * 8 * 8, 5))
>>> x = torch.rand(2, 3, 8, 8)
>>> output, attribution = Occlusion(window=4, stride=2)(model, x, target=1)
>>> attribution.shape
torch.Size([2, 1, 8, 8])
>>> result = LIME(samples=64, cell=4, generator=0)(model, x)
>>> result.coefficients.shape  # one surrogate coefficient per 4 x 4 superpixel
torch.Size([2, 4])
>>> RISE(masks=32, cells=4, generator=0)(model, x).relevance.shape
torch.Size([2, 1, 8, 8])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from relscope.attribution.attributors import Attributor, register_attributor
from relscope.attribution.core import (
    Attribution,
    Fill,
    Seed,
    Target,
    check_fill,
    check_seed,
    chunks,
    fill_values,
    forward,
    generator_device,
    generator_for,
    target_weights,
)
from relscope.errors import ConfigError

__all__ = [
    "LIME",
    "RISE",
    "LimeAttribution",
    "Occlusion",
    "grid_segments",
    "lime_masks",
    "rise_masks",
]

Size = int | Sequence[int]
Segmentation = str | torch.Tensor | Callable[[torch.Tensor], Any]

#: Occlusion and LIME are deterministic: no random fills.
_FILLS = ("mean",)

#: Spatial extent of the default window / superpixel: about an eighth of each dimension.
_DEFAULT_PARTS = 8


# ------------------------------------------------------------------------------ checks
def _integer(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _number(name: str, value: Any, *, positive: bool) -> float:
    bad = isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value)
    if bad or value < 0 or (positive and value == 0):
        raise ConfigError(
            f"{name} must be a finite number {'>' if positive else '>='} 0, got {value!r}"
        )
    return float(value)


def _size(name: str, value: Any, *, optional: bool = False) -> int | tuple[int, ...] | None:
    """A positive int or a tuple of them (one per spatial dimension), checked early."""
    if value is None and optional:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return _integer(name, value, 1)
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0:
        return tuple(_integer(name, v, 1) for v in value)
    raise ConfigError(f"{name} must be a positive integer or a tuple of them, got {value!r}")


def _per_dim(name: str, value: int | tuple[int, ...], spatial: tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * len(spatial)
    if len(value) != len(spatial):
        raise ConfigError(
            f"{name} {value} needs one entry per spatial dimension of the input {spatial}"
        )
    return value


def _default_size(spatial: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(max(1, s // _DEFAULT_PARTS) for s in spatial)


def _spatial(inputs: torch.Tensor) -> tuple[int, ...]:
    if not 3 <= inputs.ndim <= 5:
        raise ConfigError(
            "inputs must be (batch, channels, *spatial) with 1 to 3 spatial dimensions, "
            f"got shape {tuple(inputs.shape)}"
        )
    return tuple(inputs.shape[2:])


def _fill_params(params: dict[str, Any], fill: Fill) -> dict[str, Any]:
    if isinstance(fill, torch.Tensor):
        params["fill"] = fill.tolist() if fill.numel() <= 16 else "tensor"
    return params


def _target(
    model: nn.Module, inputs: torch.Tensor, target: Target
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The clean output, the output weights ``t`` and the clean target score ``t . f(x)``."""
    output = forward(model, inputs)
    weights = target_weights(output, target)
    return output, weights, (output * weights).sum(1)


def _score(model: nn.Module, copies: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``t_b . f(x')`` for each perturbed row (``weights`` holds each row's ``t_b``)."""
    return (forward(model, copies) * weights).sum(1)


def _rows(part: slice, batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Copy-major rows ``r = copy * batch + sample`` as (copy, sample) index pairs."""
    rows = torch.arange(part.start, part.stop, device=device)
    return rows // batch, rows % batch


def _outer(factors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-dimension factors ``(n, size_d)`` multiplied into ``(n, *sizes)``."""
    dims = len(factors)
    out = factors[0].reshape(factors[0].shape[0], -1, *[1] * (dims - 1))
    for d in range(1, dims):
        shape = [factors[d].shape[0]] + [1] * dims
        shape[d + 1] = -1
        out = out * factors[d].reshape(shape)
    return out


# ---------------------------------------------------------------------------- Occlusion
def _starts(size: int, window: int, stride: int) -> list[int]:
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] + window < size:
        # Without a window flush with the far edge the last elements would never be
        # occluded and would get no attribution at all.
        starts.append(size - window)
    return starts


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
        self.window = _size("window", window, optional=True)
        self.stride = _size("stride", stride, optional=True)
        self.fill = check_fill(fill, _FILLS, functions=False)
        self.batch_size = _integer("batch_size", batch_size, 0)

    def params(self) -> dict[str, Any]:
        return _fill_params(super().params(), self.fill)

    def windows(self, spatial: Sequence[int]) -> list[list[int]]:
        """The window start positions along each spatial dimension (their product is used)."""
        spatial = tuple(spatial)
        window = self._window(spatial)
        stride = _per_dim("stride", self.stride or window, spatial)
        return [_starts(s, w, t) for s, w, t in zip(spatial, window, stride, strict=True)]

    def _window(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        if self.window is None:
            return _default_size(spatial)
        window = _per_dim("window", self.window, spatial)
        if any(w > s for w, s in zip(window, spatial, strict=True)):
            raise ConfigError(f"window {window} is larger than the input's spatial size {spatial}")
        return window

    @torch.no_grad()
    def attribute(self, model: nn.Module, inputs: torch.Tensor, target: Target) -> Attribution:
        """``(f(x), A)`` with ``A_l`` the mean score drop over the windows covering ``l``."""
        spatial = _spatial(inputs)
        window = self._window(spatial)
        starts = self.windows(spatial)
        device, batch = inputs.device, inputs.shape[0]
        output, weights, clean = _target(model, inputs, target)
        fill = fill_values(self.fill, inputs)
        grid = tuple(len(s) for s in starts)
        start_of = [torch.tensor(s, device=device) for s in starts]
        ranges = [torch.arange(s, device=device) for s in spatial]
        total = torch.zeros(batch, math.prod(spatial), dtype=clean.dtype, device=device)
        for part in chunks(math.prod(grid) * batch, self.batch_size):
            position, sample = _rows(part, batch, device)
            index = torch.unravel_index(position, grid)
            inside = []
            for r, st, i, w in zip(ranges, start_of, index, window, strict=True):
                first = st[i][:, None]
                inside.append((r >= first) & (r < first + w))
            mask = _outer(inside)
            occluded = torch.where(mask.unsqueeze(1), fill[sample], inputs[sample])
            drop = clean[sample] - _score(model, occluded, weights[sample])
            total.index_add_(0, sample, drop[:, None] * mask.flatten(1).to(drop.dtype))
        # The windows are a product of per-dimension positions, so the number covering a
        # location is the product of the per-dimension coverage counts.
        counts = []
        for size, w, st in zip(spatial, window, starts, strict=True):
            count = torch.zeros(size, dtype=total.dtype, device=device)
            for s in st:
                count[s : s + w] += 1
            counts.append(count[None])
        coverage = _outer(counts).flatten()
        attribution = (total / coverage).reshape(batch, 1, *spatial).to(inputs.dtype)
        return Attribution(output, attribution)


# --------------------------------------------------------------------------------- LIME
def grid_segments(size: Sequence[int], cell: Size) -> torch.Tensor:
    """Square (box) superpixels: label map ``(*size)`` of boxes of ``cell`` locations.

    Label of location ``(i_1, ..., i_d)``: the row-major index of ``(i_1 // c_1, ...,
    i_d // c_d)``; boxes at the far edges are smaller where ``cell`` does not divide ``size``.
    """
    size = tuple(size)
    cell = _per_dim("cell", _size("cell", cell), size)
    cells = tuple(-(-s // c) for s, c in zip(size, cell, strict=True))
    index = [torch.arange(s) // c for s, c in zip(size, cell, strict=True)]
    label = torch.zeros(size, dtype=torch.long)
    for d, part in enumerate(index):
        shape = [1] * len(size)
        shape[d] = -1
        label = label * cells[d] + part.reshape(shape)
    return label


def lime_masks(
    samples: int,
    num_segments: Sequence[int] | torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """LIME's on/off samples: bool ``(batch, samples, max segments)``, ``True`` = kept.

    Each segment of sample ``b`` is kept with probability 1/2, independently; the first
    draw keeps every segment (the clean input, as in LIME). Columns beyond a sample's
    ``num_segments`` are ``False``. One draw ``torch.rand((batch, samples, max segments))``
    from ``generator``, on the generator's device.
    """
    counts = torch.as_tensor(num_segments, dtype=torch.long).reshape(-1).cpu()
    device = generator_device(generator)
    width = int(counts.max())
    keep = torch.rand((len(counts), samples, width), generator=generator, device=device) < 0.5
    keep[:, 0] = True
    exists = torch.arange(width, device=device) < counts.to(device)[:, None]
    return keep & exists[:, None]


@dataclass
class LimeAttribution(Attribution):
    """LIME's result: the attribution plus the per-sample surrogate.

    ``relevance`` is ``(batch, 1, *spatial)``: each location gets its segment's coefficient.
    ``segments`` ``(batch, *spatial)`` holds the segment labels ``0 .. num_segments - 1``;
    ``coefficients`` ``(batch, max segments)`` the surrogate's coefficients (0 beyond a
    sample's segments); ``intercept`` ``(batch,)``; ``r_squared`` ``(batch,)`` the kernel
    weighted coefficient of determination of the fit on the samples.
    """

    segments: torch.Tensor | None = None
    num_segments: torch.Tensor | None = None
    coefficients: torch.Tensor | None = None
    intercept: torch.Tensor | None = None
    r_squared: torch.Tensor | None = None


def _slic(image: torch.Tensor, options: dict[str, Any]) -> torch.Tensor:
    try:
        from skimage.segmentation import slic
    except ImportError:
        raise ConfigError(
            "segmentation 'slic' needs scikit-image (pip install scikit-image)"
        ) from None
    if image.ndim not in (3, 4):
        raise ConfigError("segmentation 'slic' needs 2-D or 3-D inputs; use 'grid' for signals")
    array = image.detach().double().cpu().movedim(0, -1).numpy()
    # SLIC's compactness trades colour distance against space, so it needs a fixed
    # intensity range; each image is rescaled to [0, 1].
    low, high = array.min(), array.max()
    array = (array - low) / (high - low) if high > low else array * 0
    params = {"n_segments": 50, "compactness": 10.0, "start_label": 0, **options}
    return torch.as_tensor(slic(array, channel_axis=-1, **params))


@register_attributor("lime")
class LIME(Attributor):
    """LIME: a kernel-weighted linear surrogate of the target score over segments on/off.

    The input is split into segments (superpixels). For ``samples`` random on/off vectors
    ``z in {0, 1}^S`` (each segment kept with probability 1/2, the first sample all on) the
    copy ``x_z`` keeps the segments with ``z_s = 1`` and replaces the others by ``fill``.
    With the cosine distance to the all-on vector, ``d(z) = 1 - sqrt(|z| / S)``, and the
    exponential kernel ``pi(z) = exp(-d(z)^2 / kernel_width^2)`` (LIME paper's kernel; the
    ``lime`` package uses its square root), the surrogate minimizes::

        sum_z pi(z) (s(x_z) - b - c . z)^2 + alpha |c|^2

    in closed form (weighted ridge, intercept ``b`` not penalized, kernel weights scaled to
    mean 1 so that ``alpha`` is relative to the number of samples). The attribution of a
    location is the coefficient ``c_s`` of its segment: ``(batch, 1, *spatial)``. The call
    returns a :class:`LimeAttribution` with the coefficients, intercept and segments.

    Parameters
    ----------
    segmentation:
        ``"grid"``: boxes of ``cell`` locations (:func:`grid_segments`). ``"slic"``:
        scikit-image's SLIC superpixels of each image (rescaled to ``[0, 1]``, with
        ``slic_options``; 2-D and 3-D inputs). A function ``image (C, *spatial) -> labels
        (*spatial)`` (tensor or array of integers) called per sample. Or integer labels,
        a tensor ``(*spatial)``, ``(batch, *spatial)`` or ``(batch, 1, *spatial)``. Labels
        need not be consecutive.
    samples:
        Number of on/off samples per input (>= 1; the surrogate has ``S + 1`` unknowns).
    kernel_width:
        Width of the exponential kernel on the cosine distance (> 0).
    fill:
        Replacement for switched-off segments: a number, ``"mean"`` (each sample's mean per
        channel) or a tensor broadcastable to the inputs.
    cell:
        Superpixel size for ``"grid"`` (int or one per spatial dimension); ``None``: an
        eighth of each dimension (at least 1).
    slic_options:
        Keyword arguments for ``skimage.segmentation.slic`` (default ``n_segments=50``,
        ``compactness=10``).
    alpha:
        Ridge penalty (>= 0).
    batch_size:
        Perturbed copies (rows, stacked across samples) per forward pass; 0: all at once.
    generator:
        Source of the on/off samples (:func:`lime_masks`): a ``torch.Generator`` (advanced
        by each call), an int seed (a fresh generator per call: repeated calls agree) or
        ``None`` (torch's global generator).
    """

    def __init__(
        self,
        segmentation: Segmentation = "grid",
        samples: int = 1000,
        kernel_width: float = 0.25,
        fill: Fill = 0.0,
        cell: Size | None = None,
        slic_options: dict[str, Any] | None = None,
        alpha: float = 1e-3,
        batch_size: int = 64,
        generator: Seed = None,
    ) -> None:
        if isinstance(segmentation, str):
            if segmentation not in ("grid", "slic"):
                raise ConfigError(
                    "segmentation must be 'grid', 'slic', a function or a label tensor, "
                    f"got {segmentation!r}"
                )
        elif isinstance(segmentation, torch.Tensor):
            if segmentation.is_floating_point() or segmentation.is_complex():
                raise ConfigError("a segmentation tensor must hold integer labels")
        elif not callable(segmentation):
            raise ConfigError(
                "segmentation must be 'grid', 'slic', a function or a label tensor, "
                f"got {type(segmentation).__name__}"
            )
        self.segmentation = segmentation
        self.samples = _integer("samples", samples, 1)
        self.kernel_width = _number("kernel_width", kernel_width, positive=True)
        self.fill = check_fill(fill, _FILLS, functions=False)
        self.cell = _size("cell", cell, optional=True)
        self.slic_options = dict(slic_options or {})
        self.alpha = _number("alpha", alpha, positive=False)
        self.batch_size = _integer("batch_size", batch_size, 0)
        self._generator = check_seed(generator)
        # An int seed is a plain parameter (it rebuilds the attributor); a Generator is state.
        self.generator = generator if isinstance(generator, int) else None

    def params(self) -> dict[str, Any]:
        out = _fill_params(super().params(), self.fill)
        if not isinstance(self.segmentation, str):
            out["segmentation"] = type(self.segmentation).__name__
        return out

    def segments(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Consecutive segment labels ``(batch, *spatial)`` and their counts ``(batch,)``."""
        inputs = inputs.detach()
        spatial = _spatial(inputs)
        batch = inputs.shape[0]
        seg = self.segmentation
        if isinstance(seg, str) and seg == "grid":
            cell = _default_size(spatial) if self.cell is None else self.cell
            cell = _per_dim("cell", cell, spatial)
            if any(c > s for c, s in zip(cell, spatial, strict=True)):
                raise ConfigError(f"cell {cell} is larger than the input's spatial size {spatial}")
            labels = grid_segments(spatial, cell).expand(batch, *spatial)
        elif isinstance(seg, str):  # "slic"
            labels = torch.stack([_slic(image, self.slic_options) for image in inputs])
        elif isinstance(seg, torch.Tensor):
            labels = seg
            if labels.shape in ((batch, 1, *spatial), (batch, *spatial)):
                labels = labels.reshape(batch, *spatial)
            elif labels.shape == spatial:
                labels = labels.expand(batch, *spatial)
            else:
                raise ConfigError(
                    f"segmentation labels of shape {tuple(labels.shape)} do not fit inputs of "
                    f"shape {tuple(inputs.shape)}: expected {spatial} or {(batch, *spatial)}"
                )
        else:
            labels = torch.stack([self._call(seg, image, spatial) for image in inputs])
        # Consecutive labels per sample, so that segment s is column s of the surrogate.
        relabelled, counts = [], []
        for label in labels.to(inputs.device):
            values, inverse = torch.unique(label, return_inverse=True)
            relabelled.append(inverse.reshape(spatial))
            counts.append(len(values))
        return torch.stack(relabelled), torch.tensor(counts, device=inputs.device)

    @staticmethod
    def _call(function: Callable, image: torch.Tensor, spatial: tuple[int, ...]) -> torch.Tensor:
        try:
            label = torch.as_tensor(function(image))
        except (TypeError, RuntimeError, ValueError):
            label = None
        if label is None or label.shape != spatial or label.is_floating_point():
            raise ConfigError(
                f"the segmentation function must return integer labels of shape {spatial}"
            )
        return label.long()

    @torch.no_grad()
    def attribute(self, model: nn.Module, inputs: torch.Tensor, target: Target) -> LimeAttribution:
        """Fit the surrogate per sample; ``A_l = c_{segment(l)}``."""
        spatial = _spatial(inputs)
        device, batch = inputs.device, inputs.shape[0]
        labels, counts = self.segments(inputs)
        output, weights, _ = _target(model, inputs, target)
        fill = fill_values(self.fill, inputs)
        keep = lime_masks(self.samples, counts, generator_for(self._generator)).to(device)
        flat_labels = labels.flatten(1)
        scores = torch.zeros(batch, self.samples, dtype=output.dtype, device=device)
        for part in chunks(self.samples * batch, self.batch_size):
            draw, sample = _rows(part, batch, device)
            kept = keep[sample, draw].gather(1, flat_labels[sample])
            copies = torch.where(kept.reshape(-1, 1, *spatial), inputs[sample], fill[sample])
            scores[sample, draw] = _score(model, copies, weights[sample])
        on = keep.double()
        distance = 1 - torch.sqrt(on.sum(-1) / counts[:, None].double())
        kernel = torch.exp(-(distance**2) / self.kernel_width**2)
        coef, intercept, r_squared = _weighted_ridge(
            on, scores.double(), kernel, counts, self.alpha
        )
        coef = coef.to(inputs.dtype)
        attribution = coef.gather(1, flat_labels).reshape(batch, 1, *spatial)
        return LimeAttribution(
            output,
            attribution,
            segments=labels,
            num_segments=counts,
            coefficients=coef,
            intercept=intercept.to(inputs.dtype),
            r_squared=r_squared.to(inputs.dtype),
        )


def _weighted_ridge(
    z: torch.Tensor, y: torch.Tensor, kernel: torch.Tensor, counts: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batched ``min_{b, c} sum_i k_i (y_i - b - c . z_i)^2 + alpha |c|^2`` (float64).

    With weighted means ``zbar``, ``ybar`` and centred ``Z``, ``y``:
    ``c = (Z^T K Z + alpha I)^+ Z^T K y`` and ``b = ybar - c . zbar``.
    """
    k = kernel / kernel.mean(1, keepdim=True)
    total = k.sum(1, keepdim=True)
    z_mean = (k[..., None] * z).sum(1) / total
    y_mean = (k * y).sum(1) / total[:, 0]
    zc, yc = z - z_mean[:, None], y - y_mean[:, None]
    gram = zc.transpose(1, 2) @ (k[..., None] * zc)
    rhs = zc.transpose(1, 2) @ (k * yc)[..., None]
    # Padding columns (beyond a sample's segments) are all zero: a unit diagonal there
    # keeps the system regular and gives them coefficient 0.
    padding = torch.arange(z.shape[-1], device=z.device) >= counts[:, None]
    gram = gram + torch.diag_embed(alpha + padding.double())
    coef = (torch.linalg.pinv(gram, hermitian=True) @ rhs)[..., 0]
    intercept = y_mean - (z_mean * coef).sum(1)
    residual = (k * (yc - (zc * coef[:, None]).sum(-1)) ** 2).sum(1)
    spread = (k * yc**2).sum(1)
    r_squared = torch.where(spread > 0, 1 - residual / spread.clamp_min(1e-300), 1.0)
    return coef, intercept, r_squared


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
    cells = _per_dim("cells", cells, spatial)
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
    count = _integer("count", count, 1)
    probability = _probability(probability)
    cells, cell = _rise_geometry(_size("cells", cells), spatial)
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
        self.masks = _integer("masks", masks, 1)
        self.cells = _size("cells", cells)
        self.probability = _probability(probability)
        self.batch_size = _integer("batch_size", batch_size, 0)
        self._generator = check_seed(generator)
        # An int seed is a plain parameter (it rebuilds the attributor); a Generator is state.
        self.generator = generator if isinstance(generator, int) else None

    @torch.no_grad()
    def attribute(self, model: nn.Module, inputs: torch.Tensor, target: Target) -> Attribution:
        """``(f(x), 1 / (N p) sum_i s(x * M_i) M_i)``."""
        spatial = _spatial(inputs)
        device, batch = inputs.device, inputs.shape[0]
        cells, cell = _rise_geometry(self.cells, spatial)
        output, weights, _ = _target(model, inputs, target)
        # Only the small grids and shifts are kept for all masks; the full-size masks are
        # made per chunk, so memory is bounded by batch_size, not by the number of masks.
        grids, shifts = _rise_draw(
            self.masks, cells, cell, self.probability, generator_for(self._generator)
        )
        total = torch.zeros(batch, math.prod(spatial), dtype=output.dtype, device=device)
        for part in chunks(self.masks * batch, self.batch_size):
            mask_index, sample = _rows(part, batch, device)
            first, last = int(mask_index[0]), int(mask_index[-1]) + 1
            masks = _rise_upsample(
                grids[first:last], shifts[first:last], spatial, cell, inputs.dtype, device
            )[mask_index - first]
            score = _score(model, inputs[sample] * masks.unsqueeze(1), weights[sample])
            total.index_add_(0, sample, score[:, None] * masks.flatten(1).to(score.dtype))
        attribution = total / (self.masks * self.probability)
        return Attribution(output, attribution.reshape(batch, 1, *spatial).to(inputs.dtype))
