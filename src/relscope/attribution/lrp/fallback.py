"""Rules for models that ``torch.fx`` cannot trace, applied while the model runs.

Hugging Face ``transformers`` models, data-dependent control flow and other untraceable
code still get a rule for every operation: the model runs on a private shallow copy of its
module tree (sharing parameters, never modifying the user's model) inside a
``TorchFunctionMode`` that exists only for the call and only on the calling thread. Leaf
modules of known kinds (linear layers, activations, normalizations, also other libraries'
activation and RMSNorm classes) get their rule as a whole; every other tensor operation
that carries relevance (``x + y``, ``torch.matmul``, ``F.softmax``, ``F.linear`` with stored
weights, tensor methods) gets the rule of its kind, and ``F.scaled_dot_product_attention``
and ``nn.MultiheadAttention`` are written out (:mod:`.attention`) so that their softmax and
products get theirs. Reshapes and indexing run as they are (their gradient is the exact
bookkeeping) and are not listed as layers.

Layers are known once the model has run: the first call runs one forward pass that lists
the operations in execution order (so positional selectors see all of them), then assigns
rules. A layer is named by the module it runs in and its operation
(``transformer.h.0.attn.matmul``); repeated calls get ``@2``, ``@3``. Operations that appear
only in later calls (another control-flow branch) get their rule when they first run.
"""

from __future__ import annotations

import copy
import functools
import threading
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode, is_tensor_method_or_property

from relscope.attribution.lrp.attention import (
    multi_head_attention,
    scaled_dot_product_attention,
)
from relscope.attribution.lrp.graph import Layer, Probe, RuleModule
from relscope.attribution.lrp.layers import (
    PROVISIONAL_KINDS,
    LinearOp,
    Operation,
    function_kind,
    functional_linear_kind,
    functional_linear_op,
    linear_op,
    method_kind,
    module_kind,
)
from relscope.errors import RelscopeWarning

__all__ = ["EagerModel", "module_level"]

_DUNDER_KINDS = {
    **dict.fromkeys(["__add__", "__radd__", "__iadd__", "__sub__", "__rsub__", "__isub__"], "sum"),
    **dict.fromkeys(["__mul__", "__rmul__", "__imul__"], "product"),
    **dict.fromkeys(["__truediv__", "__itruediv__", "__neg__"], "scale"),
    **dict.fromkeys(["__matmul__", "__rmatmul__"], "matmul"),
    **dict.fromkeys(["__getitem__", "__setitem__"], "reshape"),
    **dict.fromkeys(["__get__", "__len__", "__iter__", "__bool__", "__index__"], "meta"),
}
# Kinds that run as they are: exact bookkeeping of values, or no data at all.
_AS_IS = frozenset({"reshape", "meta"})


def _tensors(value: Any):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _tensors(item)


def _relevant(value: Any) -> bool:
    """A tensor that carries relevance: requires grad and is not a stored parameter."""
    return value.requires_grad and not isinstance(value, nn.Parameter)


def _carries(args: tuple, kwargs: dict) -> int:
    """How many tensor arguments carry relevance."""
    return sum(1 for a in (*args, *kwargs.values()) for t in _tensors(a) if _relevant(t))


def _constant(value: Any) -> Any:
    """Parameters as constants: rules never compute parameter gradients."""
    return value.detach() if isinstance(value, nn.Parameter) else value


def _kind(func: Callable, args: tuple, kwargs: dict, relevant: int) -> tuple[str, str]:
    name = getattr(func, "__name__", type(func).__name__)
    if _is_method(func, name):
        kind = _DUNDER_KINDS.get(name) or method_kind(name.removesuffix("_"))
    else:
        kind = function_kind(func)
        linear = functional_linear_kind(func)
        if linear is not None and len(args) > 1 and isinstance(args[1], torch.Tensor):
            # A stored weight makes a linear layer; a computed one a product of activations.
            kind = "matmul" if _relevant(args[1]) else linear
    if kind == "product" and relevant < 2:
        kind = "scale"  # a product with a constant is linear in the tensor
    return kind, name


def _is_method(func: Callable, name: str) -> bool:
    """A tensor method (also those written in Python, such as ``Tensor.unflatten``)."""
    return is_tensor_method_or_property(func) or getattr(torch.Tensor, name, None) is func


def _out_of_place(func: Callable, name: str, kwargs: dict) -> tuple[Callable, dict]:
    """The out-of-place form of an in-place call (``out += x``, ``x.add_(y)``,
    ``inplace=True``): backward still needs the tensors it would overwrite. As in the traced
    graph, the result is what the call returns."""
    if kwargs.get("inplace"):
        kwargs = {**kwargs, "inplace": False}
    if _is_method(func, name):
        if name.startswith("__i") and name.endswith("__"):
            func = getattr(torch.Tensor, "__" + name[3:], func)
        elif name.endswith("_") and not name.endswith("__"):
            func = getattr(torch.Tensor, name[:-1], func)
    return func, kwargs


