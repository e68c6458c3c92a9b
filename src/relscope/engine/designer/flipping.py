"""Pixel flipping in the designer: brush strokes (or a mask) replace pixels of one input, and
the model predicts again; and the automatic most- and least-relevant-first curves of each
configuration, all configurations in one batched run.

Strokes are polylines in input pixel coordinates ``(row, column)`` with a radius: a pixel
is flipped when its centre lies within the radius of a stroke's path.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from scipy import ndimage

from relscope.attribution.config import MethodConfig, method_config
from relscope.attribution.core import fill_values
from relscope.engine.designer.explain import Explainer
from relscope.engine.designer.supersede import NEVER, Ticket
from relscope.errors import ConfigError
from relscope.evaluation import perturbation_curve
from relscope.evaluation.perturbation import PerturbationCurve

__all__ = ["FLIP_FILLS", "Curves", "Stroke", "flip", "flipping_curves", "stroke_mask"]

#: How flipped pixels are replaced (a number is also accepted: that value).
FLIP_FILLS = ("mean", "blur", "noise")
#: The most points one stroke may have, and the most strokes.
MAX_POINTS, MAX_STROKES = 4096, 256


@dataclass(frozen=True)
class Stroke:
    """A polyline of ``(row, column)`` points with a brush ``radius`` (pixels)."""

    points: Sequence[tuple[float, float]]
    radius: float


def stroke_mask(strokes: Sequence[Stroke], height: int, width: int) -> torch.Tensor:
    """``(height, width)`` booleans: the pixels whose centres some stroke covers."""
    if len(strokes) > MAX_STROKES:
        raise ConfigError(f"at most {MAX_STROKES} strokes, got {len(strokes)}")
    rows, cols = np.mgrid[:height, :width].astype(np.float64)
    covered = np.zeros((height, width), dtype=bool)
    for number, stroke in enumerate(strokes):
        points = _points(stroke, number)
        radius = float(stroke.radius)
        if not np.isfinite(radius) or radius <= 0:
            raise ConfigError(f"stroke {number}: radius must be a number > 0, got {stroke.radius}")
        pieces = itertools.pairwise(points) if len(points) > 1 else [points[[0, 0]]]
        for (r0, c0), (r1, c1) in pieces:
            # Distance from each pixel centre to the segment: project, clamp to its ends.
            dr, dc = r1 - r0, c1 - c0
            length = dr * dr + dc * dc
            along = ((rows - r0) * dr + (cols - c0) * dc) / length if length else 0.0
            t = np.clip(along, 0.0, 1.0)
            distance = np.hypot(rows - (r0 + t * dr), cols - (c0 + t * dc))
            covered |= distance <= radius
    return torch.from_numpy(covered)


def flip(
    x: torch.Tensor,
    mask: torch.Tensor,
    fill: float | str = "mean",
    *,
    sigma: float = 3.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``x`` (a batch of one, ``(1, C, H, W)``) with the ``mask``ed pixels replaced.

    ``fill``: a number, ``"mean"`` (the input's channel means), ``"blur"`` (the input
    blurred with a Gaussian of ``sigma`` pixels) or ``"noise"`` (normal noise with the
    input's channel means and deviations)."""
    if x.ndim != 4 or x.shape[0] != 1:
        raise ConfigError(f"flip takes one image (1, C, H, W), got shape {tuple(x.shape)}")
    if mask.shape != x.shape[2:] or mask.dtype != torch.bool:
        raise ConfigError(f"the mask must be booleans of shape {tuple(x.shape[2:])}")
    if isinstance(fill, bool) or not (isinstance(fill, int | float | str)):
        raise ConfigError(f"fill must be a number or one of {FLIP_FILLS}, got {fill!r}")
    if isinstance(fill, int | float):
        if not np.isfinite(fill):
            raise ConfigError(f"fill must be a finite number, got {fill}")
        values = torch.full_like(x, float(fill))
    elif fill == "mean":
        values = fill_values("mean", x)
    elif fill == "noise":
        values = fill_values("normal", x, generator)
    elif fill == "blur":
        if not (isinstance(sigma, int | float) and 0 < sigma <= 64):
            raise ConfigError(f"blur sigma must be a number in (0, 64], got {sigma!r}")
        image = x.detach().cpu().double().numpy()
        blurred = ndimage.gaussian_filter(image, sigma=(0, 0, sigma, sigma), mode="reflect")
        values = torch.from_numpy(blurred).to(x)
    else:
        raise ConfigError(f"fill must be a number or one of {FLIP_FILLS}, got {fill!r}")
    return torch.where(mask.to(x.device), values, x)


