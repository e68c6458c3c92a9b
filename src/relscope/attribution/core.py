"""What every attribution method and every evaluation shares: the result type, targets,
replacement values ("fills"), random generators and the checks of inputs and outputs.

>>> import torch
>>> scores = torch.tensor([[1.0, 3.0], [2.0, 0.5]])
>>> target_indices(None, scores), target_indices(0, scores)
(tensor([1, 0]), tensor([0, 0]))
>>> output_weights(scores, None)
tensor([[0., 3.],
        [2., 0.]])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, Literal

import torch
from torch import nn

from relscope.errors import ConfigError

__all__ = [
    "FILL_STRATEGIES",
    "Attribution",
    "Diagnostics",
    "Fill",
    "Seed",
    "Target",
    "broadcast_to_inputs",
    "check_fill",
    "check_inputs",
    "check_seed",
    "chunks",
    "class_scores",
    "fill_values",
    "forward",
    "forward_hook",
    "generator_device",
    "generator_for",
    "output_weights",
    "target_indices",
    "target_weights",
]

#: A class index per sample (or one for all), ``None`` for the predicted class, output
#: weights ``(batch, classes)``, or a function of the output returning such weights.
Target = int | Sequence[int] | torch.Tensor | Callable[[torch.Tensor], torch.Tensor] | None

#: What replaces removed input: a strategy name, a constant, a tensor broadcastable to the
#: inputs, or ``fill(inputs, generator)`` returning a tensor shaped like the inputs.
Fill = (
    Literal["zeros", "mean", "uniform", "normal"]
    | float
    | torch.Tensor
    | Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]
)
#: The fill strategies by name; "uniform" and "normal" draw random values.
FILL_STRATEGIES = ("zeros", "mean", "uniform", "normal")

Seed = torch.Generator | int | None


@dataclass
class Diagnostics:
    """LRP's per-layer relevance sums (per sample, in execution order) and the first bad layer."""

    sums: dict[str, torch.Tensor]
    first_nonfinite: str | None
    input_sum: torch.Tensor
    output_sum: torch.Tensor
    #: Per layer: ``(2, batch)``, the absolute and the signed relevance handed to the
    #: layer's inputs, each divided by the absolute relevance it received.
    growth: dict[str, torch.Tensor] = field(default_factory=dict)
    #: Layers whose absolute growth exceeds their rule's bound (:meth:`Rule.growth_bound`),
    #: in the order backward reaches them, with growth and bound.
    exploding: list[tuple[str, float, float]] = field(default_factory=list)


@dataclass
class Attribution:
    """Result of one call; unpacks as ``output, relevance``."""

    output: torch.Tensor
    relevance: torch.Tensor
    layers: dict[str, torch.Tensor] = field(default_factory=dict)
    diagnostics: Diagnostics | None = None
    #: Forward outputs of the layers asked for (LRP's ``keep=``), detached.
    activations: dict[str, torch.Tensor] = field(default_factory=dict)

    def __iter__(self):
        return iter((self.output, self.relevance))


# ------------------------------------------------------------------- inputs and outputs
def check_inputs(inputs: Any) -> torch.Tensor:
    """The inputs as a floating point batch, or a one-line error."""
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
        raise ConfigError("inputs must be a floating point tensor")
    if inputs.ndim < 2:
        raise ConfigError(f"inputs must be a batch (batch, ...), got shape {tuple(inputs.shape)}")
    return inputs


def class_scores(output: Any) -> torch.Tensor:
    """``output`` if it is one ``(batch, classes)`` tensor, else a one-line error."""
    if not isinstance(output, torch.Tensor) or output.ndim != 2:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ConfigError(
            f"the model must return one (batch, classes) tensor of class scores, got {shape}"
        )
    return output


