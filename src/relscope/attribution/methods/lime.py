"""LIME: a kernel-weighted linear surrogate of the target score over superpixels switched
on and off (see :mod:`~relscope.attribution.methods.masking`).

>>> import torch
>>> from torch import nn
>>> model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
...                       nn.Linear(4 * 8 * 8, 5))
>>> result = LIME(samples=64, cell=4, generator=0)(model, torch.rand(2, 3, 8, 8))
>>> result.coefficients.shape  # one surrogate coefficient per 4 x 4 superpixel
torch.Size([2, 4])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
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
    generator_device,
    generator_for,
)
from relscope.attribution.methods.masking import (
    DETERMINISTIC_FILLS,
    Size,
    check_integer,
    check_number,
    check_size,
    clean_target,
    copy_rows,
    default_size,
    fill_params,
    masked_scores,
    per_dim,
    spatial_shape,
)
from relscope.errors import ConfigError

Segmentation = str | torch.Tensor | Callable[[torch.Tensor], Any]

__all__ = [
    "LIME",
    "LimeAttribution",
    "grid_segments",
    "lime_masks",
]


# --------------------------------------------------------------------------------- LIME
def grid_segments(size: Sequence[int], cell: Size) -> torch.Tensor:
    """Square (box) superpixels: label map ``(*size)`` of boxes of ``cell`` locations.

    Label of location ``(i_1, ..., i_d)``: the row-major index of ``(i_1 // c_1, ...,
    i_d // c_d)``; boxes at the far edges are smaller where ``cell`` does not divide ``size``.
    """
    size = tuple(size)
    cell = per_dim("cell", check_size("cell", cell), size)
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
        self.samples = check_integer("samples", samples, 1)
        self.kernel_width = check_number("kernel_width", kernel_width, positive=True)
        self.fill = check_fill(fill, DETERMINISTIC_FILLS, functions=False)
        self.cell = check_size("cell", cell, optional=True)
        self.slic_options = dict(slic_options or {})
        self.alpha = check_number("alpha", alpha, positive=False)
        self.batch_size = check_integer("batch_size", batch_size, 0)
        self._generator = check_seed(generator)
        # An int seed is a plain parameter (it rebuilds the attributor); a Generator is state.
        self.generator = generator if isinstance(generator, int) else None

    def params(self) -> dict[str, Any]:
        out = fill_params(super().params(), self.fill)
        if not isinstance(self.segmentation, str):
            out["segmentation"] = type(self.segmentation).__name__
        return out

    def segments(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Consecutive segment labels ``(batch, *spatial)`` and their counts ``(batch,)``."""
        inputs = inputs.detach()
        spatial = spatial_shape(inputs)
        batch = inputs.shape[0]
        seg = self.segmentation
        if isinstance(seg, str) and seg == "grid":
            cell = default_size(spatial) if self.cell is None else self.cell
            cell = per_dim("cell", cell, spatial)
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
        spatial = spatial_shape(inputs)
        device, batch = inputs.device, inputs.shape[0]
        labels, counts = self.segments(inputs)
        output, weights, _ = clean_target(model, inputs, target)
        fill = fill_values(self.fill, inputs)
        keep = lime_masks(self.samples, counts, generator_for(self._generator)).to(device)
        flat_labels = labels.flatten(1)
        scores = torch.zeros(batch, self.samples, dtype=output.dtype, device=device)
        for part in chunks(self.samples * batch, self.batch_size):
            draw, sample = copy_rows(part, batch, device)
            kept = keep[sample, draw].gather(1, flat_labels[sample])
            copies = torch.where(kept.reshape(-1, 1, *spatial), inputs[sample], fill[sample])
            scores[sample, draw] = masked_scores(model, copies, weights[sample])
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
