"""The three autograd primitives every relevance rule is built from.

relscope computes LRP as one forward and one backward pass of a rewritten model in which
the gradient arriving at a tensor *is* the relevance of that tensor. A rule is a modified
forward: its value equals the layer's original output, and its backward realizes the rule.
Three small functions are enough to express every rule:

* :func:`tie`: ``tie(x, c)`` has the value ``c``; in backward it sends ``c * grad`` to ``x``.
  ``tie(x, x)`` turns a gradient into "input times gradient"; ``tie(x, low)`` lets the
  z^B rule hand relevance through the bounds to the input; ``tie(x, ones)`` serves the
  activation-independent rules (flat, w^2).
* :func:`normalize`: ``normalize(value, parts, coefficients, eps)`` has the value
  ``value``; in backward the gradient ``R`` reaches ``parts[k]`` as
  ``coefficients[k] * R / stab(parts[k])``: the stabilized division of every LRP rule.
* :func:`pass_through`: value ``y``, gradient passed to ``x`` unchanged (the identity rule
  for element-wise activations).

Denominators are saved in forward, not recomputed in backward, except where recomputing
is cheaper than keeping them (see ``recompute`` of :func:`normalize`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = [
    "normalize",
    "pass_through",
    "recipe_of",
    "remake",
    "stabilize",
    "stabilized_quotient",
    "tie",
    "tie_stack",
    "with_recipe",
]


def stabilize(denominator: torch.Tensor, eps: float) -> torch.Tensor:
    """``d + eps * sign(d)`` with ``sign(0) = +1``, so that no division by zero can occur.

    Two passes (copysign, in-place add) instead of five. ``copysign`` reads the sign bit, so
    ``-0.0`` counts as negative; a sum is ``-0.0`` only when every term is ``-0.0``, and then
    every numerator share is zero too, so the result is the same.
    """
    out = torch.copysign(
        torch.tensor(eps, dtype=denominator.dtype, device=denominator.device), denominator
    )
    return out.add_(denominator)


class _Tie(torch.autograd.Function):
    @staticmethod
    def forward(ctx, source: torch.Tensor, value: torch.Tensor, recipe) -> torch.Tensor:
        ctx.recipe = recipe
        if recipe is None:
            ctx.save_for_backward(value)
        ctx.source_shape = source.shape
        # A view, not a copy: the tie costs no memory in forward.
        return value.view_as(value) if value.shape == source.shape else value.expand_as(source)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        if ctx.recipe is None:
            (value,) = ctx.saved_tensors
        else:
            value = remake(ctx.recipe)
            ctx.recipe = None
        out = grad * value
        if out.shape != ctx.source_shape:
            out = out.sum_to_size(ctx.source_shape)
        return out, None, None


def tie(source: torch.Tensor, value: torch.Tensor | None = None) -> torch.Tensor:
    """Value ``value`` (default: ``source``); backward sends ``value * grad`` to ``source``.

    A ``source`` with a recipe (:func:`with_recipe`) is made again in backward, not kept.
    """
    recipe = None
    if value is None:
        recipe = recipe_of(source)
        value = source
    return _Tie.apply(source, value.detach(), recipe)


def with_recipe(tensor: torch.Tensor, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """Mark ``tensor`` as ``compute()``: the rules that would keep it until backward
    (:func:`tie`, the softmax rule) keep ``compute`` instead and make it again there.

    For outputs that are cheap to make from tensors kept anyway (an activation of a kept
    pre-activation, a normalization of a kept input, attention scores of kept queries and
    keys): the pass then holds one tensor where it held two. ``compute`` must give the
    same values bit for bit (the same operation on the same inputs).
    """
    if not torch.compiler.is_compiling():  # compiled graphs keep what they need themselves
        tensor._relscope_recipe = compute  # type: ignore[attr-defined]
    return tensor


def recipe_of(tensor: torch.Tensor) -> Callable[[], torch.Tensor] | None:
    """The recipe :func:`with_recipe` gave ``tensor``, if any."""
    return getattr(tensor, "_relscope_recipe", None)


def remake(compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """A recipe's tensor, made without a graph."""
    with torch.no_grad():
        return compute()


