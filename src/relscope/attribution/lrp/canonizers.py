"""Canonizers: temporary rewritings that make a model's structure fit the rules.

:class:`MergeBatchNorm` works on the traced graph: it finds each batch norm that directly
follows a linear layer (or takes explicitly named pairs) and gives the rewritten graph a
linear layer with fused parameters. The fused parameters are new tensors: the model's own
parameters and buffers are never written, so they are bitwise unchanged (same objects,
same ``state_dict()``, optimizers unaffected), and batch norm ``eps`` is used as it is.

:class:`AttributeOverride` sets attributes on the model's modules for the duration of a
context and restores the original objects afterwards.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from relscope.attribution.lrp.graph import TracedModel
from relscope.attribution.lrp.layers import LinearOp
from relscope.errors import ConfigError

__all__ = ["AttributeOverride", "Canonizer", "MergeBatchNorm"]

_MERGEABLE_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class Canonizer:
    """Base class. ``apply(traced)`` edits a copy of the graph; ``enter``/``exit`` wrap a
    context on the model itself (and must restore everything they change)."""

    def apply(self, traced: TracedModel) -> None:
        """Rewrite the traced graph (default: nothing)."""

    def enter(self, model: nn.Module) -> None:
        """Change the model for the duration of a context (default: nothing)."""

    def exit(self, model: nn.Module) -> None:
        """Undo :meth:`enter` exactly."""


def fuse_batch_norm(linear: LinearOp, norm: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and bias of ``norm(linear(x))`` as one linear layer (new tensors).

    ``y = (W x + b - mean) * g / sqrt(var + eps) + beta``, with the batch norm's own ``eps``.
    """
    with torch.no_grad():
        weight = linear.weight.detach()
        variance = norm.running_var.detach().to(weight.dtype)
        scale = torch.rsqrt(variance + norm.eps)
        if norm.weight is not None:
            scale = scale * norm.weight.detach()
        shift = -norm.running_mean.detach().to(weight.dtype)
        if linear.bias is not None:
            shift = shift + linear.bias.detach()
        bias = shift * scale
        if norm.bias is not None:
            bias = bias + norm.bias.detach()
        shape = [-1] + [1] * (weight.ndim - 1)
        return weight * scale.reshape(shape), bias


class MergeBatchNorm(Canonizer):
    """Merge batch norm into the linear layer it directly follows.

    Pairs are found in the traced graph (a dense or non-transposed convolution whose only
    consumer is an eval-mode batch norm with running statistics), or given explicitly as
    ``(linear_name, norm_name)`` pairs, which must be adjacent in that sense.
    """

    def __init__(self, pairs: Iterable[tuple[str, str]] | None = None) -> None:
        self.pairs = None if pairs is None else [tuple(p) for p in pairs]

    def apply(self, traced: TracedModel) -> None:
        by_node = {layer.node: layer for layer in traced.layers}
        nodes = {node.name: node for node in traced.graph.nodes}
        wanted = None if self.pairs is None else {b: a for a, b in self.pairs}
        found: set[str] = set()
        for layer in traced.layers:
            norm = layer.module
            if not isinstance(norm, _MERGEABLE_NORMS) or norm.training:
                continue
            if norm.running_mean is None or norm.running_var is None:
                continue
            if wanted is not None and layer.name not in wanted:
                continue
            node = nodes[layer.node]
            source = node.args[0] if node.args else None
            source_layer = by_node.get(getattr(source, "name", ""))
            if source_layer is None:
                continue
            if wanted is not None and wanted[layer.name] != source_layer.name:
                continue
            base = traced.fused.get(source_layer.name) or traced.linears.get(source_layer.name)
            if base is None or len(source.users) != 1:
                continue
            if base.out_axis != 0:
                continue  # transposed convolutions keep output channels on axis 1
            weight, bias = fuse_batch_norm(base, norm)
            traced.fused[source_layer.name] = base.with_parameters(weight, bias)
            traced.merged[layer.name] = source_layer.name
            node.replace_all_uses_with(source)
            traced.graph.erase_node(node)
            found.add(layer.name)
        if wanted is not None and set(wanted) - found:
            missing = sorted(set(wanted) - found)
            raise ConfigError(
                f"batch norm pairs not adjacent (linear -> eval-mode batch norm): {missing}"
            )


class AttributeOverride(Canonizer):
    """Set module attributes for the duration of a context.

    ``AttributeOverride({"features.*": {"inplace": False}})``: module names are glob
    patterns; the original attribute objects are put back on exit.
    """

    def __init__(self, overrides: Mapping[str, Mapping[str, Any]]) -> None:
        self.overrides = {k: dict(v) for k, v in overrides.items()}
        self._saved: list[tuple[nn.Module, str, bool, Any]] = []

    def enter(self, model: nn.Module) -> None:
        for name, module in model.named_modules():
            for pattern, attributes in self.overrides.items():
                if not fnmatch.fnmatchcase(name, pattern):
                    continue
                for attribute, value in attributes.items():
                    present = attribute in vars(module)
                    self._saved.append((module, attribute, present, vars(module).get(attribute)))
                    setattr(module, attribute, value)

    def exit(self, model: nn.Module) -> None:
        for module, attribute, present, value in reversed(self._saved):
            if present:
                object.__setattr__(module, attribute, value)
            else:
                delattr(module, attribute)
        self._saved = []
