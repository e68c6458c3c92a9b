"""Neuron (channel) ablation: zero chosen channels of one layer and look at the new output.

:func:`relevance_guided_ablation` chooses the channels by the LRP relevance recorded at that
layer, which tests whether the channels an explanation calls relevant are the ones the
model's decision depends on.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from relscope.attribution import LRP, Composite, NumericalError
from relscope.attribution.core import forward, forward_hook, target_indices
from relscope.errors import ConfigError
from relscope.evaluation.perturbation import TargetSpec

__all__ = ["Ablation", "Channels", "GuidedAblation", "ablate", "relevance_guided_ablation"]

#: Channel indices shared by all samples (an int, a sequence, a 1-d tensor) or one list
#: per sample (a sequence of sequences, possibly of different lengths, or a 2-d tensor).
Channels = int | Sequence[int] | Sequence[Sequence[int]] | torch.Tensor


@dataclass(frozen=True)
class Ablation:
    """The model's output with channels of one layer ablated.

    Attributes
    ----------
    output:
        ``(batch, classes)`` output of the ablated model.
    mask:
        ``(batch, channels)``, ``True`` where a channel was ablated.
    """

    output: torch.Tensor
    mask: torch.Tensor

    @property
    def prediction(self) -> torch.Tensor:
        """Predicted class per sample ``(batch,)``."""
        return self.output.argmax(dim=1)


@dataclass(frozen=True)
class GuidedAblation:
    """Result of :func:`relevance_guided_ablation`.

    Attributes
    ----------
    original:
        ``(batch, classes)`` output of the intact model.
    output:
        ``(batch, classes)`` output with the chosen channels ablated.
    channels:
        ``(batch, k)`` ablated channels per sample, the most relevant (by ``order``) first.
    relevance:
        ``(batch, channels)`` relevance of every channel of the layer, summed over positions.
    target:
        ``(batch,)`` the explained class.
    """

    original: torch.Tensor
    output: torch.Tensor
    channels: torch.Tensor
    relevance: torch.Tensor
    target: torch.Tensor

    @property
    def prediction(self) -> torch.Tensor:
        """Predicted class per sample after the ablation."""
        return self.output.argmax(dim=1)

    @property
    def original_prediction(self) -> torch.Tensor:
        """Predicted class per sample before the ablation."""
        return self.original.argmax(dim=1)

    @property
    def score_drop(self) -> torch.Tensor:
        """Target score before minus after the ablation ``(batch,)``."""
        index = self.target[:, None]
        return (self.original.gather(1, index) - self.output.gather(1, index)).squeeze(1)


def ablate(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str,
    channels: Channels,
    *,
    value: float = 0.0,
) -> Ablation:
    """Run ``model`` with the given channels of ``layer``'s output set to ``value``.

    A forward hook replaces the channels (axis 1 of the layer's output: convolution
    channels or dense features) on every call of the module and is removed afterwards,
    also when the model raises.

    Parameters
    ----------
    model:
        Maps a batch to ``(batch, classes)``; runs once under ``torch.no_grad``.
    inputs:
        The batch.
    layer:
        Qualified module name, as in ``model.named_modules()`` (e.g. ``"features.3"``).
    channels:
        Channel indices shared by all samples, or one sequence per sample.
    value:
        What the ablated channels are set to.

    Returns
    -------
    Ablation
    """
    if not isinstance(inputs, torch.Tensor) or inputs.ndim < 1:
        raise ConfigError("inputs must be a batched tensor")
    module = _module(model, layer)
    batch = inputs.shape[0]
    chosen = _parse_channels(channels, batch)
    masks: list[torch.Tensor] = []

    def hook(_: nn.Module, __: Any, output: Any) -> torch.Tensor:
        if not isinstance(output, torch.Tensor) or output.ndim < 2:
            raise ConfigError(f"layer {layer!r} must output a (batch, channels, ...) tensor")
        if output.shape[0] != batch:
            raise ConfigError(
                f"layer {layer!r} outputs a batch of {output.shape[0]}, the inputs have {batch}"
            )
        mask = _mask(chosen, batch, output.shape[1], layer, output.device)
        masks.append(mask)
        # masked_fill, not multiplication by a 0/1 mask: inf * 0 would make NaN.
        return output.masked_fill(mask.reshape(*mask.shape, *[1] * (output.ndim - 2)), value)

    with forward_hook(module, hook), torch.no_grad():
        output = model(inputs)
    if not masks:
        raise ConfigError(f"layer {layer!r} was not called by the model's forward")
    return Ablation(output, masks[0])


def relevance_guided_ablation(
    model: nn.Module,
    inputs: torch.Tensor,
    target: TargetSpec,
    composite: Composite | str,
    layer: str,
    k: int,
    *,
    order: Literal["most", "least", "absolute"] = "most",
    value: float = 0.0,
    **composite_params: Any,
) -> GuidedAblation:
    """Ablate the ``k`` channels of ``layer`` with the most LRP relevance, per sample.

    The relevance arriving at the layer's output is recorded in the same LRP pass
    (``record=[layer]``) and summed over spatial positions per channel.

    Parameters
    ----------
    model, inputs:
        As for :func:`ablate`.
    target:
        Class index per sample, one index for all, or ``None`` for the predicted class. The
        same class is explained and its score compared.
    composite:
        A :class:`~relscope.attribution.Composite` or a registered name (parameters as
        keyword arguments).
    layer:
        Qualified module name; it must also be a layer of the LRP graph (not one merged
        away by a canonizer).
    k:
        Number of channels ablated per sample.
    order:
        ``"most"``: the largest relevance; ``"least"``: the smallest (most negative);
        ``"absolute"``: the largest absolute relevance.
    value:
        What the ablated channels are set to.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    if order not in ("most", "least", "absolute"):
        raise ConfigError(f"order must be 'most', 'least' or 'absolute', got {order!r}")
    _module(model, layer)
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
        raise ConfigError("inputs must be a floating point tensor")
    original = forward(model, inputs)
    index = target_indices(target, original)

    with LRP(model, composite, **composite_params) as lrp:
        names = [item.name for item in lrp.layers]
        if layer not in names:
            raise ConfigError(
                f"layer {layer!r} has no relevance in the LRP graph (merged by a canonizer or "
                f"not called); recordable layers include: {_few(names)}"
            )
        result = lrp(inputs, index.to(inputs.device), record=[layer])
    recorded = result.layers[layer]
    relevance = recorded.flatten(2).sum(dim=2) if recorded.ndim > 2 else recorded
    if not torch.isfinite(relevance).all():
        raise NumericalError(f"relevance at layer {layer!r} is NaN or infinite")
    count = relevance.shape[1]
    if k > count:
        raise ConfigError(f"k={k} is more than the {count} channels of layer {layer!r}")
    key = relevance.abs() if order == "absolute" else relevance
    # stable: equally relevant channels are taken in index order, reproducibly
    channels = key.argsort(dim=1, descending=order != "least", stable=True)[:, :k]
    ablated = ablate(model, inputs, layer, channels, value=value)
    return GuidedAblation(original, ablated.output, channels, relevance, index)


