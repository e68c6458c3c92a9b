"""Graph-level view of a model: trace it, list its operations, rewrite it with rules.

The model is traced with ``torch.fx``; every operation (modules *and* functional calls such
as ``x + y``, ``torch.cat``, ``F.relu``, ``flatten``, reused modules) becomes a
:class:`Layer` in execution order. :func:`rewrite` builds a new ``GraphModule`` in which each
operation is computed by its rule. The user's model object is never modified: the rewritten
module shares its parameters (read, never written) and adds its own wrapper modules.
"""

from __future__ import annotations

import copy
import operator
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx
from torch import nn

from relscope.attribution.lrp.attention import multi_head_attention, scaled_dot_product_attention
from relscope.attribution.lrp.layers import (
    LinearOp,
    Operation,
    foreign_kind,
    function_kind,
    functional_linear_kind,
    functional_linear_op,
    linear_op,
    method_kind,
    module_kind,
)
from relscope.errors import ConfigError, RelscopeError

__all__ = ["Layer", "Probe", "Recording", "TraceError", "TracedModel", "channel_mask", "trace"]

_OUT_OF_PLACE = {
    operator.iadd: operator.add,
    operator.isub: operator.sub,
    operator.imul: operator.mul,
    operator.itruediv: operator.truediv,
}


class TraceError(RelscopeError):
    """The model cannot be traced into a graph."""


@dataclass(frozen=True)
class Layer:
    """One operation of the model, in execution order.

    ``name`` is the module's qualified name for module calls (``features.3``), else the
    graph node's name (``add_1``, ``flatten``). A module called several times appears once
    per call; later calls get the suffix ``@2``, ``@3``.
    """

    index: int
    name: str
    kind: str
    type: str
    node: str
    module: nn.Module | None = field(default=None, repr=False, compare=False)


@dataclass
class TracedModel:
    """A traced model: its graph and its layers. Build with :func:`trace`."""

    model: nn.Module
    graph: torch.fx.Graph
    layers: list[Layer]
    #: Layers merged away by canonizers: merged layer name -> the layer it went into.
    merged: dict[str, str] = field(default_factory=dict)
    #: Fused parameters set by canonizers, by layer name.
    fused: dict[str, LinearOp] = field(default_factory=dict)
    #: Every linear layer (module or functional call) as rules see it, by layer name.
    linears: dict[str, LinearOp] = field(default_factory=dict)
    #: Tensors the graph reads that are not attributes of the model (the slices of a
    #: multi-head attention's in-projection), by ``get_attr`` target.
    constants: dict[str, torch.Tensor] = field(default_factory=dict)

    def resolve(self, target: str) -> Any:
        """The value a ``get_attr`` node of the graph reads."""
        if target in self.constants:
            return self.constants[target]
        return _resolve(self.model, target)

    def layer(self, name: str) -> Layer:
        """The layer called ``name``."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        known = ", ".join(layer.name for layer in self.layers)
        raise KeyError(f"no layer {name!r}; layers: {known}")

    def copy(self) -> TracedModel:
        """An independent copy of the graph (canonizers and rewriting edit copies)."""
        graph = torch.fx.Graph()
        mapping: dict[torch.fx.Node, torch.fx.Node] = {}
        out = graph.graph_copy(self.graph, mapping)
        graph.output(out)
        return TracedModel(
            self.model, graph, list(self.layers), dict(self.merged), dict(self.fused),
            dict(self.linears), dict(self.constants),
        )  # fmt: skip


def _node_kind(node: torch.fx.Node, modules: dict[str, nn.Module]) -> tuple[str, str]:
    if node.op == "call_module":
        module = modules[node.target]
        return module_kind(module), type(module).__name__
    if node.op == "call_function":
        target = _OUT_OF_PLACE.get(node.target, node.target)
        linear = functional_linear_kind(target)
        if linear is not None and _parameter_node(node) is not None:
            return linear, getattr(target, "__name__", str(target))
        kind = function_kind(target)
        if kind == "product" and not all(isinstance(a, torch.fx.Node) for a in node.args[:2]):
            kind = "scale"  # a product with a constant is linear in the tensor
        return kind, getattr(target, "__name__", str(target))
    if node.op == "call_method":
        kind = method_kind(node.target)
        if kind == "product" and not all(isinstance(a, torch.fx.Node) for a in node.args[:2]):
            kind = "scale"
        return kind, str(node.target)
    return "meta", node.op


def _parameter_node(node: torch.fx.Node) -> torch.fx.Node | None:
    """The ``get_attr`` node of a functional linear call's weight, if it is one."""
    weight = node.args[1] if len(node.args) > 1 else node.kwargs.get("weight")
    return weight if isinstance(weight, torch.fx.Node) and weight.op == "get_attr" else None