class _TieStack(torch.autograd.Function):
    @staticmethod
    def forward(ctx, source: torch.Tensor, *values: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(*values)
        ctx.source_shape = source.shape
        return torch.cat([v.expand_as(source) for v in values], dim=1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        values = ctx.saved_tensors
        out = None
        for value, block in zip(values, grad.chunk(len(values), dim=1), strict=True):
            term = (block * value).sum_to_size(ctx.source_shape)
            out = term if out is None else out.add_(term)
        return (out, *([None] * len(values)))


def tie_stack(source: torch.Tensor, values: Sequence[torch.Tensor]) -> torch.Tensor:
    """``cat([values...], dim=1)``; backward sends ``sum_k values_k * grad_k`` to ``source``.

    Several tied inputs of one layer (z^B: the input and both bounds) become one input with
    stacked channels, so one convolution and one transposed convolution serve them all.
    """
    return _TieStack.apply(source, *(v.detach() for v in values))


class _Normalize(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx, value: torch.Tensor, eps: float, coefficients: tuple, signs: tuple, recompute, *parts
    ):
        ctx.eps = eps
        ctx.coefficients = coefficients
        ctx.signs = signs
        ctx.recompute = recompute
        if recompute is None:
            ctx.save_for_backward(*parts)
        return value.view_as(value)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        if ctx.recompute is None:
            parts = ctx.saved_tensors
        else:
            with torch.no_grad():
                parts = ctx.recompute()
            ctx.recompute = None  # drop the closure's references once used
        out = []
        for part, coefficient, sign in zip(parts, ctx.coefficients, ctx.signs, strict=True):
            quotient = stabilized_quotient(grad, part, ctx.eps, sign)
            if isinstance(coefficient, torch.Tensor) or coefficient != 1:
                quotient = quotient.mul_(coefficient)
            out.append(quotient)
        return (None, None, None, None, None, *out)


def stabilized_quotient(
    grad: torch.Tensor, denominator: torch.Tensor, eps: float, sign: int = 0
) -> torch.Tensor:
    """``grad / stab(denominator)`` (a new tensor); with ``eps = 0`` a zero denominator
    gives 0. ``sign`` may declare the denominator never negative (+1) or never positive (-1)."""
    if eps == 0:
        quotient = grad / denominator
        # LRP-0: a zero denominator means a silent neuron; it passes on nothing.
        return torch.where(denominator == 0, torch.zeros_like(quotient), quotient)
    if sign:
        # The part's sign is known (z+ >= 0, z- <= 0): one pass stabilizes it.
        # A zero z- has only zero numerators, so its stabilizer's sign is moot.
        stabilized = torch.add(denominator, sign * eps)
    else:
        stabilized = stabilize(denominator, eps)
    return torch.div(grad, stabilized, out=stabilized)  # reuse the buffer


def normalize(
    value: torch.Tensor,
    parts: Sequence[torch.Tensor],
    coefficients: Sequence[float | torch.Tensor],
    eps: float,
    signs: Sequence[int] | None = None,
    recompute: Callable[[], Sequence[torch.Tensor]] | None = None,
) -> torch.Tensor:
    """Value ``value``; backward sends ``coefficient_k * grad / stab(part_k)`` to each part.

    ``value`` carries no gradient (it is the layer's true output, computed without the
    graph); the gradient flows only through the ``parts``, which are the rule's modified
    forward computations (z^+, z^-, z with modified weights, ...). ``signs`` may declare a
    part as never negative (+1) or never positive (-1), which saves the sign test.
    ``recompute`` returns the parts' values again: then they are not kept from forward to
    backward but recomputed there (for layers whose parts are cheap to compute and large to
    keep, such as the full-resolution input layer or depthwise convolutions).
    """
    coefficients = tuple(
        c.detach() if isinstance(c, torch.Tensor) else float(c) for c in coefficients
    )
    signs = tuple(int(s) for s in signs) if signs is not None else (0,) * len(parts)
    return _Normalize.apply(value.detach(), float(eps), coefficients, signs, recompute, *parts)


class _Pass(torch.autograd.Function):
    @staticmethod
    def forward(ctx, source: torch.Tensor, value: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.source_shape = source.shape
        ctx.scale = scale
        return value.view_as(value)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        out = grad if ctx.scale == 1 else grad * ctx.scale
        if out.shape != ctx.source_shape:
            out = out.sum_to_size(ctx.source_shape)  # a broadcast factor sums its share
        return out, None, None


def pass_through(source: torch.Tensor, value: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Value ``value``; the gradient reaches ``source`` unchanged (times ``scale``).

    ``source`` may broadcast to ``value``; it then receives the gradient summed over the
    broadcast dimensions.
    """
    return _Pass.apply(source, value.detach(), float(scale))