# ---------------------------------------------------------------------------- helpers
def _few(names: Sequence[str], count: int = 6) -> str:
    shown = ", ".join(repr(name) for name in names[:count])
    return shown + (f", ... ({len(names)} in all)" if len(names) > count else "")


def _module(model: nn.Module, layer: str) -> nn.Module:
    modules = {name: module for name, module in model.named_modules() if name}
    if isinstance(layer, str) and layer in modules:
        return modules[layer]
    names = list(modules)
    close = difflib.get_close_matches(str(layer), names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ConfigError(f"unknown layer {layer!r}; {hint}layers of the model: {_few(names)}")


def _parse_channels(channels: Channels, batch: int) -> torch.Tensor | list[torch.Tensor]:
    """A 1-d tensor (shared by all samples) or a list of ``batch`` 1-d tensors."""
    problem = ConfigError(
        "channels must be integer channel indices, shared or one sequence per sample"
    )
    if isinstance(channels, bool):
        raise problem
    if isinstance(channels, int):
        return torch.tensor([channels])
    if isinstance(channels, torch.Tensor):
        if channels.is_floating_point() or channels.is_complex() or channels.dtype == torch.bool:
            raise problem
        if channels.ndim <= 1:
            return channels.detach().reshape(-1).long().cpu()
        if channels.ndim == 2:
            rows = list(channels.detach().long().cpu())
        else:
            raise problem
    elif isinstance(channels, Sequence) and not isinstance(channels, str):
        items = list(channels)
        if all(isinstance(item, int) and not isinstance(item, bool) for item in items):
            return torch.tensor(items, dtype=torch.long)
        rows = []
        for item in items:
            if isinstance(item, torch.Tensor) and not item.is_floating_point() and item.ndim <= 1:
                rows.append(item.detach().reshape(-1).long().cpu())
            elif isinstance(item, Sequence) and all(
                isinstance(c, int) and not isinstance(c, bool) for c in item
            ):
                rows.append(torch.tensor(list(item), dtype=torch.long))
            else:
                raise problem
    else:
        raise problem
    if len(rows) != batch:
        raise ConfigError(f"channels per sample must have {batch} rows, got {len(rows)}")
    return rows


def _mask(
    chosen: torch.Tensor | list[torch.Tensor],
    batch: int,
    count: int,
    layer: str,
    device: torch.device,
) -> torch.Tensor:
    rows = chosen if isinstance(chosen, list) else [chosen]
    for row in rows:
        bad = row[(row < 0) | (row >= count)]
        if bad.numel():
            raise ConfigError(
                f"channel {int(bad[0])} out of range for layer {layer!r} with {count} channels"
            )
    mask = torch.zeros(len(rows), count, dtype=torch.bool)
    for i, row in enumerate(rows):
        mask[i, row] = True
    return (mask.expand(batch, count) if len(rows) == 1 else mask).contiguous().to(device)
