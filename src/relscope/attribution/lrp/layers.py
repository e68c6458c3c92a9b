"""What rules see of a model: linear layers as (weight, bias, forward) and operation kinds.

Every operation of a traced model is classified into a *kind* (the type groups composites
select by). Linear layers (dense, convolutions, transposed convolutions) are wrapped in a
:class:`LinearOp` so that rules can evaluate them with modified weights; batch-norm
merging produces a :class:`LinearOp` with fused weights without touching the model.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from relscope.attribution.lrp.attention import attention_mask, attention_scores, attention_softmax

__all__ = [
    "KINDS",
    "KIND_GROUPS",
    "LinearOp",
    "Operation",
    "foreign_kind",
    "function_kind",
    "linear_op",
    "method_kind",
    "module_kind",
]

#: The kinds an operation can have. ``meta`` operations (sizes, shapes) get no rule.
KINDS = (
    "dense", "convolution", "activation", "maxpool", "avgpool", "batchnorm", "normalization",
    "sum", "product", "scale", "reshape", "softmax", "matmul", "attention", "other", "meta",
)  # fmt: skip

#: Kinds whose default rule is a stand-in: operations no rule knows (the proportional
#: split), and attention that could not be written out (its plain gradient).
PROVISIONAL_KINDS = frozenset({"attention", "other"})

#: Type groups composites can select by, mapped to the kinds they contain.
KIND_GROUPS: dict[str, frozenset[str]] = {
    "linear": frozenset({"dense", "convolution"}),
    "dense": frozenset({"dense"}),
    "convolution": frozenset({"convolution"}),
    "activation": frozenset({"activation"}),
    "maxpool": frozenset({"maxpool"}),
    "avgpool": frozenset({"avgpool"}),
    "pooling": frozenset({"maxpool", "avgpool"}),
    "batchnorm": frozenset({"batchnorm"}),
    "normalization": frozenset({"batchnorm", "normalization"}),
    "sum": frozenset({"sum"}),
    "product": frozenset({"product"}),
    "attention": frozenset({"attention", "softmax", "matmul"}),
    "softmax": frozenset({"softmax"}),
    "matmul": frozenset({"matmul"}),
    "scale": frozenset({"scale"}),
    "reshape": frozenset({"reshape"}),
    "any": frozenset(KINDS) - {"meta"},
}

_ACTIVATIONS = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Sigmoid, nn.Tanh, nn.Softplus, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.PReLU,
    nn.Softsign, nn.Tanhshrink, nn.LogSigmoid,
)  # fmt: skip
_MODULE_KINDS: tuple[tuple[tuple[type, ...], str], ...] = (
    ((nn.Linear, nn.Bilinear), "dense"),
    (
        (
            nn.Conv1d,
            nn.Conv2d,
            nn.Conv3d,
            nn.ConvTranspose1d,
            nn.ConvTranspose2d,
            nn.ConvTranspose3d,
        ),
        "convolution",
    ),
    (_ACTIVATIONS, "activation"),
    (
        (
            nn.MaxPool1d,
            nn.MaxPool2d,
            nn.MaxPool3d,
            nn.AdaptiveMaxPool1d,
            nn.AdaptiveMaxPool2d,
            nn.AdaptiveMaxPool3d,
        ),
        "maxpool",
    ),
    (
        (
            nn.AvgPool1d,
            nn.AvgPool2d,
            nn.AvgPool3d,
            nn.AdaptiveAvgPool1d,
            nn.AdaptiveAvgPool2d,
            nn.AdaptiveAvgPool3d,
        ),
        "avgpool",
    ),
    ((nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d), "batchnorm"),
    (
        (
            nn.LayerNorm,
            nn.GroupNorm,
            nn.InstanceNorm1d,
            nn.InstanceNorm2d,
            nn.InstanceNorm3d,
            nn.LocalResponseNorm,
            nn.RMSNorm,
        ),
        "normalization",
    ),
    ((nn.Softmax, nn.LogSoftmax), "softmax"),
    ((nn.MultiheadAttention,), "attention"),
    (
        (
            nn.Identity,
            nn.Dropout,
            nn.Dropout1d,
            nn.Dropout2d,
            nn.Dropout3d,
            nn.AlphaDropout,
            nn.Flatten,
            nn.Unflatten,
            nn.ZeroPad2d,
            nn.ConstantPad2d,
        ),
        "reshape",
    ),
)

_FUNCTION_KINDS: dict[Callable, str] = {
    F.relu: "activation", torch.relu: "activation", F.relu6: "activation",
    F.leaky_relu: "activation", F.elu: "activation", F.selu: "activation",
    F.gelu: "activation", F.silu: "activation", F.mish: "activation",
    torch.sigmoid: "activation", F.sigmoid: "activation", torch.tanh: "activation",
    F.tanh: "activation", F.softplus: "activation", F.hardswish: "activation",
    F.hardsigmoid: "activation", F.hardtanh: "activation",
    F.max_pool1d: "maxpool", F.max_pool2d: "maxpool", F.max_pool3d: "maxpool",
    F.adaptive_max_pool1d: "maxpool", F.adaptive_max_pool2d: "maxpool",
    F.adaptive_max_pool3d: "maxpool",
    F.avg_pool1d: "avgpool", F.avg_pool2d: "avgpool", F.avg_pool3d: "avgpool",
    F.adaptive_avg_pool1d: "avgpool", F.adaptive_avg_pool2d: "avgpool",
    F.adaptive_avg_pool3d: "avgpool", torch.mean: "avgpool",
    operator.add: "sum", operator.iadd: "sum", torch.add: "sum", operator.sub: "sum",
    operator.isub: "sum", torch.sub: "sum", torch.sum: "sum",
    operator.mul: "product", operator.imul: "product", torch.mul: "product",
    operator.truediv: "scale", torch.div: "scale", operator.neg: "scale",
    torch.cat: "reshape", torch.concat: "reshape", torch.stack: "reshape",
    torch.flatten: "reshape", torch.reshape: "reshape", torch.permute: "reshape",
    torch.transpose: "reshape", torch.squeeze: "reshape", torch.unsqueeze: "reshape",
    operator.getitem: "reshape", torch.split: "reshape", torch.chunk: "reshape",
    F.dropout: "reshape", F.pad: "reshape", torch.narrow: "reshape",
    F.softmax: "softmax", torch.softmax: "softmax", F.log_softmax: "softmax",
    torch.matmul: "matmul", operator.matmul: "matmul", torch.bmm: "matmul",
    F.layer_norm: "normalization", F.group_norm: "normalization",
    F.batch_norm: "batchnorm", F.scaled_dot_product_attention: "attention",
    F.rms_norm: "normalization", torch.einsum: "matmul",
    torch.masked_fill: "reshape", torch.repeat_interleave: "reshape",
    attention_scores: "matmul", attention_softmax: "softmax", attention_mask: "meta",
    getattr: "meta", torch.numel: "meta", torch.argmax: "meta", torch.argmin: "meta",
    torch.zeros_like: "meta", torch.ones_like: "meta", torch.empty_like: "meta",
    torch.full_like: "meta", torch.isfinite: "meta", torch.isnan: "meta", torch.sign: "meta",
}  # fmt: skip

_METHOD_KINDS: dict[str, str] = {
    **dict.fromkeys(
        ["view", "reshape", "flatten", "permute", "transpose", "contiguous", "squeeze",
         "unsqueeze", "expand", "expand_as", "split", "chunk", "unflatten", "narrow",
         "view_as", "reshape_as", "repeat", "clone", "__getitem__", "unbind", "masked_fill",
         "repeat_interleave"], "reshape"),
    **dict.fromkeys(["relu", "relu_", "sigmoid", "tanh", "clamp", "clamp_min"], "activation"),
    **dict.fromkeys(["add", "add_", "sub", "sub_", "sum"], "sum"),
    **dict.fromkeys(["mul", "mul_"], "product"),
    **dict.fromkeys(["div", "div_", "neg"], "scale"),
    "mean": "avgpool", "softmax": "softmax", "matmul": "matmul", "bmm": "matmul",
    **dict.fromkeys(["size", "dim", "numel", "type", "to", "float", "double", "half", "detach",
                     "new_zeros", "new_ones", "new_empty", "new_full", "requires_grad_",
                     # Comparisons, indices and tests give no data relevance could reach.
                     "gt", "lt", "ge", "le", "eq", "ne", "__gt__", "__lt__", "__ge__",
                     "__le__", "__eq__", "__ne__", "argmax", "argmin", "argsort", "any", "all",
                     "isnan", "isinf", "isfinite", "item", "tolist", "nonzero", "sign",
                     "zeros_like", "ones_like", "empty_like", "full_like"], "meta"),
}  # fmt: skip


#: Class-name endings of other libraries' activation modules (Hugging Face's
#: ``NewGELUActivation``, ``QuickGELUActivation``, ``SiLUActivation``, timm's ``GELUTanh``, ...).
_ACTIVATION_NAMES = ("activation", "gelu", "gelutanh", "silu", "swish", "mish", "quickgelu")
#: Class-name endings of other libraries' normalization modules (``LlamaRMSNorm``, ...).
_NORMALIZATION_NAMES = ("rmsnorm", "layernorm")


def module_kind(module: nn.Module) -> str:
    """The kind of a leaf module (``other`` when unknown)."""
    for types, kind in _MODULE_KINDS:
        if isinstance(module, types):
            return kind
    return foreign_kind(module) or "other"


def foreign_kind(module: nn.Module) -> str | None:
    """``activation`` / ``normalization`` for other libraries' modules of those kinds, known
    by their class name (then they are one operation each, never traced into)."""
    for types, _ in _MODULE_KINDS:
        if isinstance(module, types):
            return None
    if module._modules:
        return None
    name = type(module).__name__.lower()
    # Activation modules of other libraries compute several tensor operations (tanh-GELU:
    # five) that together are one element-wise activation, with one identity rule.
    if name.endswith(_ACTIVATION_NAMES) and not any(True for _ in module.parameters()):
        return "activation"
    if name.endswith(_NORMALIZATION_NAMES):
        return "normalization"
    if _transposed_dense(module):
        return "dense"
    return None


def _transposed_dense(module: nn.Module) -> bool:
    """Hugging Face's ``Conv1D`` (GPT-2): a dense layer storing its weight as (in, out)."""
    weight = getattr(module, "weight", None)
    return (
        type(module).__name__ == "Conv1D"
        and isinstance(weight, torch.Tensor)
        and weight.ndim == 2
        and getattr(module, "nf", None) == weight.shape[1]
    )


