"""Conservation and stability diagnostics of one LRP pass.

Conservative rules (LRP-0, or epsilon with a tiny stabilizer, on bias-free networks) keep
the sum of relevance equal to the explained output from layer to layer; biases,
stabilizers and rules such as flat or alpha-beta change it. The report shows where relevance
is lost or created and names the layer where it first became NaN or infinite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from relscope.attribution import LRP, Composite
from relscope.attribution.core import target_indices
from relscope.errors import ConfigError
from relscope.evaluation.perturbation import TargetSpec

__all__ = ["DiagnosticsReport", "diagnose"]


@dataclass(frozen=True)
class DiagnosticsReport:
    """Per-layer relevance sums of one LRP pass, per sample.

    Attributes
    ----------
    composite:
        Name of the composite used.
    target:
        ``(batch,)`` explained class.
    output_relevance:
        ``(batch,)`` relevance put on the model output (the target logit by default).
    input_relevance:
        ``(batch,)`` sum of the input relevance.
    ratio:
        ``(batch,)`` ``input_relevance / output_relevance``; 1 for conservative rules, NaN
        where the output relevance is zero (undefined).
    sums:
        Layer name -> ``(batch,)`` sum of the relevance at that layer's output, in
        execution order.
    kinds:
        Layer name -> layer kind (``"convolution"``, ``"dense"``, ``"activation"`` ...).
    first_nonfinite:
        Where the relevance (or the forward pass) first became NaN or infinite, with the
        reason; ``None`` when everything is finite.
    """

    composite: str
    target: torch.Tensor
    output_relevance: torch.Tensor
    input_relevance: torch.Tensor
    ratio: torch.Tensor
    sums: dict[str, torch.Tensor]
    kinds: dict[str, str]
    first_nonfinite: str | None
    #: ``(layer, growth, bound)`` for every layer that handed on more absolute relevance than
    #: its rule's bound allows (:meth:`relscope.attribution.Rule.growth_bound`).
    exploding: tuple[tuple[str, float, float], ...] = ()

    @property
    def finite(self) -> bool:
        """Whether every recorded relevance and the input relevance are finite."""
        return self.first_nonfinite is None and bool(torch.isfinite(self.input_relevance).all())

    def layer_ratios(self) -> dict[str, torch.Tensor]:
        """Layer name -> ``(batch,)`` layer relevance sum over output relevance."""
        return {name: _ratio(total, self.output_relevance) for name, total in self.sums.items()}

    def summary(self) -> list[str]:
        """Readable lines: totals, the conservation ratio, the first bad layer, every layer."""
        batch = self.target.shape[0]
        lines = [
            f"LRP diagnostics: {batch} sample{'s' * (batch != 1)}, composite {self.composite!r}",
            f"output relevance: {_stats(self.output_relevance)}",
            f"input relevance: {_stats(self.input_relevance)}",
            f"input / output relevance: {_stats(self.ratio[self.output_relevance != 0])}",
        ]
        zero = int((self.output_relevance == 0).sum())
        if zero:
            lines[-1] += f"; undefined for {zero} sample{'s' * (zero != 1)} with zero output"
        if self.first_nonfinite is None:
            lines.append("non-finite relevance: none")
        else:
            lines.append(f"non-finite relevance: first at layer {self.first_nonfinite}")
        if self.exploding:
            worst = ", ".join(f"{n} ({g:.3g}x, bound {b:.3g})" for n, g, b in self.exploding)
            lines.append(f"exploding relevance: {worst}")
        else:
            lines.append("exploding relevance: none")
        if self.sums:
            lines.append("layer relevance sum / output relevance (mean over samples):")
            width = max(len(name) for name in self.sums)
            for name, ratio in self.layer_ratios().items():
                lines.append(f"  {name:<{width}}  {self.kinds.get(name, ''):<12} {_mean(ratio)}")
        return lines

    def __str__(self) -> str:
        return "\n".join(self.summary())

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly copy: lists of floats per sample, ``None`` for NaN or infinity."""
        ratios = self.layer_ratios()
        return {
            "composite": self.composite,
            "target": [int(t) for t in self.target.tolist()],
            "output_relevance": _floats(self.output_relevance),
            "input_relevance": _floats(self.input_relevance),
            "ratio": _floats(self.ratio),
            "first_nonfinite": self.first_nonfinite,
            "exploding": [
                {"layer": n, "growth": float(g), "bound": float(b)} for n, g, b in self.exploding
            ],
            "layers": [
                {
                    "name": name,
                    "kind": self.kinds.get(name),
                    "sum": _floats(total),
                    "ratio": _floats(ratios[name]),
                }
                for name, total in self.sums.items()
            ],
        }


