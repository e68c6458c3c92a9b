"""Compare configurations side by side: several configurations x several inputs (or target
classes) in one grid whose heatmaps share one colour scale, so that a brighter cell means
more relevance, not a different normalization."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from relscope.attribution.config import MethodConfig, method_config
from relscope.engine.designer.explain import Explainer, Explanation, TargetMode
from relscope.engine.designer.supersede import NEVER, Ticket
from relscope.errors import ConfigError
from relscope.render import heatmap_png, normalize
from relscope.render.maps import to_map

__all__ = ["Column", "Grid", "compare"]

#: The most cells one grid computes (each cell is one forward and one backward pass).
MAX_CELLS = 64


@dataclass(frozen=True)
class Column:
    """What one column explains: an input (a batch of one) and its target."""

    x: torch.Tensor
    target: TargetMode = "predicted"
    index: int | None = None


@dataclass(frozen=True)
class Grid:
    """``cells[row][column]``: configuration ``row`` on column ``column``; ``scale`` is the
    largest absolute relevance (channels summed) in the grid, which every PNG shares."""

    names: list[str]
    cells: list[list[Explanation]]
    scale: float

    def png(self, row: int, column: int, cmap: str = "bwr") -> bytes:
        """Cell ``(row, column)`` as a palette PNG on the grid's shared symmetric scale."""
        maps = _maps(self.cells)
        shared = normalize(maps, "symmetric", per="batch")
        return heatmap_png(shared[row * len(self.cells[0]) + column], cmap=cmap, mode=None)


def compare(
    explainer: Explainer,
    configs: Sequence[MethodConfig | Mapping[str, Any] | str],
    columns: Sequence[Column],
    *,
    ticket: Ticket = NEVER,
) -> Grid:
    """Explain every column with every configuration (rows in the order given)."""
    if not configs or not columns:
        raise ConfigError("compare needs at least one configuration and one column")
    if len(configs) * len(columns) > MAX_CELLS:
        raise ConfigError(
            f"compare: {len(configs)} x {len(columns)} cells, at most {MAX_CELLS} per grid"
        )
    parsed = [c if isinstance(c, MethodConfig) else method_config(c) for c in configs]
    cells = [
        [
            explainer.explain(col.x, config, target=col.target, index=col.index, ticket=ticket)
            for col in columns
        ]
        for config in parsed
    ]
    shapes = {cell.relevance.shape[2:] for row in cells for cell in row}
    if len(shapes) != 1:
        raise ConfigError(f"compare: the columns' inputs differ in size {sorted(shapes)}")
    maps = _maps(cells)
    scale = float(np.abs(maps).max()) if np.isfinite(maps).all() else float("nan")
    return Grid([config.name for config in parsed], cells, scale)


def _maps(cells: list[list[Explanation]]) -> np.ndarray:
    """All cells' relevance maps ``(cells, H, W)``, row by row (channels summed as
    :func:`~relscope.render.maps.to_map` does, but a cell that broke down keeps its NaN or
    infinite values, so that ``scale`` says so instead of the grid failing)."""
    return np.stack([cell_map(cell) for row in cells for cell in row])


def cell_map(cell: Explanation) -> np.ndarray:
    """One cell's relevance map (channels summed), NaN and infinite values kept."""
    relevance = cell.relevance.detach().cpu().double().numpy()
    if not np.isfinite(relevance).all():
        return (relevance.sum(axis=1) if relevance.ndim == 4 else relevance)[0]
    return to_map(relevance)[0]
