"""Composites: ordered (selector -> rule) mappings from a model's layers to rules.

The first matching selector wins; user overrides go in front (:meth:`Composite.prepend`).
Layers no selector matches get the default rule of their kind (activations: pass; max
pooling: winner takes all; average pooling, sums, unmerged batch norm: norm; products:
uniform split; reshapes, concatenation, indexing: exact bookkeeping). A named composite is
one factory function plus one registration line (``@register_composite("name")``).

Every named LRP composite takes ``maxpool``: ``"winner_takes_all"`` (the default, the
pooling's gradient) or ``"average"`` (explained as average pooling over the same windows,
:class:`~relscope.attribution.lrp.max_as_average.MaxAsAverage`). Any composite gets the same
with the override ``composite.prepend(("maxpool", "max_as_average"))``.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from relscope.attribution.lrp.canonizers import Canonizer, MergeBatchNorm
from relscope.attribution.lrp.graph import Layer
from relscope.attribution.lrp.layers import KIND_GROUPS
from relscope.attribution.lrp.max_as_average import MaxAsAverage
from relscope.attribution.lrp.rules import (
    AlphaBeta,
    Epsilon,
    Flat,
    Gamma,
    Gradient,
    Norm,
    Pass,
    ReLUDeconvNet,
    ReLUGuidedBackprop,
    Rule,
    UniformSplit,
    WinnerTakesAll,
    ZBox,
    ZPlus,
    get_rule,
)
from relscope.attribution.lrp.transformer_rules import Bilinear, Constant, LayerNorm, Scale, Softmax
from relscope.errors import ConfigError
from relscope.registry import Registry

__all__ = [
    "COMPOSITES",
    "DEFAULT_RULES",
    "MAXPOOL_OPTIONS",
    "Composite",
    "First",
    "Index",
    "Kind",
    "Last",
    "Name",
    "Predicate",
    "attnlrp",
    "cp_lrp",
    "get_composite",
    "list_composites",
    "register_composite",
    "segments",
]


# ----------------------------------------------------------------------------- selectors
class Selector:
    """Decides whether a rule applies to a layer (given all layers, for positions)."""

    def __call__(self, layer: Layer, layers: Sequence[Layer]) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class Kind(Selector):
    """Layers of a type group: linear, dense, convolution, activation, pooling, sum, ..."""

    group: str

    def __post_init__(self) -> None:
        if self.group not in KIND_GROUPS:
            raise ConfigError(
                f"unknown layer group {self.group!r}; groups: {', '.join(KIND_GROUPS)}"
            )

    def __call__(self, layer: Layer, layers: Sequence[Layer]) -> bool:
        return layer.kind in KIND_GROUPS[self.group]


@dataclass(frozen=True)
class Name(Selector):
    """Layers whose qualified name matches a glob pattern (``features.*``).

    Every call of a reused module matches its name (``conv`` selects ``conv@2`` too).
    """

    pattern: str

    def __call__(self, layer: Layer, layers: Sequence[Layer]) -> bool:
        base = layer.name.split("@", 1)[0]
        return fnmatch.fnmatchcase(layer.name, self.pattern) or fnmatch.fnmatchcase(
            base, self.pattern
        )


@dataclass(frozen=True)
class First(Selector):
    """The first layer of a group in execution order (default: the first linear layer)."""

    group: str = "linear"

    def __call__(self, layer: Layer, layers: Sequence[Layer]) -> bool:
        members = KIND_GROUPS[self.group]
        return next((l for l in layers if l.kind in members), None) == layer  # noqa: E741


@dataclass(frozen=True)
class Last(Selector):
    """The last layer of a group in execution order (default: the last linear layer)."""

    group: str = "linear"

    def __call__(self, layer: Layer, layers: Sequence[Layer]) -> bool:
        members = KIND_GROUPS[self.group]
        return next((l for l in reversed(layers) if l.kind in members), None) == layer  # noqa: E741


@dataclass(frozen=True)
class Index(Selector):
    """Layers with ``start <= index < stop`` in execution order (the designer's segments)."""

    start: int
    stop: int | None = None

    def __call__(self, layer: Layer, layers: Sequence[Layer]) -> bool:
        return layer.index >= self.start and (self.stop is None or layer.index < self.stop)


@dataclass(frozen=True)
class Predicate(Selector):
    """Any function ``(layer, layers) -> bool``."""

    function: Callable[[Layer, Sequence[Layer]], bool]

    def __call__(self, layer: Layer, layers: Sequence[Layer]) -> bool:
        return bool(self.function(layer, layers))


def _selector(value: Selector | str | Callable) -> Selector:
    if isinstance(value, Selector):
        return value
    if isinstance(value, str):
        return Kind(value) if value in KIND_GROUPS else Name(value)
    if callable(value):
        return Predicate(value)
    raise ConfigError(f"not a selector: {value!r}")


#: Rules of layers no selector matched, by kind.
DEFAULT_RULES: dict[str, Callable[[], Rule]] = {
    "dense": Epsilon,
    "convolution": Epsilon,
    "activation": Pass,
    "maxpool": WinnerTakesAll,
    "avgpool": Norm,
    "batchnorm": Norm,
    "sum": Norm,
    "scale": Norm,
    "product": UniformSplit,
    "reshape": Gradient,
    "normalization": LayerNorm,
    "softmax": Softmax,
    "matmul": Bilinear,
    "attention": Gradient,
    "other": Norm,
}


class Composite:
    """An ordered list of (selector, rule) plus canonizers.

    Parameters
    ----------
    mapping:
        ``(selector, rule)`` pairs; a selector is a :class:`Selector`, a group name
        (``"convolution"``), a name glob (``"features.*"``) or a predicate. The rule is a
        :class:`Rule` (copied per layer) or a registered rule name.
    canonizers:
        Applied before rules are assigned (default: batch norm merging).
    name:
        Name for display and configuration export.
    """

    def __init__(
        self,
        mapping: Iterable[tuple[Selector | str | Callable, Rule | str]] = (),
        *,
        canonizers: Sequence[Canonizer] | None = None,
        defaults: dict[str, Callable[[], Rule]] | None = None,
        name: str = "custom",
        params: dict[str, Any] | None = None,
    ) -> None:
        self.mapping = [
            (_selector(s), get_rule(r) if isinstance(r, str) else r) for s, r in mapping
        ]
        for _, rule in self.mapping:
            if not isinstance(rule, Rule):
                raise ConfigError(f"composite {name!r}: {rule!r} is not a rule")
        self.canonizers = list(canonizers) if canonizers is not None else [MergeBatchNorm()]
        self.defaults = {**DEFAULT_RULES, **(defaults or {})}
        self.name = name
        self.params = dict(params or {})

    def prepend(self, *mapping: tuple[Selector | str | Callable, Rule | str]) -> Composite:
        """A new composite with ``mapping`` in front (user overrides win)."""
        out = Composite(mapping, canonizers=self.canonizers, defaults=self.defaults)
        out.mapping += self.mapping
        out.name, out.params = self.name, self.params
        return out

    def rule_for(self, layer: Layer, layers: Sequence[Layer]) -> Rule:
        """A fresh rule instance for ``layer``."""
        for selector, rule in self.mapping:
            if selector(layer, layers) and (rule.kinds is None or layer.kind in rule.kinds):
                return rule.copy()
        return self.defaults.get(layer.kind, Norm)()

    def context(self, model: torch.nn.Module, **options: Any):
        """``with composite.context(model) as lrp: output, relevance = lrp(x, target)``."""
        from relscope.attribution.lrp.engine import LRP

        return LRP(model, self, **options)

    def __repr__(self) -> str:
        return f"Composite({self.name!r}, {len(self.mapping)} rules)"


# ------------------------------------------------------------------------------ registry
#: The composite extension point: name -> composite factory.
COMPOSITES: Registry[Callable[..., Composite]] = Registry("composite", module=__name__)


def register_composite(name: str) -> Callable[[Callable[..., Composite]], Callable[..., Composite]]:
    """Decorator for a composite factory: ``get_composite(name, **params)`` calls it."""

    def decorate(factory: Callable[..., Composite]) -> Callable[..., Composite]:
        def build(**params: Any) -> Composite:
            composite = factory(**params)
            composite.name, composite.params = name, params
            return composite

        # The factory's signature and annotations stay visible (inspect.signature,
        # typing.get_type_hints): configuration errors name a parameter's expected type.
        functools.update_wrapper(build, factory)
        return COMPOSITES.register(name, build)

    return decorate


def list_composites() -> list[str]:
    """Names of all registered composites."""
    return COMPOSITES.names()


def get_composite(name: str, **params: Any) -> Composite:
    """Build the registered composite ``name``."""
    return COMPOSITES.build(name, **params)


#: Values of the ``maxpool`` parameter of the named LRP composites.
MAXPOOL_OPTIONS = ("winner_takes_all", "average")
MaxPool = Literal["winner_takes_all", "average"]


def _maxpool(option: str, eps: float | None = None) -> dict[str, Callable[[], Rule]]:
    """Default rules for the ``maxpool`` option (``eps``: the average version's stabilizer)."""
    if option == "winner_takes_all":
        return {}
    if option == "average":
        rule = MaxAsAverage if eps is None else functools.partial(MaxAsAverage, eps)
        return {"maxpool": rule}
    raise ConfigError(f"maxpool must be one of {', '.join(MAXPOOL_OPTIONS)}, got {option!r}")


@register_composite("epsilon_gamma_box")
def epsilon_gamma_box(
    low: float | torch.Tensor = -3.0,
    high: float | torch.Tensor = 3.0,
    eps: float = 1e-6,
    gamma: float = 0.25,
    maxpool: MaxPool = "winner_takes_all",
) -> Composite:
    """z^B on the first layer, gamma on convolutions, epsilon on dense layers."""
    return Composite(
        [(First(), ZBox(low, high)), ("convolution", Gamma(gamma)), ("dense", Epsilon(eps))],
        defaults=_maxpool(maxpool),
    )


@register_composite("epsilon_plus")
def epsilon_plus(eps: float = 1e-6, maxpool: MaxPool = "winner_takes_all") -> Composite:
    """z+ on convolutions, epsilon on dense layers."""
    return Composite(
        [("convolution", ZPlus()), ("dense", Epsilon(eps))], defaults=_maxpool(maxpool)
    )


@register_composite("epsilon_plus_flat")
def epsilon_plus_flat(eps: float = 1e-6, maxpool: MaxPool = "winner_takes_all") -> Composite:
    """flat on the first layer, z+ on convolutions, epsilon on dense layers."""
    return Composite(
        [(First(), Flat()), ("convolution", ZPlus()), ("dense", Epsilon(eps))],
        defaults=_maxpool(maxpool),
    )


@register_composite("epsilon_alpha2_beta1")
def epsilon_alpha2_beta1(eps: float = 1e-6, maxpool: MaxPool = "winner_takes_all") -> Composite:
    """alpha2-beta1 on convolutions, epsilon on dense layers."""
    return Composite(
        [("convolution", AlphaBeta(2, 1)), ("dense", Epsilon(eps))], defaults=_maxpool(maxpool)
    )


@register_composite("epsilon_alpha2_beta1_flat")
def epsilon_alpha2_beta1_flat(
    eps: float = 1e-6, maxpool: MaxPool = "winner_takes_all"
) -> Composite:
    """flat on the first layer, alpha2-beta1 on convolutions, epsilon on dense layers."""
    return Composite(
        [(First(), Flat()), ("convolution", AlphaBeta(2, 1)), ("dense", Epsilon(eps))],
        defaults=_maxpool(maxpool),
    )


@register_composite("lrp0")
def lrp0(maxpool: MaxPool = "winner_takes_all") -> Composite:
    """LRP-0 (no stabilizer) on every linear layer, sum and pooling."""
    unstabilized = {kind: _unstabilized_norm for kind in ("avgpool", "sum", "scale", "batchnorm")}
    return Composite(
        [("linear", Epsilon(0.0))], defaults={**unstabilized, **_maxpool(maxpool, eps=0.0)}
    )


def _unstabilized_norm() -> Rule:
    return Norm(0.0)


@register_composite("epsilon")
def epsilon(eps: float = 1e-6, maxpool: MaxPool = "winner_takes_all") -> Composite:
    """epsilon on every linear layer."""
    return Composite([("linear", Epsilon(eps))], defaults=_maxpool(maxpool))


def _gradient_composite(activation: Rule) -> Composite:
    # Gradient methods: the plain gradient everywhere except the modified ReLU backward.
    return Composite(
        [("activation", activation)],
        canonizers=[],
        defaults=dict.fromkeys(DEFAULT_RULES, Gradient),
    )


@register_composite("guided_backprop")
def guided_backprop() -> Composite:
    """Guided backpropagation: gradients, ReLU passing positive gradients of active units."""
    return _gradient_composite(ReLUGuidedBackprop())


@register_composite("deconvnet")
def deconvnet() -> Composite:
    """DeconvNet: gradients, ReLU passing positive gradients."""
    return _gradient_composite(ReLUDeconvNet())


@register_composite("excitation_backprop")
def excitation_backprop(maxpool: MaxPool = "winner_takes_all") -> Composite:
    """Excitation backprop: z+ without bias on every linear layer, norm on pooling/sums."""
    return Composite([("linear", ZPlus(zero_params=("bias",)))], defaults=_maxpool(maxpool))


@register_composite("gradient")
def gradient() -> Composite:
    """The plain gradient (no canonizers, gradient rules everywhere)."""
    return Composite([], canonizers=[], defaults=dict.fromkeys(DEFAULT_RULES, Gradient))


def _transformer(
    name: str, eps: float, gamma: float | None, softmax: Rule, maxpool: str
) -> Composite:
    if gamma is None:
        linear: list = [("linear", Epsilon(eps))]
    else:
        # The published setting for vision transformers: gamma on the linear layers inside
        # the network, epsilon on the classifier (the last linear layer).
        linear = [(Last(), Epsilon(eps)), ("linear", Gamma(gamma, eps))]
    defaults = {
        "normalization": functools.partial(LayerNorm, eps),
        "matmul": functools.partial(Bilinear, eps),
        "scale": functools.partial(Scale, eps),
        "sum": functools.partial(Norm, eps),
        "avgpool": functools.partial(Norm, eps),
        **_maxpool(maxpool),
    }
    return Composite([*linear, ("softmax", softmax)], defaults=defaults, name=name)


@register_composite("attnlrp")
def attnlrp(
    eps: float = 1e-6, gamma: float | None = None, maxpool: MaxPool = "winner_takes_all"
) -> Composite:
    """AttnLRP (Achtibat et al., ICML 2024): epsilon on linear layers (gamma with
    ``gamma=``, the classifier keeping epsilon), the softmax rule, matrix products by
    epsilon and the uniform split, LayerNorm with its normalizer held constant."""
    return _transformer("attnlrp", eps, gamma, Softmax(), maxpool)


@register_composite("cp_lrp")
def cp_lrp(
    eps: float = 1e-6, gamma: float | None = None, maxpool: MaxPool = "winner_takes_all"
) -> Composite:
    """CP-LRP (Ali et al., ICML 2022): AttnLRP's rules, but the attention weights are
    constants, so no relevance flows through queries and keys; conservative on bias-free
    transformers."""
    return _transformer("cp_lrp", eps, gamma, Constant(), maxpool)


def segments(
    specification: Iterable[tuple[int, int | None, Rule | str | dict[str, Any]]],
    *,
    canonizers: Sequence[Canonizer] | None = None,
) -> Composite:
    """The designer's composite: one rule per index range ``[start, stop)`` of the layers.

    A rule is a :class:`Rule`, a registered name, or ``{"rule": name, **params}``.
    """
    mapping = []
    for start, stop, rule in specification:
        if isinstance(rule, dict):
            params = dict(rule)
            rule = get_rule(params.pop("rule"), **params)
        mapping.append((Index(start, stop), rule))
    return Composite(mapping, canonizers=canonizers, name="segments")