def forward(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The model's output for ``inputs`` without a graph, checked to be ``(batch, classes)``."""
    with torch.no_grad():
        return class_scores(model(inputs))


@contextmanager
def forward_hook(module: nn.Module, hook: Callable[..., Any]) -> Iterator[None]:
    """``hook`` on ``module``'s forward output for the ``with`` block, removed however it ends."""
    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def broadcast_to_inputs(value: torch.Tensor, inputs: torch.Tensor, what: str) -> torch.Tensor:
    """``value`` expanded to the inputs' shape (a view), or a one-line error naming ``what``."""
    try:
        shape = torch.broadcast_shapes(value.shape, inputs.shape)
    except RuntimeError:
        shape = None
    if shape != inputs.shape:
        raise ConfigError(
            f"{what} of shape {tuple(value.shape)} does not broadcast to the inputs' "
            f"shape {tuple(inputs.shape)}"
        )
    return value.expand_as(inputs)


def chunks(total: int, size: int) -> list[slice]:
    """Slices covering ``range(total)`` in pieces of at most ``size`` (all of it if 0)."""
    if size < 0:
        raise ConfigError(f"batch_size must be >= 0, got {size}")
    size = size or total
    return [slice(start, min(start + size, total)) for start in range(0, total, size)]


# ----------------------------------------------------------------------------- targets
def target_indices(target: Any, output: torch.Tensor) -> torch.Tensor:
    """Class indices ``(batch,)`` on ``output``'s device; ``None`` gives the predicted class."""
    batch, classes = class_scores(output).shape
    if target is None:
        return output.detach().argmax(dim=1)
    if isinstance(target, bool):
        raise ConfigError("target must be a class index, a sequence of them or None")
    if isinstance(target, int):
        index = torch.full((batch,), target, device=output.device)
    else:
        try:
            index = torch.as_tensor(target, device=output.device)
        except (TypeError, ValueError, RuntimeError):
            raise ConfigError("target must be a class index, a sequence of them or None") from None
        if index.is_floating_point() or index.dtype == torch.bool or index.is_complex():
            raise ConfigError("target must hold integer class indices")
        index = index.reshape(-1).long()
        if index.numel() == 1:
            index = index.expand(batch)
        if index.shape != (batch,):
            raise ConfigError(f"target must hold {batch} class indices, got {index.numel()}")
    if ((index < 0) | (index >= classes)).any():
        raise ConfigError(f"target class out of range 0..{classes - 1}")
    return index.long()


def output_weights(
    output: torch.Tensor, target: Target, *, initial: str = "logit", contrastive: bool = False
) -> torch.Tensor:
    """The relevance put on the model output (the gradient of the backward pass)."""
    class_scores(output)
    if callable(target) and not isinstance(target, torch.Tensor):
        weights = target(output.detach())
        if not isinstance(weights, torch.Tensor) or weights.shape != output.shape:
            raise ConfigError(f"the output weighting must return a {tuple(output.shape)} tensor")
        return weights.to(output.dtype)
    if isinstance(target, torch.Tensor) and target.is_floating_point():
        if target.shape != output.shape:
            raise ConfigError(
                f"output weights must have shape {tuple(output.shape)}, got {tuple(target.shape)}"
            )
        return target.to(output)
    classes = output.shape[1]
    onehot = torch.nn.functional.one_hot(target_indices(target, output), classes)
    onehot = onehot.to(output.dtype)
    if contrastive:
        onehot = onehot - (1 - onehot) / max(classes - 1, 1)
    if initial == "logit":
        return onehot * output.detach()
    if initial == "one":
        return onehot
    raise ConfigError(f"initial must be 'logit' or 'one', got {initial!r}")


def target_weights(output: torch.Tensor, target: Target) -> torch.Tensor:
    """Output weights selecting the target (one-hot of the class, or given weights).

    Gradient methods explain the target score itself (weight 1, not the logit's value).
    """
    return output_weights(output, target, initial="one")


# ---------------------------------------------------------------------- random numbers
def check_seed(generator: Any) -> Seed:
    """A ``torch.Generator``, an int seed or ``None``, else a one-line error."""
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, int) and not isinstance(generator, bool):
        return generator
    kind = type(generator).__name__
    raise ConfigError(f"generator must be a torch.Generator, an int seed or None, got {kind}")


