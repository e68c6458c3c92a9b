"""Every rule against the independent float64 reference (tests/support/lrp_reference.py),
the unified rule's presets against the named rules, and registry conformance."""

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from relscope.attribution import (
    AlphaBeta,
    Epsilon,
    Flat,
    Gamma,
    UnifiedRule,
    WSquare,
    ZBox,
    ZPlus,
    get_rule,
    list_rules,
)
from relscope.attribution.lrp import rules as rules_module
from relscope.attribution.lrp.layers import Operation, linear_op
from relscope.attribution.lrp.rules import RULES, LinearRule
from relscope.errors import ConfigError
from support.lrp_reference import reference_relevance, unified_params


def layers():
    torch.manual_seed(0)
    return {
        "linear": (nn.Linear(7, 5), (7,)),
        "conv1d": (nn.Conv1d(3, 4, 3, stride=2, padding=1), (3, 9)),
        "conv2d": (nn.Conv2d(3, 4, 3, padding=1, dilation=1), (3, 5, 6)),
        "conv2d_groups": (nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2), (4, 7, 7)),
        "conv3d": (nn.Conv3d(2, 3, 2, padding=1), (2, 3, 4, 3)),
        "convtranspose2d": (
            nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1),
            (3, 4, 4),
        ),
        "convtranspose1d": (nn.ConvTranspose1d(2, 3, 4, stride=3, groups=1), (2, 5)),
    }


LAYERS = layers()


def engine_relevance(rule, layer, a, relevance_out):
    layer = layer.double()
    x = torch.as_tensor(a).requires_grad_(True)
    operation = Operation("layer", "convolution", layer, layer, linear_op(layer))
    y = rule(operation, x)
    with torch.no_grad():
        torch.testing.assert_close(y, layer(x), rtol=1e-10, atol=1e-10)  # value unchanged
    (grad,) = torch.autograd.grad(y, x, torch.as_tensor(relevance_out))
    return grad.numpy()


def sample(shape, signs, seed=0, batch=3):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((batch, *shape))
    if signs == "nonnegative":
        a = np.abs(a)
    elif signs == "sparse":
        a = np.abs(a) * (rng.random(a.shape) > 0.6)  # many exact zeros, like after ReLU
    elif signs == "mixed":  # one non-negative sample next to signed ones
        a[0] = np.abs(a[0])
    return a


def out_relevance(layer, a, seed=1):
    with torch.no_grad():
        out = layer.double()(torch.as_tensor(a))
    return np.random.default_rng(seed).standard_normal(out.shape)


CASES = [
    ("epsilon", {"eps": 1e-6}, lambda: Epsilon(1e-6), False),
    ("epsilon", {"eps": 0.0}, lambda: Epsilon(0.0), False),
    ("epsilon", {"eps": 0.3}, lambda: Epsilon(0.3, zero_params=("bias",)), True),
    ("gamma", {"gamma": 0.25}, lambda: Gamma(0.25), False),
    ("gamma", {"gamma": 1.0, "eps": 1e-6}, lambda: Gamma(1.0, zero_params=("bias",)), True),
    ("alpha_beta", {"alpha": 2, "beta": 1}, lambda: AlphaBeta(2, 1), False),
    (
        "alpha_beta",
        {"alpha": 1.5, "beta": 0.5},
        lambda: AlphaBeta(1.5, 0.5, zero_params=("bias",)),
        True,
    ),
    ("zplus", {}, lambda: ZPlus(), False),
    ("wsquare", {}, lambda: WSquare(), False),
    ("wsquare", {"include_bias": True}, lambda: WSquare(zero_params=()), False),
    ("flat", {}, lambda: Flat(0.0), False),
    ("flat", {"include_bias": True}, lambda: Flat(0.0, zero_params=()), False),
    (
        "unified",
        unified_params("gamma", gamma=0.5),
        lambda: UnifiedRule.preset("gamma", gamma1p=0.5),
        False,
    ),
    (
        "unified",
        {"alpha": 2, "beta": 1, "theta0": 0.3, "theta1": 0.7, "gamma0": 0.1, "gamma1": 0.5,
         "gamma1p": 0.4, "gamma1n": 0.2, "gamma2": 0.3, "eps": 0.01, "include_bias": True},
        lambda: UnifiedRule(2, 1, 0.01, 0.3, 0.7, 0.1, 0.5, 0.4, 0.2, 0.3, include_bias=True),
        False,
    ),
]  # fmt: skip


