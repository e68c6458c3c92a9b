"""A whole-network float64 LRP reference, composed from the per-layer reference.

The attribution engine traces a model and rewrites every operation with its rule; this
module does none of that. A network here is described twice: once as an ordinary
``nn.Module`` (what the engine traces) and once as a *program*, an explicit list of
:class:`Step` objects that name every operation, its inputs and its modules. The
interpreter (:func:`reference_lrp`) runs the program forward in float64, recording every
activation, and then propagates relevance backwards step by step:

* linear layers (``Linear``/``Conv``, with a following batch norm fused in float64 by
  ``w' = w g / sqrt(var + eps)``, ``b' = (b - mean) g / sqrt(var + eps) + beta``) call
  :func:`support.lrp_reference.reference_relevance` with the rule the composite assigns;
* element-wise activations pass relevance unchanged;
* sums split it in proportion to the summands, ``R_k = z_k R / stab(sum_k z_k)``;
* average pooling (also adaptive and global) uses the Norm rule, written out over the
  pooling windows: ``R_i = sum_j a_i (1 / K) R_j / stab(z_j)`` with ``z_j`` the window mean
  (this is the epsilon rule with the pooling's own weights ``1 / K``);
* max pooling hands each window's relevance to the window's (first) maximum;
* flatten reshapes;
* an element-wise product (squeeze-excitation's ``x * sigmoid(s)``) gives each factor half
  of the relevance, a broadcast factor the sum of its half over the broadcast axes.

Conventions the specification leaves open:

* Norm through average pooling stabilizes the pooling's output (the window mean), as the
  epsilon rule with the pooling's weights does, not the window sum of the table's formula
  ``a_i R_j / stab(sum_{i in j} a_i)``; they differ only for ``eps > 0``, by a relative
  ``(K - 1) eps / sum`` (``pool_denominator="sum"`` gives the other reading).
* Flat is the specification's ``sum_j R_j / n_j`` without a stabilizer (as the per-layer
  reference has it), also where a composite puts it on the first layer.
* The SE gate's product is split ``R / 2`` to each factor; the broadcast gate receives its
  half summed over the broadcast (spatial) axes.

Which rule each linear layer gets is written out per named composite in
:data:`COMPOSITE_RULES` from the composites table of the specification, not taken from the
engine. :func:`reference_forward` returns the interpreter's forward pass, which tests compare
with ``model(x)`` so that a program cannot drift from its module's ``forward``.

The networks (:data:`NETWORKS`) are small residual nets whose convolutions feed sums
without a ReLU: a ResNet with basic blocks, a ResNet with bottleneck blocks (both with a
max-pooling stem), a MobileNetV2 inverted residual net and an EfficientNet-style MBConv net
with SiLU and squeeze-excitation. Every factory is seeded; batch norm running statistics
and affine parameters are random, eval mode, float64. ``bias=False`` builds the variant
without any bias (batch-norm means and shifts zero too), on which LRP-0 is conservative.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from support.lrp_reference import initial_relevance, reference_relevance, stab

EPS = 1e-6
GAMMA = 0.25

LINEAR_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.GELU)
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


# ---------------------------------------------------------------------------------------------
# Programs


@dataclass(frozen=True)
class Step:
    """One operation: ``out = op(*inputs)``.

    ``op`` is ``linear`` (``module`` a Linear/Conv, ``norm`` an optional batch norm applied to
    its output), ``act`` (element-wise ``module``), ``maxpool``/``avgpool`` (pooling
    ``module``), ``add`` (any number of summands), ``mul`` (element-wise product of two
    factors, broadcasting) or ``flatten`` (from dimension 1).
    """

    out: str
    op: str
    inputs: tuple[str, ...]
    module: nn.Module | None = field(default=None, compare=False)
    norm: nn.Module | None = field(default=None, compare=False)


INPUT = "input"


def linear(out: str, x: str, module: nn.Module, norm: nn.Module | None = None) -> Step:
    return Step(out, "linear", (x,), module, norm)


def act(out: str, x: str, module: nn.Module) -> Step:
    return Step(out, "act", (x,), module)


def program_of(model: nn.Module) -> list[Step]:
    """The model's program: its own ``program()``, or derived from an ``nn.Sequential``."""
    if hasattr(model, "program"):
        return list(model.program())
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"{type(model).__name__} has no program() and is not a Sequential")
    steps: list[Step] = []
    current = INPUT
    modules = list(model)
    index = 0
    while index < len(modules):
        module = modules[index]
        name = f"s{index}"
        if isinstance(module, LINEAR_LAYERS):
            following = modules[index + 1] if index + 1 < len(modules) else None
            if isinstance(following, BATCH_NORMS):
                steps.append(linear(name, current, module, following))
                index += 1
            else:
                steps.append(linear(name, current, module))
        elif isinstance(module, ACTIVATIONS):
            steps.append(act(name, current, module))
        elif isinstance(module, nn.MaxPool2d):
            steps.append(Step(name, "maxpool", (current,), module))
        elif isinstance(module, nn.AvgPool2d | nn.AdaptiveAvgPool2d):
            steps.append(Step(name, "avgpool", (current,), module))
        elif isinstance(module, nn.Flatten):
            steps.append(Step(name, "flatten", (current,)))
        elif isinstance(module, nn.Identity):
            index += 1
            continue
        else:
            raise TypeError(f"no program step for {type(module).__name__}")
        current = name
        index += 1
    return steps