def _functional_linear(node: torch.fx.Node, resolve: Callable[[str], Any]) -> tuple[str, LinearOp]:
    weight_node = _parameter_node(node)
    bias = node.args[2] if len(node.args) > 2 else node.kwargs.get("bias")
    if isinstance(bias, torch.fx.Node):
        if bias.op != "get_attr":
            raise TraceError(f"{node.name}: the bias of a linear layer is computed, not stored")
        bias = resolve(bias.target)
    name = weight_node.target.removesuffix(".weight")
    weight = resolve(weight_node.target)
    return name, functional_linear_op(node.target, node.args, node.kwargs, weight, bias)


class _Tracer(torch.fx.Tracer):
    """``torch.fx``'s tracer, with attention written out as its operations
    (:mod:`.attention`): ``nn.MultiheadAttention`` calls and
    ``F.scaled_dot_product_attention`` are recorded as in-projection, scores, softmax,
    product with the values and out-projection, each of which gets its own rule."""

    def __init__(self) -> None:
        super().__init__()
        self.constants: dict[str, torch.Tensor] = {}

    def call_module(self, m: nn.Module, forward: Callable, args: tuple, kwargs: dict) -> Any:
        if isinstance(m, nn.MultiheadAttention):
            path = self.path_of_module(m)

            def parameter(name: str, tensor: torch.Tensor) -> Any:
                target = f"{path}.{name}"
                self.constants[target] = tensor.detach()
                return self.create_proxy("get_attr", target, (), {})

            return multi_head_attention(m, *args, parameter=parameter, **kwargs)
        return super().call_module(m, forward, args, kwargs)

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return super().is_leaf_module(m, module_qualified_name) or foreign_kind(m) is not None

    def create_proxy(self, kind, target, args, kwargs, *rest: Any, **options: Any):
        if kind == "call_function" and target is torch.nn.functional.scaled_dot_product_attention:
            return scaled_dot_product_attention(*args, **kwargs)
        return super().create_proxy(kind, target, args, kwargs, *rest, **options)


def trace(model: nn.Module) -> TracedModel:
    """Trace ``model`` with ``torch.fx`` and list its operations in execution order."""
    tracer = _Tracer()
    try:
        graph = tracer.trace(model)
    except Exception as error:  # fx raises many types for untraceable code
        message = " ".join(str(error).split())[:300]
        raise TraceError(f"{type(model).__name__} cannot be traced: {message}") from None
    constants = tracer.constants

    def resolve(target: str) -> Any:
        return constants[target] if target in constants else _resolve(model, target)

    modules = dict(model.named_modules())
    layers: list[Layer] = []
    linears: dict[str, LinearOp] = {}
    calls: dict[str, int] = {}
    sizes: set[str] = set()  # nodes computing shapes, sizes and checks of them, not data
    for node in graph.nodes:
        if node.op not in ("call_module", "call_function", "call_method"):
            continue
        kind, type_name = _node_kind(node, modules)
        if kind == "meta" or _is_size(node, sizes) or _of_sizes(node, sizes):
            sizes.add(node.name)
            continue
        linear = None
        if node.op == "call_module":
            name = node.target
            linear = linear_op(modules[node.target])
        elif kind in ("dense", "convolution"):
            name, linear = _functional_linear(node, resolve)
        else:
            name = node.name
        calls[name] = calls.get(name, 0) + 1
        if calls[name] > 1:
            name = f"{name}@{calls[name]}"
        module = modules.get(node.target) if node.op == "call_module" else None
        layers.append(Layer(len(layers), name, kind, type_name, node.name, module))
        if linear is not None:
            linears[name] = linear
    return TracedModel(model, graph, layers, linears=linears, constants=dict(constants))


_NONNEGATIVE_MODULES = (nn.ReLU, nn.ReLU6, nn.Sigmoid, nn.Softplus, nn.Hardsigmoid)
_NONNEGATIVE_FUNCTIONS = {
    torch.relu, nn.functional.relu, nn.functional.relu6, torch.sigmoid,
    nn.functional.sigmoid, nn.functional.softplus, nn.functional.hardsigmoid,
}  # fmt: skip
_NONNEGATIVE_METHODS = {"relu", "relu_", "sigmoid", "sigmoid_"}
# Kinds whose output is non-negative when all their tensor inputs are.
_PRESERVING_KINDS = {"maxpool", "avgpool", "reshape", "product"}
_PRESERVING_FUNCTIONS = {operator.add, operator.iadd, torch.add}