def function_kind(function: Callable) -> str:
    """The kind of a function called in a traced graph."""
    try:
        return _FUNCTION_KINDS.get(function, "other")
    except TypeError:  # unhashable callables
        return "other"


def method_kind(name: str) -> str:
    """The kind of a tensor method called in a traced graph."""
    return _METHOD_KINDS.get(name, "other")


@dataclass(frozen=True)
class Operation:
    """One operation of the model: the callable that computes it plus what rules need."""

    name: str
    kind: str
    function: Callable
    module: nn.Module | None = None
    linear: LinearOp | None = None
    #: The graph shows the (first) input is non-negative (e.g. produced by a ReLU).
    nonnegative_input: bool = False
    #: The graph shows that outputs below zero receive no relevance (only ReLU consumers,
    #: and nothing after them hands relevance to zero activations).
    silent_negative_outputs: bool = False

    def __call__(self, *args, **kwargs):
        return self.function(*args, **kwargs)


@dataclass(frozen=True)
class LinearOp:
    """A linear layer as rules see it: ``forward(x, weight, bias)`` plus its parameters.

    ``weight``/``bias`` are detached (rules never compute parameter gradients) and may be
    fused copies (batch norm merged) that leave the model's own parameters untouched.
    """

    weight: torch.Tensor
    bias: torch.Tensor | None
    forward: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]
    #: Axis of ``weight`` that indexes output channels (1 for transposed convolutions).
    out_axis: int = 0

    def __call__(self, x, weight=None, bias=None):
        return self.forward(x, self.weight if weight is None else weight, bias)

    def out_shape(self, tensor: torch.Tensor) -> torch.Tensor:
        """Reshape a per-output-channel vector to broadcast against ``weight``."""
        shape = [1] * self.weight.ndim
        shape[self.out_axis] = -1
        return tensor.reshape(shape)

    def with_parameters(self, weight: torch.Tensor, bias: torch.Tensor | None) -> LinearOp:
        """The same layer with other (e.g. fused) parameters."""
        return replace(self, weight=weight, bias=bias)


