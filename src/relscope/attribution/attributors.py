"""Attributors: every attribution method behind one call signature and one registry.

``attributor(model, inputs, target) -> Attribution`` (unpacks as ``output, attribution``):
batched, on the inputs' device, ``target`` as for :class:`~relscope.attribution.lrp.LRP`
(class index per sample, an int, ``None`` for the predicted class, or output weights).
``output`` is the model's plain output for ``inputs``. The attribution has the input's
shape, except for methods that score locations rather than input elements (Grad-CAM,
Occlusion, LIME, RISE), which return ``(batch, 1, *spatial)``.

A new method is one class plus one registration line (``@register_attributor("name")``);
every registered attributor passes the conformance tests in
``tests/attribution/test_attributors.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from relscope.attribution.core import (
    Attribution,
    Target,
    check_inputs,
    forward,
    target_weights,
)
from relscope.attribution.lrp.composites import Composite
from relscope.attribution.lrp.engine import LRP
from relscope.errors import ConfigError
from relscope.registry import Registry

__all__ = [
    "ATTRIBUTORS",
    "Attributor",
    "GradientBased",
    "get_attributor",
    "list_attributors",
    "register_attributor",
]

#: The attributor extension point: name -> attributor class.
ATTRIBUTORS: Registry[type[Attributor]] = Registry("attributor", module=__name__, stamp="name")


def register_attributor(name: str) -> Callable[[type[Attributor]], type[Attributor]]:
    """Class decorator: make an attributor available by ``name`` (one line per method)."""
    return ATTRIBUTORS.register(name)


def list_attributors() -> list[str]:
    """Names of all registered attributors."""
    return ATTRIBUTORS.names()


def get_attributor(name: str, **params: Any) -> Attributor:
    """Build the registered attributor ``name`` with ``params``."""
    return ATTRIBUTORS.build(name, **params)


class Attributor:
    """Base class: ``attributor(model, inputs, target)`` returns an :class:`Attribution`."""

    name: ClassVar[str] = "attributor"

    def __call__(self, model: nn.Module, inputs: torch.Tensor, target: Target = None):
        return self.attribute(model, check_inputs(inputs), target)

    def attribute(self, model: nn.Module, inputs: torch.Tensor, target: Target) -> Attribution:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """The attributor's parameters (JSON-friendly where possible)."""
        return {
            k: v
            for k, v in vars(self).items()
            if not k.startswith("_") and not isinstance(v, torch.Tensor | Composite)
        }

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({inner})"


class GradientBased(Attributor):
    """Attributors built from backward passes; ``composite`` replaces the plain gradient.

    With ``composite=None`` a backward pass gives the gradient of the target score. With a
    composite it gives what that composite's backward pass gives at the input: the modified
    gradient for gradient composites (``guided_backprop``, ``deconvnet``), the relevance for
    LRP composites (so ``SmoothGrad(composite="epsilon_plus")`` averages LRP over noise).
    """

    def __init__(self, composite: Composite | str | None = None, **composite_params: Any) -> None:
        if composite is None and composite_params:
            raise ConfigError(
                f"{sorted(composite_params)} are composite parameters, but no composite is given"
            )
        self.composite = composite
        self._composite_params = composite_params

    def params(self) -> dict[str, Any]:
        out = super().params()
        if isinstance(self.composite, Composite):
            out["composite"] = self.composite.name
        out.update(
            (k, v.tolist() if isinstance(v, torch.Tensor) and v.numel() <= 16 else v)
            for k, v in self._composite_params.items()
        )
        return out

    def backward(
        self, model: nn.Module, inputs: torch.Tensor, target: Target
    ) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """A function ``x -> (output, gradient)`` for batches shaped like ``inputs``.

        ``x`` may also stack ``k`` copies of the batch along dimension 0 (copy-major:
        ``x[i * B + b]`` is a copy of sample ``b``), so that perturbed copies (noise,
        interpolation steps) run in large batches. ``target`` is resolved once on
        ``inputs`` (the predicted class of the clean input), so that every copy explains
        the same class.
        """
        weights = target_weights(forward(model, inputs), target)
        batch = inputs.shape[0]

        def weights_for(x: torch.Tensor) -> torch.Tensor:
            if x.shape[0] == batch:
                return weights
            if x.shape[0] % batch:
                raise ConfigError(f"{x.shape[0]} rows are not copies of a batch of {batch}")
            return weights.repeat(x.shape[0] // batch, 1)

        if self.composite is None:

            def plain(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                with torch.enable_grad():
                    leaf = x.detach().requires_grad_(True)
                    output = model(leaf)
                    (grad,) = torch.autograd.grad(output, leaf, grad_outputs=weights_for(x))
                return output.detach(), grad

            return plain
        lrp = self._lrp_for(model)

        def modified(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            with lrp:
                result = lrp(x, weights_for(x), initial="one")
            return result.output, result.relevance

        return modified

    def _lrp_for(self, model: nn.Module) -> LRP:
        # Tracing and rewriting happen once per model, not per call.
        cached = self.__dict__.get("_lrp")
        if cached is None or cached[0] is not model:
            composite = self.composite
            if isinstance(composite, str):
                lrp = LRP(model, composite, **self._composite_params)
            else:
                lrp = LRP(model, composite)
            self._lrp = (model, lrp)
        return self._lrp[1]