def nonnegative_nodes(graph: torch.fx.Graph, modules: dict[str, nn.Module]) -> set[str]:
    """Names of the nodes whose output is non-negative for every input of the model.

    Used to skip run-time sign checks: a convolution after a ReLU never sees negative input.
    """
    known: set[str] = set()
    sizes: set[str] = set()  # nodes computing shapes and sizes, not data
    for node in graph.nodes:
        if _is_size(node, sizes):
            sizes.add(node.name)
            continue
        if node.op == "call_module":
            module = modules.get(node.target)
            if isinstance(module, _NONNEGATIVE_MODULES):
                known.add(node.name)
                continue
            kind = module_kind(module) if module is not None else "other"
        elif node.op == "call_function":
            if node.target in _NONNEGATIVE_FUNCTIONS:
                known.add(node.name)
                continue
            kind = "sum" if node.target in _PRESERVING_FUNCTIONS else function_kind(node.target)
            if kind == "sum" and node.target not in _PRESERVING_FUNCTIONS:
                continue  # subtraction, sums over axes of signed values ...
        elif node.op == "call_method":
            if node.target in _NONNEGATIVE_METHODS:
                known.add(node.name)
                continue
            kind = method_kind(node.target)
            if kind == "sum" and node.target not in ("add", "add_"):
                continue
        else:
            continue
        if kind not in _PRESERVING_KINDS | {"sum"}:
            continue
        inputs = [a for a in node.all_input_nodes if a.name not in sizes]
        if _negative_constant(node, kind):
            continue
        if inputs and all(a.name in known for a in inputs):
            known.add(node.name)
    return known


_RELU_MODULES = (nn.ReLU, nn.ReLU6)
_RELU_FUNCTIONS = {torch.relu, nn.functional.relu, nn.functional.relu6}
_RELU_METHODS = {"relu", "relu_"}
# Activations with f(0) = 0: relevance that reaches a zero output reaches a zero input.
_ZERO_KEEPING_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Tanh, nn.Hardswish, nn.Softsign, nn.Tanhshrink,
)  # fmt: skip
_ZERO_KEEPING_FUNCTIONS = {
    torch.relu, nn.functional.relu, nn.functional.relu6, nn.functional.leaky_relu,
    nn.functional.elu, nn.functional.selu, nn.functional.gelu, nn.functional.silu,
    nn.functional.mish, torch.tanh, nn.functional.tanh, nn.functional.hardswish,
}  # fmt: skip
_ZERO_KEEPING_METHODS = {"relu", "relu_", "tanh", "tanh_"}


def _calls(
    node: torch.fx.Node, modules: dict[str, nn.Module], types: tuple, functions: set, methods: set
) -> bool:
    if node.op == "call_module":
        return isinstance(modules.get(node.target), types)
    if node.op == "call_function":
        try:
            return node.target in functions
        except TypeError:
            return False
    return node.op == "call_method" and node.target in methods


def silent_negative_nodes(
    graph: torch.fx.Graph, modules: dict[str, nn.Module], rules: dict[str, Any]
) -> set[str]:
    """Names of the nodes whose outputs below zero are proven to receive no relevance.

    A node qualifies when every consumer is a ReLU with the pass rule (its output is 0 where
    the input is negative) and the relevance reaching a zero entry of that ReLU's output is
    zero. The latter holds when each consumer's rule hands relevance to an input in
    proportion to its value (``Rule.at_zero == "zero"``: epsilon, gamma, alpha-beta, norm),
    or moves relevance with the values (``"follows"``: reshapes, max pooling, activations
    with ``f(0) = 0``) to consumers for which it holds in turn. ``rules`` maps node names
    to the rules their operations got; nodes without a rule compute sizes, not data.
    """
    nodes = list(graph.nodes)
    zero_safe: dict[str, bool] = {}

    def consumer_safe(user: torch.fx.Node) -> bool:
        if user.op == "output":
            return False
        rule = rules.get(user.name)
        if rule is None:
            return user.op not in ("call_module", "call_function", "call_method")
        mode = getattr(rule, "at_zero", "unknown")
        if mode == "zero":
            return True
        if mode != "follows":
            return False
        return _keeps_zeros(user, modules) and zero_safe.get(user.name, False)

    # Consumers come later in the graph: walk it backwards so their answers are known.
    for node in reversed(nodes):
        users = list(node.users)
        zero_safe[node.name] = bool(users) and all(consumer_safe(u) for u in users)
    silent = set()
    for node in nodes:
        users = list(node.users)
        if users and all(
            _calls(u, modules, _RELU_MODULES, _RELU_FUNCTIONS, _RELU_METHODS)
            and getattr(rules.get(u.name), "at_zero", None) == "follows"
            and zero_safe[u.name]
            for u in users
        ):
            silent.add(node.name)
    return silent


