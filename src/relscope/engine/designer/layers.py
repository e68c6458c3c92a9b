"""The segment ruler's data: a model's layers in execution order with their output shapes.

The layers are :attr:`LRP.layers <relscope.attribution.lrp.engine.LRP.layers>`, the list
whose positions the :class:`~relscope.attribution.lrp.composites.Index` selectors (and so
the ``segments`` of a configuration) count. Output shapes come from one forward pass: of the
traced graph (every operation, functional ones included) or, for models that cannot be
traced, of forward hooks on the leaf modules LRP then uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from relscope.attribution.lrp.engine import LRP
from relscope.attribution.lrp.graph import Layer, TraceError, trace
from relscope.errors import ConfigError

__all__ = ["LayerInfo", "model_layers"]


@dataclass(frozen=True)
class LayerInfo:
    """One layer of the ruler.

    ``index`` is what segment ranges count; ``kind`` is LRP's layer kind (``convolution``,
    ``dense``, ``activation``, ``maxpool``, ``sum``, ...); ``type`` the module class or
    operation (``Conv2d``, ``add``); ``output_shape`` the shape of one sample's output
    (batch axis dropped), or None where the output is not one tensor.
    """

    index: int
    name: str
    kind: str
    type: str
    output_shape: tuple[int, ...] | None


def model_layers(model: nn.Module, input_shape: Sequence[int]) -> list[LayerInfo]:
    """The layers of ``model`` (as LRP lists them) with output shapes for one input of
    ``input_shape`` (``C x H x W``, no batch axis)."""
    layers = LRP(model).layers
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else None
    x = torch.zeros(1, *input_shape, device=device, dtype=dtype)
    try:
        with torch.no_grad():
            try:
                shapes = _graph_shapes(model, x)
            except TraceError:
                shapes = _hook_shapes(layers, x, model)
    except (RuntimeError, ValueError, TypeError) as error:
        message = " ".join(str(error).split())[:200]
        raise ConfigError(
            f"the model does not run on inputs of shape {tuple(input_shape)}: {message}"
        ) from None
    return [
        LayerInfo(
            layer.index,
            layer.name,
            layer.kind,
            layer.type,
            shapes.get(layer.node),
        )
        for layer in layers
    ]


def _graph_shapes(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[int, ...] | None]:
    """Output shape of every node of a fresh trace (node names are what ``Layer.node`` holds)."""
    traced = trace(model)
    module = torch.fx.GraphModule(model, traced.graph)
    ShapeProp(module).propagate(x)
    return {node.name: _shape(node.meta.get("tensor_meta")) for node in module.graph.nodes}


def _hook_shapes(layers: list[Layer], x: torch.Tensor, model: nn.Module) -> dict[str, tuple | None]:
    """First-call output shape of every layer's module (the untraced, module-level case;
    there ``Layer.node`` is the module name)."""
    shapes: dict[str, tuple[int, ...] | None] = {}
    handles = []
    for layer in layers:
        if layer.module is None:
            continue

        def hook(_module, _inputs, output, node=layer.node):
            if node not in shapes:
                shapes[node] = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else None

        handles.append(layer.module.register_forward_hook(hook))
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def _shape(meta: object) -> tuple[int, ...] | None:
    shape = getattr(meta, "shape", None)
    return None if shape is None else tuple(int(n) for n in shape[1:])