# ---------------------------------------------------------------------------------------------
# Rules per composite (the specification's composites table)


@dataclass(frozen=True)
class LinearRule:
    """A rule of :func:`reference_relevance` with its parameters."""

    rule: str
    params: dict[str, Any] = field(default_factory=dict)
    zero_bias: bool = False
    #: Further keywords of :func:`reference_relevance` (e.g. ``signed``).
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CompositeRules:
    """Rules of one composite: the first linear layer (in execution order, if it differs),
    convolutions, dense layers, and the stabilizer of sums and average pooling."""

    convolution: LinearRule
    dense: LinearRule
    first: LinearRule | None = None
    norm_eps: float = EPS


def _epsilon(eps: float = EPS) -> LinearRule:
    return LinearRule("epsilon", {"eps": eps})


_ZPLUS = LinearRule("zplus", {"eps": EPS})
_ALPHA2_BETA1 = LinearRule("alpha_beta", {"alpha": 2.0, "beta": 1.0, "eps": EPS})
_FLAT = LinearRule("flat")

#: Rules of every named LRP composite. ZBox zeroes its bias by default (the z^B formula has
#: none); excitation backprop is z+ without bias on every linear layer.
COMPOSITE_RULES: dict[str, CompositeRules] = {
    "epsilon_gamma_box": CompositeRules(
        convolution=LinearRule("gamma", {"gamma": GAMMA, "eps": EPS}),
        dense=_epsilon(),
        first=LinearRule("zbox", {"eps": EPS}, zero_bias=True),
    ),
    "epsilon_plus": CompositeRules(convolution=_ZPLUS, dense=_epsilon()),
    "epsilon_plus_flat": CompositeRules(convolution=_ZPLUS, dense=_epsilon(), first=_FLAT),
    "epsilon_alpha2_beta1": CompositeRules(convolution=_ALPHA2_BETA1, dense=_epsilon()),
    "epsilon_alpha2_beta1_flat": CompositeRules(
        convolution=_ALPHA2_BETA1, dense=_epsilon(), first=_FLAT
    ),
    "lrp0": CompositeRules(convolution=_epsilon(0.0), dense=_epsilon(0.0), norm_eps=0.0),
    "epsilon": CompositeRules(convolution=_epsilon(), dense=_epsilon()),
    # The transformer composites on networks without attention, normalization or scalings:
    # epsilon on every linear layer.
    "attnlrp": CompositeRules(convolution=_epsilon(), dense=_epsilon()),
    "cp_lrp": CompositeRules(convolution=_epsilon(), dense=_epsilon()),
    "excitation_backprop": CompositeRules(
        convolution=LinearRule("zplus", {"eps": EPS}, zero_bias=True),
        dense=LinearRule("zplus", {"eps": EPS}, zero_bias=True),
    ),
}

#: Named composites that are gradient methods, not LRP.
GRADIENT_COMPOSITES = ("deconvnet", "gradient", "guided_backprop")


# ---------------------------------------------------------------------------------------------
# Batch norm fusion