def _keeps_zeros(node: torch.fx.Node, modules: dict[str, nn.Module]) -> bool:
    """Whether the operation maps zero entries to zero entries (f(0) = 0 activations,
    reshapes, max pooling)."""
    if _calls(node, modules, _ZERO_KEEPING_MODULES, _ZERO_KEEPING_FUNCTIONS,
              _ZERO_KEEPING_METHODS):  # fmt: skip
        return True
    return _node_kind(node, modules)[0] in ("reshape", "maxpool")


def _is_size(node: torch.fx.Node, sizes: set[str]) -> bool:
    """``x.shape``, ``x.size()``, ``x.dim()`` and items of those."""
    if node.op == "call_function" and node.target is getattr:
        return node.args[1] in ("shape", "ndim", "dtype", "device")
    if node.op == "call_method" and node.target in ("size", "dim", "numel"):
        return True
    if node.op == "call_function" and node.target is operator.getitem:
        return isinstance(node.args[0], torch.fx.Node) and node.args[0].name in sizes
    return False


def _of_sizes(node: torch.fx.Node, sizes: set[str]) -> bool:
    """Arithmetic, comparisons and assertions on sizes only (``h // p``, ``_assert(n == 3)``)."""
    if node.op == "call_module":
        return False
    inputs = node.all_input_nodes
    return bool(inputs) and all(a.name in sizes for a in inputs)


def _negative_constant(node: torch.fx.Node, kind: str) -> bool:
    """A constant operand that can make the output negative (``x * -1``, ``x + -3``, a pad
    with a negative fill value); reshape sizes such as ``view(-1, 4)`` do not count."""
    if kind in ("sum", "product"):
        values = [*node.args, *node.kwargs.values()]
    elif node.target is nn.functional.pad:
        values = [node.kwargs.get("value", node.args[3] if len(node.args) > 3 else 0)]
    else:
        return False
    return any(isinstance(v, int | float) and not isinstance(v, bool) and v < 0 for v in values)


def _operation(
    node: torch.fx.Node,
    layer: Layer,
    linear: LinearOp | None,
    nonnegative: bool = False,
    silent: bool = False,
) -> Operation:
    if node.op == "call_module":
        module = layer.module
        if getattr(module, "inplace", False):
            # In-place activations would overwrite tensors that backward still needs; a
            # private shallow copy computes out of place and leaves the model untouched.
            module = copy.copy(module)
            module.inplace = False
        return Operation(layer.name, layer.kind, module, module, linear, nonnegative, silent)
    if linear is not None:
        # A functional linear layer: the LinearOp holds weight, bias and settings, so the
        # rewritten call passes only the input.
        node.args, node.kwargs = node.args[:1], {}
        return Operation(layer.name, layer.kind, node.target, None, linear, nonnegative, silent)
    if node.op == "call_function":
        function = _OUT_OF_PLACE.get(node.target, node.target)
        if "inplace" in node.kwargs:
            node.kwargs = {**node.kwargs, "inplace": False}
        return Operation(layer.name, layer.kind, function)
    method = node.target
    if method.endswith("_") and not method.endswith("__"):
        method = method[:-1]  # tensor.add_(...) -> tensor.add(...)

    def call(self_: Any, *args: Any, _method: str = method, **kwargs: Any) -> Any:
        return getattr(self_, _method)(*args, **kwargs)

    return Operation(layer.name, layer.kind, call)


