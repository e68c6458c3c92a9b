"""PatternNet and PatternAttribution (Kindermans et al. 2018): explanations from patterns.

A linear neuron ``y = w^T x + b`` does not point at the signal in its input: ``w`` must also
cancel the distractors, so it is a filter, not a signal direction. The *pattern* ``a`` is the
direction of the signal the neuron detects, estimated from data:

* ``estimator="linear"`` (S_a): ``a = cov[x, y] / (w^T cov[x, y])`` over all samples;
* ``estimator="two_component"`` (S_a+-): the same formula over the samples where ``y > 0``
  (``a+``) and where ``y <= 0`` (``a-``), each with its own means; a neuron's output is
  explained with ``a+`` where it is positive and with ``a-`` elsewhere (behind a ReLU only
  ``a+`` matters: the ReLU passes nothing where ``y <= 0``).

``x`` is the neuron's input: the layer input for ``nn.Linear``, the receptive field (patch)
at every output position for ``nn.Conv1d/2d/3d`` (any stride, padding, dilation, groups).
The statistics are float64 sums over all batches of :meth:`PatternNet.fit`, streamed: one
batch is held at a time.

Both methods are one backward pass of relscope's LRP engine with a composite that gives
every fitted layer a pattern rule and every other operation its plain gradient (ReLUs keep
their gradient, max pooling routes to the winner):

* :class:`PatternNet` backpropagates with the patterns in place of the weights, which
  projects the output back to the *signal estimate* in input space;
* :class:`PatternAttribution` backpropagates with ``w * a`` (element-wise), the deep-Taylor
  redistribution with root point ``x - a w^T x``; on one linear layer the input relevance is
  ``w_ij a_ij R_j`` summed over ``j``.

The backward starts from the target logit (``initial="logit"``, as in
:class:`~relscope.attribution.lrp.LRP`), so that PatternNet's signal is in input units
(``a y`` for a single layer) and PatternAttribution's relevance of one layer sums to ``y``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Self

import torch
from torch import nn

from relscope._atomic import atomic_path
from relscope.attribution.attributors import Attributor, register_attributor
from relscope.attribution.core import Attribution, Target, chunks
from relscope.attribution.lrp.composites import DEFAULT_RULES, Composite, Name
from relscope.attribution.lrp.engine import LRP
from relscope.attribution.lrp.functions import pass_through
from relscope.attribution.lrp.layers import LinearOp, linear_op
from relscope.attribution.lrp.rules import Gradient, LinearRule
from relscope.errors import ConfigError, FormatError, PathError

__all__ = ["ESTIMATORS", "PatternAttribution", "PatternNet", "PatternStatistics"]

#: Signal estimators of :meth:`PatternNet.fit`.
ESTIMATORS = ("linear", "two_component")
_FORMAT = "relscope-patterns"
_VERSION = 1
#: Relative variance below which a neuron's output counts as constant (it has no pattern).
_CONSTANT = 1e-10
#: The sums kept per regime, in the order :func:`_pattern` takes them.
_KEYS = ("count", "sum_y", "sum_yy", "sum_x", "sum_xy")


def _supported(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or (
        isinstance(module, nn.modules.conv._ConvNd) and not module.transposed
    )


def _pattern_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Every ``nn.Linear`` / ``nn.Conv1d/2d/3d`` of ``model`` by qualified name."""
    layers = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.conv._ConvTransposeNd):
            raise ConfigError(
                f"layer {name!r} ({type(module).__name__}): transposed convolutions have no "
                "patterns; PatternNet supports Linear and Conv1d/2d/3d layers"
            )
        if _supported(module):
            layers[name] = module
    return layers


def _shape(tensor: torch.Tensor) -> str:
    return "(" + ", ".join(str(n) for n in tensor.shape) + ")"