def fuse(layer: nn.Module, norm: nn.Module | None) -> nn.Module:
    """A float64 copy of ``layer`` with ``norm`` (eval-mode batch norm) folded into it."""
    layer = copy.deepcopy(layer).double()
    if norm is None:
        return layer
    mean = norm.running_mean.detach().double()
    var = norm.running_var.detach().double()
    gain = norm.weight.detach().double() if norm.weight is not None else torch.ones_like(var)
    shift = norm.bias.detach().double() if norm.bias is not None else torch.zeros_like(var)
    scale = gain / torch.sqrt(var + norm.eps)
    bias = layer.bias.detach() if layer.bias is not None else torch.zeros_like(mean)
    if isinstance(layer, nn.Linear):
        fused = nn.Linear(layer.in_features, layer.out_features, dtype=torch.float64)
    else:
        fused = type(layer)(
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,
            stride=layer.stride,
            padding=layer.padding,
            dilation=layer.dilation,
            groups=layer.groups,
            bias=True,
            padding_mode=layer.padding_mode,
            dtype=torch.float64,
        )
    shape = (-1,) + (1,) * (layer.weight.ndim - 1)
    with torch.no_grad():
        fused.weight.copy_(layer.weight * scale.reshape(shape))
        fused.bias.copy_((bias - mean) * scale + shift)
    return fused.eval()


# ---------------------------------------------------------------------------------------------
# Pooling windows