class RuleModule(nn.Module):
    """Computes one operation of the rewritten graph with its rule."""

    def __init__(self, rule: Callable, operation: Operation, probe: Probe) -> None:
        super().__init__()
        self.rule = rule
        self.operation = operation
        self.probe = probe

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        recording = None if torch.compiler.is_compiling() else self.probe.current
        if recording is None:
            return self.rule(self.operation, *args, **kwargs)
        name = self.operation.name
        if recording.everything:
            # A view of each input catches the relevance this operation alone hands back.
            args = tuple(recording.watch_input(name, a) for a in args)
        out = self.rule(self.operation, *args, **kwargs)
        if isinstance(out, torch.Tensor) and recording.wants(name):
            first = recording.everything and recording.first_bad_forward is None
            if first and not _all_finite(out):
                recording.first_bad_forward = name
            if out.requires_grad:
                # Before any ablation below: an ablated channel's relevance reads 0 here.
                recording.attach(name, out)
        if name in recording.masks:
            out = recording.ablate(name, out)
        if name in recording.outputs and isinstance(out, torch.Tensor):
            recording.activations[name] = out.detach()
        return out

    def extra_repr(self) -> str:
        return f"{self.operation.name}: {self.rule!r}"


class Recording:
    """What one call records: relevance at chosen layers' outputs, and (diagnostics) what
    every operation handed to its inputs. Hooks write into the recording of the call that
    registered them, so calls on several threads never mix their records."""

    def __init__(
        self,
        names: Sequence[str],
        everything: bool,
        outputs: Sequence[str] = (),
        masks: Mapping[str, Any] | None = None,
    ) -> None:
        self.names = set(names)
        self.everything = everything
        #: Layers whose forward output is kept (detached) in :attr:`activations`.
        self.outputs = set(outputs)
        #: Layers whose output channels (axis 1) are replaced by 0: a bool mask
        #: ``(batch, channels)`` or ``(channels,)``, or channel indices.
        self.masks = dict(masks or {})
        self.activations: dict[str, torch.Tensor] = {}
        #: The layers whose ablation was applied (a layer that never ran is an error).
        self.ablated: set[str] = set()
        self.relevance: dict[str, torch.Tensor] = {}
        #: Per operation, ``(2, batch)``: absolute and signed relevance handed to its inputs.
        self.handed: dict[str, torch.Tensor] = {}
        self.first_bad_forward: str | None = None

    def wants(self, name: str) -> bool:
        return self.everything or name in self.names

    def watch_input(self, name: str, value: Any) -> Any:
        """``value`` itself, or a view of it that records the relevance reaching it."""
        if not isinstance(value, torch.Tensor) or not value.requires_grad or value.ndim < 1:
            return value
        view = value.view_as(value)

        def store(grad: torch.Tensor | None, name: str = name) -> None:
            if grad is None:
                return
            flat = grad.detach().reshape(len(grad), -1)
            total = torch.stack([torch.linalg.vector_norm(flat, 1, dim=1), flat.sum(1)])
            before = self.handed.get(name)
            self.handed[name] = total if before is None else before + total

        view.register_hook(store)
        return view

    def ablate(self, name: str, out: Any) -> torch.Tensor:
        """``out`` with the masked channels (axis 1) replaced by a constant 0.

        ``masked_fill`` rather than a product: an infinite activation times 0 would be NaN.
        Its backward hands no relevance to the replaced entries, so nothing flows through an
        ablated channel into the layers before.
        """
        if not isinstance(out, torch.Tensor) or out.ndim < 2:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ConfigError(
                f"cannot ablate channels of layer {name}: its output {shape} is not "
                "(batch, channels, ...)"
            )
        mask = channel_mask(self.masks[name], out.shape[0], out.shape[1], name).to(out.device)
        self.ablated.add(name)
        if not mask.any():
            return out
        mask = mask.reshape(*mask.shape, *(1,) * (out.ndim - 2))
        return out.masked_fill(mask, 0)

    def attach(self, name: str, tensor: torch.Tensor) -> None:
        def store(grad: torch.Tensor | None, name: str = name) -> None:
            # None: a sibling output of a split got relevance and this one none (CP-LRP's
            # queries and keys).
            if grad is not None:
                self.relevance[name] = grad.detach()

        tensor.register_hook(store)


class Probe:
    """Starts and stops the recording of the calls on each thread (see :class:`Recording`)."""

    def __init__(self) -> None:
        self._threads = threading.local()

    @property
    def current(self) -> Recording | None:
        """The recording of the call running on this thread (``None``: nothing recorded)."""
        return getattr(self._threads, "recording", None)

    def start(
        self,
        names: Sequence[str],
        everything: bool = False,
        *,
        outputs: Sequence[str] = (),
        masks: Mapping[str, Any] | None = None,
    ) -> Recording | None:
        """Record ``names``' relevance on this thread's next call; keep ``outputs``'
        forward outputs and replace the channels of ``masks`` by 0 (see :class:`Recording`)."""
        wanted = names or everything or outputs or masks
        recording = Recording(names, everything, outputs, masks) if wanted else None
        self._threads.recording = recording
        return recording

    def stop(self) -> Recording | None:
        recording, self._threads.recording = self.current, None
        return recording


