"""Module-level rules for models that cannot be traced into a graph.

Each leaf module of a known kind gets its rule by an instance-level ``forward`` wrapper on a
private shallow copy of every container, so the user's model is not modified. Functional
operations inside ``forward`` methods (``x + y``, ``torch.cat`` ...) cannot be reached this
way; a function mode watches one forward pass and the warning names those operations.
"""

from __future__ import annotations

import copy
import warnings
from collections import Counter
from typing import Any

from torch import nn
from torch.overrides import TorchFunctionMode

from relscope.attribution.lrp.graph import Layer, Probe, RuleModule
from relscope.attribution.lrp.layers import Operation, linear_op, module_kind
from relscope.errors import RelscopeWarning

__all__ = ["module_level"]

_HARMLESS = {"size", "dim", "shape", "__get__", "numel", "view", "reshape", "flatten",
             "contiguous", "__getitem__", "detach", "requires_grad_", "to", "float"}  # fmt: skip


class _Watch(TorchFunctionMode):
    """Counts torch functions called outside rule wrappers."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.calls: Counter[str] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if self.depth == 0:
            name = getattr(func, "__name__", str(func))
            if name not in _HARMLESS:
                self.calls[name] += 1
        return func(*args, **(kwargs or {}))


def _clone_tree(module: nn.Module) -> nn.Module:
    """A copy of the module tree sharing parameters and buffers (new containers only)."""
    clone = copy.copy(module)
    clone._modules = {
        name: _clone_tree(child) for name, child in module._modules.items() if child is not None
    }
    return clone


def module_level(
    model: nn.Module, composite: Any, probe: Probe, assigned: list
) -> tuple[nn.Module, list[Layer]]:
    """A module computing ``model`` with rules on its leaf modules, and the layer list."""
    clone = _clone_tree(model)
    leaves = [
        (name, module)
        for name, module in clone.named_modules()
        if not module._modules and module_kind(module) != "other"
    ]
    layers = [
        Layer(i, name, module_kind(module), type(module).__name__, name, module)
        for i, (name, module) in enumerate(leaves)
    ]
    watch = _Watch()
    for layer, (name, module) in zip(layers, leaves, strict=True):
        rule = composite.rule_for(layer, layers)
        assigned.append((layer, rule))
        original = module
        if getattr(original, "inplace", False):
            original = copy.copy(original)
            original.inplace = False
        wrapper = RuleModule(
            rule, Operation(name, layer.kind, original, original, linear_op(original)), probe
        )

        def forward(*args: Any, _wrapper: RuleModule = wrapper, **kwargs: Any) -> Any:
            watch.depth += 1
            try:
                return _wrapper(*args, **kwargs)
            finally:
                watch.depth -= 1

        parent_name, _, child_name = name.rpartition(".")
        parent = clone.get_submodule(parent_name) if parent_name else clone
        stand_in = copy.copy(module)
        stand_in.forward = forward
        parent._modules[child_name] = stand_in

    class _Watched(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = clone
            self.reported = False

        def forward(self, *args: Any, **kwargs: Any) -> Any:
            if self.reported:
                return self.inner(*args, **kwargs)
            with watch:
                out = self.inner(*args, **kwargs)
            self.reported = True
            if watch.calls:
                listed = ", ".join(f"{n} ({c}x)" for n, c in watch.calls.most_common(10))
                warnings.warn(
                    f"module-level rules: these operations outside modules got no relevance "
                    f"rule (plain gradient): {listed}",
                    RelscopeWarning,
                    stacklevel=3,
                )
            return out

    return _Watched(), layers