@dataclass(frozen=True)
class _Windows:
    """2-D pooling windows: kernel, stride, padding (no dilation, floor mode)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]

    def out_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return tuple(
            (n + 2 * p - k) // s + 1
            for n, k, s, p in zip(size, self.kernel, self.stride, self.padding, strict=True)
        )

    def indices(self, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Row and column indices into the padded input, each (Ho, Wo, kh * kw)."""
        (ho, wo), (kh, kw), (sh, sw) = self.out_size(size), self.kernel, self.stride
        rows = np.arange(ho)[:, None] * sh + np.arange(kh)[None, :]  # (Ho, kh)
        cols = np.arange(wo)[:, None] * sw + np.arange(kw)[None, :]  # (Wo, kw)
        r = np.broadcast_to(rows[:, None, :, None], (ho, wo, kh, kw)).reshape(ho, wo, -1)
        c = np.broadcast_to(cols[None, :, None, :], (ho, wo, kh, kw)).reshape(ho, wo, -1)
        return r, c

    def pad(self, a: np.ndarray, value: float) -> np.ndarray:
        (ph, pw) = self.padding
        out = np.full((*a.shape[:2], a.shape[2] + 2 * ph, a.shape[3] + 2 * pw), value)
        out[:, :, ph : ph + a.shape[2], pw : pw + a.shape[3]] = a
        return out

    def crop(self, padded: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        (ph, pw) = self.padding
        return padded[:, :, ph : ph + size[0], pw : pw + size[1]]


def _pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else tuple(int(v) for v in value)


def _windows(module: nn.Module, size: tuple[int, int]) -> _Windows:
    if isinstance(module, nn.AdaptiveAvgPool2d):
        out = _pair(module.output_size if module.output_size is not None else size)
        if any(n % o for n, o in zip(size, out, strict=True)):
            raise NotImplementedError("adaptive pooling with uneven windows")
        kernel = tuple(n // o for n, o in zip(size, out, strict=True))
        return _Windows(kernel, kernel, (0, 0))
    if isinstance(module, nn.AvgPool2d):
        if module.ceil_mode or module.divisor_override is not None:
            raise NotImplementedError("ceil_mode / divisor_override")
        if not module.count_include_pad and _pair(module.padding) != (0, 0):
            raise NotImplementedError("count_include_pad=False with padding")
    elif isinstance(module, nn.MaxPool2d):
        if module.ceil_mode or _pair(module.dilation) != (1, 1) or module.return_indices:
            raise NotImplementedError("ceil_mode / dilation / return_indices")
    else:
        raise TypeError(f"not a supported pooling layer: {type(module).__name__}")
    stride = module.stride if module.stride is not None else module.kernel_size
    return _Windows(_pair(module.kernel_size), _pair(stride), _pair(module.padding))


def _gather(padded: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    return padded[:, :, r, c]  # (B, C, Ho, Wo, K)


def _scatter(shape: tuple[int, ...], r: np.ndarray, c: np.ndarray, values: np.ndarray):
    out = np.zeros(shape)
    batch, channels = shape[:2]
    b = np.arange(batch)[:, None, None, None, None]
    ch = np.arange(channels)[None, :, None, None, None]
    np.add.at(out, (b, ch, r[None, None], c[None, None]), values)
    return out


def _divide(r: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``r / d``, zero where ``d == 0`` (LRP-0: a silent output passes nothing on)."""
    out = np.zeros(np.broadcast_shapes(r.shape, d.shape))
    np.divide(r, d, out=out, where=d != 0.0)
    return out


def avg_pool_forward(module: nn.Module, a: np.ndarray) -> np.ndarray:
    size = a.shape[2:]
    win = _windows(module, size)
    r, c = win.indices(size)
    return _gather(win.pad(a, 0.0), r, c).sum(-1) / r.shape[-1]


def avg_pool_relevance(
    module: nn.Module, a: np.ndarray, relevance: np.ndarray, eps: float, *, denominator="output"
) -> np.ndarray:
    """The Norm rule through an average pooling: ``R_i = sum_j a_i (1 / K) R_j / stab(z_j)``.

    ``z_j`` is the pooling's output (the window mean, padding counted in ``K``), so this is
    the epsilon rule with the pooling's weights. ``denominator="sum"`` stabilizes the window
    sum instead, ``R_i = sum_j a_i R_j / stab(sum_{i in j} a_i)``; the two differ only in how
    ``eps`` scales (``K eps`` against ``eps`` on the sum).
    """
    size = a.shape[2:]
    win = _windows(module, size)
    r, c = win.indices(size)
    windows = _gather(win.pad(a, 0.0), r, c)  # (B, C, Ho, Wo, K)
    count = r.shape[-1]
    if denominator == "output":
        share = _divide(relevance, stab(windows.sum(-1) / count, eps)) / count
    elif denominator == "sum":
        share = _divide(relevance, stab(windows.sum(-1), eps))
    else:
        raise ValueError(f"denominator must be 'output' or 'sum', got {denominator!r}")
    padded = win.pad(a, 0.0)
    out = _scatter(padded.shape, r, c, windows * share[..., None])
    return win.crop(out, size)


def max_pool_forward(module: nn.Module, a: np.ndarray) -> np.ndarray:
    size = a.shape[2:]
    win = _windows(module, size)
    r, c = win.indices(size)
    return _gather(win.pad(a, -np.inf), r, c).max(-1)


def max_pool_relevance(module: nn.Module, a: np.ndarray, relevance: np.ndarray) -> np.ndarray:
    """Winner takes all: each window's relevance to its maximum (the first, on ties)."""
    size = a.shape[2:]
    win = _windows(module, size)
    r, c = win.indices(size)
    padded = win.pad(a, -np.inf)
    winner = _gather(padded, r, c).argmax(-1)[..., None]  # (B, C, Ho, Wo, 1)
    rows = np.take_along_axis(np.broadcast_to(r, winner.shape[:4] + r.shape[-1:]), winner, -1)
    cols = np.take_along_axis(np.broadcast_to(c, winner.shape[:4] + c.shape[-1:]), winner, -1)
    out = np.zeros(padded.shape)
    batch, channels = a.shape[:2]
    b = np.arange(batch)[:, None, None, None, None]
    ch = np.arange(channels)[None, :, None, None, None]
    np.add.at(out, (b, ch, rows, cols), relevance[..., None])
    return win.crop(out, size)


# ---------------------------------------------------------------------------------------------
# The interpreter


def _sum_to_shape(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    axes = tuple(i for i, (n, m) in enumerate(zip(x.shape, shape, strict=True)) if m == 1 != n)
    return x.sum(axis=axes, keepdims=True) if axes else x


def _forward(steps: Sequence[Step], x: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
    acts: dict[str, np.ndarray] = {INPUT: x}
    fused: dict[str, nn.Module] = {}
    with torch.no_grad():
        for step in steps:
            ins = [acts[name] for name in step.inputs]
            if step.op == "linear":
                fused[step.out] = layer = fuse(step.module, step.norm)
                value = layer(torch.from_numpy(ins[0])).numpy()
            elif step.op == "act":
                value = step.module.double()(torch.from_numpy(ins[0])).numpy()
            elif step.op == "avgpool":
                value = avg_pool_forward(step.module, ins[0])
            elif step.op == "maxpool":
                value = max_pool_forward(step.module, ins[0])
            elif step.op == "add":
                value = sum(ins[1:], ins[0])
            elif step.op == "mul":
                value = ins[0] * ins[1]
            elif step.op == "flatten":
                value = ins[0].reshape(ins[0].shape[0], -1)
            else:
                raise ValueError(f"unknown step {step.op!r}")
            if step.out in acts:
                raise ValueError(f"step output {step.out!r} is written twice")
            acts[step.out] = np.asarray(value, dtype=np.float64)
    return acts, fused


def _model_copy(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).double().eval()


def _as_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy().copy()
    return np.array(x, dtype=np.float64)


def reference_forward(model: nn.Module, x: Any) -> np.ndarray:
    """The program's forward pass in float64 (batch norm fused): must equal ``model(x)``."""
    steps = program_of(_model_copy(model))
    acts, _ = _forward(steps, _as_numpy(x))
    return acts[steps[-1].out]


def composite_rules(composite: str) -> CompositeRules:
    """The rules of the named composite."""
    try:
        return COMPOSITE_RULES[composite]
    except KeyError:
        raise KeyError(f"the reference knows no composite {composite!r}") from None


def linear_rule(rules: CompositeRules, step: Step, first: bool) -> LinearRule:
    """The rule ``rules`` give the linear layer of ``step``."""
    if first and rules.first is not None:
        return rules.first
    return rules.dense if isinstance(step.module, nn.Linear) else rules.convolution


def reference_lrp(
    model: nn.Module,
    x: Any,
    target: int | Sequence[int],
    composite: str | CompositeRules,
    *,
    low: Any = None,
    high: Any = None,
    pool_denominator: str = "output",
    record: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(output, input relevance)`` of the LRP ``composite`` for ``model`` at ``x``.

    ``composite`` is a name of :data:`COMPOSITE_RULES` or a :class:`CompositeRules`. The
    initial relevance is the target logit at the target class and zero elsewhere.
    ``low``/``high`` are z^B's bounds (``epsilon_gamma_box``), broadcastable to ``x``.
    ``pool_denominator`` is passed to :func:`avg_pool_relevance`. ``record``, if given,
    receives the relevance of every step's output by step name.
    """
    rules = composite if isinstance(composite, CompositeRules) else composite_rules(composite)
    steps = program_of(_model_copy(model))
    acts, fused = _forward(steps, _as_numpy(x))
    logits = acts[steps[-1].out]
    relevance: dict[str, np.ndarray] = {steps[-1].out: initial_relevance(logits, target)}
    first_linear = next(s.out for s in steps if s.op == "linear")

    def give(name: str, value: np.ndarray) -> None:
        relevance[name] = relevance[name] + value if name in relevance else value

    for step in reversed(steps):
        r_out = relevance.get(step.out)
        if r_out is None:
            r_out = np.zeros_like(acts[step.out])  # an unused output
        if record is not None:
            record[step.out] = r_out
        ins = [acts[name] for name in step.inputs]
        if step.op == "linear":
            spec = linear_rule(rules, step, step.out == first_linear)
            bounds = {"low": low, "high": high} if spec.rule == "zbox" else {}
            give(
                step.inputs[0],
                reference_relevance(
                    spec.rule,
                    spec.params,
                    fused[step.out],
                    ins[0],
                    r_out,
                    zero_bias=spec.zero_bias,
                    **bounds,
                    **spec.options,
                ),
            )
        elif step.op == "act":
            give(step.inputs[0], r_out)
        elif step.op == "avgpool":
            give(
                step.inputs[0],
                avg_pool_relevance(
                    step.module, ins[0], r_out, rules.norm_eps, denominator=pool_denominator
                ),
            )
        elif step.op == "maxpool":
            give(step.inputs[0], max_pool_relevance(step.module, ins[0], r_out))
        elif step.op == "add":
            share = _divide(r_out, stab(acts[step.out], rules.norm_eps))
            for name, summand in zip(step.inputs, ins, strict=True):
                give(name, summand * share)
        elif step.op == "mul":
            for name, factor in zip(step.inputs, ins, strict=True):
                give(name, _sum_to_shape(r_out / len(ins), factor.shape))
        elif step.op == "flatten":
            give(step.inputs[0], r_out.reshape(ins[0].shape))
    if record is not None:
        record[INPUT] = relevance[INPUT]
    return logits, relevance[INPUT]


# ---------------------------------------------------------------------------------------------
# Test networks


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels)


def _downsample(cin: int, cout: int, stride: int, bias: bool) -> nn.Sequential | None:
    """A ResNet block's strided 1x1 conv-bn shortcut, where the identity does not fit."""
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=bias), _bn(cout))


def _residual(block: nn.Module, x: str, name: str, last: str) -> list[Step]:
    """A ResNet block's shortcut (identity or downsample), its sum with ``last``, the ReLU."""
    steps = []
    identity = x
    if block.downsample is not None:
        identity = f"{name}.downsample"
        steps.append(linear(identity, x, block.downsample[0], block.downsample[1]))
    steps.append(Step(f"{name}.add", "add", (last, identity)))
    steps.append(act(name, f"{name}.add", block.relu))
    return steps


class BasicBlock(nn.Module):
    """ResNet basic block: conv-bn-relu-conv-bn, plus the identity or a strided 1x1
    conv-bn shortcut, sum, relu (one ReLU module used twice, as in torchvision)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, bias: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=bias)
        self.bn1 = _bn(cout)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=bias)
        self.bn2 = _bn(cout)
        self.downsample = _downsample(cin, cout, stride, bias)

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out = out + identity
        return self.relu(out)

    def program(self, x: str, name: str) -> list[Step]:
        steps = [
            linear(f"{name}.conv1", x, self.conv1, self.bn1),
            act(f"{name}.relu1", f"{name}.conv1", self.relu),
            linear(f"{name}.conv2", f"{name}.relu1", self.conv2, self.bn2),
        ]
        return steps + _residual(self, x, name, f"{name}.conv2")


class Bottleneck(nn.Module):
    """ResNet bottleneck block: 1x1-3x3-1x1 with batch norm; the last batch norm feeds the
    sum without a ReLU; optional strided 1x1 conv-bn shortcut; relu after the sum."""

    def __init__(self, cin: int, width: int, cout: int, stride: int = 1, bias=False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=bias)
        self.bn1 = _bn(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=bias)
        self.bn2 = _bn(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=bias)
        self.bn3 = _bn(cout)
        self.relu = nn.ReLU()
        self.downsample = _downsample(cin, cout, stride, bias)

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)

    def program(self, x: str, name: str) -> list[Step]:
        steps = [
            linear(f"{name}.conv1", x, self.conv1, self.bn1),
            act(f"{name}.relu1", f"{name}.conv1", self.relu),
            linear(f"{name}.conv2", f"{name}.relu1", self.conv2, self.bn2),
            act(f"{name}.relu2", f"{name}.conv2", self.relu),
            linear(f"{name}.conv3", f"{name}.relu2", self.conv3, self.bn3),
        ]
        return steps + _residual(self, x, name, f"{name}.conv3")


class _ResNet(nn.Module):
    """Stem conv-bn-relu + 3x3/2 max pooling, two blocks, global average pooling, linear."""

    def __init__(self, blocks: list[nn.Module], stem: int, features: int, bias: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, stem, 3, 1, 1, bias=bias)
        self.bn1 = _bn(stem)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = blocks[0]
        self.layer2 = blocks[1]
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(features, 5, bias=bias)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def program(self) -> list[Step]:
        return [
            linear("conv1", INPUT, self.conv1, self.bn1),
            act("relu", "conv1", self.relu),
            Step("maxpool", "maxpool", ("relu",), self.maxpool),
            *self.layer1.program("maxpool", "layer1"),
            *self.layer2.program("layer1", "layer2"),
            Step("avgpool", "avgpool", ("layer2",), self.avgpool),
            Step("flatten", "flatten", ("avgpool",)),
            linear("fc", "flatten", self.fc),
        ]


def resnet_basic(bias: bool = True) -> nn.Module:
    """3x16x16 -> 5: stem 8, basic block 8 -> 8, basic block 8 -> 12 (stride 2, 1x1 shortcut)."""
    blocks = [BasicBlock(8, 8, bias=bias), BasicBlock(8, 12, stride=2, bias=bias)]
    return _ResNet(blocks, 8, 12, bias)


def resnet_bottleneck(bias: bool = True) -> nn.Module:
    """3x16x16 -> 5: stem 8, bottleneck 8 -> 4 -> 8, bottleneck 8 -> 4 -> 12 (stride 2)."""
    blocks = [Bottleneck(8, 4, 8, bias=bias), Bottleneck(8, 4, 12, stride=2, bias=bias)]
    return _ResNet(blocks, 8, 12, bias)


class InvertedResidual(nn.Module):
    """MobileNetV2: 1x1 expand-bn-relu6, 3x3 depthwise-bn-relu6, 1x1 linear projection-bn
    (no activation), ``x + block(x)`` with no activation after the sum."""

    def __init__(self, channels: int, expand: int, bias: bool = False) -> None:
        super().__init__()
        hidden = channels * expand
        self.conv = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=bias),
            _bn(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden, bias=bias),
            _bn(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, channels, 1, bias=bias),
            _bn(channels),
        )

    def forward(self, x):
        return x + self.conv(x)

    def program(self, x: str, name: str) -> list[Step]:
        c = self.conv
        return [
            linear(f"{name}.expand", x, c[0], c[1]),
            act(f"{name}.relu6a", f"{name}.expand", c[2]),
            linear(f"{name}.depthwise", f"{name}.relu6a", c[3], c[4]),
            act(f"{name}.relu6b", f"{name}.depthwise", c[5]),
            linear(f"{name}.project", f"{name}.relu6b", c[6], c[7]),
            Step(name, "add", (x, f"{name}.project")),
        ]


class MobileNetV2(nn.Module):
    """3x12x12 -> 5: stem 3x3/2 conv-bn-relu6, two inverted residuals (the second one's input
    is the first one's signed sum), 1x1 conv-bn-relu6, 2x2 average pooling, linear."""

    def __init__(self, bias: bool = True) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=bias), _bn(8), nn.ReLU6())
        self.block1 = InvertedResidual(8, 3, bias=bias)
        self.block2 = InvertedResidual(8, 2, bias=bias)
        self.head = nn.Sequential(nn.Conv2d(8, 12, 1, bias=bias), _bn(12), nn.ReLU6())
        self.pool = nn.AvgPool2d(2)
        self.classifier = nn.Linear(12 * 3 * 3, 5, bias=bias)

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        x = self.pool(self.head(x))
        return self.classifier(x.flatten(1))

    def program(self) -> list[Step]:
        return [
            linear("stem", INPUT, self.stem[0], self.stem[1]),
            act("stem.act", "stem", self.stem[2]),
            *self.block1.program("stem.act", "block1"),
            *self.block2.program("block1", "block2"),
            linear("head", "block2", self.head[0], self.head[1]),
            act("head.act", "head", self.head[2]),
            Step("pool", "avgpool", ("head.act",), self.pool),
            Step("flatten", "flatten", ("pool",)),
            linear("classifier", "flatten", self.classifier),
        ]


class SqueezeExcitation(nn.Module):
    """Global average pooling, 1x1 reduce, SiLU, 1x1 expand, sigmoid, ``x * gate``."""

    def __init__(self, channels: int, reduced: int, bias: bool = True) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, reduced, 1, bias=bias)
        self.act = nn.SiLU()
        self.expand = nn.Conv2d(reduced, channels, 1, bias=bias)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        scale = self.gate(self.expand(self.act(self.reduce(self.pool(x)))))
        return x * scale

    def program(self, x: str, name: str) -> list[Step]:
        return [
            Step(f"{name}.pool", "avgpool", (x,), self.pool),
            linear(f"{name}.reduce", f"{name}.pool", self.reduce),
            act(f"{name}.act", f"{name}.reduce", self.act),
            linear(f"{name}.expand", f"{name}.act", self.expand),
            act(f"{name}.gate", f"{name}.expand", self.gate),
            Step(name, "mul", (x, f"{name}.gate")),
        ]


class MBConv(nn.Module):
    """EfficientNet block: 1x1 expand-bn-SiLU, 3x3 depthwise-bn-SiLU, squeeze-excitation,
    1x1 linear projection-bn (no activation), residual sum."""

    def __init__(self, channels: int, expand: int, bias: bool = False) -> None:
        super().__init__()
        hidden = channels * expand
        self.expand = nn.Conv2d(channels, hidden, 1, bias=bias)
        self.bn1 = _bn(hidden)
        self.act1 = nn.SiLU()
        self.depthwise = nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden, bias=bias)
        self.bn2 = _bn(hidden)
        self.act2 = nn.SiLU()
        self.se = SqueezeExcitation(hidden, max(1, channels // 2), bias=bias)
        self.project = nn.Conv2d(hidden, channels, 1, bias=bias)
        self.bn3 = _bn(channels)

    def forward(self, x):
        out = self.act1(self.bn1(self.expand(x)))
        out = self.act2(self.bn2(self.depthwise(out)))
        out = self.bn3(self.project(self.se(out)))
        out += x
        return out

    def program(self, x: str, name: str) -> list[Step]:
        return [
            linear(f"{name}.expand", x, self.expand, self.bn1),
            act(f"{name}.act1", f"{name}.expand", self.act1),
            linear(f"{name}.depthwise", f"{name}.act1", self.depthwise, self.bn2),
            act(f"{name}.act2", f"{name}.depthwise", self.act2),
            *self.se.program(f"{name}.act2", f"{name}.se"),
            linear(f"{name}.project", f"{name}.se", self.project, self.bn3),
            Step(name, "add", (f"{name}.project", x)),
        ]


class EfficientNet(nn.Module):
    """3x12x12 -> 5: stem 3x3/2 conv-bn-SiLU, two MBConv blocks with squeeze-excitation,
    1x1 conv-bn-SiLU head, global average pooling, linear."""

    def __init__(self, bias: bool = True) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 2, 1, bias=bias)
        self.stem_bn = _bn(8)
        self.stem_act = nn.SiLU()
        self.block1 = MBConv(8, 3, bias=bias)
        self.block2 = MBConv(8, 2, bias=bias)
        self.head = nn.Conv2d(8, 16, 1, bias=bias)
        self.head_bn = _bn(16)
        self.head_act = nn.SiLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(16, 5, bias=bias)

    def forward(self, x):
        x = self.stem_act(self.stem_bn(self.stem(x)))
        x = self.block2(self.block1(x))
        x = self.pool(self.head_act(self.head_bn(self.head(x))))
        return self.classifier(torch.flatten(x, 1))

    def program(self) -> list[Step]:
        return [
            linear("stem", INPUT, self.stem, self.stem_bn),
            act("stem.act", "stem", self.stem_act),
            *self.block1.program("stem.act", "block1"),
            *self.block2.program("block1", "block2"),
            linear("head", "block2", self.head, self.head_bn),
            act("head.act", "head", self.head_act),
            Step("pool", "avgpool", ("head.act",), self.pool),
            Step("flatten", "flatten", ("pool",)),
            linear("classifier", "flatten", self.classifier),
        ]


def randomize_batch_norm(model: nn.Module, *, shift: bool = True) -> None:
    """Random running statistics and affine parameters; ``shift=False`` keeps the mean and the
    shift at zero, so that the fused layers have no bias."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, BATCH_NORMS):
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                if shift:
                    module.running_mean.uniform_(-0.5, 0.5)
                    module.bias.uniform_(-0.3, 0.3)
                else:
                    module.running_mean.zero_()
                    module.bias.zero_()


NETWORKS: dict[str, Callable[..., nn.Module]] = {
    "resnet_basic": resnet_basic,
    "resnet_bottleneck": resnet_bottleneck,
    "mobilenet_v2": MobileNetV2,
    "efficientnet": EfficientNet,
}
#: Input shape (without batch) of every network.
INPUT_SHAPES = {
    "resnet_basic": (3, 16, 16),
    "resnet_bottleneck": (3, 16, 16),
    "mobilenet_v2": (3, 12, 12),
    "efficientnet": (3, 12, 12),
}
#: Networks whose only non-linearity is ReLU (max pooling included): there LRP-0 is
#: gradient x input.
RELU_NETWORKS = ("resnet_basic", "resnet_bottleneck")


def make_network(name: str, *, bias: bool = True, seed: int = 0) -> nn.Module:
    """A seeded float64 network in eval mode (the caller's random state is untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = NETWORKS[name](bias=bias)
        randomize_batch_norm(model, shift=bias)
    return model.double().eval()
