"""Explain one input with one configuration: the input relevance, the relevance at every
segment boundary from the same backward pass, per-layer relevance sums and warnings.

A boundary of segments ``[a, b), [b, c)`` is the relevance handed from layer ``b`` to the
output of layer ``b - 1`` (what the layers from ``b`` on have explained so far). LRP
configurations (named composites and segments) give boundaries, sums and explosion
warnings; other attributors (gradients, occlusion, ...) give the input relevance only.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from relscope.attribution.attributors import list_attributors
from relscope.attribution.config import MethodConfig, method_config
from relscope.attribution.core import output_weights
from relscope.attribution.lrp.composites import Composite, get_composite, segments
from relscope.attribution.lrp.engine import LRP
from relscope.attribution.lrp.rules import get_rule
from relscope.engine.designer.cache import LRUCache, config_key, input_key
from relscope.engine.designer.supersede import NEVER, Ticket
from relscope.errors import ConfigError
from relscope.render import heatmap_png
from relscope.render.maps import to_map

__all__ = ["Boundary", "Explainer", "Explanation", "TargetMode", "lrp_composite", "resolve_target"]

#: ``"predicted"``: the top class; ``"contrastive"``: the top class against all others.
TargetMode = Literal["class", "predicted", "contrastive"]


@dataclass(frozen=True)
class Boundary:
    """The relevance at the start of a segment: handed to the output of layer ``after``."""

    index: int  # the first layer of the segment
    after: str  # the layer whose output receives it
    relevance: torch.Tensor  # that output's shape, batch of one
    total: float  # its sum (conservation: compare with the output's relevance)


@dataclass(frozen=True)
class Explanation:
    """One explanation: the target, the model output, the input relevance, the boundaries,
    per-layer sums and what went wrong (``first_nonfinite``, ``exploding``)."""

    target: int
    output: torch.Tensor
    relevance: torch.Tensor
    boundaries: list[Boundary] = field(default_factory=list)
    sums: dict[str, float] = field(default_factory=dict)
    output_sum: float = float("nan")
    input_sum: float = float("nan")
    first_nonfinite: str | None = None
    exploding: list[tuple[str, float, float]] = field(default_factory=list)
    # PNGs already drawn, by (what, colour map): a cached result's repeat draws nothing.
    _pngs: dict[tuple[int, str], bytes | None] = field(
        default_factory=dict, repr=False, compare=False
    )

    def warnings(self) -> list[str]:
        """One line per problem: relevance that is not finite, layers that exploded."""
        lines = []
        if self.first_nonfinite is not None:
            lines.append(f"relevance became NaN or infinite at layer {self.first_nonfinite!r}")
        for name, growth, bound in self.exploding:
            lines.append(
                f"layer {name!r} multiplied the relevance by {growth:.3g} (its rule allows "
                f"at most {bound:.3g})"
            )
        return lines

    def heatmap_png(self, cmap: str = "bwr") -> bytes:
        """The input relevance as a palette PNG (channels summed, symmetric scale)."""
        return self._drawn(-1, cmap, self.relevance)

    def boundary_png(self, position: int, cmap: str = "bwr") -> bytes | None:
        """Boundary ``position`` as a palette PNG, or None where it is not a spatial map."""
        return self._drawn(position, cmap, self.boundaries[position].relevance)

    def _drawn(self, what: int, cmap: str, relevance: torch.Tensor) -> bytes | None:
        key = (what, cmap)
        if key not in self._pngs:
            self._pngs[key] = _png(relevance, cmap)
        return self._pngs[key]


def lrp_composite(config: MethodConfig) -> Composite | None:
    """The LRP composite of a configuration (its segments or a named composite), or None
    for a configuration of another attributor."""
    if config.segments:
        return segments((s.start, s.stop, get_rule(s.rule, **s.params)) for s in config.segments)
    if config.method is None or config.method in list_attributors():
        return None
    return get_composite(config.method, **config.params)


class Explainer:
    """Explains inputs of one model; LRP engines are built once per configuration (tracing
    is the expensive part), and results are kept by input, configuration and target (up to
    ``cache_bytes``). Model calls from several threads take turns: an engine's context (its
    canonizers) changes the model while it is entered."""

    def __init__(self, model: torch.nn.Module, *, cache_bytes: int = 512 * 2**20) -> None:
        self.model = model
        self._engines: dict[str, LRP] = {}
        #: Held around every model call: see the class docstring.
        self.lock = threading.RLock()
        self.results: LRUCache[Explanation] = LRUCache(cache_bytes, max_entries=256)
        self.outputs: LRUCache[torch.Tensor] = LRUCache(64 * 2**20, max_entries=1024)

    def scores(
        self, x: torch.Tensor, ticket: Ticket = NEVER, key: str | None = None
    ) -> torch.Tensor:
        """The model's output for ``x`` (a batch), computed once per input; ``key``: the
        input's :func:`input_key`, where the caller has it already."""
        key = input_key(x) if key is None else key
        cached = self.outputs.get(key)
        if cached is not None:
            return cached
        with self.lock, ticket.active(), torch.no_grad():
            output = self.model(x)
        if isinstance(output, torch.Tensor):
            output = self.outputs.put(key, output.detach())
        return output

    def explain(
        self,
        x: torch.Tensor,
        config: MethodConfig | Mapping[str, Any] | str,
        *,
        target: TargetMode = "predicted",
        index: int | None = None,
        ticket: Ticket = NEVER,
        ablate: Mapping[str, Any] | None = None,
    ) -> Explanation:
        """Explain ``x`` (a batch of one) for ``target``: ``"class"`` (give ``index``),
        ``"predicted"`` or ``"contrastive"`` (the predicted class against the others).
        A superseded ``ticket`` stops the work at its next layer (:class:`SupersededError`).
        ``ablate`` (LRP only) maps layer names to channels replaced by 0 in this pass (see
        :meth:`LRP.__call__ <relscope.attribution.lrp.engine.LRP.__call__>`); the target
        is still resolved on the intact model."""
        config = config if isinstance(config, MethodConfig) else method_config(config)
        digest = input_key(x)
        key = (digest, config_key(config), target, index, _ablation_key(ablate))
        cached = self.results.get(key)
        if cached is not None:
            return cached
        ticket.check()
        with self.lock:
            cached = self.results.get(key)  # computed while this call waited
            if cached is not None:
                return cached
            with ticket.active():
                result = self._explain(x, digest, config, target, index, ablate)
        return self.results.put(key, result)

    def _explain(
        self,
        x: torch.Tensor,
        digest: str,
        config: MethodConfig,
        target: str,
        index: int | None,
        ablate: Mapping[str, Any] | None = None,
    ) -> Explanation:
        if x.ndim < 2 or x.shape[0] != 1:
            raise ConfigError(f"explain takes a batch of one input, got shape {tuple(x.shape)}")
        engine = self._engine(config)
        if engine is None and ablate is not None:
            raise ConfigError(f"{config.name}: ablation needs an LRP configuration")
        known = self.outputs.get(digest)
        if engine is None or ablate is not None or known is not None:
            # The class comes from the intact model's output (an ablation must not move it).
            output = self.scores(x, key=digest) if known is None else known
            chosen = resolve_target(output, target, index)
            if engine is None:
                if target == "contrastive":
                    raise ConfigError(
                        f"{config.name}: contrastive targets need an LRP configuration"
                    )
                result = config.attributor()(self.model, x, chosen)
                return Explanation(chosen, result.output.detach(), result.relevance.detach())
            pass_target: Any = chosen
        else:
            # A new input: the class is chosen from the LRP pass's own forward, no extra one.
            pass_target = _Choose(target, index)
        bounds = _boundaries(config, len(engine.layers))
        names = [layer.name for layer in engine.layers]
        record = [names[start - 1] for start in bounds]
        with engine:
            result = engine(
                x, pass_target, contrastive=target == "contrastive", record=record,
                diagnostics=True, ablate=ablate, check_finite=False,
            )  # fmt: skip
        # Relevance that is not finite is reported (first_nonfinite, warnings()), not raised:
        # a design that breaks down is shown with the layer where it did.
        if known is None and ablate is None:
            self.outputs.put(digest, result.output.detach())
        chosen = resolve_target(result.output, target, index)
        report = result.diagnostics
        assert report is not None
        boundaries = [
            Boundary(start, names[start - 1], relevance.detach(), float(relevance.sum()))
            for start, relevance in zip(bounds, (result.layers[n] for n in record), strict=True)
        ]
        return Explanation(
            target=chosen,
            output=result.output.detach(),
            relevance=result.relevance.detach(),
            boundaries=boundaries,
            sums={name: float(value.sum()) for name, value in report.sums.items()},
            output_sum=float(report.output_sum.sum()),
            input_sum=float(report.input_sum.sum()),
            first_nonfinite=report.first_nonfinite,
            exploding=list(report.exploding),
        )

    def _engine(self, config: MethodConfig) -> LRP | None:
        key = config_key(config)  # renamed copies share one engine
        if key not in self._engines:
            composite = lrp_composite(config)
            if composite is None:
                return None
            self._engines[key] = LRP(self.model, composite)
        return self._engines[key]


