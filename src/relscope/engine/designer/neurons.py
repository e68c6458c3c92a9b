"""Neurons of one layer: what each channel receives and does, and what happens without it.

For a chosen layer (by name or by its index in :meth:`DesignSession.layers`), one LRP pass
gives every channel's positive and negative relevance and its mean activation (the data of
a scatter plot), and a channel x position matrix of the relevance (:func:`neurons`);
:func:`channel_maps` gives the relevance and activation maps of chosen channels;
:func:`ablate` explains the input again with a set of the layer's channels replaced by 0
(:meth:`LRP.__call__ <relscope.attribution.lrp.engine.LRP.__call__>`'s ``ablate=``), so
the new output and the new heatmap are those of the model without those channels.

A channel is index 1 of the layer's output ``(batch, channels, ...)``: a convolution's
feature map or a dense layer's feature (whose map is one position).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from relscope.attribution.config import MethodConfig, method_config
from relscope.attribution.lrp.engine import LRP
from relscope.engine.designer.cache import config_key, input_key
from relscope.engine.designer.explain import Explainer, Explanation, TargetMode, resolve_target
from relscope.engine.designer.supersede import NEVER, Ticket
from relscope.errors import ConfigError
from relscope.render import heatmap_png

__all__ = [
    "MAX_POSITIONS",
    "ChannelMaps",
    "NeuronData",
    "ablate",
    "channel_maps",
    "layer_name",
    "neurons",
]

#: The default number of positions of :attr:`NeuronData.matrix` at most.
MAX_POSITIONS = 1024

Config = MethodConfig | Mapping[str, Any] | str


@dataclass(frozen=True)
class NeuronData:
    """Every channel of one layer for one explanation (``C`` channels).

    ``positive`` and ``negative`` (``<= 0``) are the sums of the positive and of the
    negative relevance at the layer's output per channel, ``activation`` the mean output
    over positions. ``matrix`` ``(C, P)`` is the relevance per channel and position: the
    positions of a ``grid`` (``(h, w)`` for a 2-d map, ``(P,)`` otherwise, ``(1,)`` for a
    dense layer), pooled by summing to at most ``max_positions``, so each row sums to
    ``positive + negative``.
    """

    layer: str
    target: int
    output: torch.Tensor
    positive: np.ndarray
    negative: np.ndarray
    activation: np.ndarray
    matrix: np.ndarray
    grid: tuple[int, ...]

    @property
    def channels(self) -> int:
        """How many channels the layer has."""
        return len(self.positive)


@dataclass(frozen=True)
class ChannelMaps:
    """The relevance and the activation of chosen channels of one layer, each ``(k, h, w)``
    (a dense layer's feature is a ``1 x 1`` map; other shapes are flattened to ``1 x P``)."""

    layer: str
    target: int
    channels: tuple[int, ...]
    relevance: np.ndarray
    activation: np.ndarray

    def relevance_png(self, position: int, cmap: str = "bwr") -> bytes:
        """The relevance map of ``channels[position]`` as a palette PNG (symmetric scale)."""
        return heatmap_png(self.relevance[position], cmap, mode="symmetric")

    def activation_png(self, position: int, cmap: str = "hot") -> bytes:
        """The activation map of ``channels[position]`` as a palette PNG (its minimum to
        its maximum on a sequential colour map)."""
        return heatmap_png(self.activation[position], cmap, mode="minmax")


def layer_name(engine: LRP, layer: int | str) -> str:
    """The name of ``layer`` (a name, or an index as :meth:`DesignSession.layers` counts)
    among the engine's layers, or a one-line :class:`ConfigError`."""
    names = [item.name for item in engine.layers]
    if isinstance(layer, bool) or not isinstance(layer, int | str):
        raise ConfigError(f"a layer is a name or an index, got {layer!r}")
    if isinstance(layer, int):
        if not 0 <= layer < len(names):
            raise ConfigError(
                f"layer index {layer} out of range (the model has {len(names)} layers, "
                f"0..{len(names) - 1})"
            )
        return names[layer]
    if layer not in names:
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise ConfigError(f"unknown layer {layer!r} (the layers are {shown})")
    return layer


def neurons(
    explainer: Explainer,
    x: torch.Tensor,
    config: Config,
    layer: int | str,
    *,
    target: TargetMode = "predicted",
    index: int | None = None,
    max_positions: int = MAX_POSITIONS,
    ticket: Ticket = NEVER,
) -> NeuronData:
    """Every channel's relevance and activation at ``layer`` for ``x`` (a batch of one),
    from one LRP pass of ``config`` (which must be an LRP configuration)."""
    if isinstance(max_positions, bool) or not isinstance(max_positions, int) or max_positions < 1:
        raise ConfigError(f"max_positions must be a positive integer, got {max_positions!r}")
    name, chosen, output, relevance, activation = _layer_pass(
        explainer, x, config, layer, target, index, "neuron data", ticket
    )
    flat = relevance.reshape(len(relevance), -1)
    matrix, grid = _pool(relevance, max_positions)
    return NeuronData(
        layer=name,
        target=chosen,
        output=output,
        positive=flat.clamp(min=0).sum(1).numpy(),
        negative=flat.clamp(max=0).sum(1).numpy(),
        activation=activation.reshape(len(activation), -1).mean(1).numpy(),
        matrix=matrix.numpy(),
        grid=grid,
    )


def channel_maps(
    explainer: Explainer,
    x: torch.Tensor,
    config: Config,
    layer: int | str,
    channels: int | Sequence[int],
    *,
    target: TargetMode = "predicted",
    index: int | None = None,
    ticket: Ticket = NEVER,
) -> ChannelMaps:
    """The relevance and activation maps of ``channels`` of ``layer`` (one LRP pass)."""
    chosen_channels = _indices(channels)
    name, chosen, _, relevance, activation = _layer_pass(
        explainer, x, config, layer, target, index, "channel maps", ticket
    )
    count = len(relevance)
    for channel in chosen_channels:
        if channel >= count:
            raise ConfigError(
                f"channel {channel} out of range for layer {name} (it has {count} channels, "
                f"0..{count - 1})"
            )
    picked = list(chosen_channels)
    return ChannelMaps(
        layer=name,
        target=chosen,
        channels=chosen_channels,
        relevance=_maps(relevance[picked]).numpy(),
        activation=_maps(activation[picked]).numpy(),
    )


def ablate(
    explainer: Explainer,
    x: torch.Tensor,
    config: Config,
    layer: int | str,
    channels: int | Sequence[int],
    *,
    target: TargetMode = "predicted",
    index: int | None = None,
    ticket: Ticket = NEVER,
) -> Explanation:
    """Explain ``x`` with ``channels`` of ``layer`` replaced by 0: the output, the input
    relevance, the boundaries and sums of the ablated model. The target is resolved on the
    intact model, so that ``"predicted"`` explains the same class before and after."""
    config = config if isinstance(config, MethodConfig) else method_config(config)
    chosen_channels = list(_indices(channels))
    with explainer.lock:
        engine = explainer._engine(config)
        if engine is None:
            raise ConfigError(f"{config.name}: ablation needs an LRP configuration")
        name = layer_name(engine, layer)
        return explainer.explain(
            x, config, target=target, index=index, ablate={name: chosen_channels}, ticket=ticket
        )


# ----------------------------------------------------------------------------- inner
def _layer_pass(
    explainer: Explainer,
    x: torch.Tensor,
    config: Config,
    layer: int | str,
    target: str,
    index: int | None,
    what: str,
    ticket: Ticket,
) -> tuple[str, int, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One LRP pass recording and keeping ``layer``: its name, the target, the output, and
    the layer's relevance and activation of the one sample (float64, ``(C, ...)``); kept in
    the explainer's results, so that the scatter's channel maps run no second pass."""
    config = config if isinstance(config, MethodConfig) else method_config(config)
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or x.shape[0] != 1:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ConfigError(f"{what} takes a batch of one input, got {shape}")
    ticket.check()
    with explainer.lock:
        engine = explainer._engine(config)
        if engine is None:
            raise ConfigError(f"{config.name}: {what} needs an LRP configuration")
        name = layer_name(engine, layer)
        digest = input_key(x)
        chosen = resolve_target(explainer.scores(x, ticket, key=digest), target, index)
        key = ("layer", digest, config_key(config), target, chosen, name)
        cached = explainer.results.get(key)
        if cached is not None:
            return cached
        with engine, ticket.active():
            result = engine(
                x, chosen, contrastive=target == "contrastive", record=[name], keep=[name]
            )
    activation = result.activations[name]
    if activation.ndim < 2:
        raise ConfigError(
            f"layer {name}: its output {tuple(activation.shape)} is not (batch, channels, ...)"
        )
    relevance = result.layers.get(name)
    if relevance is None:
        raise ConfigError(f"layer {name} received no relevance (its output is a constant)")
    relevance, activation = (t[0].detach().cpu().double() for t in (relevance, activation))
    return explainer.results.put(key, (name, chosen, result.output.detach(), relevance, activation))


def _indices(channels: int | Sequence[int]) -> tuple[int, ...]:
    """Channel indices, sorted and without repeats, or a one-line :class:`ConfigError`."""
    if isinstance(channels, torch.Tensor | np.ndarray):
        channels = channels.tolist()
    if isinstance(channels, int) and not isinstance(channels, bool):
        channels = [channels]
    if isinstance(channels, str | bytes) or not isinstance(channels, Sequence):
        raise ConfigError(f"channels must be a list of channel indices, got {channels!r}")
    for channel in channels:
        if isinstance(channel, bool) or not isinstance(channel, int) or channel < 0:
            raise ConfigError(f"channels must be non-negative integers, got {channel!r}")
    return tuple(sorted(set(channels)))


def _bins(size: int, count: int) -> torch.Tensor:
    """The bin (of ``count`` <= ``size`` contiguous, non-empty bins) of each of ``size`` items."""
    return torch.arange(size) * count // size


def _pool(relevance: torch.Tensor, limit: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """``(C, P)`` relevance per channel and position, summed into at most ``limit``
    positions, and the positions' grid."""
    channels, spatial = len(relevance), tuple(relevance.shape[1:])
    if not spatial:
        return relevance.reshape(channels, 1), (1,)
    if len(spatial) == 2:
        height, width = spatial
        if height * width <= limit:
            return relevance.reshape(channels, -1), (height, width)
        scale = math.sqrt(limit / (height * width))
        h = max(1, min(height, math.floor(height * scale)))
        w = max(1, min(width, limit // h))
        rows = torch.zeros(channels, h, width, dtype=relevance.dtype)
        rows.index_add_(1, _bins(height, h), relevance)
        pooled = torch.zeros(channels, h, w, dtype=relevance.dtype)
        pooled.index_add_(2, _bins(width, w), rows)
        return pooled.reshape(channels, -1), (h, w)
    flat = relevance.reshape(channels, -1)
    size = flat.shape[1]
    if size <= limit:
        return flat, (size,)
    pooled = torch.zeros(channels, limit, dtype=relevance.dtype)
    pooled.index_add_(1, _bins(size, limit), flat)
    return pooled, (limit,)


def _maps(values: torch.Tensor) -> torch.Tensor:
    """``(k, ...)`` channel values as ``(k, h, w)`` maps."""
    if values.ndim == 3:
        return values
    return values.reshape(len(values), 1, -1)
