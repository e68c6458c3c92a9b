"""Gradient-family attributors: gradient, input x gradient, SmoothGrad, Integrated Gradients,
guided backprop, DeconvNet, LRP and (bounded) Deep Taylor.

All of them share one call signature, ``attributor(model, inputs, target) -> Attribution``
(unpacks as ``output, attribution``), are batched and run on the inputs' device. ``target``
is a class index per sample (tensor ``(B,)`` or an int), ``None`` for the predicted class of
the clean input, output weights ``(B, K)`` or a function of the output returning them.
The gradient methods explain the target score (weight 1); :class:`LRPAttributor` and
:class:`DeepTaylor` start from the target logit, so that LRP-0 equals input x gradient on
bias-free ReLU networks.

Every method that computes a gradient accepts a composite (a :class:`Composite` or a
registered name plus its parameters): the backward pass is then the composite's modified
backward pass, so ``SmoothGrad(composite="epsilon_plus")`` averages LRP over noisy copies.

Examples
--------
>>> import torch
>>> from torch import nn
>>> model = nn.Sequential(nn.Linear(4, 3, bias=False), nn.ReLU(), nn.Linear(3, 2, bias=False))
>>> x = torch.rand(5, 4)
>>> output, attribution = IntegratedGradients(steps=16)(model, x, target=0)
>>> attribution.shape
torch.Size([5, 4])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Real
from typing import Any

import torch
from torch import nn

from relscope.attribution.attributors import GradientBased, register_attributor
from relscope.attribution.core import (
    Attribution,
    Target,
    broadcast_to_inputs,
    check_seed,
    chunks,
    class_scores,
    forward,
    generator_for,
    output_weights,
    target_weights,
)
from relscope.attribution.lrp.composites import Composite, First, get_composite
from relscope.attribution.lrp.rules import ZBox, ZPlus
from relscope.errors import ConfigError

__all__ = [
    "POSTPROCESS",
    "QUADRATURES",
    "DeconvNet",
    "DeepTaylor",
    "Gradient",
    "GuidedBackprop",
    "InputXGradient",
    "IntegratedGradients",
    "LRPAttributor",
    "SmoothGrad",
]

Baseline = float | str | torch.Tensor | Callable[[torch.Tensor], torch.Tensor | float]

#: SmoothGrad's per-sample postprocessing, applied to each noisy gradient before averaging.
POSTPROCESS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "none": lambda g: g,
    "abs": torch.abs,
    "square": torch.square,
}

#: Integrated Gradients' quadrature rules: ``steps -> (alphas, weights)`` on ``[0, 1]``.
QUADRATURES: dict[str, Callable[[int], tuple[list[float], list[float]]]] = {
    "left": lambda m: ([k / m for k in range(m)], [1 / m] * m),
    "right": lambda m: ([(k + 1) / m for k in range(m)], [1 / m] * m),
    "middle": lambda m: ([(k + 0.5) / m for k in range(m)], [1 / m] * m),
    "trapezoid": lambda m: (
        [k / (m - 1) for k in range(m)],
        [(0.5 if k in (0, m - 1) else 1.0) / (m - 1) for k in range(m)],
    ),
}


# ------------------------------------------------------------------------------ checks
def _integer(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_composite(
    attributor: str, composite: Composite | str | None, params: dict[str, Any]
) -> None:
    # A misspelt composite name or parameter should fail when the attributor is made,
    # not at the first call (which may come after a long data load).
    if composite is None and params:
        # Unknown keywords land in the composite parameters: name them.
        raise ConfigError(
            f"{attributor}: unknown parameters {', '.join(sorted(params))} (composite "
            "parameters need a composite)"
        )
    if isinstance(composite, str):
        get_composite(composite, **params)
    elif composite is not None and not isinstance(composite, Composite):
        raise ConfigError(f"composite must be a Composite or a registered name, got {composite!r}")


def _per_copy(values: torch.Tensor, copies: int, like: torch.Tensor) -> torch.Tensor:
    """Copy-major stacked rows ``(copies * B, ...)`` as ``(copies, B, ...)``."""
    return values.reshape(copies, *like.shape)


# --------------------------------------------------------------------------- gradients
@register_attributor("gradient")
class Gradient(GradientBased):
    """The gradient of the target score, or a composite's modified gradient.

    ``A(x) = d(sum_k t_k f_k(x)) / dx`` with the output weights ``t`` (one-hot of the target
    class, or the given weights). With a composite the backward pass is the composite's
    (guided backprop, DeconvNet, or the relevance of LRP started with weight 1).

    Parameters
    ----------
    composite:
        ``None`` for the plain gradient, else a :class:`Composite` or a registered name.
    composite_params:
        Parameters of a composite given by name.
    """

    def __init__(self, composite: Composite | str | None = None, **composite_params: Any) -> None:
        _check_composite(self.name, composite, composite_params)
        super().__init__(composite, **composite_params)

    def attribute(self, model: nn.Module, inputs: torch.Tensor, target: Target) -> Attribution:
        """``(f(x), d(t . f(x)) / dx)`` from one forward and one backward pass."""
        return self._once(model, inputs, lambda out: target_weights(out, target))

    def _once(
        self,
        model: nn.Module,
        inputs: torch.Tensor,
        weights_of: Callable[[torch.Tensor], torch.Tensor],
    ) -> Attribution:
        # The target is resolved from the output of the pass that is differentiated, so a
        # single forward pass serves both (``GradientBased.backward`` needs an extra one).
        if self.composite is None:
            with torch.enable_grad():
                leaf = inputs.detach().requires_grad_(True)
                output = class_scores(model(leaf))
                weights = weights_of(output.detach())
                (grad,) = torch.autograd.grad(output, leaf, grad_outputs=weights)
            return Attribution(output.detach(), grad)
        lrp = self._lrp_for(model)
        with lrp:
            result = lrp(inputs, weights_of)
        return Attribution(result.output, result.relevance)


@register_attributor("input_x_gradient")
class InputXGradient(Gradient):
    """Input times gradient: ``A(x) = x * d(t . f(x)) / dx`` (element-wise).

    With a composite the gradient is the composite's modified gradient.
    """

    def attribute(self, model: nn.Module, inputs: torch.Tensor, target: Target) -> Attribution:
        """``(f(x), x * d(t . f(x)) / dx)``."""
        output, grad = super().attribute(model, inputs, target)
        return Attribution(output, inputs * grad)


@register_attributor("guided_backprop")
class GuidedBackprop(Gradient):
    """Guided backpropagation: the gradient with ReLUs passing ``(g)^+ * 1[x > 0]`` backward.

    The registered composite ``guided_backprop`` applied by :class:`Gradient`.
    """

    def __init__(self) -> None:
        super().__init__("guided_backprop")


@register_attributor("deconvnet")
class DeconvNet(Gradient):
    """DeconvNet: the gradient with ReLUs passing ``(g)^+`` backward (no forward mask).

    The registered composite ``deconvnet`` applied by :class:`Gradient`.
    """

    def __init__(self) -> None:
        super().__init__("deconvnet")


# -------------------------------------------------------------------------- SmoothGrad
@register_attributor("smoothgrad")
class SmoothGrad(GradientBased):
    """SmoothGrad: the (postprocessed) gradient averaged over noisy copies of the input.

    ``A(x) = 1/n sum_{i=1..n} post(g(x + sigma * e_i))`` with ``e_i ~ N(0, I)``, per sample
    ``sigma = noise_level * (max(x) - min(x))``, and ``g`` the gradient of the target score
    (or the composite's backward pass: SmoothGrad over LRP). The target is resolved on the
    clean input, so every copy explains the same class; ``output`` is the clean output.

    Parameters
    ----------
    n:
        Number of noisy copies.
    noise_level:
        Standard deviation of the noise relative to each sample's value range (>= 0; 0
        gives the gradient itself).
    postprocess:
        ``"none"``, ``"abs"`` or ``"square"``, applied to each copy's gradient before averaging.
    batch_size:
        Noisy copies of the batch stacked into one backward pass (0: all ``n`` at once).
        Memory grows with ``batch_size`` x batch; the result does not depend on it.
    generator:
        Random generator for the noise, or an int seed (a fresh generator per call, so that
        calls agree). Copy ``i`` uses the ``i``-th draw
        ``torch.randn(inputs.shape, generator=generator)``, made on the generator's device
        and moved to the inputs'.
    composite, composite_params:
        Replace the gradient by a composite's backward pass (see :class:`Gradient`).
    """

    def __init__(
        self,
        n: int = 20,
        noise_level: float = 0.1,
        postprocess: str = "none",
        batch_size: int = 8,
        generator: torch.Generator | int | None = None,
        composite: Composite | str | None = None,
        **composite_params: Any,
    ) -> None:
        _check_composite(self.name, composite, composite_params)
        super().__init__(composite, **composite_params)
        self.n = _integer("n", n, 1)
        if (
            isinstance(noise_level, bool)
            or not isinstance(noise_level, Real)
            or not math.isfinite(noise_level)
            or noise_level < 0
        ):
            raise ConfigError(f"noise_level must be a finite number >= 0, got {noise_level!r}")
        self.noise_level = float(noise_level)
        if not isinstance(postprocess, str) or postprocess not in POSTPROCESS:
            raise ConfigError(
                f"postprocess must be one of {', '.join(POSTPROCESS)}, got {postprocess!r}"
            )
        self.postprocess = postprocess
        self.batch_size = _integer("batch_size", batch_size, 0)
        self._generator = check_seed(generator)
        self.generator = generator if isinstance(generator, int) else None

    def attribute(self, model: nn.Module, inputs: torch.Tensor, target: Target) -> Attribution:
        """``(f(x), 1/n sum_i post(g(x + sigma e_i)))``."""
        output = forward(model, inputs)
        gradient = self.backward(model, inputs, target_weights(output, target))
        post = POSTPROCESS[self.postprocess]
        if self.noise_level == 0:
            # Every copy is the input itself: one pass gives the mean exactly (a sum of n
            # equal terms divided by n need not round back to the term).
            return Attribution(output, post(gradient(inputs)[1]))
        spread = inputs.flatten(1).amax(1) - inputs.flatten(1).amin(1)
        sigma = (self.noise_level * spread).reshape(-1, *[1] * (inputs.ndim - 1))
        total = torch.zeros_like(inputs)
        generator = generator_for(self._generator)
        for part in chunks(self.n, self.batch_size):
            copies = part.stop - part.start
            noise = torch.stack([_noise(inputs, generator) for _ in range(copies)])
            noisy = (inputs + sigma * noise).reshape(copies * inputs.shape[0], *inputs.shape[1:])
            total += post(_per_copy(gradient(noisy)[1], copies, inputs)).sum(0)
        return Attribution(output, total / self.n)


def _noise(inputs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    if generator is None:
        return torch.randn(inputs.shape, dtype=inputs.dtype, device=inputs.device)
    noise = torch.randn(
        inputs.shape, generator=generator, dtype=inputs.dtype, device=generator.device
    )
    return noise.to(inputs.device)


# ---------------------------------------------------------------- Integrated Gradients
@register_attributor("integrated_gradients")
class IntegratedGradients(GradientBased):
    """Integrated Gradients: ``A(x) = (x - x0) * sum_k w_k g(x0 + alpha_k (x - x0))``.

    ``g`` is the gradient of the target score (or a composite's backward pass) and
    ``(alpha_k, w_k)`` a Riemann quadrature of ``[0, 1]`` with ``sum_k w_k = 1``, so the
    attribution is ``(x - x0)`` times the mean gradient along the straight path. With the
    plain gradient it is complete up to the quadrature error:
    ``sum_i A_i(x) ~ f_t(x) - f_t(x0)`` (exact for models linear in the input). The target
    is resolved on ``x``; ``output`` is ``f(x)``.

    Parameters
    ----------
    baseline:
        ``x0``: ``"zeros"``, a number, a tensor broadcastable to the inputs, or a function
        of the inputs returning one of those.
    steps:
        Number of points on the path (gradient evaluations).
    method:
        ``"left"`` (``alpha_k = k/m``), ``"right"`` (``(k+1)/m``), ``"middle"``
        (``(k+1/2)/m``), each with weights ``1/m``, or ``"trapezoid"`` (``alpha_k = k/(m-1)``,
        weights ``1/(m-1)``, halved at both ends; needs ``steps >= 2``). A ``riemann_``
        prefix is accepted.
    batch_size:
        Path points stacked into one backward pass (0: all at once). Memory grows with
        ``batch_size`` x batch; the result does not depend on it.
    composite, composite_params:
        Replace the gradient by a composite's backward pass (see :class:`Gradient`).
    """

    def __init__(
        self,
        baseline: Baseline = "zeros",
        steps: int = 32,
        method: str = "middle",
        batch_size: int = 8,
        composite: Composite | str | None = None,
        **composite_params: Any,
    ) -> None:
        _check_composite(self.name, composite, composite_params)
        super().__init__(composite, **composite_params)
        if isinstance(baseline, str):
            if baseline != "zeros":
                raise ConfigError(
                    f"baseline must be 'zeros', a number, a tensor or a function, got {baseline!r}"
                )
        elif isinstance(baseline, Real) and not isinstance(baseline, bool):
            if not math.isfinite(baseline):
                raise ConfigError(f"baseline must be finite, got {baseline!r}")
            baseline = float(baseline)
        elif not isinstance(baseline, torch.Tensor) and not callable(baseline):
            raise ConfigError(
                f"baseline must be 'zeros', a number, a tensor or a function, got {baseline!r}"
            )
        self.baseline = baseline
        self.steps = _integer("steps", steps, 1)
        method = method.removeprefix("riemann_") if isinstance(method, str) else method
        if not isinstance(method, str) or method not in QUADRATURES:
            raise ConfigError(f"method must be one of {', '.join(QUADRATURES)}, got {method!r}")
        if method == "trapezoid" and steps < 2:
            raise ConfigError(f"method 'trapezoid' needs steps >= 2, got {steps}")
        self.method = method
        self.batch_size = _integer("batch_size", batch_size, 0)

    def params(self) -> dict[str, Any]:
        out = super().params()
        if isinstance(self.baseline, torch.Tensor):
            out["baseline"] = self.baseline.tolist() if self.baseline.numel() <= 16 else "tensor"
        return out

    def baseline_for(self, inputs: torch.Tensor) -> torch.Tensor:
        """``x0`` as a tensor of the inputs' shape, dtype and device (or a one-line error)."""
        value = self.baseline
        if isinstance(value, str):
            return torch.zeros_like(inputs)
        if callable(value) and not isinstance(value, torch.Tensor):
            value = value(inputs)
        if not isinstance(value, torch.Tensor | Real) or isinstance(value, bool):
            kind = type(value).__name__
            raise ConfigError(f"the baseline function returned {kind}, not a tensor or number")
        if isinstance(value, torch.Tensor):
            value = value.detach()  # the attribution must not carry the baseline's graph
        value = torch.as_tensor(value, dtype=inputs.dtype, device=inputs.device)
        return broadcast_to_inputs(value, inputs, "baseline")

    def attribute(self, model: nn.Module, inputs: torch.Tensor, target: Target) -> Attribution:
        """``(f(x), (x - x0) * sum_k w_k g(x0 + alpha_k (x - x0)))``."""
        baseline = self.baseline_for(inputs)
        output = forward(model, inputs)
        gradient = self.backward(model, inputs, target_weights(output, target))
        delta = inputs - baseline
        alphas, weights = QUADRATURES[self.method](self.steps)
        column = (-1, *[1] * inputs.ndim)  # one value per path point, broadcast over a batch
        total = torch.zeros_like(inputs)
        for part in chunks(self.steps, self.batch_size):
            copies = part.stop - part.start
            alpha = torch.tensor(alphas[part], dtype=inputs.dtype, device=inputs.device)
            weight = torch.tensor(weights[part], dtype=inputs.dtype, device=inputs.device)
            points = baseline + alpha.reshape(column) * delta
            grads = gradient(points.reshape(copies * inputs.shape[0], *inputs.shape[1:]))[1]
            total += (_per_copy(grads, copies, inputs) * weight.reshape(column)).sum(0)
        return Attribution(output, delta * total)


# -------------------------------------------------------------------------------- LRP
@register_attributor("lrp")
class LRPAttributor(Gradient):
    """Layer-wise relevance propagation: the LRP engine's input relevance.

    The relevance starts as the target logit, ``R_out = t * f(x)`` for a class index
    (output weights or a weighting function are used as given), and is propagated by the
    composite's rules; with LRP-0 on a bias-free ReLU network ``R = x * df_t/dx``.

    Parameters
    ----------
    composite:
        A :class:`Composite` or a registered name (``"epsilon_plus"``, ...).
    composite_params:
        Parameters of a composite given by name (e.g. ``low``/``high`` of
        ``epsilon_gamma_box``).
    """

    def __init__(self, composite: Composite | str = "epsilon", **composite_params: Any) -> None:
        if composite is None:
            raise ConfigError("lrp needs a composite (a Composite or a registered name)")
        super().__init__(composite, **composite_params)

    def attribute(self, model: nn.Module, inputs: torch.Tensor, target: Target) -> Attribution:
        """``(f(x), R)`` from one forward and one backward pass of the rewritten model."""
        return self._once(model, inputs, lambda out: output_weights(out, target, initial="logit"))


@register_attributor("deep_taylor")
class DeepTaylor(LRPAttributor):
    """Bounded deep Taylor decomposition: z^B on the first linear layer, z+ on the others.

    The first linear layer redistributes with
    ``R_i = sum_j (x_i w_ij - l_i w+_ij - h_i w-_ij) R_j / stab(sum_i (...))`` (inputs
    bounded by ``l <= x <= h``); every other linear layer with
    ``R_i = sum_j a_i w+_ij R_j / stab(sum_i a_i w+_ij)`` (biases ignored); activations pass
    relevance on, pooling and sums as in every composite. Starts from the target logit.

    Parameters
    ----------
    low, high:
        Input bounds, numbers or tensors broadcastable to the input (per channel after
        normalization).
    eps:
        Stabilizer of both rules' denominators.
    """

    def __init__(
        self, low: float | torch.Tensor, high: float | torch.Tensor, eps: float = 1e-6
    ) -> None:
        composite = Composite(
            [(First(), ZBox(low, high, eps)), ("linear", ZPlus(eps, zero_params=("bias",)))],
            name="deep_taylor",
        )
        super().__init__(composite)
        self.low, self.high, self.eps = low, high, eps

    def params(self) -> dict[str, Any]:
        bounds = {
            k: v.tolist() if v.numel() <= 16 else "tensor"
            for k, v in (("low", torch.as_tensor(self.low)), ("high", torch.as_tensor(self.high)))
        }
        return {**bounds, "eps": self.eps}