class _State(threading.local):
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.path: list[str] = [""]
        self.counts: Counter[str] = Counter()
        self.depth = 0
        self.order: list[str] | None = None  # the first call lists the operations here


class _Rules(TorchFunctionMode):
    """Hands every relevance-carrying torch call of one forward pass to its rule."""

    def __init__(self, owner: EagerModel) -> None:
        super().__init__()
        self.owner = owner

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        owner = self.owner
        state = owner.state
        if state.depth:
            return func(*args, **kwargs)
        relevant = _carries(args, kwargs)
        if not relevant:
            return func(*args, **kwargs)
        if func is torch.nn.functional.scaled_dot_product_attention:
            with self:  # written out, its products and softmax reach this mode again
                return scaled_dot_product_attention(*args, **kwargs)
        kind, name = _kind(func, args, kwargs, relevant)
        if kind in _AS_IS:
            return func(*args, **kwargs)
        args = tuple(_constant(a) for a in args)
        kwargs = {k: _constant(v) for k, v in kwargs.items()}
        func, kwargs = _out_of_place(func, name, kwargs)
        linear = None
        if kind in ("dense", "convolution"):
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            linear = functional_linear_op(func, args, kwargs, args[1], bias)
            args, kwargs = args[:1], {}
        prefix = state.path[-1]
        layer = f"{prefix}.{name}" if prefix else name
        return owner.apply(layer, kind, name, func, None, linear, args, kwargs)