class _Choose:
    """Output weights that pick the target class from the output they are given."""

    def __init__(self, target: str, index: int | None) -> None:
        self.target, self.index = target, index

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        chosen = torch.tensor([resolve_target(output, self.target, self.index)])
        return output_weights(output, chosen, contrastive=self.target == "contrastive")


def resolve_target(output: torch.Tensor, target: str, index: int | None) -> int:
    """The class explained for ``target`` (see :meth:`Explainer.explain`), or a one-line
    :class:`ConfigError`."""
    classes = output.shape[-1]
    if target == "class":
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < classes:
            raise ConfigError(f"target class must be an integer in 0..{classes - 1}")
        return index
    if target in ("predicted", "contrastive"):
        return int(output.argmax(1))
    raise ConfigError(f"target must be 'class', 'predicted' or 'contrastive', got {target!r}")


def _boundaries(config: MethodConfig, count: int) -> list[int]:
    """The first layer of every segment but the first (0 < start < count)."""
    starts = sorted(
        {s.start for s in config.segments} | {s.stop for s in config.segments if s.stop}
    )
    return [start for start in starts if 0 < start < count]


def _png(relevance: torch.Tensor, cmap: str) -> bytes | None:
    array = relevance.detach().cpu().double().numpy()
    if array.ndim != 4 or not np.isfinite(array).all():
        return None  # a dense layer's relevance has no picture; NaN has no colour
    return heatmap_png(to_map(array)[0], cmap=cmap, mode="symmetric")


def _ablation_key(ablate: Mapping[str, Any] | None) -> tuple | None:
    """What an ablation changes, as a hashable key (channels as given: indices or masks)."""
    if not ablate:
        return None
    return tuple(
        sorted(
            (
                name,
                tuple(torch.as_tensor(channels).shape),
                tuple(torch.as_tensor(channels).flatten().tolist()),
            )
            for name, channels in ablate.items()
        )
    )
