"""The LRP entry point: one forward and one backward pass per batch.

Usage::

    composite = get_composite("epsilon_gamma_box", low=low, high=high)
    with composite.context(model) as lrp:          # or: with LRP(model, composite) as lrp
        output, relevance = lrp(x, target)

``target`` is a class index per sample (tensor ``(B,)`` or an int), ``None`` for the
predicted class, several classes per sample (``(B, T)``; one call, relevance
``(B, T, ...)``), or an output weighting (tensor ``(B, K)`` or a function of the output).
The relevance starts as the target logit (``initial="logit"``), so that LRP-0 equals
gradient x input; ``initial="one"`` starts every explanation with 1.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from relscope.attribution.core import Attribution, Diagnostics, Target, output_weights
from relscope.attribution.lrp.graph import Layer, Probe, TracedModel, TraceError, rewrite, trace
from relscope.attribution.lrp.layers import PROVISIONAL_KINDS
from relscope.errors import ConfigError, RelscopeError, RelscopeWarning
from relscope.registry import registry

if TYPE_CHECKING:
    from relscope.attribution.lrp.composites import Composite

__all__ = [
    "GROWTH_TRIGGER",
    "LRP",
    "Attribution",
    "Diagnostics",
    "NumericalError",
    "Target",
    "attribute",
    "output_weights",
]

#: Every call compares the absolute input relevance with the absolute relevance put on the
#: output; past this factor (and past ten times the largest factor already checked clean)
#: it runs once more with diagnostics to find a layer that exceeds its rule's growth bound
#: (:meth:`Rule.growth_bound`), and warns once naming it.
GROWTH_TRIGGER = 10.0


class NumericalError(RelscopeError):
    """Relevance became NaN or infinite; the message names the layer where it started."""


class LRP:
    """Layer-wise relevance propagation for one model and one composite.

    Parameters
    ----------
    model:
        Any PyTorch model mapping a batch to ``(batch, classes)``. It is never modified
        (beyond what a composite's attribute-override canonizers do inside the context).
    composite:
        A :class:`Composite` or a registered composite name.
    trace:
        Trace the model into a graph (default). When tracing fails, or with ``False``,
        rules are applied to modules only and a warning names the functional operations
        that got no rule.
    compile:
        Compile the rewritten model with ``torch.compile`` (``True`` or its options).
    composite_params:
        Parameters for a composite given by name.

    One object may explain batches from several threads at once (a web server's thread
    pool): rules keep no per-call state on themselves, and each call records its layers and
    diagnostics apart. Enter the context (which applies the canonizers) once, around all
    threads' calls, not from each thread.
    """

    def __init__(
        self,
        model: nn.Module,
        composite: Composite | str = "epsilon",
        *,
        trace: bool = True,
        compile: bool | dict[str, Any] = False,
        **composite_params: Any,
    ) -> None:
        if isinstance(composite, str):
            # By name through the registry: the composites module imports this one.
            composite = registry("composite").build(composite, **composite_params)
        elif composite_params:
            raise ConfigError("composite parameters are only accepted with a composite name")
        self.model = model
        self.composite = composite
        self.probe = Probe()
        self._module: nn.Module | None = None
        self._traced: TracedModel | None = None
        self._want_trace = trace
        self._compile = compile
        self._entered = 0
        self._building = threading.Lock()
        self._ready = False
        self._warned: set[str] = set()  # layers already named in a growth warning
        self._checked_growth = 0.0  # largest input/output growth that checked clean

    # --------------------------------------------------------------------------- set-up
    @property
    def layers(self) -> list[Layer]:
        """The model's operations in execution order (as composites select them)."""
        self._build()
        return self._traced.layers if self._traced is not None else self._module_layers

    def rules(self) -> list[tuple[Layer, Any]]:
        """Every layer with the rule it got."""
        self._build()
        return list(self._assigned)

    def _build(self) -> None:
        if self._ready:
            return
        with self._building:  # threads that call a fresh LRP object at once build it once
            if not self._ready:
                self._build_locked()
                self._index_rules()
                self._ready = True

    def _index_rules(self) -> None:
        self._rule_of = {layer.name: rule for layer, rule in self._assigned}
        # Gradient methods have no bounded rule on a linear layer: nothing to check.
        self._bounded = any(
            layer.kind in ("dense", "convolution") and rule.growth_bound() is not None
            for layer, rule in self._assigned
        )

    def _discover(self, x: torch.Tensor) -> None:
        """Untraced models list their operations on their first call (see ``fallback``)."""
        module = self._module
        if module is None or getattr(module, "discovered", True):
            return
        module.discover(x)
        self._index_rules()

    def _build_locked(self) -> None:
        self._assigned: list[tuple[Layer, Any]] = []
        if self._want_trace:
            try:
                traced = trace(self.model)
            except TraceError as error:
                warnings.warn(
                    f"{error}; falling back to rules applied while the model runs",
                    RelscopeWarning,
                    stacklevel=3,
                )
            else:
                self._build_graph(traced)
                self._maybe_compile()
                return
        self._build_modules()
        self._maybe_compile()

    def _maybe_compile(self) -> None:
        if self._compile:
            options = self._compile if isinstance(self._compile, dict) else {}
            self._module = torch.compile(self._module, **options)

    def _build_graph(self, traced: TracedModel) -> None:
        for canonizer in self.composite.canonizers:
            canonizer.apply(traced)
        layers = traced.layers
        provisional = []

        def rule_for(layer: Layer):
            rule = self.composite.rule_for(layer, layers)
            self._assigned.append((layer, rule))
            if layer.kind in PROVISIONAL_KINDS and type(rule) is type(
                self.composite.defaults.get(layer.kind, object)()
            ):
                provisional.append(f"{layer.name} ({layer.type})")
            return rule

        self._module = rewrite(traced, rule_for, self.probe)
        self._traced = traced
        if provisional:
            warnings.warn(
                f"no dedicated relevance rule for {len(provisional)} operations, the default "
                f"(z-rule / gradient) is used: {', '.join(provisional[:8])}"
                + (" ..." if len(provisional) > 8 else ""),
                RelscopeWarning,
                stacklevel=4,
            )

    def _build_modules(self) -> None:
        from relscope.attribution.lrp.fallback import module_level

        self._module, self._module_layers = module_level(
            self.model, self.composite, self.probe, self._assigned
        )

    def __enter__(self) -> LRP:
        if self._entered == 0:
            for canonizer in self.composite.canonizers:
                canonizer.enter(self.model)
        self._entered += 1
        self._build()
        return self

    def __exit__(self, *_: object) -> None:
        self._entered -= 1
        if self._entered == 0:
            for canonizer in reversed(self.composite.canonizers):
                canonizer.exit(self.model)

    # -------------------------------------------------------------------------- running
    def __call__(
        self,
        x: torch.Tensor,
        target: Target = None,
        *,
        record: Sequence[str] = (),
        diagnostics: bool = False,
        initial: str = "logit",
        contrastive: bool = False,
        check_finite: bool = True,
        keep: Sequence[str] = (),
        ablate: Mapping[str, Any] | None = None,
    ) -> Attribution:
        """Explain a batch: one forward and one backward pass.

        ``record`` names layers whose output relevance is returned in
        ``Attribution.layers``; ``diagnostics=True`` records every layer's relevance sums
        and finds the first layer whose relevance is not finite. ``keep`` names layers
        whose forward output is returned in ``Attribution.activations``. ``ablate`` maps
        layer names to channels (axis 1 of the output) replaced by 0 in this pass: channel
        indices, or a bool mask ``(channels,)`` or ``(batch, channels)``. The output and
        all relevance then are those of the ablated model; an ablated channel gets no
        relevance and passes none on. A kept or recorded layer that is also ablated shows
        its output after, its relevance before the ablation (0 in the ablated channels).
        """
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise ConfigError("inputs must be a floating point tensor")
        self._build()
        multi = (
            isinstance(target, torch.Tensor)
            and not target.is_floating_point()
            and (target.ndim == 2)
        )
        if multi:
            batch, count = target.shape
            x = x.repeat_interleave(count, dim=0)
            target = target.reshape(-1)
        self._discover(x)
        ablate = dict(ablate or {})
        for what, names in (("record", record), ("keep", keep), ("ablate", ablate)):
            self._check_names(what, names)
        if (keep or ablate) and self._compile:
            raise ConfigError("keep= and ablate= need an LRP engine built without compile")
        outputs, masks = self._inner_names(keep), self._inner_masks(ablate)
        if multi:
            masks = {
                name: mask.repeat_interleave(count, dim=0)
                if isinstance(mask, torch.Tensor) and mask.ndim == 2 and len(mask) == batch > 1
                else mask
                for name, mask in masks.items()
            }
        self.probe.start(record, everything=diagnostics, outputs=outputs, masks=masks)
        try:
            with torch.enable_grad():
                leaf = x.detach().requires_grad_(True)
                output = self._module(leaf)
                if not isinstance(output, torch.Tensor):
                    raise ConfigError("the model must return one tensor of class scores")
                weights = output_weights(output, target, initial=initial, contrastive=contrastive)
                (relevance,) = torch.autograd.grad(output, leaf, grad_outputs=weights)
        finally:
            recording = self.probe.stop()
        recorded = recording.relevance if recording is not None else {}
        activations = self._activations(recording, keep, ablate)
        report = None
        if diagnostics:
            report = self._diagnose(
                recorded, recording.handed, relevance, weights, recording.first_bad_forward
            )
            self._warn_growth(report.exploding)
        elif check_finite:
            self._check_growth(x, target, initial, contrastive, relevance, weights, masks)
        layers = {name: recorded[name] for name in record if name in recorded}
        if check_finite and not torch.isfinite(relevance).all():
            where = report.first_nonfinite if report else self._locate(x, target, initial, masks)
            raise NumericalError(f"relevance is NaN or infinite, starting at layer {where}")
        output = output.detach()
        if multi:
            output = output.reshape(batch, count, *output.shape[1:])[:, 0]
            relevance = relevance.reshape(batch, count, *relevance.shape[1:])
            layers = {k: v.reshape(batch, count, *v.shape[1:]) for k, v in layers.items()}
            activations = {
                k: v.reshape(batch, count, *v.shape[1:])[:, 0] for k, v in activations.items()
            }
        return Attribution(output, relevance, layers, report, activations)

    def _check_names(self, what: str, names: Sequence[str] | Mapping[str, Any]) -> None:
        known = [layer.name for layer in self.layers]
        unknown = set(names) - set(known)
        if unknown:
            shown = ", ".join(known[:8]) + (", ..." if len(known) > 8 else "")
            raise ConfigError(
                f"cannot {what} unknown layers {sorted(unknown)} (the layers are {shown})"
            )

    def _inner_names(self, names: Sequence[str]) -> list[str]:
        """The layer computing each name's output: a batch norm merged by a canonizer
        into the layer before it is computed by that layer."""
        merged = self._traced.merged if self._traced is not None else {}
        return [merged.get(name, name) for name in names]

    def _inner_masks(self, ablate: dict[str, Any]) -> dict[str, Any]:
        masks: dict[str, Any] = {}
        for name, channels in ablate.items():
            (inner,) = self._inner_names([name])
            if inner in masks:
                raise ConfigError(
                    f"cannot ablate both {name} and {inner}: a canonizer merged them into one layer"
                )
            masks[inner] = channels
        return masks

    def _activations(self, recording, keep: Sequence[str], ablate: dict[str, Any]) -> dict:
        """The kept outputs by the names asked for; an error for an ablation or a kept
        output that did not happen (the layer never ran or gave no tensor)."""
        kept = recording.activations if recording is not None else {}
        done = recording.ablated if recording is not None else set()
        for name, inner in zip(ablate, self._inner_names(list(ablate)), strict=True):
            if inner not in done:
                raise ConfigError(f"layer {name} did not run in the forward pass: not ablated")
        activations = {}
        for name, inner in zip(keep, self._inner_names(keep), strict=True):
            if inner not in kept:
                raise ConfigError(f"layer {name} gave no tensor output to keep")
            activations[name] = kept[inner]
        return activations

    def _check_growth(self, x, target, initial, contrastive, relevance, weights, masks) -> None:
        """Cheap test on every call; a diagnostic pass only when relevance grew a lot."""
        if relevance.ndim < 1 or len(relevance) == 0 or not self._bounded:
            return
        given = weights.detach().abs().reshape(len(weights), -1).sum(1)
        got = relevance.detach().abs().reshape(len(relevance), -1).sum(1)
        factor = float((got / given.clamp(min=torch.finfo(given.dtype).tiny)).max())
        if not factor > max(GROWTH_TRIGGER, 10 * self._checked_growth):
            return
        report = self(
            x, target, diagnostics=True, initial=initial, contrastive=contrastive,
            check_finite=False, ablate=masks,
        ).diagnostics  # fmt: skip
        if not report.exploding:
            self._checked_growth = factor  # legitimate amplification: look again at 10x

    def _warn_growth(self, exploding: list[tuple[str, float, float]]) -> None:
        fresh = [entry for entry in exploding if entry[0] not in self._warned]
        if not fresh:
            return
        name, worst, bound = fresh[0]
        self._warned.update(entry[0] for entry in exploding)
        rule = self._rule_of.get(name)
        more = f" (and {len(fresh) - 1} more layers)" if len(fresh) > 1 else ""
        warnings.warn(
            f"relevance explodes at layer {name} ({rule!r}): it hands on {worst:.3g} times "
            f"the relevance it received, above its rule's bound {bound:.3g}{more}; "
            "a denominator may cancel",
            RelscopeWarning,
            stacklevel=4,
        )

    def _diagnose(self, recorded, handed, relevance, weights, bad_forward) -> Diagnostics:
        growth = {}
        for name, given in handed.items():
            if name in recorded and recorded[name].ndim >= 1:
                received = torch.linalg.vector_norm(
                    recorded[name].reshape(given.shape[1], -1), 1, dim=1
                )
                tiny = torch.finfo(received.dtype).tiny
                ratio = given.abs() / received.clamp(min=tiny)
                growth[name] = torch.where(received > tiny, ratio, 0)
        sums = {}
        first = None if bad_forward is None else f"{bad_forward} (non-finite forward output)"
        following = "the model output"
        for layer in reversed(self.layers):  # the order in which backward reaches layers
            if layer.name not in recorded:
                continue
            value = recorded[layer.name]
            sums[layer.name] = value.flatten(1).sum(1) if value.ndim > 1 else value
            # A finite sum has finite terms: the elementwise test only where it is not.
            if (
                first is None
                and not torch.isfinite(sums[layer.name]).all()
                and not torch.isfinite(value).all()
            ):
                # This relevance was produced by the rule of the layer that consumes it.
                first = f"{following} (its rule made the relevance of {layer.name} non-finite)"
            following = layer.name
        if first is None and not torch.isfinite(relevance).all():
            first = f"{following} (its rule made the input relevance non-finite)"
        ordered = {name: sums[name] for name in (l.name for l in self.layers) if name in sums}  # noqa: E741
        order = [layer.name for layer in reversed(self.layers) if layer.name in growth]
        exploding = []
        for name in order:
            rule, worst = self._rule_of.get(name), float(growth[name][0].max())
            bound = None if rule is None else rule.growth_bound()
            if bound is not None and worst > bound * (1 + 1e-3):
                exploding.append((name, worst, bound))
        growth = {name: growth[name] for name in reversed(order)}
        return Diagnostics(
            ordered, first, relevance.flatten(1).sum(1), weights.sum(1), growth, exploding
        )

    def _locate(self, x, target, initial, masks=None) -> str:
        report = self(
            x, target, diagnostics=True, initial=initial, check_finite=False, ablate=masks
        )
        return report.diagnostics.first_nonfinite or "unknown"


def attribute(
    model: nn.Module,
    x: torch.Tensor,
    target: Target = None,
    composite: Composite | str = "epsilon",
    **options: Any,
) -> Attribution:
    """One-off convenience: ``LRP(model, composite)(x, target)`` inside its context."""
    with LRP(model, composite) as lrp:
        return lrp(x, target, **options)