# ----------------------------------------------------------------------------- statistics
class PatternStatistics:
    """Streaming float64 sums from which the patterns are computed.

    For every fitted layer and output neuron ``j`` (an output channel; for convolutions
    every output position is a sample), :attr:`layers` holds ``count``, ``sum_y``,
    ``sum_yy`` (shape ``(out,)``) and ``sum_x``, ``sum_xy`` (shaped like the weight) over
    all samples (prefix ``all.``) and, for ``two_component``, over the samples with
    ``y_j > 0`` (prefix ``positive.``); the ``y <= 0`` regime is their difference.
    ``x`` is what neuron ``j`` sees (its receptive field), ``y = w_j^T x + b_j``.

    Sums over ``x`` come from the layer's weight gradient: for output gradients ``g`` the
    gradient of ``sum g * layer(x)`` with respect to the weight is ``sum_n g_nj x_n`` for
    every neuron, which covers padding, stride, dilation and groups of any convolution.
    """

    def __init__(self, estimator: str) -> None:
        if estimator not in ESTIMATORS:
            raise ConfigError(
                f"estimator must be one of {', '.join(map(repr, ESTIMATORS))}, got {estimator!r}"
            )
        self.estimator = estimator
        self.layers: dict[str, dict[str, torch.Tensor]] = {}

    @property
    def regimes(self) -> tuple[str, ...]:
        """``("all",)``, plus ``"positive"`` for ``two_component``."""
        return ("all", "positive") if self.estimator == "two_component" else ("all",)

    def add_layer(self, name: str, weight: torch.Tensor) -> None:
        """Start zero sums for a layer with this weight."""
        out = weight.shape[0]
        options = {"dtype": torch.float64, "device": weight.device}
        sums = {}
        for regime in self.regimes:
            for key in _KEYS:
                shape = weight.shape if key in ("sum_x", "sum_xy") else (out,)
                sums[f"{regime}.{key}"] = torch.zeros(shape, **options)
        self.layers[name] = sums

    def update(self, name: str, layer: LinearOp, x: torch.Tensor) -> None:
        """Add one batch of inputs ``x`` of the layer ``name``."""
        sums = self.layers[name]
        weight = layer.weight.detach().to(torch.float64)
        bias = None if layer.bias is None else layer.bias.detach().to(torch.float64)
        x = x.detach().to(torch.float64)
        with torch.enable_grad():
            leaf = weight.clone().requires_grad_(True)
            y = layer.forward(x, leaf, bias)
        # Output channels: the last axis of a dense layer, axis 1 of a batched convolution.
        batched_conv = weight.ndim > 2 and y.ndim == weight.ndim
        axis = -1 if weight.ndim == 2 else (1 if batched_conv else 0)
        values = y.detach()
        masks = {"all": torch.ones_like(values)}
        if "positive" in self.regimes:
            masks["positive"] = (values > 0).to(torch.float64)
        channels = values.movedim(axis, 0).flatten(1)
        for number, (regime, mask) in enumerate(masks.items()):
            last = number == len(masks) - 1
            (sum_x,) = torch.autograd.grad(y, leaf, mask, retain_graph=True)
            (sum_xy,) = torch.autograd.grad(y, leaf, mask * values, retain_graph=not last)
            sums[f"{regime}.sum_x"] += sum_x
            sums[f"{regime}.sum_xy"] += sum_xy
            selected = mask.movedim(axis, 0).flatten(1)
            sums[f"{regime}.count"] += selected.sum(1)
            sums[f"{regime}.sum_y"] += (selected * channels).sum(1)
            sums[f"{regime}.sum_yy"] += (selected * channels * channels).sum(1)

    def patterns(
        self, weights: dict[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Patterns (``a``, or ``a+``) and, for ``two_component``, ``a-``, by layer name."""
        positive, negative = {}, {}
        for name, sums in self.layers.items():
            weight = weights[name].detach().to(device=sums["all.count"].device, dtype=torch.float64)
            if self.estimator == "linear":
                positive[name] = _pattern(weight, *(sums[f"all.{k}"] for k in _KEYS)).cpu()
                continue
            pos = [sums[f"positive.{k}"] for k in _KEYS]
            neg = [sums[f"all.{k}"] - p for k, p in zip(_KEYS, pos, strict=True)]
            positive[name] = _pattern(weight, *pos).cpu()
            negative[name] = _pattern(weight, *neg).cpu()
        return positive, negative


def _pattern(
    weight: torch.Tensor,
    count: torch.Tensor,
    sum_y: torch.Tensor,
    sum_yy: torch.Tensor,
    sum_x: torch.Tensor,
    sum_xy: torch.Tensor,
) -> torch.Tensor:
    """``a = cov[x, y] / (w^T cov[x, y])`` per neuron; zero where ``y`` never varied."""
    shape = (-1,) + (1,) * (weight.ndim - 1)
    n = count.clamp(min=1)
    mean_y = sum_y / n
    cov = sum_xy / n.reshape(shape) - (sum_x / n.reshape(shape)) * mean_y.reshape(shape)
    denominator = (weight * cov).flatten(1).sum(1)
    # w^T cov[x, y] is var[y]; a neuron whose output is constant (dead, or silent in a
    # regime) has no signal direction, and its quotient would only amplify rounding.
    variance = sum_yy / n - mean_y * mean_y
    valid = (count > 1) & (variance > _CONSTANT * (sum_yy / n)) & (denominator > 0)
    scale = torch.where(valid, 1.0 / torch.where(valid, denominator, 1.0), 0.0)
    return cov * scale.reshape(shape)


# --------------------------------------------------------------------------------- rule
class _PatternRule(LinearRule):
    """Value of the layer; backward with the pattern (``times_weight``: with ``w * a``).

    With a negative-regime pattern, each output element uses ``a+`` where the layer's output
    is positive and ``a-`` elsewhere. Local to this module: not in the rule registry,
    because it only means something with patterns fitted for one particular layer.
    """

    def __init__(
        self,
        positive: torch.Tensor,
        negative: torch.Tensor | None = None,
        *,
        times_weight: bool = False,
    ) -> None:
        super().__init__()
        self.times_weight = times_weight
        self._patterns = {"positive": positive, "negative": negative}
        self._converted: dict[tuple[str, torch.dtype, torch.device], torch.Tensor] = {}

    def _weight(self, layer: LinearOp, regime: str) -> torch.Tensor:
        weight = layer.weight
        key = (regime, weight.dtype, weight.device)
        pattern = self._converted.get(key)
        if pattern is None:  # convert once per dtype and device, not once per call
            pattern = self._patterns[regime].to(dtype=weight.dtype, device=weight.device)
            self._converted[key] = pattern
        # w * a from the current weights: the patterns are fixed, the weights are the model's.
        return weight * pattern if self.times_weight else pattern

    def propagate(self, layer: LinearOp, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            value = layer.forward(x, layer.weight, layer.bias)
        proxy = layer.forward(x, self._weight(layer, "positive"), None)
        if self._patterns["negative"] is not None:
            active = (value > 0).to(value.dtype)
            negative = layer.forward(x, self._weight(layer, "negative"), None)
            proxy = proxy * active + negative * (1 - active)
        # The layer's true output, whose gradient reaches x as the proxy's gradient:
        # the transposed layer applied with the substituted weights.
        return pass_through(proxy, value)


# --------------------------------------------------------------------------- attributors
class _Patterns(Attributor):
    """Shared by PatternNet and PatternAttribution: fitting, files, the backward pass."""

    _times_weight: ClassVar[bool] = False

    def __init__(self, *, initial: str = "logit") -> None:
        if initial not in ("logit", "one"):
            raise ConfigError(f"initial must be 'logit' or 'one', got {initial!r}")
        self.initial = initial
        self.estimator: str | None = None
        self._statistics: PatternStatistics | None = None
        self._patterns: dict[str, torch.Tensor] = {}
        self._negative: dict[str, torch.Tensor] = {}
        self._engine: tuple[nn.Module, LRP] | None = None

    # ------------------------------------------------------------------------ accessors
    @property
    def patterns(self) -> dict[str, torch.Tensor]:
        """The fitted patterns (``a``, or ``a+`` for ``two_component``) by layer name."""
        return dict(self._patterns)

    @property
    def negative_patterns(self) -> dict[str, torch.Tensor]:
        """``a-`` by layer name (``two_component`` only; empty for ``linear``)."""
        return dict(self._negative)

    @property
    def statistics(self) -> PatternStatistics | None:
        """The sums of the last :meth:`fit` (``None`` after :meth:`load`)."""
        return self._statistics

    def params(self) -> dict[str, Any]:
        return {"initial": self.initial, "estimator": self.estimator}

    # ------------------------------------------------------------------------- fitting
    def fit(
        self,
        model: nn.Module,
        data: Iterable[Any] | torch.Tensor,
        *,
        estimator: str = "linear",
        batch_size: int | None = None,
    ) -> Self:
        """Estimate the patterns of every Linear / Conv1d/2d/3d layer of ``model``.

        Parameters
        ----------
        model:
            The model to explain later; it runs forward only (put it in ``eval()`` mode
            first, so that dropout and batch norm behave as when explaining).
        data:
            An iterable of input batches or of ``(inputs, labels, ...)`` tuples (a
            ``DataLoader``), or one tensor of inputs. Batches are moved to the model's
            device and floating point type; only one is held at a time.
        estimator:
            ``"linear"`` (S_a) or ``"two_component"`` (S_a+-, for ReLU networks).
        batch_size:
            Split every batch (or the tensor) into pieces of at most this many samples,
            bounding the memory of the statistics' intermediate values.

        Returns
        -------
        The attributor itself, fitted (earlier patterns are replaced).
        """
        statistics = PatternStatistics(estimator)
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise ConfigError(f"batch_size must be a positive integer or None, got {batch_size!r}")
        layers = _pattern_layers(model)
        if not layers:
            raise ConfigError("the model has no Linear or Conv1d/2d/3d layer to fit patterns for")
        handles = []
        for name, module in layers.items():
            statistics.add_layer(name, module.weight)
            handles.append(
                module.register_forward_hook(
                    _collector(statistics, name, linear_op(module)), with_kwargs=True
                )
            )
        parameter = next(model.parameters(), None)
        seen = 0
        try:
            with torch.no_grad():
                for batch in _batches(data, batch_size):
                    if parameter is not None:
                        batch = batch.to(device=parameter.device, dtype=parameter.dtype)
                    model(batch)
                    seen += batch.shape[0]
        finally:
            for handle in handles:
                handle.remove()
        if not seen:
            raise ConfigError("fit data yielded no samples")
        weights = {name: module.weight for name, module in layers.items()}
        self._patterns, self._negative = statistics.patterns(weights)
        self.estimator = estimator
        self._statistics = statistics
        self._engine = None
        return self

    # --------------------------------------------------------------------------- files
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the patterns to ``path`` (``torch.save`` of tensors; atomic replace)."""
        self._require_fitted()
        payload = {
            "format": _FORMAT,
            "version": _VERSION,
            "estimator": self.estimator,
            "patterns": {k: v.detach().cpu().contiguous() for k, v in self._patterns.items()},
            "negative_patterns": {
                k: v.detach().cpu().contiguous() for k, v in self._negative.items()
            },
        }
        path = Path(path)
        if not path.parent.is_dir():
            raise PathError(f"{path}: the folder {path.parent} does not exist")
        with atomic_path(path) as temporary:
            torch.save(payload, temporary)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        model: nn.Module | None = None,
        **params: Any,
    ) -> Self:
        """An attributor with the patterns saved in ``path`` (safe loading, tensors only).

        With ``model``, the patterns are checked against its layers (also done on every
        first call with a model). Files saved by PatternNet and PatternAttribution are the
        same, so either class loads either.
        """
        path = Path(path)
        if not path.is_file():
            raise PathError(f"{path}: no such patterns file")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises many types for files it cannot read
            found = " ".join(str(error).split())[:160]
            raise FormatError(path, "/", "a patterns file written by save()", found) from None
        attributor = cls(**params)
        attributor._patterns, attributor._negative, attributor.estimator = _parse(path, payload)
        if model is not None:
            attributor.check(model)
        return attributor

    def check(self, model: nn.Module) -> None:
        """Raise a one-line :class:`ConfigError` unless the patterns fit ``model``'s layers."""
        self._require_fitted()
        layers = _pattern_layers(model)
        for name, pattern in self._patterns.items():
            module = layers.get(name)
            if module is None:
                shown = ", ".join(list(layers)[:8]) + (" ..." if len(layers) > 8 else "")
                raise ConfigError(
                    f"the patterns do not match the model: it has no Linear/Conv layer {name!r} "
                    f"(its layers: {shown or 'none'})"
                )
            if module.weight.shape != pattern.shape:
                raise ConfigError(
                    f"the patterns do not match the model: layer {name!r} has weights of shape "
                    f"{_shape(module.weight)}, its pattern {_shape(pattern)}"
                )
        missing = [name for name in layers if name not in self._patterns]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise ConfigError(
                f"the patterns do not match the model: no pattern for layer {missing[0]!r}{more}"
            )

    def _require_fitted(self) -> None:
        if not self._patterns:
            raise ConfigError(
                f"{type(self).__name__} has no patterns yet: call fit(model, data) or load(path)"
            )

    # ------------------------------------------------------------------------- running
    def attribute(self, model: nn.Module, inputs: torch.Tensor, target: Target) -> Attribution:
        lrp = self._lrp_for(model)
        with lrp:
            return lrp(inputs, target, initial=self.initial)

    def composite(self, prefix: str = "") -> Composite:
        """The composite of the method: pattern rules by layer name, gradients elsewhere.

        ``prefix`` is put in front of every layer name (for a model wrapped in another).
        """
        self._require_fitted()
        mapping = [
            (
                Name(_join(prefix, name)),
                _PatternRule(pattern, self._negative.get(name), times_weight=self._times_weight),
            )
            for name, pattern in self._patterns.items()
        ]
        return Composite(
            mapping,
            canonizers=[],  # batch norm keeps its own gradient; patterns describe the raw layer
            defaults=dict.fromkeys(DEFAULT_RULES, Gradient),
            name=self.name,
        )

    def _lrp_for(self, model: nn.Module) -> LRP:
        # Tracing and rewriting happen once per model (and again after fit or load).
        if self._engine is None or self._engine[0] is not model:
            self.check(model)
            if _supported(model):
                # A bare layer traces as a functional call; as a child it keeps a name.
                lrp = LRP(nn.Sequential(model), self.composite(prefix="0"))
            else:
                lrp = LRP(model, self.composite())
            for layer, rule in lrp.rules():
                if layer.kind in ("dense", "convolution") and not isinstance(rule, _PatternRule):
                    raise ConfigError(
                        f"layer {layer.name} ({layer.type}) has no pattern: only Linear and "
                        "Conv1d/2d/3d modules are fitted, not functional or transposed layers"
                    )
            self._engine = (model, lrp)
        return self._engine[1]


def _join(prefix: str, name: str) -> str:
    return ".".join(part for part in (prefix, name) if part)


@register_attributor("patternnet")
class PatternNet(_Patterns):
    """PatternNet: the signal estimate, backpropagated with the patterns as weights.

    Parameters
    ----------
    initial:
        Start the backward pass from the target logit (``"logit"``: the signal has input
        units) or from 1 (``"one"``). Output weights given as ``target`` are used as given.

    Examples
    --------
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> data = [torch.randn(16, 4) for _ in range(4)]
    >>> patternnet = PatternNet().fit(model, data, estimator="two_component")
    >>> output, signal = patternnet(model, torch.randn(2, 4), target=1)
    >>> tuple(signal.shape)
    (2, 4)
    """


@register_attributor("pattern_attribution")
class PatternAttribution(_Patterns):
    """PatternAttribution: relevance backpropagated with ``w * a`` (element-wise).

    Parameters
    ----------
    initial:
        Start the backward pass from the target logit (``"logit"``, as LRP does) or from 1
        (``"one"``). Output weights given as ``target`` are used as given.
    """

    _times_weight = True


# ------------------------------------------------------------------------------ helpers
def _collector(statistics: PatternStatistics, name: str, layer: LinearOp):
    def hook(_module: nn.Module, args: tuple, kwargs: dict, _output: Any) -> None:
        x = args[0] if args else kwargs.get("input")
        if isinstance(x, torch.Tensor):
            statistics.update(name, layer, x)

    return hook


def _batches(data: Iterable[Any] | torch.Tensor, batch_size: int | None) -> Iterator[torch.Tensor]:
    if isinstance(data, torch.Tensor):
        data = [data]
    try:
        items = iter(data)
    except TypeError:
        raise ConfigError(
            f"fit data must be an iterable of batches or a tensor, got {type(data).__name__}"
        ) from None
    for number, item in enumerate(items):
        if isinstance(item, tuple | list) and item:
            item = item[0]
        if not isinstance(item, torch.Tensor) or not item.is_floating_point() or item.ndim < 2:
            found = (
                f"a {item.dtype} tensor of shape {_shape(item)}"
                if isinstance(item, torch.Tensor)
                else type(item).__name__
            )
            raise ConfigError(
                f"fit data: batch {number} must be a floating point (batch, ...) tensor or an "
                f"(inputs, labels) tuple, got {found}"
            )
        if item.shape[0]:
            for piece in chunks(item.shape[0], batch_size or 0):
                yield item[piece]


def _parse(
    path: Path, payload: Any
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], str]:
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise FormatError(path, "/", f"a dictionary with format {_FORMAT!r}")
    if payload.get("version") != _VERSION:
        raise FormatError(path, "version", str(_VERSION), repr(payload.get("version")))
    estimator = payload.get("estimator")
    if estimator not in ESTIMATORS:
        raise FormatError(path, "estimator", " or ".join(ESTIMATORS), repr(estimator))
    tables = []
    for key in ("patterns", "negative_patterns"):
        table = payload.get(key)
        if not isinstance(table, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) and v.is_floating_point()
            for k, v in table.items()
        ):
            raise FormatError(path, key, "a dictionary of layer names to floating point tensors")
        tables.append(dict(table))
    patterns, negative = tables
    if not patterns:
        raise FormatError(path, "patterns", "at least one layer")
    wanted = set(patterns) if estimator == "two_component" else set()
    if set(negative) != wanted or any(negative[k].shape != patterns[k].shape for k in negative):
        raise FormatError(
            path, "negative_patterns", f"one tensor per pattern for the {estimator} estimator"
        )
    return patterns, negative, estimator