def channel_mask(channels: Any, batch: int, count: int, name: str) -> torch.Tensor:
    """A bool mask ``(batch, count)`` or ``(count,)`` from a bool mask or channel indices,
    or a one-line :class:`ConfigError` naming the layer and what is wrong."""
    try:
        mask = channels if isinstance(channels, torch.Tensor) else torch.as_tensor(channels)
    except (TypeError, ValueError, RuntimeError):
        raise ConfigError(
            f"channels of layer {name} must be integer indices or a bool mask, got {channels!r}"
        ) from None
    if mask.ndim == 0 and mask.dtype != torch.bool:
        mask = mask.reshape(1)
    if mask.dtype == torch.bool:
        if (
            mask.ndim not in (1, 2)
            or mask.shape[-1] != count
            or (mask.ndim == 2 and mask.shape[0] not in (1, batch))
        ):
            raise ConfigError(
                f"the channel mask of layer {name} has shape {tuple(mask.shape)}, expected "
                f"({count},) or ({batch}, {count})"
            )
        return mask
    if mask.numel() == 0:
        return torch.zeros(count, dtype=torch.bool)
    if mask.is_floating_point() or mask.is_complex() or mask.ndim != 1:
        raise ConfigError(
            f"channels of layer {name} must be integer indices or a bool mask, got {channels!r}"
        )
    bad = mask[(mask < 0) | (mask >= count)]
    if len(bad):
        raise ConfigError(
            f"channel {int(bad[0])} out of range for layer {name} (it has {count} channels, "
            f"0..{count - 1})"
        )
    out = torch.zeros(count, dtype=torch.bool)
    out[mask.long().cpu()] = True
    return out


def rewrite(
    traced: TracedModel, rule_for: Callable[[Layer], Callable], probe: Probe
) -> torch.fx.GraphModule:
    """A new module computing every operation of ``traced`` with ``rule_for(layer)``.

    The new module holds only the rule wrappers and the constants the graph reads
    (``get_attr``: e.g. a class token), so nothing done to it reaches the user's model.
    """
    graph = traced.copy().graph
    by_node = {layer.node: layer for layer in traced.layers}
    modules = dict(traced.model.named_modules())
    nonnegative = nonnegative_nodes(graph, modules)
    rules = {
        node.name: rule_for(by_node[node.name])
        for node in graph.nodes
        if node.op != "get_attr" and node.name in by_node
    }
    silent = silent_negative_nodes(graph, modules, rules)
    attributes: dict[str, Any] = {}
    for node in list(graph.nodes):
        if node.op == "get_attr":
            value = traced.resolve(node.target)
            # Parameters enter the rewritten graph as constants: no parameter gradients.
            attributes[node.target] = value.detach() if isinstance(value, torch.Tensor) else value
            continue
        layer = by_node.get(node.name)
        if layer is None:
            if node.op == "call_module":  # a meta call of a module (rare): keep it
                attributes[node.target] = traced.model.get_submodule(node.target)
            continue
        linear = traced.fused.get(layer.name) or traced.linears.get(layer.name)
        first = node.all_input_nodes[0] if node.all_input_nodes else None
        known = first is not None and first.name in nonnegative
        operation = _operation(node, layer, linear, known, node.name in silent)
        target = f"_relscope.rule_{layer.index}"
        attributes[target] = RuleModule(rules[node.name], operation, probe)
        node.op = "call_module"
        node.target = target
    module = torch.fx.GraphModule(attributes, graph)
    module.graph.eliminate_dead_code()  # e.g. the get_attr nodes of functional weights
    module.recompile()
    return module


def _resolve(model: nn.Module, target: str) -> Any:
    value: Any = model
    for part in target.split("."):
        value = getattr(value, part)
    return value


def _all_finite(tensor: torch.Tensor) -> bool:
    """Whether every entry is finite; one reduction in the usual case (NaN and infinity
    reach the sum), the elementwise test only when the sum is not finite (overflow)."""
    detached = tensor.detach()
    return bool(torch.isfinite(detached.sum())) or bool(torch.isfinite(detached).all())