def generator_for(seed: Seed) -> torch.Generator | None:
    """The generator for one call.

    An int seed starts a fresh generator on every call, so that repeated calls agree; a
    Generator object is advanced (a sequence of calls is reproducible as a whole).
    """
    if isinstance(seed, int):
        return torch.Generator().manual_seed(seed)
    return seed


def generator_device(generator: torch.Generator | None) -> torch.device:
    """Where random numbers are drawn: the generator's device (CPU without one), so that
    results do not depend on the inputs' device."""
    return generator.device if generator is not None else torch.device("cpu")


# ------------------------------------------------------------------------------- fills
def _fill_kinds(strategies: Sequence[str], functions: bool) -> str:
    names = [repr(s) for s in strategies]
    kinds = [*names, "a number", "a tensor", "a function"] if functions else ["a number", *names]
    kinds += [] if functions else ["a tensor"]
    return ", ".join(kinds[:-1]) + " or " + kinds[-1]


def check_fill(
    fill: Any, strategies: Sequence[str] = FILL_STRATEGIES, *, functions: bool = True
) -> Fill:
    """``fill`` if it is one of the kinds a caller accepts, else a one-line error.

    ``strategies`` are the names the caller accepts (methods without a generator refuse
    the random ones); ``functions`` whether ``fill(inputs, generator)`` is accepted.
    """
    kinds = _fill_kinds(strategies, functions)
    if isinstance(fill, str):
        if fill not in strategies:
            raise ConfigError(f"fill must be {kinds}, got {fill!r}")
        return fill  # type: ignore[return-value]
    if isinstance(fill, torch.Tensor):
        return fill
    if isinstance(fill, Real) and not isinstance(fill, bool):
        if not math.isfinite(fill):
            raise ConfigError(f"fill must be a finite number, got {fill!r}")
        return float(fill)
    if functions and callable(fill):
        return fill
    found = fill if isinstance(fill, bool) else type(fill).__name__
    raise ConfigError(f"fill must be {kinds}, got {found}")


def fill_values(
    fill: Fill, inputs: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The replacement values for ``inputs`` ``(batch, channels, *spatial)``, shaped like them.

    ``"mean"`` is each sample's mean per channel over its locations; ``"uniform"`` draws
    between, and ``"normal"`` around, each sample's per-channel range and moments (on the
    generator's device). Constants and broadcast tensors come back as expanded views.
    """
    if isinstance(fill, Real) and not isinstance(fill, bool):
        return torch.full_like(inputs, float(fill))  # the caller's check decides finiteness
    fill = check_fill(fill)
    over = tuple(range(2, inputs.ndim))
    if isinstance(fill, str):

        def draw(sampler: Callable[..., torch.Tensor]) -> torch.Tensor:
            device = generator_device(generator)
            noise = sampler(inputs.shape, generator=generator, device=device, dtype=inputs.dtype)
            return noise.to(inputs.device)

        if fill == "zeros":
            return torch.zeros_like(inputs)
        if fill == "mean":
            return inputs.mean(dim=over, keepdim=True).expand_as(inputs)
        if fill == "uniform":
            low, high = inputs.amin(dim=over, keepdim=True), inputs.amax(dim=over, keepdim=True)
            return low + (high - low) * draw(torch.rand)
        std, mean = torch.std_mean(inputs, dim=over, keepdim=True, correction=0)
        return mean + std * draw(torch.randn)
    if isinstance(fill, torch.Tensor):
        try:
            return torch.broadcast_to(fill.to(inputs), inputs.shape)
        except RuntimeError:
            raise ConfigError(
                f"a fill tensor must broadcast to the inputs {tuple(inputs.shape)}: shape "
                f"{tuple(fill.shape)} does not broadcast"
            ) from None
    made = fill(inputs.detach(), generator)
    if not isinstance(made, torch.Tensor) or made.shape != inputs.shape:
        raise ConfigError(f"a fill function must return a tensor of shape {tuple(inputs.shape)}")
    return made.detach().to(inputs)
