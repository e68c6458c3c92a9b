"""Relevance rules: each one a modified forward whose gradient realizes the rule.

Notation (``attribution.md``): a linear layer maps inputs ``a_i`` to
``z_j = sum_i a_i w_ij + b_j``; ``R_j`` is the relevance arriving at output ``j``;
``stab(d) = d + eps * sign(d)``. In relscope's propagation the gradient arriving at a tensor
is its relevance, so every rule returns the layer's original output whose backward maps
output relevance to input relevance with the rule's formula (see :mod:`.functions`).

A new rule is one class plus one registration line (``@register_rule("name")``); every
registered rule passes the conformance tests in ``tests/attribution/test_rules.py``.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch

from relscope.attribution.lrp.functions import (
    normalize,
    pass_through,
    tie,
    tie_stack,
    with_recipe,
)
from relscope.attribution.lrp.layers import LinearOp, Operation
from relscope.attribution.lrp.pooling import max_pool_settings, winner_takes_all
from relscope.errors import ConfigError
from relscope.registry import Registry

__all__ = [
    "RULES",
    "AlphaBeta",
    "Epsilon",
    "Flat",
    "Gamma",
    "Gradient",
    "LinearRule",
    "Norm",
    "Pass",
    "ReLUDeconvNet",
    "ReLUGuidedBackprop",
    "Rule",
    "UnifiedRule",
    "UniformSplit",
    "WSquare",
    "WinnerTakesAll",
    "ZBox",
    "ZPlus",
    "get_rule",
    "list_rules",
    "register_rule",
]

#: The rule extension point: name -> rule class.
RULES: Registry[type[Rule]] = Registry("rule", module=__name__, stamp="name")

DEFAULT_EPS = 1e-6


def register_rule(name: str) -> Callable[[type[Rule]], type[Rule]]:
    """Class decorator: make a rule available by ``name`` (one line per rule)."""
    return RULES.register(name)


def list_rules() -> list[str]:
    """Names of all registered rules."""
    return RULES.names()


def get_rule(name: str, **params: Any) -> Rule:
    """Build the registered rule ``name`` with ``params``."""
    return RULES.build(name, **params)


def _requires_grad(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.requires_grad


def _check_eps(eps: float) -> float:
    eps = float(eps)
    if not eps >= 0 or eps == float("inf"):
        raise ConfigError(f"eps must be a finite number >= 0, got {eps}")
    return eps


class Rule:
    """Base class: ``rule(operation, *args, **kwargs)`` returns the operation's output."""

    name: ClassVar[str] = "rule"
    #: Kinds of operations the rule can be applied to (``None``: any).
    kinds: ClassVar[frozenset[str] | None] = None
    #: What relevance an input entry of value zero receives: ``"zero"`` (numerators are
    #: proportional to the input), ``"follows"`` (relevance moves with the values: a zero
    #: input gets what a zero output got) or ``"unknown"``. The graph uses it to prove
    #: that a layer's negative outputs receive no relevance (:class:`Gamma`'s fast path).
    at_zero: ClassVar[str] = "unknown"

    def growth_bound(self) -> float | None:
        """How many times the absolute relevance an operation received it may hand on.

        Rules with a provable bound return it (alpha-beta ``alpha + beta``, gamma
        ``(2 + gamma) / gamma``, rules with non-negative shares 1). The others return
        ``None`` and are not checked: epsilon on an output near zero hands on the
        contributions ``a_i w_ij`` of an output much smaller than their magnitudes, which
        is LRP-0's (gradient x input's) legitimate behaviour, not a cancelling rule; the
        same holds for sums, z^B (its shares are non-negative only for inputs within its
        often rough bounds) and the unified rule; gradient methods conserve nothing. The
        engine flags a layer that exceeds its bound (``LRP(...)(x, diagnostics=True)``).
        """
        return None

    def __call__(self, op: Operation, *args: Any, **kwargs: Any) -> Any:
        if not any(_requires_grad(a) for a in (*args, *kwargs.values())):
            return op(*args, **kwargs)  # nothing to explain flows through here
        return self.apply(op, *args, **kwargs)

    def apply(self, op: Operation, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """The rule's parameters (JSON-friendly where possible)."""
        return {
            k: v
            for k, v in vars(self).items()
            if not k.startswith("_") and not isinstance(v, torch.Tensor)
        }

    def copy(self) -> Rule:
        """A fresh instance for one layer (rules never share state between layers)."""
        return copy.copy(self)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({inner})"


# ------------------------------------------------------------------------- linear layers
class LinearRule(Rule):
    """A rule for linear layers (dense, convolutions, transposed convolutions)."""

    kinds = frozenset({"dense", "convolution"})

    def __init__(self, *, zero_params: Iterable[str] = ()) -> None:
        zero = tuple(zero_params)
        unknown = set(zero) - {"bias"}
        if unknown:
            raise ConfigError(f"zero_params may only name 'bias', got {sorted(unknown)}")
        self.zero_params = zero

    def apply(self, op: Operation, x: Any, *rest: Any, **kwargs: Any) -> torch.Tensor:
        if op.linear is None or rest or kwargs:
            raise ConfigError(
                f"{type(self).__name__} applies to linear layers; {op.name} ({op.kind}) is not one"
            )
        if torch.compiler.is_compiling():
            return self.propagate(op.linear, x)  # compiled code reads no per-call state
        # What the graph knows of this call lives in a per-thread record, not on the rule,
        # so that one LRP object can explain batches from several threads at once.
        call = _Call(op.nonnegative_input, op.silent_negative_outputs)
        previous = getattr(_CURRENT, "call", None)
        _CURRENT.call = call
        try:
            with torch.autograd.graph.saved_tensors_hooks(call.pack, _unpack):
                return self.propagate(op.linear, x)
        finally:
            _CURRENT.call = previous
            call.recipes = []

    def derived(self, layer: LinearOp, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Modified weights ``compute()``, made from the layer's weights (and nothing else).

        They are not kept from forward to backward: autograd keeps the recipe and makes them
        again when the backward of the layer needs them, so that the modified weights of all
        layers never exist at once (for VGG-16's alpha-beta they would be 118 MiB, more than
        the activations of a batch of one). Making them costs one pass over the weights.
        """
        value = compute()
        call = None if torch.compiler.is_compiling() else getattr(_CURRENT, "call", None)
        if call is not None:
            call.recipes.append((weakref.ref(value), compute))
        return value

    def signed_input(self, x: torch.Tensor) -> bool:
        """Whether ``x`` has negative entries (known from the graph, else checked)."""
        if torch.compiler.is_compiling():
            return True  # the generalized forms are exact for non-negative inputs too
        call = getattr(_CURRENT, "call", None)
        return False if call is not None and call.nonnegative else _signed(x)

    def silent_negative_outputs(self) -> bool:
        """The graph proved that this call's outputs below zero receive no relevance."""
        if torch.compiler.is_compiling():
            return False
        call = getattr(_CURRENT, "call", None)
        return call is not None and call.silent

    def bias(self, layer: LinearOp) -> torch.Tensor | None:
        """The bias the rule's denominators use (``None`` when zeroed or absent)."""
        return None if "bias" in self.zero_params else layer.bias

    def propagate(self, layer: LinearOp, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def normalized(
        self,
        layer: LinearOp,
        x: torch.Tensor,
        value: torch.Tensor | Callable[[list[torch.Tensor]], torch.Tensor],
        parts_of: Callable[[torch.Tensor], list[torch.Tensor]],
        coefficients: list,
        signs: list[int] | None = None,
    ) -> torch.Tensor:
        """:func:`normalize` over the denominators ``parts_of(x)`` (built from ties of ``x``).

        ``value`` may be a function of the parts (when they add up to the layer's output).

        Layers that cost few multiply-adds per output (the 3-channel input layer, depthwise
        convolutions) recompute their denominators in backward instead of keeping them: at
        full resolution those are the largest tensors of the pass and the cheapest to make.
        """
        parts = parts_of(x)
        if callable(value):
            value = value([p.detach() for p in parts])
        recompute = None
        if _cheap(layer) and not torch.compiler.is_compiling():
            source = x.detach()

            def recompute() -> list[torch.Tensor]:
                return parts_of(source)

        return normalize(value, parts, coefficients, self.eps, signs, recompute=recompute)


#: Multiply-adds per output element up to which a layer recomputes its denominators.
RECOMPUTE_MACS = 64


class _Call:
    """One application of a linear rule: what the graph knows, and the recipes of the
    modified weights made during it (see :meth:`LinearRule.derived`)."""

    __slots__ = ("nonnegative", "recipes", "silent")

    def __init__(self, nonnegative: bool, silent: bool) -> None:
        self.nonnegative = nonnegative
        self.silent = silent
        self.recipes: list[tuple[weakref.ref, Callable[[], torch.Tensor]]] = []

    def pack(self, tensor: torch.Tensor) -> Any:
        for reference, compute in self.recipes:
            made = reference()
            if (
                made is not None
                and made.data_ptr() == tensor.data_ptr()
                and made.shape == tensor.shape
                and made.stride() == tensor.stride()
                and made.dtype == tensor.dtype
            ):
                return _Recipe(compute)
        return tensor


#: The linear-rule call running on this thread (rule applications never nest).
_CURRENT = threading.local()


class _Recipe:
    """A saved tensor that autograd makes again when backward needs it."""

    __slots__ = ("compute",)

    def __init__(self, compute: Callable[[], torch.Tensor]) -> None:
        self.compute = compute


def _unpack(packed: Any) -> torch.Tensor:
    return packed.compute() if isinstance(packed, _Recipe) else packed


def _first(parts: list[torch.Tensor]) -> torch.Tensor:
    return parts[0]


def _sum(parts: list[torch.Tensor]) -> torch.Tensor:
    return parts[0] + parts[1]


def _cheap(layer: LinearOp) -> bool:
    weight = layer.weight
    return weight.numel() <= RECOMPUTE_MACS * weight.shape[layer.out_axis]


def _output(layer: LinearOp, x: torch.Tensor, *, with_bias: bool = True) -> torch.Tensor:
    """The layer's plain output (no graph), optionally without its bias."""
    with torch.no_grad():
        return layer(x, layer.weight, layer.bias if with_bias else None)


def _signed(x: torch.Tensor) -> bool:
    # Under torch.compile a data-dependent branch would break the graph; the generalized
    # (signed) form is exact for non-negative inputs too, so compiled code always takes it.
    if torch.compiler.is_compiling():
        return True
    return bool(x.detach().amin() < 0)  # one reading pass, no temporary


def _signed_part(t: torch.Tensor, coefficient: float) -> torch.Tensor:
    return t.clamp(min=0) if coefficient > 0 else t.clamp(max=0)


def _pos(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.clamp(min=0)


def _neg(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.clamp(max=0)


@register_rule("epsilon")
class Epsilon(LinearRule):
    """``R_i = a_i sum_j w_ij R_j / stab(z_j)``; ``eps=0`` is LRP-0."""

    at_zero = "zero"

    def __init__(self, eps: float = DEFAULT_EPS, *, zero_params: Iterable[str] = ()) -> None:
        super().__init__(zero_params=zero_params)
        self.eps = _check_eps(eps)

    def propagate(self, layer: LinearOp, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias(layer)
        value = _first if bias is layer.bias else _output(layer, x)
        return self.normalized(
            layer, x, value, lambda t: [layer(tie(t), layer.weight, bias)], [1.0]
        )


@register_rule("gamma")
class Gamma(LinearRule):
    """Favour contributions of the output's sign (the output-sign form of the spec).

    Outputs with ``z_j >= 0`` spread over ``a^+ (w + gamma w^+) + a^- (w + gamma w^-)``,
    outputs with ``z_j < 0`` over ``a^+ (w + gamma w^-) + a^- (w + gamma w^+)``, each over
    its own sum (bias ``b + gamma b^+`` / ``b + gamma b^-``). So ``|denominator| >= |z_j|``
    and no denominator can cancel. Where the graph proves the negative outputs receive no
    relevance (every consumer a ReLU), the single denominator ``a (w + gamma w^+)`` is
    exact and cheaper, and is used for non-negative inputs.
    """

    at_zero = "zero"

    def growth_bound(self) -> float | None:
        # |d_j| >= gamma * (sum of positive contributions) >= sum_i |u_ij| gamma / (2 + gamma)
        return (2.0 + self.gamma) / self.gamma if self.gamma > 0 else None

    def __init__(
        self, gamma: float = 0.25, eps: float = DEFAULT_EPS, *, zero_params: Iterable[str] = ()
    ) -> None:
        super().__init__(zero_params=zero_params)
        if not float(gamma) >= 0 or gamma == float("inf"):
            raise ConfigError(f"gamma must be a finite number >= 0, got {gamma}")
        self.gamma = float(gamma)
        self.eps = _check_eps(eps)

    def propagate(self, layer: LinearOp, x: torch.Tensor) -> torch.Tensor:
        w, b, g = layer.weight, self.bias(layer), self.gamma
        signed = self.signed_input(x)
        if self.silent_negative_outputs() and b is layer.bias and not signed:
            w_up = self.derived(layer, lambda: w + g * w.clamp(min=0))
            b_up = None if b is None else b + g * b.clamp(min=0)
            return self.normalized(layer, x, value=_output(layer, x),
                                   parts_of=lambda t: [layer(tie(t), w_up, b_up)],
                                   coefficients=[1.0])  # fmt: skip
        # a^+ (w + g w^+) + a^- (w + g w^-) = (1 + g/2) a w + (g/2) |a| |w| and the bias
        # b + g b^+ = (1 + g/2) b + (g/2) |b|; the falling form has the minus signs. So z
        # (with the bias) and q = (g/2)(|a| |w| + |b|) give both stabilized denominators,
        # (1 + g/2) z + sign(z) (q + eps), with eps folded into q's bias.
        scale = 1.0 + 0.5 * g
        width = layer.weight.shape[layer.out_axis]
        zeros = layer.weight.new_zeros(width)
        bias_q = zeros + self.eps if b is None else (0.5 * g) * b.abs() + self.eps
        stacked = not signed and _stackable(layer, x)
        if stacked:  # one (transposed) convolution with twice the outputs serves z and q
            w_both = self.derived(layer, lambda: torch.cat([w, (0.5 * g) * w.abs()]))
            b_both = torch.cat([zeros if b is None else b, bias_q])

            def parts_of(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
                return layer(tie(t), w_both, b_both), None

        else:
            w_abs = self.derived(layer, lambda: (0.5 * g) * w.abs())

            def parts_of(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
                tied = tie(t)
                q = layer(tie(t, t.detach().abs()) if signed else tied, w_abs, bias_q)
                return layer(tied, w, b), q

        first, second = parts_of(x)
        z = (first[:, :width] if stacked else first).detach()
        value = z if b is layer.bias else z + _channels(layer, layer.bias, z)
        recompute = None
        if _cheap(layer) and not torch.compiler.is_compiling():
            source = x.detach()

            def recompute() -> tuple[torch.Tensor, torch.Tensor | None]:
                return parts_of(source)

        if stacked:
            value = value.contiguous()  # does not keep the stacked output alive
        return _GammaNormalize.apply(value, scale, self.eps, recompute, first, second)


class _GammaNormalize(torch.autograd.Function):
    """Value ``value``; relevance ``R`` reaches z as ``scale R / D`` and q as ``R / |D|``,
    ``D = scale z + sign(z) q`` (``q >= 0`` holds the stabilizer). z and q are given
    separately, or stacked along dimension 1 (then ``second`` is ``None``)."""

    @staticmethod
    def forward(ctx, value, scale: float, eps: float, recompute, first, second):
        ctx.scale, ctx.eps, ctx.recompute = scale, eps, recompute
        ctx.stacked = second is None
        if recompute is None:
            ctx.save_for_backward(_gamma_denominator(first, second, scale))
        return value.view_as(value)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        if ctx.recompute is None:
            (denominator,) = ctx.saved_tensors
        else:
            with torch.no_grad():
                denominator = _gamma_denominator(*ctx.recompute(), ctx.scale)
            ctx.recompute = None  # drop the closure's references once used
        quotient = grad / denominator
        if ctx.eps == 0:  # LRP-0-like: a zero denominator passes nothing on
            quotient = torch.where(denominator == 0, torch.zeros_like(quotient), quotient)
        if ctx.stacked:
            width = grad.shape[1]
            out = grad.new_empty((grad.shape[0], 2 * width, *grad.shape[2:]))
            torch.mul(quotient, ctx.scale, out=out[:, :width])
            torch.copysign(quotient, grad, out=out[:, width:])  # R / |D|
            return None, None, None, None, out, None
        return None, None, None, None, quotient.mul(ctx.scale), quotient.copysign_(grad)


def _gamma_denominator(first, second, scale: float) -> torch.Tensor:
    if second is None:
        first, second = first.chunk(2, 1)
    return torch.copysign(second, first).add_(first, alpha=scale)


def _channels(layer: LinearOp, vector: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-output-channel vector shaped to broadcast against the layer's output."""
    if layer.weight.ndim == 2:  # dense: features on the last axis
        return vector
    return vector.reshape(-1, *([1] * (like.ndim - 2)))


@register_rule("alpha_beta")
class AlphaBeta(LinearRule):
    """``sum_j (alpha c+_ij / sum_i c+_ij - beta c-_ij / sum_i c-_ij) R_j``, ``c = a w``."""

    at_zero = "zero"

    def growth_bound(self) -> float | None:
        return self.alpha + self.beta  # shares of either part lie in [0, 1]

    def __init__(
        self,
        alpha: float = 2.0,
        beta: float = 1.0,
        eps: float = DEFAULT_EPS,
        *,
        zero_params: Iterable[str] = (),
    ) -> None:
        super().__init__(zero_params=zero_params)
        alpha, beta = float(alpha), float(beta)
        if alpha < 0 or beta < 0 or abs(alpha - beta - 1) > 1e-9:
            raise ConfigError(
                f"alpha_beta needs alpha - beta = 1, alpha, beta >= 0: {alpha}, {beta}"
            )
        self.alpha, self.beta = alpha, beta
        self.eps = _check_eps(eps)

    def propagate(self, layer: LinearOp, x: torch.Tensor) -> torch.Tensor:
        w, b = layer.weight, self.bias(layer)
        signed = self.signed_input(x)
        if signed and _stackable(layer, x):
            # [x+, x-] stacked along the input channels: one convolution per part.
            stacked_pos = self.derived(layer, lambda: torch.cat([_pos(w), _neg(w)], 1))
            stacked_neg = self.derived(layer, lambda: torch.cat([_neg(w), _pos(w)], 1))

            def parts_of(t: torch.Tensor) -> list[torch.Tensor]:
                stacked = tie_stack(t, [t.detach().clamp(min=0), t.detach().clamp(max=0)])
                parts = [layer(stacked, stacked_pos, _pos(b))]
                return [*parts, layer(stacked, stacked_neg, _neg(b))] if self.beta else parts

        elif signed:
            w_pos = self.derived(layer, lambda: w.clamp(min=0))
            w_neg = self.derived(layer, lambda: w.clamp(max=0))

            def parts_of(t: torch.Tensor) -> list[torch.Tensor]:
                t_pos, t_neg = tie(t, t.detach().clamp(min=0)), tie(t, t.detach().clamp(max=0))
                parts = [layer(t_pos, w_pos, _pos(b)) + layer(t_neg, w_neg, None)]
                if self.beta:
                    parts.append(layer(t_pos, w_neg, _neg(b)) + layer(t_neg, w_pos, None))
                return parts

        else:
            w_pos = self.derived(layer, lambda: w.clamp(min=0))
            w_neg = self.derived(layer, lambda: w.clamp(max=0)) if self.beta else None

            def parts_of(t: torch.Tensor) -> list[torch.Tensor]:
                tied = tie(t)
                parts = [layer(tied, w_pos, _pos(b))]
                return [*parts, layer(tied, w_neg, _neg(b))] if self.beta else parts

        # z+ sums non-negative contributions, z- non-positive ones (also for signed inputs).
        if not self.beta:
            return self.normalized(layer, x, _output(layer, x), parts_of, [self.alpha], [1])
        # z = z+ + z-: the layer's output needs no extra pass (exact up to rounding), unless
        # the bias is zeroed and still part of the output.
        value = _sum if b is layer.bias else _output(layer, x)
        return self.normalized(layer, x, value, parts_of, [self.alpha, -self.beta], [1, -1])


@register_rule("zplus")
class ZPlus(AlphaBeta):
    """``AlphaBeta(alpha=1, beta=0)``: only positive contributions."""

    def __init__(self, eps: float = DEFAULT_EPS, *, zero_params: Iterable[str] = ()) -> None:
        super().__init__(1.0, 0.0, eps, zero_params=zero_params)

    def params(self) -> dict[str, Any]:
        return {"eps": self.eps, "zero_params": self.zero_params}


@register_rule("zbox")
class ZBox(LinearRule):
    """z^B for the input layer: ``(a_i w_ij - l_i w+_ij - h_i w-_ij)`` with bounds ``l, h``.

    ``low``/``high`` broadcast to the input (e.g. per-channel bounds after normalization).
    """

    def __init__(
        self,
        low: float | torch.Tensor,
        high: float | torch.Tensor,
        eps: float = DEFAULT_EPS,
        *,
        zero_params: Iterable[str] = ("bias",),
    ) -> None:
        super().__init__(zero_params=zero_params)
        self.low = torch.as_tensor(low)
        self.high = torch.as_tensor(high)
        if (self.low > self.high).any():
            raise ConfigError("zbox needs low <= high everywhere")
        self.eps = _check_eps(eps)

    def params(self) -> dict[str, Any]:
        return {
            "low": self.low.tolist() if self.low.numel() <= 16 else "tensor",
            "high": self.high.tolist() if self.high.numel() <= 16 else "tensor",
            "eps": self.eps,
        }

    def propagate(self, layer: LinearOp, x: torch.Tensor) -> torch.Tensor:
        w = layer.weight
        low = self.low.to(device=x.device, dtype=x.dtype)
        high = self.high.to(device=x.device, dtype=x.dtype)
        bias = self.bias(layer)
        if _stackable(layer, x):
            # One (transposed) convolution over the stacked input [x, low, high] with the
            # stacked weights [w, -w+, -w-] instead of three: the input layer is the
            # full-resolution one, where every pass counts.
            weight = self.derived(
                layer, lambda: torch.cat([w, -w.clamp(min=0), -w.clamp(max=0)], dim=1)
            )

            def parts_of(t: torch.Tensor) -> list[torch.Tensor]:
                return [layer(tie_stack(t, [t.detach(), low, high]), weight, bias)]

        else:
            low, high = torch.broadcast_tensors(low, high)
            w_pos = self.derived(layer, lambda: _pos(w))
            w_neg = self.derived(layer, lambda: _neg(w))

            def parts_of(t: torch.Tensor) -> list[torch.Tensor]:
                return [
                    layer(tie(t), w, bias)
                    - layer(tie(t, low), w_pos, None)
                    - layer(tie(t, high), w_neg, None)
                ]

        return self.normalized(layer, x, _output(layer, x), parts_of, [1.0])


def _stackable(layer: LinearOp, x: torch.Tensor) -> bool:
    """Inputs of this layer may be stacked along dimension 1 (its input channels)."""
    weight = layer.weight
    if layer.out_axis != 0 or x.ndim < 2:
        return False
    if weight.ndim == 2:  # dense: features must be the last and only non-batch axis
        return x.ndim == 2 and weight.shape[1] == x.shape[1]
    return weight.shape[1] == x.shape[1]  # convolution without groups


class _InputIndependent(LinearRule):
    """Rules whose redistribution does not depend on the activations (flat, w^2).

    The bias is excluded by default (the spec's formulas); with ``zero_params=()`` it is a
    weight on a constant input 1, transformed like the weights, and absorbs its share.
    """

    def growth_bound(self) -> float | None:
        return 1.0  # non-negative shares

    def __init__(self, eps: float = DEFAULT_EPS, *, zero_params: Iterable[str] = ("bias",)) -> None:
        super().__init__(zero_params=zero_params)
        self.eps = _check_eps(eps)

    def transform(self, weight: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def propagate(self, layer: LinearOp, x: torch.Tensor) -> torch.Tensor:
        ones = torch.ones((), dtype=x.dtype, device=x.device)
        weight = self.derived(layer, lambda: self.transform(layer.weight))
        bias = self.bias(layer)
        bias = None if bias is None else self.transform(bias)
        return self.normalized(
            layer, x, _output(layer, x),
            lambda t: [layer(tie(t, ones).contiguous(), weight, bias)], [1.0],
        )  # fmt: skip


@register_rule("wsquare")
class WSquare(_InputIndependent):
    """``R_i = sum_j w_ij^2 R_j / sum_i w_ij^2`` (``+ b_j^2`` with the bias included)."""

    def transform(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * weight


@register_rule("flat")
class Flat(_InputIndependent):
    """``R_i = sum_j R_j / n_j``: uniform over each output's receptive field (``n_j + 1``
    with the bias included as one more input)."""

    def __init__(self, eps: float = 0.0, *, zero_params: Iterable[str] = ("bias",)) -> None:
        # The denominator is a count of inputs, never near zero: no stabilizer by default
        # (the spec's formula); an output without inputs passes nothing on.
        super().__init__(eps, zero_params=zero_params)

    def transform(self, weight: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(weight)


@register_rule("unified")
class UnifiedRule(LinearRule):
    """The designer's one formula (VisLRPDesigner, eq. 5, as printed).

    ``R_i = sum_j [alpha u^A_ij / stab(sum_i u^A_ij) - beta u^B_ij / stab(sum_i u^B_ij)] R_j``
    with ``u^A = (theta0 + theta1 a_i)(gamma0 + gamma1 w + gamma1p w^+ + gamma2 w^2)`` and
    ``u^B`` the same with ``gamma1n w^-`` instead of ``gamma1p w^+``. The printed formula has
    no bias; ``include_bias=True`` adds it as a weight on a constant input 1, transformed
    like the weights. With ``gamma1 != 0`` the sign-favouring terms act on the weights of the
    output's own sign: where ``z_j < 0``, ``u^A`` uses ``gamma1p w^-`` and ``u^B`` uses
    ``gamma1n w^+`` (otherwise a negative output's denominator could cancel, as the gamma
    rule's would). With ``gamma1 = 0`` every term is sign-definite and the output's sign is
    not consulted. For non-negative inputs the presets reproduce LRP-0, epsilon, gamma,
    alpha-beta, z+, w^2 and flat exactly, for outputs of either sign; for signed inputs the
    named gamma/alpha-beta rules use their generalized forms and differ from this formula.
    """

    PRESETS: ClassVar[dict[str, dict[str, float]]] = {
        "lrp0": {"theta1": 1, "gamma1": 1},
        "epsilon": {"theta1": 1, "gamma1": 1, "eps": 0.25},
        "gamma": {"theta1": 1, "gamma1": 1, "gamma1p": 0.25},
        "alpha_beta": {"alpha": 2, "beta": 1, "theta1": 1, "gamma1p": 1, "gamma1n": 1},
        "zplus": {"theta1": 1, "gamma1p": 1},
        "wsquare": {"theta0": 1, "gamma2": 1},
        "flat": {"theta0": 1, "gamma0": 1},
    }

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 0.0,
        eps: float = DEFAULT_EPS,
        theta0: float = 0.0,
        theta1: float = 0.0,
        gamma0: float = 0.0,
        gamma1: float = 0.0,
        gamma1p: float = 0.0,
        gamma1n: float = 0.0,
        gamma2: float = 0.0,
        *,
        include_bias: bool = False,
    ) -> None:
        super().__init__()
        values = dict(
            alpha=alpha, beta=beta, theta0=theta0, theta1=theta1, gamma0=gamma0,
            gamma1=gamma1, gamma1p=gamma1p, gamma1n=gamma1n, gamma2=gamma2,
        )  # fmt: skip
        for key, value in values.items():
            if not isinstance(value, int | float) or value != value:
                raise ConfigError(f"unified rule: {key} must be a number, got {value!r}")
            setattr(self, key, float(value))
        self.eps = _check_eps(eps)
        self.include_bias = bool(include_bias)

    @classmethod
    def preset(cls, name: str, **overrides: float) -> UnifiedRule:
        """The parameters of a named rule (``lrp0``, ``epsilon``, ``gamma``, ...)."""
        if name not in cls.PRESETS:
            raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(cls.PRESETS)}")
        return cls(**{"eps": DEFAULT_EPS, **cls.PRESETS[name], **overrides})

    @property
    def at_zero(self) -> str:  # type: ignore[override]
        return "zero" if self.theta0 == 0 else "unknown"

    def _transform(self, t: torch.Tensor, signed_term: torch.Tensor, factor: float):
        out = self.gamma0 + self.gamma1 * t
        if factor:
            out = out + factor * signed_term
        if self.gamma2:
            out = out + self.gamma2 * (t * t)
        return out

    def propagate(self, layer: LinearOp, x: torch.Tensor) -> torch.Tensor:
        w, b = layer.weight, layer.bias if self.include_bias else None
        bias_scale = self.theta0 + self.theta1
        # With gamma1 != 0 the weights keep their sign, and a sign-favouring term added to
        # an output of the other sign could cancel its denominator: so, as in the gamma
        # rule, gamma1p favours the output's own sign (w^- where z_j < 0) and gamma1n the
        # opposite one. With gamma1 = 0 every term is sign-definite (z+, alpha-beta, w^2,
        # flat), and the rule does not look at the output's sign.
        by_sign = self.gamma1 != 0 and (self.gamma1p != 0 or self.gamma1n != 0)
        terms = []
        for coefficient, factor in ((self.alpha, self.gamma1p), (-self.beta, self.gamma1n)):
            if coefficient == 0:
                continue
            variants = []
            for flip in (False, True) if by_sign else (False,):
                sign = coefficient if not flip else -coefficient
                weight = self.derived(
                    layer,
                    lambda f=factor, c=sign: self._transform(w, _signed_part(w, c), f),
                )
                bias = None
                if b is not None:
                    bias = bias_scale * self._transform(b, _signed_part(b, sign), factor)
                variants.append((weight, bias))
            terms.append((coefficient, variants))
        if not terms:
            raise ConfigError("unified rule with alpha = beta = 0 propagates nothing")
        value = _output(layer, x)
        rising = None
        if by_sign:
            signal = (
                value if b is not None or layer.bias is None else _output(layer, x, with_bias=False)
            )
            rising = signal >= 0

        def parts_of(t: torch.Tensor) -> list[torch.Tensor]:
            if self.theta0 == 0 and self.theta1 == 1:
                source = tie(t)
            else:
                source = tie(t, self.theta0 + self.theta1 * t.detach()).contiguous()
            parts = []
            for _, variants in terms:
                own = layer(source, *variants[0])
                if rising is not None:
                    own = torch.where(rising, own, layer(source, *variants[1]))
                parts.append(own)
            return parts

        coefficients = [coefficient for coefficient, _ in terms]
        return self.normalized(layer, x, value, parts_of, coefficients)


# ----------------------------------------------------------------- every other operation
@register_rule("pass")
class Pass(Rule):
    """``R_in = R_out``: the identity rule for element-wise activations."""

    at_zero = "follows"

    def growth_bound(self) -> float | None:
        return 1.0

    def apply(self, op: Operation, x: Any, *args: Any, **kwargs: Any) -> Any:
        with torch.no_grad():
            value = op(x, *args, **kwargs)
        if not isinstance(value, torch.Tensor) or value.shape != x.shape:
            raise ConfigError(f"pass rule on {op.name}: output shape differs from the input")
        source = x.detach()
        # The pre-activation is kept anyway (the denominator of the layer before): the next
        # layer makes the activation again in backward instead of keeping a second tensor.
        return with_recipe(pass_through(x, value), lambda: op(source, *args, **kwargs))


@register_rule("norm")
class Norm(Rule):
    """``R_k = x_k * J_k^T (R / stab(y))``: relevance in proportion to the contributions.

    The z-rule of any operation, computed with the operation's own gradient: for additions
    it splits relevance in proportion to the summands, for average pooling and sums it is
    the Norm rule, for an affine map (unmerged batch norm) the epsilon rule. Only inputs
    that carry relevance (those requiring grad) are tied.
    """

    at_zero = "zero"

    def __init__(self, eps: float = DEFAULT_EPS) -> None:
        self.eps = _check_eps(eps)

    def apply(self, op: Operation, *args: Any, **kwargs: Any) -> Any:
        tied = [tie(a) if _requires_grad(a) else a for a in args]
        tied_kwargs = {k: tie(v) if _requires_grad(v) else v for k, v in kwargs.items()}
        z = op(*tied, **tied_kwargs)
        if not isinstance(z, torch.Tensor):
            raise ConfigError(f"norm rule on {op.name}: the operation returns no tensor")
        return normalize(z.detach(), [z], [1.0], self.eps)


@register_rule("gradient")
class Gradient(Rule):
    """The operation's own gradient: exact bookkeeping for reshapes, concatenation and
    indexing, winner-takes-all for max pooling, plain gradients for gradient methods."""

    at_zero = "follows"

    def apply(self, op: Operation, *args: Any, **kwargs: Any) -> Any:
        if op.linear is not None and args and not kwargs and len(args) == 1:
            return op.linear(args[0], op.linear.weight, op.linear.bias)
        return op(*args, **kwargs)


@register_rule("winner_takes_all")
class WinnerTakesAll(Rule):
    """Max pooling: all relevance to each window's maximum (the pooling's gradient).

    Equal to :class:`Gradient`, but keeps two bytes per output for backward instead of the
    input and a 64-bit index (adaptive pooling falls back to the plain gradient).
    """

    at_zero = "follows"

    kinds = frozenset({"maxpool"})

    def growth_bound(self) -> float | None:
        return 1.0

    def apply(self, op: Operation, *args: Any, **kwargs: Any) -> Any:
        settings = max_pool_settings(op.module, op.function, args, kwargs)
        if settings is None:
            return op(*args, **kwargs)
        return winner_takes_all(args[0], settings)


@register_rule("uniform_split")
class UniformSplit(Rule):
    """Element-wise products (gating): each of the ``n`` factors receives ``R / n``."""

    def growth_bound(self) -> float | None:
        return 1.0

    def apply(self, op: Operation, *args: Any, **kwargs: Any) -> Any:
        with torch.no_grad():
            value = op(*args, **kwargs)
        factors = [a for a in (*args, *kwargs.values()) if _requires_grad(a)]
        share = 1.0 / len(factors)
        out = None
        for factor in factors:
            term = pass_through(factor, value, share)
            out = term if out is None else _MergeValue.apply(out, term)
        return out


class _MergeValue(torch.autograd.Function):
    """Value of the first input; the gradient reaches both (each carries the full value)."""

    @staticmethod
    def forward(ctx, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        return first.view_as(first)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, grad


class _ReluBackward(Rule):
    kinds = frozenset({"activation"})
    use_forward_mask: ClassVar[bool] = True

    def apply(self, op: Operation, x: Any, *args: Any, **kwargs: Any) -> Any:
        with torch.no_grad():
            value = op(x, *args, **kwargs)
        return _ModifiedRelu.apply(x, value, self.use_forward_mask)


class _ModifiedRelu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, value: torch.Tensor, mask: bool) -> torch.Tensor:
        ctx.mask = mask
        if mask:
            ctx.save_for_backward(x.detach() > 0)
        return value.view_as(value)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        out = grad.clamp(min=0)
        if ctx.mask:
            (positive,) = ctx.saved_tensors
            out = out * positive
        return out, None, None


@register_rule("guided_backprop")
class ReLUGuidedBackprop(_ReluBackward):
    """ReLU backward passing only positive gradients where the input was positive."""

    use_forward_mask = True


@register_rule("deconvnet")
class ReLUDeconvNet(_ReluBackward):
    """ReLU backward passing positive gradients regardless of the forward activation."""

    use_forward_mask = False