def diagnose(
    model: nn.Module,
    inputs: torch.Tensor,
    target: TargetSpec = None,
    composite: Composite | str = "epsilon",
    *,
    initial: str = "logit",
    **composite_params: Any,
) -> DiagnosticsReport:
    """Run LRP once with every layer's relevance recorded and report the sums.

    Unlike a plain LRP call, NaN or infinite relevance does not raise: it is reported in
    :attr:`DiagnosticsReport.first_nonfinite` with the layer that caused it.

    Parameters
    ----------
    model:
        Maps a batch to ``(batch, classes)``.
    inputs:
        The batch to explain.
    target:
        Class index per sample, one index for all, or ``None`` for the predicted class.
    composite:
        A :class:`~relscope.attribution.Composite` or a registered name (parameters as
        keyword arguments, e.g. ``eps=1e-9``).
    initial:
        The relevance put on the output: ``"logit"`` (the target score) or ``"one"``.
    """
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
        raise ConfigError("inputs must be a floating point tensor")
    with LRP(model, composite, **composite_params) as lrp:
        index = None if target is None else _target_for(target, lrp, inputs)
        result = lrp(inputs, index, diagnostics=True, initial=initial, check_finite=False)
        kinds = {layer.name: layer.kind for layer in lrp.layers}
        name = lrp.composite.name
    report = result.diagnostics
    if index is None:
        index = result.output.argmax(dim=1)
    output_sum, input_sum = report.output_sum.detach(), report.input_sum.detach()
    return DiagnosticsReport(
        composite=name,
        target=index,
        output_relevance=output_sum,
        input_relevance=input_sum,
        ratio=_ratio(input_sum, output_sum),
        sums={key: value.detach() for key, value in report.sums.items()},
        kinds={key: kinds[key] for key in report.sums if key in kinds},
        first_nonfinite=report.first_nonfinite,
        exploding=tuple(report.exploding),
    )


# ---------------------------------------------------------------------------- helpers
def _target_for(target: TargetSpec, lrp: LRP, inputs: torch.Tensor) -> torch.Tensor:
    # Validating an explicit target needs the number of classes: one cheap forward.
    with torch.no_grad():
        output = lrp.model(inputs)
    return target_indices(target, output).to(inputs.device)


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """``numerator / denominator``, NaN (undefined) where the denominator is zero."""
    safe = torch.where(denominator == 0, torch.ones_like(denominator), denominator)
    return torch.where(denominator == 0, torch.full_like(safe, math.nan), numerator / safe)


def _floats(values: torch.Tensor) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values.double().cpu().tolist()]


def _mean(values: torch.Tensor) -> str:
    finite = values[torch.isfinite(values)].double()
    text = f"{finite.mean().item():.6g}" if finite.numel() else "undefined"
    bad = values.numel() - finite.numel()
    return text + (f" ({bad} non-finite)" if bad else "")


def _stats(values: torch.Tensor) -> str:
    finite = values[torch.isfinite(values)].double()
    if finite.numel():
        text = (
            f"mean {finite.mean().item():.6g} "
            f"(min {finite.min().item():.6g}, max {finite.max().item():.6g})"
        )
    else:
        text = "undefined"
    bad = values.numel() - finite.numel()
    return text + (f", {bad} sample{'s' * (bad != 1)} NaN or infinite" if bad else "")
