"""Every named composite against a whole-network float64 reference, on residual nets.

The reference (``tests/support/network_reference.py``) interprets an explicit program of
each network and calls the per-layer reference (``tests/support/lrp_reference.py``) for
every linear layer; it shares no code with the engine. The networks are small residual
nets whose convolutions feed sums without a ReLU (ResNet basic and bottleneck blocks, a
MobileNetV2 inverted residual, an EfficientNet block with SiLU and squeeze-excitation),
with batch norm (random statistics) merged by the engine's canonizer and by the reference's
own float64 fusion. The reference itself is checked here too: its forward pass against the
modules, LRP-0 against gradient x input and conservation, its pooling rules against
autograd and the per-layer reference, and a sequential net against ``reference_network_lrp0``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from relscope.attribution.lrp.composites import get_composite, list_composites
from relscope.attribution.lrp.engine import attribute
from support.lrp_reference import reference_network_lrp0, reference_relevance
from support.network_reference import (
    COMPOSITE_RULES,
    GRADIENT_COMPOSITES,
    INPUT_SHAPES,
    NETWORKS,
    RELU_NETWORKS,
    LinearRule,
    avg_pool_relevance,
    composite_rules,
    make_network,
    max_pool_relevance,
    reference_forward,
    reference_lrp,
)

BOUNDS = {"low": -1.0, "high": 1.0}
TARGET = [0, 3, 1]
LRP_COMPOSITES = sorted(set(list_composites()) - set(GRADIENT_COMPOSITES))


# Many tiny float64 operations: one torch thread (the conftest fixture).
pytestmark = pytest.mark.usefixtures("one_thread")


def inputs(network: str, *, seed: int = 0, batch: int = 3) -> torch.Tensor:
    """Uniform in [-1, 1]: within the z^B bounds of ``BOUNDS``."""
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.uniform(-1.0, 1.0, (batch, *INPUT_SHAPES[network])))


def composite_params(name: str) -> dict:
    return BOUNDS if name == "epsilon_gamma_box" else {}


def engine(model: nn.Module, x: torch.Tensor, composite, target=TARGET) -> np.ndarray:
    result = attribute(model, x, torch.tensor(target), composite)
    return result.relevance.numpy()


def assert_matches(actual: np.ndarray, expected: np.ndarray, tol: float = 1e-9) -> None:
    scale = float(np.abs(expected).max())
    assert scale > 0
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale)


# ---------------------------------------------------------------------------------------------
# The engine against the reference


def test_the_reference_knows_every_named_composite():
    assert set(COMPOSITE_RULES) | set(GRADIENT_COMPOSITES) == set(list_composites())


@pytest.mark.parametrize("network", sorted(NETWORKS))
@pytest.mark.parametrize("composite", LRP_COMPOSITES)
def test_named_composite_matches_the_network_reference(network, composite):
    model = make_network(network)
    x = inputs(network)
    params = composite_params(composite)
    _, expected = reference_lrp(model, x, TARGET, composite, **params)
    actual = engine(model, x, get_composite(composite, **params))
    assert np.isfinite(expected).all()
    assert_matches(actual, expected)


@pytest.mark.parametrize("network", ["resnet_basic", "resnet_bottleneck", "mobilenet_v2"])
def test_the_networks_expose_a_single_denominator_gamma(network):
    # Convolutions with non-negative inputs feed sums without a ReLU here, so their negative
    # outputs receive relevance: gamma with w + gamma w^+ on every output differs a lot from
    # the output-sign form (the fault of issue 13).
    model = make_network(network)
    x = inputs(network)
    rules = composite_rules("epsilon_gamma_box")
    single = dataclasses.replace(
        rules, convolution=dataclasses.replace(rules.convolution, options={"signed": False})
    )
    _, output_sign = reference_lrp(model, x, TARGET, rules, **BOUNDS)
    _, single_form = reference_lrp(model, x, TARGET, single, **BOUNDS)
    assert np.abs(single_form - output_sign).max() > 0.1 * np.abs(output_sign).max()


def _autograd(model: nn.Module, x: torch.Tensor, hook=None) -> np.ndarray:
    """logit * d logit / dx (the engine's gradient methods start from the target logit),
    with ``hook`` as full backward hook on every ReLU."""
    handles = []
    if hook is not None:
        handles = [
            m.register_full_backward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)
        ]
    try:
        leaf = x.clone().requires_grad_(True)
        output = model(leaf)
        onehot = nn.functional.one_hot(torch.tensor(TARGET), output.shape[1]).to(output.dtype)
        (grad,) = torch.autograd.grad(output, leaf, onehot * output.detach())
    finally:
        for handle in handles:
            handle.remove()
    return grad.numpy()


def _guided(module, grad_input, grad_output):
    return (grad_input[0].clamp(min=0),)  # grad_input already carries the forward mask


def _deconvnet(module, grad_input, grad_output):
    return (grad_output[0].clamp(min=0),)


@pytest.mark.parametrize("network", sorted(NETWORKS))
@pytest.mark.parametrize("composite", sorted(GRADIENT_COMPOSITES))
def test_gradient_composites_match_autograd(network, composite):
    if composite != "gradient" and network not in RELU_NETWORKS:
        pytest.skip(
            "guided backprop and deconvnet are defined for ReLU networks; this one has "
            "ReLU6/SiLU/sigmoid, to which the engine applies the modified ReLU backward"
        )
    model = make_network(network)
    x = inputs(network)
    hook = {"gradient": None, "guided_backprop": _guided, "deconvnet": _deconvnet}[composite]
    expected = _autograd(model, x, hook)
    actual = engine(model, x, get_composite(composite))
    assert_matches(actual, expected)


# ---------------------------------------------------------------------------------------------
# The reference on its own


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("network", sorted(NETWORKS))
def test_the_programs_reproduce_the_modules(network, bias):
    model = make_network(network, bias=bias)
    x = inputs(network)
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(reference_forward(model, x), expected, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("network", sorted(NETWORKS))
def test_reference_lrp0_conserves_the_logit_without_biases(network):
    # No bias anywhere (batch norm means and shifts zero): every LRP-0 step, linear layers,
    # sums, pooling, the product's split, passes on exactly what it receives.
    model = make_network(network, bias=False)
    x = inputs(network)
    record: dict[str, np.ndarray] = {}
    logits, relevance = reference_lrp(model, x, TARGET, "lrp0", record=record)
    target_logits = logits[np.arange(3), TARGET]
    np.testing.assert_allclose(relevance.reshape(3, -1).sum(1), target_logits, rtol=1e-9)
    # Every block's output carries the whole relevance too (nothing bypasses a block).
    for name in ("layer1", "layer2", "block1", "block2"):
        if name in record:
            total = record[name].reshape(3, -1).sum(1)
            np.testing.assert_allclose(total, target_logits, rtol=1e-9)


@pytest.mark.parametrize("network", RELU_NETWORKS)
def test_reference_lrp0_is_gradient_times_input_on_relu_networks(network):
    # With biases and batch norm: LRP-0 equals gradient x input wherever the only
    # non-linearities are ReLU and max pooling.
    model = make_network(network)
    x = inputs(network)
    _, relevance = reference_lrp(model, x, TARGET, "lrp0")
    leaf = x.clone().requires_grad_(True)
    output = model(leaf)
    onehot = nn.functional.one_hot(torch.tensor(TARGET), output.shape[1]).to(output.dtype)
    (grad,) = torch.autograd.grad(output, leaf, onehot)
    assert_matches(relevance, (grad * x).numpy())


def sequential() -> nn.Module:
    torch.manual_seed(5)
    model = nn.Sequential(
        nn.Conv2d(3, 5, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(5, 4, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 7),
        nn.ReLU(),
        nn.Linear(7, 5),
    )
    with torch.no_grad():
        for module in model.modules():
            if getattr(module, "bias", None) is not None:
                module.bias.uniform_(-0.2, 0.2)
    return model.double().eval()


@pytest.mark.parametrize(("composite", "eps"), [("lrp0", 0.0), ("epsilon", 1e-6)])
def test_the_interpreter_agrees_with_reference_network_lrp0(composite, eps):
    model = sequential()
    x = torch.from_numpy(np.random.default_rng(2).uniform(-1, 1, (3, 3, 8, 8)))
    _, relevance = reference_lrp(model, x, TARGET, composite)
    assert_matches(relevance, reference_network_lrp0(model, x, TARGET, eps=eps), tol=1e-12)


POOLS = {
    "avg3s2p1": (nn.AvgPool2d(3, 2, 1), (3, 2, 1)),
    "avg2": (nn.AvgPool2d(2), (2, 2, 0)),
    "global": (nn.AdaptiveAvgPool2d(1), (6, 6, 0)),
    "adaptive2": (nn.AdaptiveAvgPool2d(2), (3, 3, 0)),
}


@pytest.mark.parametrize("eps", [0.0, 1e-6, 0.1])
@pytest.mark.parametrize("pool", sorted(POOLS))
def test_average_pooling_norm_is_epsilon_with_the_pooling_weights(pool, eps):
    module, (kernel, stride, padding) = POOLS[pool]
    conv = nn.Conv2d(3, 3, kernel, stride, padding, groups=3, bias=False).double()
    with torch.no_grad():
        conv.weight.fill_(1.0 / kernel**2)
    rng = np.random.default_rng(3)
    a = rng.standard_normal((2, 3, 6, 6))
    with torch.no_grad():
        z = module(torch.from_numpy(a))
        np.testing.assert_allclose(conv(torch.from_numpy(a)).numpy(), z.numpy(), atol=1e-15)
    r = rng.standard_normal(tuple(z.shape))
    expected = reference_relevance("epsilon", {"eps": eps}, conv, a, r)
    assert_matches(avg_pool_relevance(module, a, r, eps), expected, tol=1e-12)
    # The other reading, eps on the window sum: the same rule for eps = 0 (and for windows
    # of one), else the epsilon rule with the stabilizer scaled by 1 / K.
    by_sum = avg_pool_relevance(module, a, r, eps, denominator="sum")
    equivalent = reference_relevance("epsilon", {"eps": eps / kernel**2}, conv, a, r)
    assert_matches(by_sum, equivalent, tol=1e-12)


@pytest.mark.parametrize("settings", [(3, 2, 1), (2, 2, 0), (3, 1, 1)])
def test_max_pooling_is_winner_takes_all(settings):
    module = nn.MaxPool2d(*settings)
    rng = np.random.default_rng(4)
    a = rng.standard_normal((2, 3, 7, 7))
    leaf = torch.from_numpy(a).requires_grad_(True)
    out = module(leaf)
    r = rng.standard_normal(tuple(out.shape))
    (grad,) = torch.autograd.grad(out, leaf, torch.from_numpy(r))
    np.testing.assert_array_equal(max_pool_relevance(module, a, r), grad.numpy())


def test_linear_rules_follow_the_composites_table():
    table = {name: composite_rules(name) for name in COMPOSITE_RULES}
    assert table["epsilon_gamma_box"].first == LinearRule("zbox", {"eps": 1e-6}, zero_bias=True)
    assert table["epsilon_gamma_box"].convolution.params == {"gamma": 0.25, "eps": 1e-6}
    assert table["lrp0"].norm_eps == 0.0
    assert all(r.norm_eps == 1e-6 for n, r in table.items() if n != "lrp0")
    assert table["excitation_backprop"].dense.zero_bias