@pytest.fixture(params=["keep", "recompute"])
def denominators(request, monkeypatch):
    """Both ways of getting denominators to backward: kept from forward, or recomputed."""
    monkeypatch.setattr(rules_module, "RECOMPUTE_MACS", 0 if request.param == "keep" else 10**9)
    return request.param


@pytest.mark.parametrize("signs", ["nonnegative", "sparse", "signed", "mixed"])
@pytest.mark.parametrize("layer_name", sorted(LAYERS))
@pytest.mark.parametrize(("rule", "params", "build", "zero_bias"), CASES)
def test_rule_equals_reference(rule, params, build, zero_bias, layer_name, signs, denominators):
    layer, shape = LAYERS[layer_name]
    a = sample(shape, signs)
    r = out_relevance(layer, a)
    expected = reference_relevance(rule, params, layer, a, r, zero_bias=zero_bias)
    got = engine_relevance(build(), layer, a, r)
    scale = max(np.abs(expected).max(), 1e-12)
    np.testing.assert_allclose(got / scale, expected / scale, rtol=0, atol=1e-9)


@pytest.mark.parametrize("layer_name", sorted(LAYERS))
@pytest.mark.parametrize("signs", ["nonnegative", "signed"])
def test_zbox_equals_reference(layer_name, signs, denominators):
    layer, shape = LAYERS[layer_name]
    a = sample(shape, signs)
    low = np.minimum(a, 0) - 0.5
    high = np.maximum(a, 0) + 0.5
    r = out_relevance(layer, a)
    expected = reference_relevance("zbox", {}, layer, a, r, low=low, high=high)
    got = engine_relevance(ZBox(torch.as_tensor(low), torch.as_tensor(high)), layer, a, r)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    channel = ZBox(-1.5, 2.0)  # scalar bounds broadcast to the input
    expected = reference_relevance("zbox", {}, layer, a, r, low=-1.5, high=2.0)
    np.testing.assert_allclose(
        engine_relevance(channel, layer, a, r), expected, rtol=1e-9, atol=1e-12
    )


PRESETS = [
    ("lrp0", {}, lambda: Epsilon(0.0, zero_params=("bias",))),
    ("epsilon", {"eps": 0.25}, lambda: Epsilon(0.25, zero_params=("bias",))),
    ("gamma", {"gamma1p": 0.25}, lambda: Gamma(0.25, zero_params=("bias",))),
    ("alpha_beta", {}, lambda: AlphaBeta(2, 1, zero_params=("bias",))),
    ("zplus", {}, lambda: ZPlus(zero_params=("bias",))),
    ("wsquare", {}, lambda: WSquare()),
    ("flat", {"eps": 0.0}, lambda: Flat(0.0)),
]


@pytest.mark.parametrize("layer_name", ["linear", "conv2d", "conv2d_groups", "convtranspose2d"])
@pytest.mark.parametrize(("preset", "overrides", "named"), PRESETS)
def test_unified_presets_equal_named_rules(preset, overrides, named, layer_name):
    layer, shape = LAYERS[layer_name]
    a = sample(shape, "sparse")
    r = out_relevance(layer, a)
    with torch.no_grad():
        z = layer.double()(torch.as_tensor(a))
    assert (z < 0).any() and (z > 0).any()  # relevance reaches outputs of both signs
    unified = UnifiedRule.preset(preset, **({"eps": 0.0} if preset == "lrp0" else {}), **overrides)
    got = engine_relevance(unified, layer, a, r)
    expected = engine_relevance(named(), layer, a, r)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("preset", ["lrp0", "epsilon", "gamma", "wsquare", "flat"])
