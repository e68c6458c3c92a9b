"""AttnLRP rules for the non-linear operations of transformers (Achtibat et al., ICML 2024).

Like every rule, each one is a modified forward whose value is the operation's output and
whose backward maps output relevance ``R`` to input relevance:

* :class:`Softmax`: deep-Taylor decomposition at the input with the bias term
  (AttnLRP, Proposition 3.1): ``R_in = x * (R - s * sum(R))``, ``s = softmax(x)``. It does not
  conserve: ``sum(R_in) = sum(x R) - sum(x s) sum(R)``. Entries masked with ``-inf`` get 0.
* :class:`Bilinear`: a matrix product (or any product) of activations: epsilon on the
  product, then the uniform split between the operands that carry relevance
  (Proposition 3.3): ``R_a = (1/n) a * d(z)/d(a)^T (R / stab(z))``. With one relevant operand
  (a product with a constant or a detached attention matrix) it is the epsilon rule.
* :class:`LayerNorm`: LayerNorm, RMSNorm and GroupNorm with the normalizer (the standard
  deviation or root mean square) treated as a constant (Proposition 3.2), then epsilon on
  the remaining linear map (centring and affine part), bias absorbing its share.
* :class:`Scale`: a scaling by a constant (``x / sqrt(d)``) hands relevance on unchanged.
* :class:`Constant`: the output is a constant, no relevance passes (CP-LRP's attention
  weights: Ali et al., ICML 2022, "XAI for Transformers: Better Explanations through
  Conservative Propagation").

Element-wise activations (GELU, SiLU, tanh-GELU) use the identity rule
(:class:`~relscope.attribution.lrp.rules.Pass`); residual additions the proportional split
(:class:`~relscope.attribution.lrp.rules.Norm`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from relscope.attribution.lrp.functions import (
    normalize,
    pass_through,
    recipe_of,
    remake,
    stabilized_quotient,
    tie,
    with_recipe,
)
from relscope.attribution.lrp.layers import Operation
from relscope.attribution.lrp.rules import DEFAULT_EPS, Norm, Rule, _check_eps, register_rule
from relscope.errors import ConfigError, RelscopeWarning

__all__ = ["Bilinear", "Constant", "LayerNorm", "Scale", "Softmax", "softmax_dim"]


def _requires_grad(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.requires_grad


# ------------------------------------------------------------------------------- softmax
class _SoftmaxRelevance(torch.autograd.Function):
    """Value ``s``; backward ``x * (R - s * sum(R))`` along ``dim`` to ``source``, with ``x``
    the values ``inputs`` (0 where they are not finite)."""

    @staticmethod
    def forward(
        ctx, source: torch.Tensor, inputs: torch.Tensor, s: torch.Tensor, dim: int
    ) -> torch.Tensor:
        ctx.dim = dim
        # Masked (infinite) scores need one more pass in backward; finite ones do not.
        ctx.masked = bool(torch.isinf(inputs).any())
        ctx.recipe = None if ctx.masked else recipe_of(source)
        ctx.save_for_backward(*([] if ctx.recipe else [inputs]), s)
        return s.view_as(s)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        if ctx.recipe is None:
            x, s = ctx.saved_tensors
        else:
            (s,) = ctx.saved_tensors
            x = remake(ctx.recipe)
            ctx.recipe = None
        grad = grad.to(s.dtype)
        total = grad.sum(ctx.dim, keepdim=True)
        out = (grad - s * total).mul_(x)
        if ctx.masked:
            # -inf entries (masked scores): s = 0 there and 0 * inf would be NaN.
            out = torch.where(torch.isfinite(x), out, torch.zeros((), dtype=out.dtype))
        return out.to(x.dtype), None, None, None


def softmax_dim(op: Operation, args: tuple, kwargs: dict) -> int:
    """The axis a softmax call normalizes over (module attribute, argument or keyword)."""
    dim = getattr(op.function, "relscope_softmax_dim", None)
    if dim is None and op.module is not None:
        dim = getattr(op.module, "dim", None)
    if dim is None:
        dim = kwargs.get("dim", args[0] if args else None)
    if not isinstance(dim, int):
        raise ConfigError(f"softmax rule on {op.name}: the softmax needs an explicit dim")
    return dim


@register_rule("softmax")
class Softmax(Rule):
    """AttnLRP's softmax rule: ``R_in = x * (R - s * sum(R))`` (deep Taylor at ``x``)."""

    kinds = frozenset({"softmax"})
    at_zero = "zero"

    def apply(self, op: Operation, x: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(op.module, nn.LogSoftmax) or op.function in (
            F.log_softmax,
            torch.log_softmax,
        ):
            return op(x, *args, **kwargs)  # a log-softmax keeps its gradient, as before
        dim = softmax_dim(op, args, kwargs)
        with torch.no_grad():
            s = op(x, *args, **kwargs)
        if s.shape != x.shape:
            raise ConfigError(f"softmax rule on {op.name}: output shape differs from the input")
        inputs = x.detach()
        logits = getattr(op.function, "relscope_softmax_logits", None)
        if logits is not None and any(
            value is not None and value is not False for value in (*args, *kwargs.values())
        ):
            # A softmax with its masks folded in (attention_softmax): the entries a mask
            # removes (-inf) take no part and receive nothing, like -inf inputs; an additive
            # finite mask is a constant shift, the scores keep x * (R - s * sum(R)).
            with torch.no_grad():
                masked = logits(inputs, *args, **kwargs)
            inputs = inputs.masked_fill(~torch.isfinite(masked), float("-inf"))
        return _SoftmaxRelevance.apply(x, inputs, s, dim)


@register_rule("constant")
class Constant(Rule):
    """The output is treated as a constant: no relevance reaches the inputs (CP-LRP's
    attention weights)."""

    def growth_bound(self) -> float | None:
        return 1.0

    def apply(self, op: Operation, *args: Any, **kwargs: Any) -> Any:
        with torch.no_grad():
            return op(*args, **kwargs)


# ------------------------------------------------------------------------------ products
class _ProductRelevance(torch.autograd.Function):
    """Value ``z``; backward ``R_a = share * a * J_a^T (R / stab(z))`` to each relevant
    operand ``a``, with ``z`` and its Jacobian from the product made again in backward.

    Only the operands are kept (views of tensors the pass keeps anyway): not ``z``, nor the
    copies autograd's matrix products would keep. Backward makes the product once more, the
    price of the vector-Jacobian product of a general operation.
    """

    @staticmethod
    def forward(ctx, product, eps: float, share: float, z, *operands):
        ctx.product, ctx.eps, ctx.share = product, eps, share
        ctx.save_for_backward(*(o.detach() for o in operands))
        return z.view_as(z)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        operands = ctx.saved_tensors
        with torch.enable_grad():
            leaves = [o.detach().requires_grad_(True) for o in operands]
            z = ctx.product(*leaves)
        quotient = stabilized_quotient(grad.to(z.dtype), z.detach(), ctx.eps)
        if ctx.share != 1:
            quotient = quotient.mul_(ctx.share)
        grads = torch.autograd.grad(z, leaves, quotient)
        return (None, None, None, None, *(o * g for o, g in zip(operands, grads, strict=True)))


@register_rule("bilinear")
class Bilinear(Rule):
    """Epsilon on a product of activations, then the uniform split between the ``n``
    operands that carry relevance: ``R_a = (1/n) a * J_a^T (R / stab(z))``."""

    kinds = frozenset({"matmul", "product"})
    at_zero = "zero"

    def __init__(self, eps: float = DEFAULT_EPS) -> None:
        self.eps = _check_eps(eps)

    def apply(self, op: Operation, *args: Any, **kwargs: Any) -> Any:
        positions = [i for i, a in enumerate(args) if _requires_grad(a)]
        if not positions:  # relevance through a keyword tensor: the operation's gradient
            return op(*args, **kwargs)
        sources = [a.detach() if isinstance(a, torch.Tensor) else a for a in args]

        def product(*relevant: torch.Tensor) -> torch.Tensor:
            values = list(sources)
            for position, value in zip(positions, relevant, strict=True):
                values[position] = value
            return op(*values, **kwargs)

        with torch.no_grad():
            z = op(*sources, **kwargs)
        if not isinstance(z, torch.Tensor):
            raise ConfigError(f"bilinear rule on {op.name}: the operation returns no tensor")
        out = _ProductRelevance.apply(
            product, self.eps, 1.0 / len(positions), z, *(args[i] for i in positions)
        )
        # Attention scores (tokens x tokens) are larger than the queries and keys they come
        # from: the softmax after them makes them again in backward instead of keeping them.
        return with_recipe(out, lambda: op(*sources, **kwargs))


@register_rule("scale")
class Scale(Rule):
    """A scaling by a constant hands relevance on unchanged (``x c R / (x c) = R``, exactly,
    also where ``x = 0``); anything else (two relevant operands, broadcasting) falls back to
    the proportional split."""

    at_zero = "follows"

    def __init__(self, eps: float = DEFAULT_EPS) -> None:
        self.eps = _check_eps(eps)

    def growth_bound(self) -> float | None:
        return 1.0

    def apply(self, op: Operation, *args: Any, **kwargs: Any) -> Any:
        relevant = [a for a in (*args, *kwargs.values()) if _requires_grad(a)]
        if len(relevant) == 1:
            with torch.no_grad():
                value = op(*args, **kwargs)
            if isinstance(value, torch.Tensor) and value.shape == relevant[0].shape:
                return pass_through(relevant[0], value)
        return Norm(self.eps).apply(op, *args, **kwargs)


# ------------------------------------------------------------------------- normalization
def _argument(args: tuple, kwargs: dict, position: int, name: str, default: Any = None) -> Any:
    if len(args) > position:
        return args[position]
    return kwargs.get(name, default)


def _layer_norm(shape: Any, weight: Any, bias: Any, eps: float) -> Callable:
    dims = tuple(range(-len(tuple(shape) if not isinstance(shape, int) else (shape,)), 0))

    def forward(t: torch.Tensor) -> torch.Tensor:
        variance = t.detach().var(dims, unbiased=False, keepdim=True)
        out = (t - t.mean(dims, keepdim=True)) * torch.rsqrt(variance.add_(eps))
        if weight is not None:
            out = out * weight.detach()
        if bias is not None:
            out = out + bias.detach()
        return out

    return forward


def _rms_norm(shape: Any, weight: Any, eps: float | None, offset: float = 0.0) -> Callable:
    dims = tuple(range(-len(tuple(shape) if not isinstance(shape, int) else (shape,)), 0))

    def forward(t: torch.Tensor) -> torch.Tensor:
        small = torch.finfo(t.dtype).eps if eps is None else eps
        square = t.detach().pow(2).mean(dims, keepdim=True)
        out = t * torch.rsqrt(square + small)
        if weight is not None:
            out = out * (weight.detach() + offset)
        return out

    return forward


def _group_norm(groups: int, weight: Any, bias: Any, eps: float) -> Callable:
    def forward(t: torch.Tensor) -> torch.Tensor:
        grouped = t.reshape(t.shape[0], groups, -1)
        variance = grouped.detach().var(-1, unbiased=False, keepdim=True)
        out = ((grouped - grouped.mean(-1, keepdim=True)) * torch.rsqrt(variance + eps)).reshape(
            t.shape
        )
        channel = (1, -1, *([1] * (t.ndim - 2)))
        if weight is not None:
            out = out * weight.detach().reshape(channel)
        if bias is not None:
            out = out + bias.detach().reshape(channel)
        return out

    return forward


def _module_normalization(module: nn.Module, x: torch.Tensor) -> Callable | None:
    if isinstance(module, nn.LayerNorm):
        return _layer_norm(module.normalized_shape, module.weight, module.bias, module.eps)
    if isinstance(module, nn.RMSNorm):
        return _rms_norm(module.normalized_shape, module.weight, module.eps)
    if isinstance(module, nn.GroupNorm):
        return _group_norm(module.num_groups, module.weight, module.bias, module.eps)
    # Normalization modules of other libraries (Hugging Face's LlamaRMSNorm, T5LayerNorm,
    # ...) by their class name and attributes; the result is checked against the module's
    # own output before it is used.
    name = type(module).__name__.lower()
    weight = getattr(module, "weight", None)
    eps = getattr(module, "variance_epsilon", getattr(module, "eps", None))
    if not isinstance(eps, float | int) or not isinstance(weight, torch.Tensor):
        return None
    shape = weight.shape
    if "rmsnorm" in name:
        return _rms_norm(shape, weight, float(eps))
    if "layernorm" in name:
        return _layer_norm(shape, weight, getattr(module, "bias", None), float(eps))
    return None


def _normalization(op: Operation, x: torch.Tensor, args: tuple, kwargs: dict) -> Callable | None:
    """The operation as a function of its input with the normalizer held constant."""
    if op.module is not None:
        return _module_normalization(op.module, x)
    function = op.function
    if function is F.layer_norm:
        return _layer_norm(
            _argument(args, kwargs, 0, "normalized_shape"),
            _argument(args, kwargs, 1, "weight"),
            _argument(args, kwargs, 2, "bias"),
            _argument(args, kwargs, 3, "eps", 1e-5),
        )
    if function is getattr(F, "rms_norm", None):
        return _rms_norm(
            _argument(args, kwargs, 0, "normalized_shape"),
            _argument(args, kwargs, 1, "weight"),
            _argument(args, kwargs, 2, "eps"),
        )
    if function is F.group_norm:
        return _group_norm(
            _argument(args, kwargs, 0, "num_groups"),
            _argument(args, kwargs, 1, "weight"),
            _argument(args, kwargs, 2, "bias"),
            _argument(args, kwargs, 3, "eps", 1e-5),
        )
    return None


@register_rule("layernorm")
class LayerNorm(Rule):
    """LayerNorm / RMSNorm / GroupNorm with the normalizer held constant, then epsilon on
    the centring and affine map: ``R_i = x_i sum_j J_ji R_j / stab(y_j)``, ``J`` the
    Jacobian with the normalizer constant. Other normalizations (local response, instance)
    fall back to the proportional rule through their full gradient."""

    kinds = frozenset({"normalization"})
    at_zero = "zero"

    def __init__(self, eps: float = DEFAULT_EPS) -> None:
        self.eps = _check_eps(eps)
        self._warned = False

    def params(self) -> dict[str, Any]:
        return {"eps": self.eps}

    def apply(self, op: Operation, x: Any, *args: Any, **kwargs: Any) -> Any:
        constant = _normalization(op, x, args, kwargs) if _requires_grad(x) else None
        if constant is None:
            return Norm(self.eps).apply(op, x, *args, **kwargs)
        with torch.no_grad():
            value = op(x, *args, **kwargs)
        part = constant(tie(x))
        # torch's own normalizations compute the formula; other libraries' modules known by
        # their class name are checked against their output once per call.
        foreign = op.module is not None and type(op.module).__module__.split(".")[0] != "torch"
        if part.shape != value.shape or (foreign and not _close(part.detach(), value)):
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"layer {op.name} ({type(op.module).__name__ if op.module else op.name}) "
                    "does not compute a layer or RMS norm as expected; its relevance uses "
                    "the proportional rule through the full gradient",
                    RelscopeWarning,
                    stacklevel=2,
                )
            return Norm(self.eps).apply(op, x, *args, **kwargs)
        source = x.detach()

        def output() -> torch.Tensor:
            # The formula, as ``part`` computed it: a module of another library may round
            # its own output to float32 in a float64 pass.
            return constant(source)

        # The input is kept (its tie); the output, the denominator here and the next layer's
        # input, is made again in backward from it, and ``part`` (the same values through
        # the graph) is not kept either.
        out = normalize(value.to(part.dtype), [part], [1.0], self.eps, recompute=lambda: [output()])
        return with_recipe(out.to(value.dtype), lambda: op(source, *args, **kwargs))


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether the written-out normalization computes the module's output. Loose: modules
    may compute in lower precision (Llama's RMSNorm in float32 inside a float64 model); what
    this catches is another formula (an offset weight, another axis), off by far more."""
    if b.numel() == 0:
        return True
    b = b.to(a.dtype)
    scale = float(b.abs().max())
    return math.isnan(scale) or float((a - b).abs().max()) <= 1e-2 * max(scale, 1.0)
