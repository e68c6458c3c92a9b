"""Max pooling explained as average pooling, against explicit float64 window sums."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from relscope.attribution import LRP, get_composite, get_rule
from relscope.attribution.config import method_config
from relscope.attribution.lrp.layers import Operation
from relscope.errors import ConfigError

EPS = 1e-6


# ----------------------------------------------------------------- independent reference
def strided_windows(length, kernel, stride, padding, dilation, ceil_mode):
    """Input positions of every window along one axis (padding positions left out)."""
    span = dilation * (kernel - 1) + 1
    room = length + 2 * padding - span
    count = (-(-room // stride) if ceil_mode else room // stride) + 1
    if ceil_mode and (count - 1) * stride >= length + padding:
        count -= 1  # PyTorch drops a last window that would start in the right padding
    return [
        [p for p in (s * stride - padding + k * dilation for k in range(kernel)) if 0 <= p < length]
        for s in range(count)
    ]


def adaptive_windows(length, size):
    return [
        list(range(math.floor(i * length / size), math.ceil((i + 1) * length / size)))
        for i in range(size)
    ]


def reference(a, relevance, axes, eps=EPS):
    """``R_i = a_i sum_j R_j / stab(sum_{k in j} a_k)`` by looping over every window."""
    a = np.asarray(a, dtype=np.float64)
    relevance = np.asarray(relevance, dtype=np.float64)
    dims = len(axes)
    assert relevance.shape[-dims:] == tuple(len(w) for w in axes)
    out = np.zeros_like(a)
    for lead in np.ndindex(a.shape[:-dims]):
        for j in itertools.product(*(range(len(w)) for w in axes)):
            members = list(itertools.product(*(axes[d][j[d]] for d in range(dims))))
            total = sum(a[lead + m] for m in members)
            denominator = total + (eps if total >= 0 else -eps)
            if eps == 0 and total == 0:
                continue
            for m in members:
                out[lead + m] += a[lead + m] * relevance[lead + j] / denominator
    return out


def module_axes(module, spatial):
    dims = len(spatial)
    if isinstance(module, nn.AdaptiveMaxPool1d | nn.AdaptiveMaxPool2d | nn.AdaptiveMaxPool3d):
        size = module.output_size
        sizes = (size,) * dims if isinstance(size, int) or size is None else tuple(size)
        sizes = sizes * dims if len(sizes) == 1 else sizes
        return [
            adaptive_windows(n, n if s is None else s) for n, s in zip(spatial, sizes, strict=True)
        ]

    def per_axis(value):
        return (value,) * dims if isinstance(value, int) else tuple(value)

    settings = zip(
        spatial,
        per_axis(module.kernel_size),
        per_axis(module.stride),
        per_axis(module.padding),
        per_axis(module.dilation),
        strict=True,
    )
    return [strided_windows(*s, module.ceil_mode) for s in settings]


# -------------------------------------------------------------------------------- cases
MODULES = [
    (nn.MaxPool1d(3, stride=2, padding=1), (2, 3, 9)),
    (nn.MaxPool1d(2, stride=3, ceil_mode=True), (2, 2, 8)),  # gaps between windows
    (nn.MaxPool2d(3, stride=2, padding=1), (2, 3, 7, 6)),
    (nn.MaxPool2d((3, 2), stride=(1, 2), padding=(1, 0), dilation=(2, 1)), (1, 2, 7, 7)),
    (nn.MaxPool2d(2, stride=2, ceil_mode=True), (2, 2, 5, 7)),  # partial last windows
    (nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (1, 2, 6, 6)),
    (nn.MaxPool3d(2, stride=(1, 2, 2), padding=(0, 1, 1)), (1, 2, 3, 4, 5)),
    (nn.MaxPool2d(3, stride=2, padding=1), (3, 7, 7)),  # unbatched
    (nn.AdaptiveMaxPool1d(3), (2, 3, 8)),
    (nn.AdaptiveMaxPool2d((3, 2)), (2, 3, 7, 5)),
    (nn.AdaptiveMaxPool2d((None, 3)), (1, 2, 4, 7)),
    (nn.AdaptiveMaxPool3d(2), (1, 2, 3, 5, 4)),
]
DIMS = {
    nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3,
    nn.AdaptiveMaxPool1d: 1, nn.AdaptiveMaxPool2d: 2, nn.AdaptiveMaxPool3d: 3,
}  # fmt: skip
IDS = [f"{type(m).__name__}-{i}" for i, (m, _) in enumerate(MODULES)]


def inputs(shape, signs, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=generator, dtype=torch.float64)
    return x.abs() if signs == "nonnegative" else x


def propagate(rule, op, x, *args, relevance=None, **kwargs):
    x = x.clone().requires_grad_(True)
    y = rule(op, x, *args, **kwargs)
    relevance = torch.rand_like(y) if relevance is None else relevance
    (grad,) = torch.autograd.grad(y, x, relevance)
    return y, relevance, grad


@pytest.mark.parametrize("signs", ["nonnegative", "signed"])
@pytest.mark.parametrize(("module", "shape"), MODULES, ids=IDS)
def test_module_equals_window_sum_reference(module, shape, signs):
    x = inputs(shape, signs)
    op = Operation("pool", "maxpool", module, module)
    y, relevance, ours = propagate(get_rule("max_as_average"), op, x)
    torch.testing.assert_close(y, module(x), rtol=0, atol=0)  # the value is the max pooling's
    dims = DIMS[type(module)]
    expected = reference(x.numpy(), relevance.numpy(), module_axes(module, shape[-dims:]))
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("function", "args", "kwargs", "axes"),
    [
        (F.max_pool2d, (3, 2, 1), {}, [strided_windows(7, 3, 2, 1, 1, False)] * 2),
        (
            F.max_pool1d,
            (),
            {"kernel_size": 3, "stride": 2},
            [strided_windows(7, 3, 2, 0, 1, False)],
        ),
        (F.adaptive_max_pool2d, ((3, 2),), {}, [adaptive_windows(7, 3), adaptive_windows(7, 2)]),
        (F.adaptive_max_pool1d, (), {"output_size": 4}, [adaptive_windows(7, 4)]),
    ],
)
def test_functional_calls_equal_window_sum_reference(function, args, kwargs, axes):
    shape = (2, 3) + (7,) * len(axes)
    x = inputs(shape, "signed", seed=1)
    op = Operation("pool", "maxpool", function)
    y, relevance, ours = propagate(get_rule("max_as_average"), op, x, *args, **kwargs)
    torch.testing.assert_close(y, function(x, *args, **kwargs), rtol=0, atol=0)
    expected = reference(x.numpy(), relevance.numpy(), axes)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("module", "shape"), MODULES, ids=IDS)
def test_conserves_relevance_for_nonnegative_inputs_and_differs_from_the_winners(module, shape):
    x = inputs(shape, "nonnegative", seed=2) + 0.01  # no empty window: every sum positive
    op = Operation("pool", "maxpool", module, module)
    _, relevance, average = propagate(get_rule("max_as_average", eps=0.0), op, x)
    torch.testing.assert_close(average.sum(), relevance.sum(), rtol=1e-12, atol=0)
    _, _, winners = propagate(get_rule("winner_takes_all"), op, x, relevance=relevance)
    torch.testing.assert_close(winners.sum(), relevance.sum(), rtol=1e-12, atol=0)
    # Winner takes all leaves every input that wins no window without relevance; the
    # average version gives it its share of each window it belongs to.
    losers = winners == 0
    assert losers.any()
    assert (average[losers] > 0).any()
    assert not torch.allclose(average, winners)


def test_composite_option_and_selector_override_run_it_in_the_engine():
    module = nn.MaxPool2d(3, stride=2, padding=1)
    model = nn.Sequential(module, nn.Flatten()).double()
    x = inputs((2, 2, 7, 7), "nonnegative", seed=3) + 0.01
    target = torch.tensor([5, 17])
    results = {}
    for label, composite in [
        ("option", get_composite("lrp0", maxpool="average")),
        ("override", get_composite("lrp0").prepend(("maxpool", get_rule("max_as_average", eps=0)))),
        ("default", get_composite("lrp0")),
    ]:
        with LRP(model, composite) as lrp:
            output, results[label] = lrp(x, target)
    # The output relevance is the target logit: one-hot times the output.
    start = torch.nn.functional.one_hot(target, output.shape[1]).double() * output
    axes = module_axes(module, (7, 7))
    expected = reference(x.numpy(), start.reshape(2, 2, 4, 4).numpy(), axes, eps=0.0)
    np.testing.assert_allclose(results["option"].numpy(), expected, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(results["override"], results["option"], rtol=0, atol=0)
    assert not torch.allclose(results["default"], results["option"])


def test_option_through_a_method_configuration_and_its_errors():
    config = method_config({"method": "epsilon_plus", "params": {"maxpool": "average"}})
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
    with LRP(model, config.method, **config.params) as lrp:
        rules = {layer.kind: type(rule).__name__ for layer, rule in lrp.rules()}
    assert rules["maxpool"] == "MaxAsAverage"
    x = torch.rand(2, 1, 8, 8)
    average = config.attributor()(model, x).relevance
    winners = method_config("epsilon_plus").attributor()(model, x).relevance
    assert average.abs().sum() > 0
    assert not torch.allclose(average, winners)
    with pytest.raises(ConfigError, match="maxpool must be one of winner_takes_all, average"):
        get_composite("epsilon", maxpool="max")
    x = torch.rand(1, 2, 6, 6, requires_grad=True)
    with pytest.raises(ConfigError, match="only max pooling of one input that returns no"):
        get_rule("max_as_average")(
            Operation("pool", "maxpool", F.max_pool2d), x, 2, return_indices=True
        )


def test_other_operations_get_the_norm_rule():
    x = inputs((2, 3, 6, 6), "signed", seed=4)
    op = Operation("avg", "avgpool", F.avg_pool2d)
    _, relevance, ours = propagate(get_rule("max_as_average"), op, x, 2)
    _, _, norm = propagate(get_rule("norm"), op, x, 2, relevance=relevance)
    torch.testing.assert_close(ours, norm, rtol=0, atol=0)