def test_unified_presets_with_bias_equal_named_rules_with_bias(preset):
    layer, shape = LAYERS["conv2d"]
    a = sample(shape, "nonnegative")
    r = out_relevance(layer, a)
    named = {
        "lrp0": Epsilon(0.0), "epsilon": Epsilon(0.25), "gamma": Gamma(0.25),
        "wsquare": WSquare(zero_params=()), "flat": Flat(zero_params=()),
    }[preset]  # fmt: skip
    unified = UnifiedRule.preset(
        preset, include_bias=True, **({"eps": 0.0} if preset in ("lrp0", "flat") else {})
    )
    np.testing.assert_allclose(
        engine_relevance(unified, layer, a, r),
        engine_relevance(named, layer, a, r),
        rtol=1e-12,
        atol=1e-14,
    )


@settings(max_examples=60, deadline=None)
@given(
    inputs=st.integers(1, 6),
    outputs=st.integers(1, 5),
    batch=st.integers(1, 3),
    seed=st.integers(0, 2**16),
    zero_fraction=st.sampled_from([0.0, 0.5, 1.0]),
    rule=st.sampled_from(["epsilon", "zplus", "gamma", "alpha_beta", "wsquare", "flat"]),
)
def test_rules_on_random_dense_layers_match_reference_and_never_nan(
    inputs, outputs, batch, seed, zero_fraction, rule
):
    torch.manual_seed(seed)
    layer = nn.Linear(inputs, outputs)
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((batch, inputs)) * (rng.random((batch, inputs)) >= zero_fraction)
    r = rng.standard_normal((batch, outputs))
    params = {"gamma": {"gamma": 0.25}, "alpha_beta": {"alpha": 2, "beta": 1}}.get(rule, {})
    build = {
        "epsilon": Epsilon, "zplus": ZPlus, "gamma": lambda: Gamma(0.25),
        "alpha_beta": lambda: AlphaBeta(2, 1), "wsquare": WSquare, "flat": lambda: Flat(0.0),
    }[rule]  # fmt: skip
    got = engine_relevance(build(), layer, a, r)
    assert np.isfinite(got).all()
    expected = reference_relevance(rule, params, layer, a, r)
    scale = max(np.abs(expected).max(), 1.0)
    np.testing.assert_allclose(got / scale, expected / scale, rtol=0, atol=1e-8)


# ------------------------------------------------------------------ registry conformance
def build_registered(name):
    if name == "zbox":
        return get_rule(name, low=-1.0, high=1.0)
    return get_rule(name)