@dataclass(frozen=True)
class Curves:
    """One configuration's most- and least-relevant-first curves and their areas (None for
    an order that was not asked for)."""

    name: str
    most: PerturbationCurve | None
    least: PerturbationCurve | None

    @property
    def auc(self) -> tuple[float | None, float | None]:
        """Area under the (most, least) curves; a good explanation: small, large."""
        return _area(self.most, "auc"), _area(self.least, "auc")

    @property
    def aopc(self) -> tuple[float | None, float | None]:
        """Area over the (most, least) curves; a good explanation: large, small."""
        return _area(self.most, "aopc"), _area(self.least, "aopc")


def _area(curve: PerturbationCurve | None, kind: str) -> float | None:
    return None if curve is None else float(getattr(curve, kind)()[0])


def flipping_curves(
    explainer: Explainer,
    x: torch.Tensor,
    configs: Sequence[MethodConfig | Mapping[str, Any] | str],
    *,
    target: int | None = None,
    steps: int = 16,
    patch: int = 1,
    fill: Literal["zeros", "mean", "uniform", "normal"] | float = "zeros",
    batch_size: int = 64,
    orders: Sequence[str] = ("most", "least"),
    ticket: Ticket = NEVER,
) -> list[Curves]:
    """Most- and least-relevant-first curves (``orders``) of every configuration for one
    input; the configurations' copies share the model's batches (one run per order)."""
    if not orders or not set(orders) <= {"most", "least"}:
        raise ConfigError(f"orders must be some of 'most' and 'least', got {list(orders)}")
    parsed = [c if isinstance(c, MethodConfig) else method_config(c) for c in configs]
    if not parsed:
        raise ConfigError("flipping curves need at least one configuration")
    mode = "predicted" if target is None else "class"
    explained = [
        explainer.explain(x, config, target=mode, index=target, ticket=ticket) for config in parsed
    ]
    chosen = explained[0].target
    inputs = x.detach().expand(len(parsed), *x.shape[1:])
    attributions = torch.cat([e.relevance for e in explained])
    with explainer.lock, ticket.active():
        curves = {
            order: perturbation_curve(
                explainer.model,
                inputs,
                attributions,
                chosen,
                order=order,
                patch=patch,
                steps=steps,
                fill=fill,
                batch_size=batch_size,
            )
            for order in dict.fromkeys(orders)
        }
    return [
        Curves(config.name, _row(curves.get("most"), i), _row(curves.get("least"), i))
        for i, config in enumerate(parsed)
    ]


def _row(curve: PerturbationCurve | None, i: int) -> PerturbationCurve | None:
    """Sample ``i`` of a batched curve, as its own curve."""
    if curve is None:
        return None
    return PerturbationCurve(
        fractions=curve.fractions,
        scores=curve.scores[i : i + 1],
        removed=curve.removed,
        target=curve.target[i : i + 1],
        regions=curve.regions,
        order=curve.order,
        patch=curve.patch,
    )


def _points(stroke: Stroke, number: int) -> np.ndarray:
    try:
        points = np.asarray(stroke.points, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        raise ConfigError(f"stroke {number}: points must be (row, column) pairs") from None
    if not 1 <= len(points) <= MAX_POINTS or not np.isfinite(points).all():
        raise ConfigError(f"stroke {number}: 1 to {MAX_POINTS} finite (row, column) points")
    return points
