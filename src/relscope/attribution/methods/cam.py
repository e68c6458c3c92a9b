"""Grad-CAM (Selvaraju et al. 2017): class activation maps from one layer's gradients.

For the output ``A`` of a layer, shaped ``(batch, channels, *spatial)``, and the target
score ``y`` (the output weighted by :func:`~relscope.attribution.attributors.target_weights`),
each channel gets the weight ``alpha_k = mean over positions of dy / dA_k`` and the map is
``ReLU(sum_k alpha_k A_k)``, upsampled to the input's spatial size: ``(batch, 1, *spatial)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from relscope.attribution.attributors import Attributor, register_attributor
from relscope.attribution.core import (
    Attribution,
    Target,
    class_scores,
    forward_hook,
    target_weights,
)
from relscope.errors import ConfigError

__all__ = ["GradCAM"]

#: Interpolation modes of ``upsample="bilinear"`` by the number of spatial dimensions.
_LINEAR_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}
_UPSAMPLE = ("bilinear", "nearest", None)


@register_attributor("gradcam")
class GradCAM(Attributor):
    """Gradient-weighted class activation mapping at one layer.

    Parameters
    ----------
    layer:
        Qualified name of the module whose output is explained (``"features.28"``, as in
        ``model.named_modules()``). Its output must be ``(batch, channels, *spatial)``.
    relu:
        Keep only positive evidence (the published method); ``False`` returns the signed map.
    upsample:
        ``"bilinear"`` (linear, bilinear or trilinear by the number of spatial dimensions),
        ``"nearest"``, or ``None`` to return the map at the layer's resolution.

    Examples
    --------
    >>> model = torch.nn.Sequential(
    ...     torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...     torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
    >>> output, cam = GradCAM("1")(model, torch.randn(2, 3, 8, 8), target=0)
    >>> tuple(cam.shape)
    (2, 1, 8, 8)
    """

    def __init__(self, layer: str, relu: bool = True, upsample: str | None = "bilinear") -> None:
        if not isinstance(layer, str) or not layer:
            raise ConfigError(f"layer must be a module name, got {layer!r}")
        if upsample not in _UPSAMPLE:
            raise ConfigError(f"upsample must be 'bilinear', 'nearest' or None, got {upsample!r}")
        self.layer = layer
        self.relu = bool(relu)
        self.upsample = upsample

    def attribute(self, model: nn.Module, inputs: torch.Tensor, target: Target) -> Attribution:
        module = _module(model, self.layer)
        batch = inputs.shape[0]
        captured: list[torch.Tensor] = []

        def hook(_module: nn.Module, _args: object, output: object) -> torch.Tensor:
            if not isinstance(output, torch.Tensor) or output.ndim < 3 or output.shape[0] != batch:
                found = (
                    f"shape {tuple(output.shape)}"
                    if isinstance(output, torch.Tensor)
                    else type(output).__name__
                )
                raise ConfigError(
                    f"Grad-CAM layer {self.layer!r} must output a (batch={batch}, channels, "
                    f"*spatial) tensor, got {found}"
                )
            # A private copy as the leaf: later in-place operations on the layer's output
            # (ReLU(inplace=True), `out += identity`) must change neither A nor the leaf.
            leaf = output.detach().clone().requires_grad_(True)
            captured.append(leaf)
            return leaf.clone()

        with forward_hook(module, hook), torch.enable_grad():
            output = model(inputs)
        class_scores(output)
        if len(captured) != 1:
            raise ConfigError(
                f"Grad-CAM layer {self.layer!r} ran {len(captured)} times in one forward pass; "
                "it needs a layer that runs exactly once"
            )
        (activation,) = captured
        weights = target_weights(output, target)
        grad = None
        if output.requires_grad:
            (grad,) = torch.autograd.grad(
                output, activation, grad_outputs=weights, allow_unused=True
            )
        if grad is None:  # the output does not depend on the layer
            grad = torch.zeros_like(activation)
        spatial = tuple(range(2, activation.ndim))
        alpha = grad.mean(dim=spatial, keepdim=True)
        cam = (alpha * activation.detach()).sum(1, keepdim=True)
        if self.relu:
            cam = cam.clamp(min=0)
        if self.upsample is not None:
            cam = self._resize(cam, inputs)
        return Attribution(output.detach(), cam)

    def _resize(self, cam: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        size = tuple(inputs.shape[2:])
        if len(size) != cam.ndim - 2:
            raise ConfigError(
                f"cannot upsample the {cam.ndim - 2}-D map of layer {self.layer!r} to inputs of "
                f"shape {tuple(inputs.shape)}; use upsample=None"
            )
        if self.upsample == "nearest":
            return F.interpolate(cam, size=size, mode="nearest")
        return F.interpolate(cam, size=size, mode=_LINEAR_MODES[len(size)], align_corners=False)


def _module(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    modules.pop("", None)  # the model itself outputs class scores, not a feature map
    if name not in modules:
        known = list(modules)
        shown = ("... " if len(known) > 12 else "") + ", ".join(known[-12:])
        raise ConfigError(f"unknown layer {name!r} for Grad-CAM; layers: {shown or 'none'}")
    return modules[name]