class EagerModel(nn.Module):
    """The model run with rules applied as it runs (see the module docstring)."""

    def __init__(
        self, model: nn.Module, composite: Any, probe: Probe, assigned: list | None = None
    ) -> None:
        super().__init__()
        self.inner = _clone_tree(model)
        self.composite = composite
        self.probe = probe
        self.state = _State()
        self.layers: list[Layer] = []
        #: Every layer with its rule, in the order rules were assigned.
        self.assigned: list[tuple[Layer, Any]] = [] if assigned is None else assigned
        self.discovered = False
        self._lock = threading.Lock()
        self._rules: dict[str, RuleModule] = {}
        self._known: dict[str, tuple[str, str, Callable, nn.Module | None, LinearOp | None]] = {}
        self._warned = False
        leaves = []
        for name, module in list(self.inner.named_modules()):
            if isinstance(module, nn.MultiheadAttention):
                self._written_out(name, module)
            elif module._modules:
                self._tracked(name, module)
            else:
                kind = module_kind(module)
                if kind in ("other", "attention") or kind in _AS_IS:
                    self._tracked(name, module)
                else:
                    leaves.append(self._leaf(name, module, kind))
        # Until the first call the layers are the leaf modules (in module order).
        self.layers.extend(Layer(i, *entry) for i, entry in enumerate(leaves))
        for layer in self.layers:
            self._assign(layer)

    # ------------------------------------------------------------------- module wrappers
    def _set_forward(self, name: str, module: nn.Module, forward: Callable) -> None:
        if not name:
            module.forward = forward
            return
        parent_name, _, child = name.rpartition(".")
        parent = self.inner.get_submodule(parent_name) if parent_name else self.inner
        stand_in = copy.copy(module)
        stand_in.forward = forward
        parent._modules[child] = stand_in

    def _tracked(self, name: str, module: nn.Module) -> None:
        bound = type(module).forward.__get__(module)

        def forward(*args: Any, _name: str = name, **kwargs: Any) -> Any:
            state = self.state
            state.path.append(_name)
            try:
                return bound(*args, **kwargs)
            finally:
                state.path.pop()

        if name:
            module.forward = forward  # the clone's own container: safe to set
        else:
            self.inner.forward = forward

    def _written_out(self, name: str, module: nn.Module) -> None:
        def forward(*args: Any, _name: str = name, _module=module, **kwargs: Any) -> Any:
            state = self.state
            state.path.append(_name)
            try:
                return multi_head_attention(
                    _module,
                    *args,
                    parameter=lambda _, tensor: tensor.detach(),
                    linear=functools.partial(self._projection, _name),
                    **kwargs,
                )
            finally:
                state.path.pop()

        self._set_forward(name, module, forward)

    def _projection(self, path: str, x: Any, weight: Any, bias: Any, name: str) -> Any:
        """An in-projection of a written-out attention: a dense layer of its own name."""
        if not (isinstance(x, torch.Tensor) and _relevant(x)):
            return torch.nn.functional.linear(x, weight, bias)
        linear = LinearOp(weight, bias, torch.nn.functional.linear)
        return self.apply(
            f"{path}.{name}", "dense", "linear", torch.nn.functional.linear, None, linear, (x,), {}
        )

    def _leaf(self, name: str, module: nn.Module, kind: str) -> tuple:
        original = module
        if getattr(original, "inplace", False):
            original = copy.copy(original)
            original.inplace = False
        self._known[name] = (kind, type(module).__name__, original, original, linear_op(original))

        def forward(*args: Any, _name: str = name, **kwargs: Any) -> Any:
            entry = self._known[_name]
            return self.apply(_name, *entry, args, kwargs)

        self._set_forward(name, module, forward)
        return name, kind, type(module).__name__, name, module

    # ------------------------------------------------------------------------ running
    def apply(
        self,
        name: str,
        kind: str,
        type_name: str,
        function: Callable,
        module: nn.Module | None,
        linear: LinearOp | None,
        args: tuple,
        kwargs: dict,
    ) -> Any:
        """Compute one operation with its rule (or plainly while the layers are listed)."""
        state = self.state
        state.counts[name] += 1
        if state.counts[name] > 1:
            name = f"{name}@{state.counts[name]}"
        if name not in self._known:
            self._known[name] = (kind, type_name, function, module, linear)
        state.depth += 1
        try:
            if state.order is not None:
                state.order.append(name)
                if linear is not None:
                    return linear.forward(args[0], linear.weight, linear.bias)
                return function(*args, **kwargs)
            rule = self._rules.get(name)
            if rule is None:
                rule = self._add_layer(name)
            return rule(*args, **kwargs)
        finally:
            state.depth -= 1

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        self.state.reset()
        with _Rules(self):
            return self.inner(*args, **kwargs)

    def discover(self, *args: Any) -> None:
        """List the operations of one forward pass in execution order, then assign rules."""
        if self.discovered:
            return
        with self._lock:
            if self.discovered:
                return
            state = self.state
            state.reset()
            state.order = []
            try:
                with torch.enable_grad(), _Rules(self):
                    self.inner(*(a.detach().requires_grad_(True) for a in args))
                order = list(dict.fromkeys(state.order))
            finally:
                state.reset()
            known = [layer.name for layer in self.layers]
            names = order + [n for n in known if n not in order]
            self.layers[:] = [Layer(i, n, *self._describe(n)) for i, n in enumerate(names)]
            self._rules.clear()
            self.assigned.clear()
            for layer in self.layers:
                self._assign(layer)
            self.discovered = True
        self._warn()

    def _describe(self, name: str) -> tuple[str, str, str, nn.Module | None]:
        kind, type_name, _, module, _ = self._known[name]
        return kind, type_name, name, module if isinstance(module, nn.Module) else None

    def _assign(self, layer: Layer) -> RuleModule:
        kind, _, function, module, linear = self._known[layer.name]
        rule = self.composite.rule_for(layer, self.layers)
        operation = Operation(layer.name, kind, function, module, linear)
        wrapper = RuleModule(rule, operation, self.probe)
        self._rules[layer.name] = wrapper
        self.assigned.append((layer, rule))
        return wrapper

    def _add_layer(self, name: str) -> RuleModule:
        with self._lock:
            if name in self._rules:
                return self._rules[name]
            layer = Layer(len(self.layers), name, *self._describe(name))
            self.layers.append(layer)
            return self._assign(layer)

    def _warn(self) -> None:
        if self._warned:
            return
        self._warned = True
        defaults = self.composite.defaults
        stand_ins = [
            f"{layer.name} ({layer.type})"
            for layer, rule in self.assigned
            if layer.kind in PROVISIONAL_KINDS
            and type(rule) is type(defaults.get(layer.kind, object)())
        ]
        if stand_ins:
            warnings.warn(
                f"no relevance rule is known for {len(stand_ins)} operations, the "
                f"proportional rule is used: {', '.join(stand_ins[:8])}"
                + (" ..." if len(stand_ins) > 8 else ""),
                RelscopeWarning,
                stacklevel=4,
            )


def _clone_tree(module: nn.Module) -> nn.Module:
    """A copy of the module tree sharing parameters and buffers (new containers only)."""
    clone = copy.copy(module)
    clone._modules = {
        name: _clone_tree(child) for name, child in module._modules.items() if child is not None
    }
    return clone


def module_level(
    model: nn.Module, composite: Any, probe: Probe, assigned: list
) -> tuple[EagerModel, list[Layer]]:
    """The model with rules applied as it runs, and its (live) list of layers."""
    eager = EagerModel(model, composite, probe, assigned)
    return eager, eager.layers