# Functional linear layers: positional parameter names after (input, weight, bias).
_FUNCTIONAL_LINEAR: dict[Callable, tuple[str, tuple[str, ...]]] = {
    F.linear: ("dense", ()),
    torch.conv1d: ("convolution", ("stride", "padding", "dilation", "groups")),
    torch.conv2d: ("convolution", ("stride", "padding", "dilation", "groups")),
    torch.conv3d: ("convolution", ("stride", "padding", "dilation", "groups")),
    torch.conv_transpose1d: (
        "convolution", ("stride", "padding", "output_padding", "groups", "dilation")),
    torch.conv_transpose2d: (
        "convolution", ("stride", "padding", "output_padding", "groups", "dilation")),
    torch.conv_transpose3d: (
        "convolution", ("stride", "padding", "output_padding", "groups", "dilation")),
}  # fmt: skip


def functional_linear_kind(function: Callable) -> str | None:
    """``dense``/``convolution`` for functional linear layers, else ``None``."""
    try:
        entry = _FUNCTIONAL_LINEAR.get(function)
    except TypeError:
        return None
    return None if entry is None else entry[0]


def functional_linear_op(
    function: Callable, args: tuple, kwargs: dict, weight: torch.Tensor, bias: torch.Tensor | None
) -> LinearOp:
    """A :class:`LinearOp` for ``function(input, weight, bias, *settings)`` calls."""
    names = _FUNCTIONAL_LINEAR[function][1]
    settings = dict(zip(names, args[3:], strict=False))
    settings.update({k: v for k, v in kwargs.items() if k in names})
    transposed = "output_padding" in names

    def forward(x, weight, bias, _function=function, _settings=settings):
        return _function(x, weight, bias, **_settings)

    return LinearOp(
        weight.detach(), None if bias is None else bias.detach(), forward, int(transposed)
    )


def linear_op(module: nn.Module) -> LinearOp | None:
    """A :class:`LinearOp` for Linear / Conv / ConvTranspose modules, else ``None``."""
    bias = None if getattr(module, "bias", None) is None else module.bias.detach()
    if isinstance(module, nn.Linear):
        return LinearOp(module.weight.detach(), bias, F.linear)
    if _transposed_dense(module):
        return LinearOp(module.weight.detach().t(), bias, F.linear)
    if isinstance(module, nn.modules.conv._ConvNd) and not module.transposed:
        # _conv_forward applies the module's padding mode (zeros, reflect, circular, ...).
        return LinearOp(module.weight.detach(), bias, module._conv_forward)
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        function = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[
            len(module.kernel_size)
        ]

        def forward(x, weight, bias, module=module, function=function):
            return function(
                x, weight, bias, module.stride, module.padding, module.output_padding,
                module.groups, module.dilation,
            )  # fmt: skip

        return LinearOp(module.weight.detach(), bias, forward, out_axis=1)
    return None