@pytest.mark.parametrize("name", list_rules())
def test_every_registered_rule_conforms(name):
    rule = build_registered(name)
    assert rule.name == name
    assert type(rule).__name__ in repr(rule)
    assert rule.copy() is not rule
    x = torch.rand(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    if isinstance(rule, LinearRule) or name in ("gradient",):
        layer = nn.Conv2d(3, 4, 3).double()
        operation = Operation("conv", "convolution", layer, layer, linear_op(layer))
        expected = layer(x).detach()
    elif name in ("guided_backprop", "deconvnet", "pass"):
        operation = Operation("relu", "activation", torch.relu)
        expected = torch.relu(x).detach()
    elif name == "softmax":
        operation = Operation("softmax", "softmax", torch.softmax)
        y = rule(operation, x, 1)
        torch.testing.assert_close(y, torch.softmax(x, 1).detach())
        (grad,) = torch.autograd.grad(y, x, torch.ones_like(y))
        assert grad.shape == x.shape and torch.isfinite(grad).all()
        return
    elif name == "constant":
        y = rule(Operation("softmax", "softmax", torch.softmax), x, 1)
        torch.testing.assert_close(y, torch.softmax(x, 1).detach())
        assert not y.requires_grad  # no relevance passes
        return
    elif name == "layernorm":
        layer = nn.LayerNorm(6).double()
        operation = Operation("norm", "normalization", layer, layer)
        expected = layer(x).detach()
    elif name == "uniform_split":
        gate = torch.rand(2, 3, 1, 1, dtype=torch.float64, requires_grad=True)
        y = rule(Operation("mul", "product", torch.mul), x, gate)
        torch.testing.assert_close(y, (x * gate).detach())
        grads = torch.autograd.grad(y, (x, gate), torch.ones_like(y))
        assert all(torch.isfinite(g).all() for g in grads)
        return
    else:
        operation = Operation("avg", "avgpool", nn.functional.avg_pool2d)
        expected = nn.functional.avg_pool2d(x, 2).detach()
        y = rule(operation, x, 2)
        torch.testing.assert_close(y, expected)
        (grad,) = torch.autograd.grad(y, x, torch.ones_like(y))
        assert grad.shape == x.shape
        assert torch.isfinite(grad).all()
        return
    y = rule(operation, x)
    torch.testing.assert_close(y, expected)
    (grad,) = torch.autograd.grad(y, x, torch.ones_like(y))
    assert grad.shape == x.shape
    assert torch.isfinite(grad).all()


def test_rule_registry_errors():
    assert set(RULES) == set(list_rules())
    with pytest.raises(ConfigError, match="unknown rule 'nope'"):
        get_rule("nope")
    with pytest.raises(ConfigError, match="rule 'epsilon'"):
        get_rule("epsilon", gamma=1)
    with pytest.raises(ConfigError, match="alpha - beta = 1"):
        AlphaBeta(2, 2)
    with pytest.raises(ConfigError, match="eps must be"):
        Epsilon(-1)
    with pytest.raises(ConfigError, match="low <= high"):
        ZBox(1.0, 0.0)
    with pytest.raises(ConfigError, match="zero_params"):
        Epsilon(zero_params=("weight",))
    with pytest.raises(ConfigError, match="unknown preset"):
        UnifiedRule.preset("nope")


def test_linear_rules_refuse_other_operations():
    x = torch.rand(2, 3, requires_grad=True)
    with pytest.raises(ConfigError, match="applies to linear layers"):
        Epsilon()(Operation("relu", "activation", torch.relu), x)


def test_uniform_split_of_a_gating_product():
    rule = get_rule("uniform_split")
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    gate = torch.rand(2, 3, 1, 1, dtype=torch.float64, requires_grad=True)
    y = rule(Operation("mul", "product", torch.mul), x, gate)
    torch.testing.assert_close(y, x * gate)
    relevance = torch.rand_like(y)
    rx, rg = torch.autograd.grad(y, (x, gate), relevance)
    torch.testing.assert_close(rx, relevance / 2)
    torch.testing.assert_close(rg, relevance.sum((2, 3), keepdim=True) / 2)


def test_norm_rule_splits_sums_in_proportion():
    rule = get_rule("norm")
    a = torch.tensor([[1.0, 3.0]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([[3.0, -1.0]], dtype=torch.float64, requires_grad=True)
    y = rule(Operation("add", "sum", torch.add), a, b)
    ra, rb = torch.autograd.grad(y, (a, b), torch.tensor([[8.0, 4.0]], dtype=torch.float64))
    torch.testing.assert_close(
        ra, torch.tensor([[2.0, 6.0]], dtype=torch.float64), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        rb, torch.tensor([[6.0, -2.0]], dtype=torch.float64), atol=1e-5, rtol=0
    )


# --------------------------------------------- gamma: the output-sign form and its fast path
def _dense(weights, bias=None):
    layer = nn.Linear(len(weights[0]), len(weights), bias=bias is not None).double()
    with torch.no_grad():
        layer.weight[:] = torch.tensor(weights, dtype=torch.float64)
        if bias is not None:
            layer.bias[:] = torch.tensor(bias, dtype=torch.float64)
    return layer


def test_gamma_on_a_negative_output_does_not_cancel():
    # a = (1, 1), w = (2, -3): z = -1. w + g w^+ = (3, -3) would sum to 0 (the old fault);
    # the output-sign form spreads over w + g w^- = (2, -4.5), sum -2.5.
    layer = _dense([[2.0, -3.0]])
    got = engine_relevance(Gamma(0.5), layer, np.ones((1, 2)), np.ones((1, 1)))
    np.testing.assert_allclose(got, [[2.0 / -2.5, -4.5 / -2.5]], rtol=1e-6)


def silent_operation(layer):
    return Operation(
        "layer", "convolution", layer, layer, linear_op(layer), silent_negative_outputs=True
    )


@pytest.mark.parametrize("layer_name", sorted(LAYERS))
def test_gamma_fast_path_is_exact_where_negative_outputs_get_no_relevance(layer_name):
    layer, shape = LAYERS[layer_name]
    layer = layer.double()
    a = sample(shape, "sparse")
    with torch.no_grad():
        z = layer(torch.as_tensor(a)).numpy()
    r = np.where(z >= 0, out_relevance(layer, a), 0.0)  # what a ReLU consumer hands back
    expected = reference_relevance("gamma", {"gamma": 0.25}, layer, a, r)
    x = torch.as_tensor(a).requires_grad_(True)
    y = Gamma(0.25)(silent_operation(layer), x)
    torch.testing.assert_close(y, layer(x), rtol=1e-10, atol=1e-10)
    (got,) = torch.autograd.grad(y, x, torch.as_tensor(r))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-9, atol=1e-12)
    # and it is the single-denominator form, which differs where negative outputs do get some
    r_all = out_relevance(layer, a)
    (fast,) = torch.autograd.grad(
        Gamma(0.25)(silent_operation(layer), x), x, torch.as_tensor(r_all)
    )
    single = reference_relevance("gamma", {"gamma": 0.25}, layer, a, r_all, signed=False)
    np.testing.assert_allclose(fast.numpy(), single, rtol=1e-9, atol=1e-9)


GAMMA_BOUND_LAYERS = ["linear", "conv1d", "conv2d", "conv2d_groups", "conv3d"]


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    gamma=st.sampled_from([0.05, 0.25, 1.0]),
    layer_name=st.sampled_from(GAMMA_BOUND_LAYERS),
    bias_scale=st.sampled_from([0.0, 1.0, 5.0]),
)
def test_gamma_amplification_is_bounded_on_nonnegative_inputs(seed, gamma, layer_name, bias_scale):
    """For non-negative inputs |d_j| >= gamma * sum_i a_i w_ij^+ and sum_i |u_ij| <=
    (2 + gamma) sum_i a_i w_ij^+, so each output hands on at most (2 + gamma) / gamma times
    its relevance in absolute value (with eps = 0 and any bias): no denominator cancels."""
    layer, shape = LAYERS[layer_name]
    layer = copy.deepcopy(layer).double()
    torch.manual_seed(seed)
    with torch.no_grad():
        layer.bias.normal_(0, bias_scale)
    a = sample(shape, "sparse", seed=seed, batch=1)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        out_shape = layer(torch.as_tensor(a)).shape
    for j in rng.choice(int(np.prod(out_shape)), size=4, replace=False):
        r = np.zeros(int(np.prod(out_shape)))
        r[j] = 1.0
        got = engine_relevance(Gamma(gamma, eps=0.0), layer, a, r.reshape(out_shape))
        assert np.isfinite(got).all()
        assert np.abs(got).sum() <= (2 + gamma) / gamma + 1e-9
