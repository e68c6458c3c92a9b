"""Pixel flipping and region perturbation: how fast the model's score falls when the input
is removed region by region in the order an attribution ranks the regions.

A good attribution makes the most-relevant-first (MoRF) curve fall fast (small area under
the curve, large AOPC) and the least-relevant-first (LeRF) curve fall slowly.

>>> import torch
>>> from torch import nn
>>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2, bias=False)).double()
>>> _ = model[1].weight.data.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 1.0]]))
>>> x = torch.ones(1, 1, 2, 2, dtype=torch.float64)
>>> curve = perturbation_curve(model, x, x * model[1].weight[0].view(1, 1, 2, 2), 0)
>>> curve.scores
tensor([[10.,  6.,  3.,  1.,  0.]], dtype=torch.float64)
>>> curve.fractions
tensor([0.0000, 0.2500, 0.5000, 0.7500, 1.0000], dtype=torch.float64)
>>> curve.aopc()
tensor([6.], dtype=torch.float64)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from relscope.attribution.core import (
    Fill,
    Target,
    check_fill,
    class_scores,
    fill_values,
    generator_device,
    target_indices,
)
from relscope.errors import ConfigError

__all__ = ["Fill", "PerturbationCurve", "TargetSpec", "perturbation_curve"]

#: The class to score: an index per sample, one index for all, or ``None`` (the predicted
#: class). The same targets as attribution's (:data:`relscope.attribution.core.Target`).
TargetSpec = Target

_ORDERS = ("most", "least", "random")
_SCORES = ("logit", "probability")


@dataclass(frozen=True)
class PerturbationCurve:
    """Target score after each perturbation step.

    Attributes
    ----------
    fractions:
        ``(steps + 1,)`` fraction of regions removed at each point; starts at 0 (the clean
        input) and ends at 1.
    scores:
        ``(batch, steps + 1)`` target score (logit or probability) at each point.
    removed:
        ``(steps + 1,)`` number of regions removed at each point.
    target:
        ``(batch,)`` class whose score is followed (fixed for all steps).
    regions:
        Number of regions of one sample.
    order:
        ``"most"`` (MoRF), ``"least"`` (LeRF) or ``"random"``.
    patch:
        Region size in input positions along every spatial dimension.
    """

    fractions: torch.Tensor
    scores: torch.Tensor
    removed: torch.Tensor
    target: torch.Tensor
    regions: int
    order: str
    patch: int

    def auc(self) -> torch.Tensor:
        """Area under the curve per sample ``(batch,)``: trapezoid rule over ``fractions``."""
        return torch.trapezoid(self.scores, self.fractions, dim=1)

    def aopc(self) -> torch.Tensor:
        """Area over the perturbation curve per sample ``(batch,)``.

        The mean of ``scores[:, 0] - scores[:, k]`` over all points ``k = 0 .. steps``
        (Samek et al., 2017, which includes the clean point with its zero difference).
        """
        return (self.scores[:, :1] - self.scores).mean(dim=1)


def perturbation_curve(
    model: nn.Module,
    inputs: torch.Tensor,
    attribution: torch.Tensor | None,
    target: TargetSpec = None,
    *,
    order: Literal["most", "least", "random"] = "most",
    patch: int = 1,
    steps: int | None = None,
    fill: Fill = "zeros",
    batch_size: int = 64,
    generator: torch.Generator | None = None,
    score: Literal["logit", "probability"] = "logit",
) -> PerturbationCurve:
    """Remove the input region by region and follow the target score.

    The spatial positions are split into square (cubic) patches of ``patch`` positions on
    a grid (patches at the far edges may be smaller). Regions are ranked by the attribution
    summed over channels and over the patch; ties keep grid order. Step ``k`` of ``steps``
    shows the input with its first ``k * regions // steps`` ranked regions replaced by
    ``fill`` in all channels.

    Parameters
    ----------
    model:
        Maps a batch to ``(batch, classes)``; used as it is (put it in eval mode). It runs
        under ``torch.no_grad`` on batches of at most ``batch_size`` perturbed copies.
    inputs:
        ``(batch, channels, *spatial)`` with one or more spatial dimensions, or
        ``(batch, features)`` where every feature is one position.
    attribution:
        Shaped like ``inputs`` or, for inputs with channels, ``(batch, *spatial)``.
        May be ``None`` for ``order="random"``.
    target:
        Class index per sample, one index for all, or ``None`` for the class the model
        predicts on the clean input.
    order:
        ``"most"`` relevant first (MoRF), ``"least"`` relevant first (LeRF) or
        ``"random"`` (a permutation per sample drawn from ``generator``).
    patch:
        Region size in positions along each spatial dimension.
    steps:
        Number of perturbation steps after the clean input, at most the number of regions;
        ``None``: one region per step.
    fill:
        ``"zeros"``; ``"mean"`` (per sample and channel); ``"uniform"`` (between the
        sample's per-channel minimum and maximum); ``"normal"`` (per sample and channel mean
        and standard deviation); a constant; a tensor broadcastable to ``inputs``; or
        ``fill(inputs, generator)`` returning a tensor shaped like ``inputs``. One
        replacement per sample is made once, so a removed region keeps its values at later
        steps and the result does not depend on ``batch_size``.
    batch_size:
        Number of perturbed inputs per model call.
    generator:
        Source of randomness for random fills and random order (results are reproducible
        with a seeded generator).
    score:
        ``"logit"`` (the raw output) or ``"probability"`` (its softmax).

    Returns
    -------
    PerturbationCurve
        On the device of the model output.
    """
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
        raise ConfigError("inputs must be a floating point tensor")
    if inputs.ndim < 2 or inputs.shape[0] == 0:
        raise ConfigError(
            f"inputs must be (batch, features) or (batch, channels, *spatial), "
            f"got {tuple(inputs.shape)}"
        )
    if order not in _ORDERS:
        raise ConfigError(f"order must be one of {', '.join(_ORDERS)}, got {order!r}")
    if score not in _SCORES:
        raise ConfigError(f"score must be 'logit' or 'probability', got {score!r}")
    _positive_int(patch, "patch")
    _positive_int(batch_size, "batch_size")

    batch = inputs.shape[0]
    # (batch, features) has no channel axis: each feature is one position of one channel.
    spatial = tuple(inputs.shape[2:]) if inputs.ndim > 2 else (inputs.shape[1],)
    channels = inputs.shape[1] if inputs.ndim > 2 else 1
    positions = math.prod(spatial)
    flat = inputs.detach().reshape(batch, channels, positions)
    ids, regions = _region_ids(spatial, patch, inputs.device)

    if steps is None:
        steps = regions
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= regions:
        raise ConfigError(f"steps must be an integer from 1 to {regions} (the number of regions)")

    replacement = _replacement(fill, inputs, flat, generator)
    rank = _region_rank(attribution, inputs, order, ids, regions, generator)
    pixel_rank = rank[:, ids]  # (batch, positions): when each position is removed
    removed = torch.tensor([k * regions // steps for k in range(steps + 1)], device=inputs.device)

    def run(x: torch.Tensor) -> torch.Tensor:
        output = class_scores(model(x.reshape(-1, *inputs.shape[1:])))
        return output.softmax(dim=1) if score == "probability" else output

    with torch.no_grad():
        clean = torch.cat([run(flat[i : i + batch_size]) for i in range(0, batch, batch_size)])
        index = target_indices(target, clean)
        scores = clean.new_empty(batch, steps + 1)
        scores[:, 0] = clean.gather(1, index[:, None]).squeeze(1)
        # Perturbed copies of all samples and steps share batches: (sample, step) pairs.
        total = batch * steps
        for start in range(0, total, batch_size):
            pair = torch.arange(start, min(start + batch_size, total), device=inputs.device)
            sample, step = pair // steps, pair % steps + 1
            mask = (pixel_rank[sample] < removed[step, None])[:, None, :]
            output = run(torch.where(mask, replacement[sample], flat[sample]))
            where = index.to(output.device)[sample.to(output.device)]
            scores[sample.to(scores.device), step.to(scores.device)] = output.gather(
                1, where[:, None]
            ).squeeze(1)

    device = scores.device
    return PerturbationCurve(
        fractions=removed.to(device=device, dtype=scores.dtype) / regions,
        scores=scores,
        removed=removed.to(device),
        target=index.to(device),
        regions=regions,
        order=order,
        patch=patch,
    )


# ---------------------------------------------------------------------------- helpers
def _positive_int(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _region_ids(spatial: tuple[int, ...], patch: int, device: torch.device) -> tuple:
    """Region number of every position (flattened) and the number of regions."""
    counts = [math.ceil(size / patch) for size in spatial]
    grids = torch.meshgrid(
        *[torch.arange(size, device=device) // patch for size in spatial], indexing="ij"
    )
    ids = torch.zeros(spatial, dtype=torch.long, device=device)
    for grid, count in zip(grids, counts, strict=True):
        ids = ids * count + grid
    return ids.reshape(-1), math.prod(counts)


def _region_rank(
    attribution: torch.Tensor | None,
    inputs: torch.Tensor,
    order: str,
    ids: torch.Tensor,
    regions: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """``rank[b, r]``: the step (0-based) at which region ``r`` of sample ``b`` is removed."""
    batch = inputs.shape[0]
    if order == "random":
        keys = torch.rand(batch, regions, generator=generator, device=generator_device(generator))
        ranking = keys.to(inputs.device).argsort(dim=1)
    else:
        if attribution is None:
            raise ConfigError(f"order={order!r} needs an attribution")
        relevance = _position_relevance(attribution, inputs)
        if not torch.isfinite(relevance).all():
            raise ConfigError("attribution contains NaN or infinite values")
        summed = relevance.new_zeros(batch, regions).index_add_(1, ids, relevance)
        # stable: equal relevance is removed in grid order, the same on every run and device
        ranking = summed.argsort(dim=1, descending=order == "most", stable=True)
    rank = torch.empty_like(ranking)
    rank.scatter_(1, ranking, torch.arange(regions, device=ranking.device).expand(batch, -1))
    return rank


def _position_relevance(attribution: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Relevance per position ``(batch, positions)``, summed over channels."""
    if not isinstance(attribution, torch.Tensor):
        raise ConfigError("attribution must be a tensor")
    shape, batch = tuple(attribution.shape), inputs.shape[0]
    # float64 keeps near-equal regions in a reproducible order; MPS has no float64
    dtype = torch.float32 if inputs.device.type == "mps" else torch.float64
    value = attribution.detach().to(device=inputs.device, dtype=dtype)
    if shape == tuple(inputs.shape):
        return value.reshape(batch, -1) if inputs.ndim == 2 else value.flatten(2).sum(1)
    if inputs.ndim > 2 and shape == (batch, *inputs.shape[2:]):
        return value.reshape(batch, -1)
    expected = f"{tuple(inputs.shape)}" + (
        f" or {(batch, *inputs.shape[2:])}" if inputs.ndim > 2 else ""
    )
    raise ConfigError(f"attribution must have shape {expected}, got {shape}")


def _replacement(
    fill: Fill, inputs: torch.Tensor, flat: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """Values of a fully removed sample, shaped like ``flat`` ``(batch, channels, positions)``."""
    if isinstance(fill, bool):
        check_fill(fill)
    value = fill_values(fill, inputs, generator).reshape(flat.shape)
    if not torch.isfinite(value).all():
        raise ConfigError("the fill values contain NaN or infinite values")
    return value
