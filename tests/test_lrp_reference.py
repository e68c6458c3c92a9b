"""Sanity checks of the float64 LRP reference in ``tests/support/lrp_reference.py``.

The reference is what the engine's tests compare against, so here it is checked against
facts that do not depend on it: the layers' own forward passes, hand-computed examples,
autograd, conservation laws and the UnifiedRule presets.
"""

from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn

from support.lrp_reference import (
    dense_operator,
    reference_network_lrp0,
    reference_relevance,
    stab,
    unified_params,
)

# torch notes that an even kernel with padding="same" pads asymmetrically; that is the point.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

# (factory, input shape without batch)
LAYERS = {
    "linear": (lambda: nn.Linear(7, 5), (7,)),
    "linear-nd": (lambda: nn.Linear(4, 3), (2, 4)),
    "linear-nobias": (lambda: nn.Linear(6, 3, bias=False), (6,)),
    "conv1d": (lambda: nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2), (4, 11)),
    "conv1d-same": (lambda: nn.Conv1d(3, 3, 4, padding="same"), (3, 9)),
    "conv2d": (
        lambda: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2),
        (4, 7, 6),
    ),
    "conv2d-depthwise": (lambda: nn.Conv2d(2, 4, 3, padding=1, groups=2), (2, 5, 5)),
    "conv3d": (
        lambda: nn.Conv3d(
            2, 4, (2, 3, 2), stride=(1, 2, 1), padding=(1, 0, 1), dilation=(2, 1, 1), groups=2
        ),
        (2, 4, 5, 3),
    ),
    "convT1d": (
        lambda: nn.ConvTranspose1d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
        (4, 5),
    ),
    "convT1d-dilated": (
        lambda: nn.ConvTranspose1d(2, 2, 3, stride=3, dilation=2, output_padding=2),
        (2, 4),
    ),
    "convT2d": (
        lambda: nn.ConvTranspose2d(
            4,
            2,
            (3, 2),
            stride=(2, 3),
            padding=(1, 0),
            output_padding=(1, 2),
            dilation=(1, 2),
            groups=2,
        ),
        (4, 3, 4),
    ),
    "convT3d": (
        lambda: nn.ConvTranspose3d(
            2, 4, (2, 2, 3), stride=(2, 1, 2), padding=(0, 1, 1), output_padding=(1, 0, 1), groups=2
        ),
        (2, 3, 3, 2),
    ),
}

# A few layers for the rule checks (biased, with padding and groups).
RULE_LAYERS = ["linear", "conv1d", "conv2d", "convT2d"]

ALL_RULES = [
    ("epsilon", {}),
    ("epsilon", {"eps": 0.0}),
    ("gamma", {"gamma": 0.25}),
    ("gamma", {"gamma": 0.25, "eps": 0.0}),
    ("alpha_beta", {"alpha": 2.0, "beta": 1.0}),
    ("alpha_beta", {"alpha": 2.0, "beta": 1.0, "eps": 0.0}),
    ("zplus", {}),
    ("zplus", {"eps": 0.0}),
    ("zbox", {}),
    ("zbox", {"eps": 0.0}),
    ("wsquare", {}),
    ("flat", {}),
    ("unified", {}),
    ("unified", {"eps": 0.0, "include_bias": True}),
    (
        "unified",
        {
            "alpha": 2.0,
            "beta": 1.0,
            "theta0": 0.5,
            "theta1": 1.0,
            "gamma0": 0.1,
            "gamma1": 1.0,
            "gamma1p": 0.3,
            "gamma1n": 0.2,
            "gamma2": 0.5,
            "include_bias": True,
        },
    ),
]


def make_layer(name: str, seed: int = 0) -> tuple[nn.Module, tuple[int, ...]]:
    factory, shape = LAYERS[name]
    torch.manual_seed(seed)
    layer = factory().double()
    if layer.bias is not None:
        with torch.no_grad():
            layer.bias.uniform_(-0.5, 0.5)
    return layer, shape


def forward(layer: nn.Module, a: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return layer.double()(torch.from_numpy(a)).numpy()


def random_case(name: str, *, seed: int = 0, batch: int = 3, nonneg: bool = False):
    layer, shape = make_layer(name, seed)
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((batch, *shape))
    if nonneg:
        a = np.abs(a)
    z = forward(layer, a)
    r = rng.standard_normal(z.shape)
    return layer, a, z, r


def zero_bias_copy(layer: nn.Module) -> nn.Module:
    import copy

    out = copy.deepcopy(layer)
    if out.bias is not None:
        with torch.no_grad():
            out.bias.zero_()
    return out


# ---------------------------------------------------------------------------------------------
# dense_operator


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_dense_operator_reproduces_the_layer(name):
    layer, shape = make_layer(name, seed=1)
    w, b, connected, out_shape = dense_operator(layer, shape)
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, *shape))
    z = forward(layer, a)
    assert z.shape[1:] == out_shape
    assert w.dtype == np.float64 and b.dtype == np.float64 and connected.dtype == bool
    assert w.shape == (np.prod(shape), np.prod(out_shape)) == connected.shape
    np.testing.assert_allclose(a.reshape(4, -1) @ w + b, z.reshape(4, -1), rtol=1e-12, atol=1e-12)
    # Weights live only on connections; every weight of the layer appears on one.
    assert not w[~connected].any()
    assert np.count_nonzero(w) > 0


def expected_connectivity_1d(layer, length_in: int, length_out: int) -> np.ndarray:
    """Receptive fields of a Conv1d/ConvTranspose1d written out from the index formulas."""
    c_in, c_out, groups = layer.in_channels, layer.out_channels, layer.groups
    (k_size,), (stride,), (pad,), (dil,) = (
        layer.kernel_size,
        layer.stride,
        layer.padding,
        layer.dilation,
    )
    out = np.zeros((c_in * length_in, c_out * length_out), dtype=bool)
    for ci in range(c_in):
        for co in range(c_out):
            if ci // (c_in // groups) != co // (c_out // groups):
                continue
            for p in range(length_in):
                for q in range(length_out):
                    for k in range(k_size):
                        if isinstance(layer, nn.ConvTranspose1d):
                            hit = q == p * stride - pad + k * dil
                        else:
                            hit = p == q * stride - pad + k * dil
                        if hit:
                            out[ci * length_in + p, co * length_out + q] = True
    return out


@pytest.mark.parametrize("name", ["conv1d", "convT1d", "convT1d-dilated"])
def test_connectivity_matches_the_receptive_field_formula(name):
    layer, shape = make_layer(name)
    with torch.no_grad():
        layer.weight[..., 0] = 0.0  # zero weights must not hide connections
    _, _, connected, out_shape = dense_operator(layer, shape)
    expected = expected_connectivity_1d(layer, shape[1], out_shape[1])
    np.testing.assert_array_equal(connected, expected)


def test_connectivity_excludes_padding():
    layer = nn.Conv1d(1, 1, 3, padding=1)
    _, _, connected, _ = dense_operator(layer, (1, 4))
    np.testing.assert_array_equal(connected.sum(axis=0), [2, 3, 3, 2])


def test_unsupported_layers_are_refused():
    with pytest.raises(TypeError):
        dense_operator(nn.ReLU(), (3,))
    with pytest.raises(NotImplementedError):
        dense_operator(nn.Conv1d(1, 1, 3, padding=1, padding_mode="circular"), (1, 5))


# ---------------------------------------------------------------------------------------------
# Epsilon / LRP-0


@pytest.mark.parametrize("name", [*RULE_LAYERS, "conv3d", "convT1d"])
def test_lrp0_without_bias_conserves_and_equals_gradient_form(name):
    layer, a, _, r = random_case(name, seed=2)
    # Outputs no input reaches (transposed convolutions with stride > kernel footprint) have
    # z = 0 without bias; their relevance cannot flow back and is dropped by the reference.
    _, _, connected, _ = dense_operator(layer, a.shape[1:])
    reached = connected.any(axis=0).reshape(r.shape[1:])
    out = reference_relevance("epsilon", {"eps": 0.0}, layer, a, r, zero_bias=True)
    assert out.shape == a.shape
    np.testing.assert_allclose(
        out.reshape(len(a), -1).sum(1),
        (r * reached).reshape(len(r), -1).sum(1),
        rtol=1e-9,
        atol=1e-9,
    )
    # a_i * (W^T (R / z))_i, with the transpose applied by autograd, not the dense operator.
    plain = zero_bias_copy(layer)
    x = torch.from_numpy(a).requires_grad_(True)
    z = plain(x)
    zn = z.detach().numpy()
    s = np.divide(r, zn, out=np.zeros_like(r), where=zn != 0)
    (z * torch.from_numpy(s)).sum().backward()
    np.testing.assert_allclose(out, a * x.grad.numpy(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", RULE_LAYERS)
def test_lrp0_with_bias_loses_the_bias_share(name):
    layer, a, z, r = random_case(name, seed=3)
    out = reference_relevance("epsilon", {"eps": 0.0}, layer, a, r)
    _, b, _, _ = dense_operator(layer, a.shape[1:])
    zf, rf = z.reshape(len(z), -1), r.reshape(len(r), -1)
    expected = (rf * (zf - b) / zf).sum(1)
    np.testing.assert_allclose(out.reshape(len(a), -1).sum(1), expected, rtol=1e-9, atol=1e-9)


def test_epsilon_hand_example_and_sign_of_zero():
    layer = nn.Linear(2, 1).double()
    with torch.no_grad():
        layer.weight[:] = torch.tensor([[1.0, 2.0]])
        layer.bias[:] = 0.5
    r = np.ones((1, 1))
    # z = 3.5 -> stab = 4.0
    out = reference_relevance("epsilon", {"eps": 0.5}, layer, np.array([[1.0, 1.0]]), r)
    np.testing.assert_allclose(out, [[0.25, 0.5]])
    # z = -2.5 -> stab = -3.0
    out = reference_relevance("epsilon", {"eps": 0.5}, layer, np.array([[-1.0, -1.0]]), r)
    np.testing.assert_allclose(out, [[1 / 3, 2 / 3]])
    # z = 0 -> stab = +eps
    with torch.no_grad():
        layer.weight[:] = torch.tensor([[1.0, -1.0]])
        layer.bias[:] = 0.0
    out = reference_relevance("epsilon", {"eps": 0.5}, layer, np.array([[1.0, 1.0]]), r)
    np.testing.assert_allclose(out, [[2.0, -2.0]])
    np.testing.assert_array_equal(
        stab(np.array([0.0, -0.0, 1.0, -1.0]), 0.5), [0.5, 0.5, 1.5, -1.5]
    )


def test_default_eps_is_one_in_a_million():
    layer = nn.Linear(1, 1, bias=False).double()
    with torch.no_grad():
        layer.weight[:] = 1.0
    out = reference_relevance("epsilon", {}, layer, np.array([[1e-6]]), np.ones((1, 1)))
    np.testing.assert_allclose(out, [[0.5]])


# ---------------------------------------------------------------------------------------------
# Networks


def relu_net(bias: bool) -> nn.Sequential:
    torch.manual_seed(4)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, bias=bias),
        nn.ReLU(),
        nn.Conv2d(4, 3, 3, stride=2, bias=bias),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(3 * 3 * 3, 8, bias=bias),
        nn.ReLU(),
        nn.Linear(8, 4, bias=bias),
    ).double()


def test_network_lrp0_is_gradient_times_input_on_bias_free_relu_nets():
    model = relu_net(bias=False)
    x = np.random.default_rng(5).standard_normal((3, 2, 7, 7))
    target = [0, 2, 3]
    rel = reference_network_lrp0(model, x, target)
    xt = torch.from_numpy(x).requires_grad_(True)
    logits = model(xt)
    picked = logits[torch.arange(3), torch.tensor(target)]
    picked.sum().backward()
    np.testing.assert_allclose(rel, (xt.grad * xt).detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(rel.reshape(3, -1).sum(1), picked.detach().numpy(), rtol=1e-9)


def test_network_lrp0_with_biases_is_still_gradient_times_input_but_not_conservative():
    # The bias only enters the denominators z_j, which cancel layer by layer, so the identity
    # survives; the relevance the biases absorb is what is missing from the sum.
    model = relu_net(bias=True)
    with torch.no_grad():
        for m in model:
            if getattr(m, "bias", None) is not None:
                m.bias.uniform_(0.1, 0.5)
    x = np.random.default_rng(6).standard_normal((2, 2, 7, 7))
    rel = reference_network_lrp0(model, x, 1)
    xt = torch.from_numpy(x).requires_grad_(True)
    picked = model(xt)[:, 1]
    picked.sum().backward()
    np.testing.assert_allclose(rel, (xt.grad * xt).detach().numpy(), rtol=1e-9, atol=1e-12)
    assert not np.allclose(rel.reshape(2, -1).sum(1), picked.detach().numpy(), rtol=1e-3)


def test_network_epsilon_differs_from_lrp0():
    model = relu_net(bias=False)
    x = np.random.default_rng(7).standard_normal((1, 2, 7, 7))
    lrp0 = reference_network_lrp0(model, x, 2)
    eps = reference_network_lrp0(model, x, 2, eps=0.1)
    assert np.isfinite(eps).all()
    assert abs(eps.sum()) < abs(lrp0.sum())


# ---------------------------------------------------------------------------------------------
# UnifiedRule presets


def explicit_preset(preset: str, **kw) -> dict:
    """The preset table of the specification, written out independently of unified_params."""
    zero = {
        "theta0": 0.0,
        "theta1": 0.0,
        "gamma0": 0.0,
        "gamma1": 0.0,
        "gamma1p": 0.0,
        "gamma1n": 0.0,
        "gamma2": 0.0,
        "alpha": 1.0,
        "beta": 0.0,
    }
    table = {
        "lrp0": {"theta1": 1.0, "gamma1": 1.0, "eps": 0.0},
        "epsilon": {"theta1": 1.0, "gamma1": 1.0, "eps": kw.get("eps")},
        "gamma": {"theta1": 1.0, "gamma1": 1.0, "gamma1p": kw.get("gamma")},
        "alpha_beta": {
            "theta1": 1.0,
            "gamma1p": 1.0,
            "gamma1n": 1.0,
            "alpha": kw.get("alpha"),
            "beta": kw.get("beta"),
        },
        "zplus": {"theta1": 1.0, "gamma1p": 1.0},
        "wsquare": {"theta0": 1.0, "gamma2": 1.0},
        "flat": {"theta0": 1.0, "gamma0": 1.0, "eps": 0.0},
    }
    return {**zero, **table[preset]}


# (preset, named rule, its params, preset kwargs, bias applicable)
PRESETS = [
    ("lrp0", "epsilon", {"eps": 0.0}, {}, True),
    ("epsilon", "epsilon", {"eps": 0.3}, {"eps": 0.3}, True),
    ("gamma", "gamma", {"gamma": 0.5}, {"gamma": 0.5}, True),
    ("alpha_beta", "alpha_beta", {"alpha": 2.0, "beta": 1.0}, {"alpha": 2.0, "beta": 1.0}, True),
    ("zplus", "zplus", {}, {}, True),
    ("wsquare", "wsquare", {}, {}, False),
    ("flat", "flat", {}, {}, False),
]


@pytest.mark.parametrize("name", [*RULE_LAYERS, "conv2d-depthwise"])
@pytest.mark.parametrize(("preset", "rule", "params", "kw", "has_bias"), PRESETS)
def test_unified_presets_equal_their_named_rules(name, preset, rule, params, kw, has_bias):
    layer, a, _, r = random_case(name, seed=7, nonneg=True)
    unified = explicit_preset(preset, **kw)
    unified = {k: v for k, v in unified.items() if v is not None}
    expected = reference_relevance(rule, params, layer, a, r, zero_bias=True)
    got = reference_relevance("unified", unified, layer, a, r)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    if has_bias:
        expected = reference_relevance(rule, params, layer, a, r)
        got = reference_relevance("unified", {**unified, "include_bias": True}, layer, a, r)
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
        # zero_bias overrides include_bias
        got = reference_relevance(
            "unified", {**unified, "include_bias": True}, layer, a, r, zero_bias=True
        )
        expected = reference_relevance(rule, params, layer, a, r, zero_bias=True)
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("preset", "rule", "params", "kw", "has_bias"), PRESETS)
def test_unified_params_helper_matches_the_table(preset, rule, params, kw, has_bias):
    expected = {k: v for k, v in explicit_preset(preset, **kw).items() if v is not None}
    got = unified_params(preset, **kw)
    if preset == "flat":
        got = unified_params(preset, eps=0.0)
    for key, value in expected.items():
        assert got[key] == value, key
    assert got["include_bias"] is False


def test_unified_bias_is_an_extra_constant_input():
    layer, a, _, r = random_case("linear", seed=8)
    # Append the constant input as a real weight column: same relevance on the real inputs.
    w, b, _, _ = dense_operator(layer, (7,))
    bigger = nn.Linear(8, 5, bias=False).double()
    with torch.no_grad():
        bigger.weight[:] = torch.from_numpy(np.vstack([w, b[None, :]]).T)
    params = {
        "alpha": 2.0,
        "beta": 1.0,
        "theta0": 0.5,
        "theta1": 1.5,
        "gamma0": 0.2,
        "gamma1": 1.0,
        "gamma1p": 0.3,
        "gamma1n": 0.7,
        "gamma2": 0.25,
    }
    a1 = np.concatenate([a, np.ones((len(a), 1))], axis=1)
    expected = reference_relevance("unified", params, bigger, a1, r)[:, :7]
    got = reference_relevance("unified", {**params, "include_bias": True}, layer, a, r)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_unified_hand_example_with_signed_inputs():
    layer = nn.Linear(2, 1).double()
    with torch.no_grad():
        layer.weight[:] = torch.tensor([[1.0, -2.0]])
        layer.bias[:] = 0.5
    params = {
        "alpha": 2.0,
        "beta": 1.0,
        "eps": 0.1,
        "theta0": 0.5,
        "theta1": 1.0,
        "gamma0": 0.1,
        "gamma1": 1.0,
        "gamma1p": 0.3,
        "gamma1n": 0.2,
        "gamma2": 0.5,
        "include_bias": True,
    }
    got = reference_relevance("unified", params, layer, np.array([[-1.0, 2.0]]), [[1.0]])
    # theta: 0.5 - 1 = -0.5 and 0.5 + 2 = 2.5; bias input: 1.5
    # z = -1 - 4 + 0.5 = -4.5 < 0, so gamma1p acts on w^- and gamma1n on w^+:
    # w = 1:  A 0.1 + 1 + 0.5 = 1.6,           B 0.1 + 1 + 0.2 + 0.5 = 1.8
    # w = -2: A 0.1 - 2 - 0.6 + 2 = -0.5,      B 0.1 - 2 + 2 = 0.1
    # b = .5: A 0.1 + .5 + .125 = .725,        B 0.1 + .5 + .1 + .125 = .825
    u_a = np.array([-0.5 * 1.6, 2.5 * -0.5])
    u_b = np.array([-0.5 * 1.8, 2.5 * 0.1])
    d_a = u_a.sum() + 1.5 * 0.725  # -0.9625 -> - 0.1
    d_b = u_b.sum() + 1.5 * 0.825  # 0.5875 -> + 0.1
    expected = 2.0 * u_a / (d_a - 0.1) - u_b / (d_b + 0.1)
    np.testing.assert_allclose(got, [expected], rtol=1e-12)


def test_unified_uses_connectivity_not_a_dense_matrix():
    """theta0 makes unconnected pairs matter: hand-computed on a padded 1-D convolution."""
    layer = nn.Conv1d(1, 1, 3, padding=1, bias=False).double()
    a = np.array([[[0.0, 1.0, 2.0, 3.0]]])
    r = np.ones((1, 1, 4))
    params = {"theta0": 1.0, "theta1": 1.0, "gamma0": 1.0, "gamma1": 0.0, "eps": 0.0}
    got = reference_relevance("unified", params, layer, a, r)
    # u_ij = 1 + a_i on connected pairs; fields {0,1}, {0,1,2}, {1,2,3}, {2,3}
    f = Fraction
    expected = [
        f(1, 3) + f(1, 6),
        f(2, 3) + f(2, 6) + f(2, 9),
        f(3, 6) + f(3, 9) + f(3, 7),
        f(4, 9) + f(4, 7),
    ]
    np.testing.assert_allclose(got[0, 0], [float(v) for v in expected], rtol=1e-13)


# ---------------------------------------------------------------------------------------------
# Flat, WSquare, ZBox


def test_flat_splits_evenly_over_non_padding_inputs():
    layer = nn.Conv1d(1, 1, 3, padding=1).double()
    with torch.no_grad():
        layer.weight[:] = torch.tensor([[[0.7, 0.0, -2.0]]])  # values, zeros included, irrelevant
    a = np.random.default_rng(9).standard_normal((1, 1, 4))
    r = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    got = reference_relevance("flat", {}, layer, a, r)
    expected = [1 / 2 + 2 / 3, 1 / 2 + 2 / 3 + 3 / 3, 2 / 3 + 3 / 3 + 4 / 2, 3 / 3 + 4 / 2]
    np.testing.assert_allclose(got[0, 0], expected, rtol=1e-13)
    assert got.sum() == pytest.approx(10.0)


def test_flat_with_stride_and_padding():
    layer = nn.Conv1d(1, 1, 3, stride=2, padding=1).double()
    r = np.array([[[6.0, 12.0, 18.0]]])  # outputs 0, 1, 2 see inputs {0,1}, {1,2,3}, {3,4}
    got = reference_relevance("flat", {}, layer, np.zeros((1, 1, 5)), r)
    np.testing.assert_allclose(got[0, 0], [3.0, 3.0 + 4.0, 4.0, 4.0 + 9.0, 9.0])


def test_wsquare_hand_example():
    layer = nn.Linear(2, 2).double()
    with torch.no_grad():
        layer.weight[:] = torch.tensor([[1.0, 2.0], [3.0, 0.0]])  # (out, in)
        layer.bias[:] = 5.0  # ignored
    a = np.random.default_rng(10).standard_normal((1, 2))  # ignored
    got = reference_relevance("wsquare", {"eps": 0.0}, layer, a, np.array([[1.0, 2.0]]))
    np.testing.assert_allclose(got, [[1 / 5 + 2.0, 4 / 5]])


def test_zbox_hand_example_and_reduction_to_lrp0():
    layer = nn.Linear(2, 1).double()
    with torch.no_grad():
        layer.weight[:] = torch.tensor([[1.0, -2.0]])
        layer.bias[:] = 3.0  # ZBox has no bias
    a = np.array([[0.5, 1.0]])
    # numerators: 0.5 + 1 = 1.5 and -2 + 4 = 2
    got = reference_relevance("zbox", {"eps": 0.0}, layer, a, np.ones((1, 1)), low=-1, high=2)
    np.testing.assert_allclose(got, [[3 / 7, 4 / 7]])
    # per-input bounds broadcast over the batch
    got = reference_relevance(
        "zbox", {"eps": 0.0}, layer, a, np.ones((1, 1)), low=[-2.0, 0.0], high=[0.0, 3.0]
    )
    np.testing.assert_allclose(got, [[2.5 / 6.5, 4.0 / 6.5]])  # 0.5 + 2 and -2 + 6

    layer, a, _, r = random_case("conv2d", seed=11)
    got = reference_relevance("zbox", {"eps": 1e-3}, layer, a, r, low=0.0, high=0.0)
    expected = reference_relevance("epsilon", {"eps": 1e-3}, layer, a, r, zero_bias=True)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    low = -np.abs(a) - 1.0
    got = reference_relevance("zbox", {"eps": 0.0}, layer, a, r, low=low, high=-low)
    np.testing.assert_allclose(got.reshape(3, -1).sum(1), r.reshape(3, -1).sum(1), rtol=1e-8)


# ---------------------------------------------------------------------------------------------
# Gamma and AlphaBeta, simple and signed


def test_signed_gamma_hand_examples():
    layer = nn.Linear(2, 1, bias=False).double()
    with torch.no_grad():
        layer.weight[:] = torch.tensor([[1.0, 1.0]])
    one = np.ones((1, 1))
    params = {"gamma": 1.0, "eps": 0.0}
    # z = 1 > 0: 2 (1 + 1) and -1 (1 + 0) over 3
    got = reference_relevance("gamma", params, layer, np.array([[2.0, -1.0]]), one)
    np.testing.assert_allclose(got, [[4 / 3, -1 / 3]])
    # the simple form would give 4 and -2 over 2
    got = reference_relevance("gamma", params, layer, np.array([[2.0, -1.0]]), one, signed=False)
    np.testing.assert_allclose(got, [[2.0, -1.0]])
    # z = -1 < 0: -2 (1 + 1) and 1 (1 + 0) over -3
    got = reference_relevance("gamma", params, layer, np.array([[-2.0, 1.0]]), one)
    np.testing.assert_allclose(got, [[4 / 3, -1 / 3]])


def test_signed_gamma_bias_term_follows_the_sign_of_z():
    layer = nn.Linear(1, 2).double()
    with torch.no_grad():
        layer.weight[:] = torch.tensor([[1.0], [1.0]])
        layer.bias[:] = torch.tensor([1.0, -3.0])
    # a = -1: z = (0, -4). Output 0 counts as rising: -1 * (1 + 0) over -1 + (1 + 1) = 1.
    # Output 1 is falling: -1 * (1 + 1) over -2 + (-3 - 3) = -8.
    got = reference_relevance(
        "gamma", {"gamma": 1.0, "eps": 0.0}, layer, np.array([[-1.0]]), np.ones((1, 2))
    )
    np.testing.assert_allclose(got, [[-1.0 + 0.25]])


@pytest.mark.parametrize("name", RULE_LAYERS)
@pytest.mark.parametrize("zero_bias", [False, True])
def test_signed_forms_reduce_to_simple_ones_for_nonnegative_inputs(name, zero_bias):
    layer, a, _, r = random_case(name, seed=12, nonneg=True)
    gp = {"gamma": 0.4}
    ab = {"alpha": 1.5, "beta": 0.5}
    for rule, params in (("alpha_beta", ab), ("zplus", {})):
        simple = reference_relevance(rule, params, layer, a, r, zero_bias=zero_bias, signed=False)
        signed = reference_relevance(rule, params, layer, a, r, zero_bias=zero_bias, signed=True)
        np.testing.assert_allclose(signed, simple, rtol=1e-12, atol=1e-14)
    # Gamma: the generalized form only differs at outputs with z_j < 0.
    w, b, _, _ = dense_operator(layer, a.shape[1:])
    z = a.reshape(len(a), -1) @ w + (0.0 if zero_bias else b)
    r_rising = np.where(z >= 0, r.reshape(len(r), -1), 0.0).reshape(r.shape)
    simple = reference_relevance("gamma", gp, layer, a, r_rising, zero_bias=zero_bias, signed=False)
    signed = reference_relevance("gamma", gp, layer, a, r_rising, zero_bias=zero_bias, signed=True)
    np.testing.assert_allclose(signed, simple, rtol=1e-10, atol=1e-12)
    assert (z < 0).any()  # and the falling outputs do make a difference
    simple = reference_relevance("gamma", gp, layer, a, r, zero_bias=zero_bias, signed=False)
    signed = reference_relevance("gamma", gp, layer, a, r, zero_bias=zero_bias, signed=True)
    assert not np.allclose(signed, simple)
    # Gamma is always the output-sign form, also for non-negative inputs.
    default = reference_relevance("gamma", gp, layer, a, r, zero_bias=zero_bias)
    np.testing.assert_array_equal(default, signed)


def test_gamma_on_a_negative_output_uses_the_weights_of_its_sign():
    # a = (1, 1), w = (2, -3): z = -1. The output-sign form spreads over w + g w^- =
    # (2, -4.5) with sum -2.5; the single-denominator form over w + g w^+ = (3, -3), whose
    # sum 0 cancels (the explosion of issue 13).
    layer = nn.Linear(2, 1, bias=False).double()
    with torch.no_grad():
        layer.weight[:] = torch.tensor([[2.0, -3.0]])
    params = {"gamma": 0.5, "eps": 1e-9}
    got = reference_relevance("gamma", params, layer, np.array([[1.0, 1.0]]), np.ones((1, 1)))
    np.testing.assert_allclose(got, [[2.0 / -2.5, -4.5 / -2.5]], rtol=1e-7)
    single = reference_relevance(
        "gamma", params, layer, np.array([[1.0, 1.0]]), np.ones((1, 1)), signed=False
    )
    assert np.abs(single).max() > 1e8


def test_signed_alpha_beta_equals_the_simple_form_for_any_inputs():
    # a^+ w^+ + a^- w^- == (a w)^+ and a^+ w^- + a^- w^+ == (a w)^-, elementwise.
    layer, a, _, r = random_case("conv2d", seed=17)
    assert (a < 0).any()
    for params in ({"alpha": 2.0, "beta": 1.0}, {"alpha": 1.0, "beta": 0.0}):
        simple = reference_relevance("alpha_beta", params, layer, a, r, signed=False)
        signed = reference_relevance("alpha_beta", params, layer, a, r, signed=True)
        np.testing.assert_allclose(signed, simple, rtol=1e-12, atol=1e-14)


def test_torch_tensors_are_accepted():
    layer, a, _, r = random_case("conv1d", seed=18)
    expected = reference_relevance("gamma", {"gamma": 0.25}, layer, a, r)
    got = reference_relevance(
        "gamma",
        {"gamma": 0.25},
        layer,
        torch.from_numpy(a).requires_grad_(True),
        torch.from_numpy(r),
    )
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)


def test_signed_alpha_beta_form_is_chosen_per_sample():
    layer, a, _, r = random_case("conv2d", seed=13)
    a[0] = np.abs(a[0])  # sample 0 non-negative, the others signed
    params = {"alpha": 2.0, "beta": 1.0}
    auto = reference_relevance("alpha_beta", params, layer, a, r)
    simple = reference_relevance("alpha_beta", params, layer, a, r, signed=False)
    signed = reference_relevance("alpha_beta", params, layer, a, r, signed=True)
    np.testing.assert_array_equal(auto[0], simple[0])
    np.testing.assert_array_equal(auto[1:], signed[1:])


def test_gamma_has_one_form_for_every_sample():
    layer, a, _, r = random_case("conv2d", seed=13)
    a[0] = np.abs(a[0])  # sample 0 non-negative, the others signed
    default = reference_relevance("gamma", {"gamma": 0.3}, layer, a, r)
    signed = reference_relevance("gamma", {"gamma": 0.3}, layer, a, r, signed=True)
    single = reference_relevance("gamma", {"gamma": 0.3}, layer, a, r, signed=False)
    np.testing.assert_array_equal(default, signed)
    assert not np.allclose(default[0], single[0])  # r reaches outputs with z_j < 0


def test_gamma_zero_is_epsilon_and_alpha1_beta0_is_zplus():
    layer, a, _, r = random_case("conv1d", seed=14)
    for signed in (False, True):
        np.testing.assert_allclose(
            reference_relevance("gamma", {"gamma": 0.0}, layer, a, r, signed=signed),
            reference_relevance("epsilon", {}, layer, a, r),
            rtol=1e-10,
            atol=1e-12,
        )
        np.testing.assert_allclose(
            reference_relevance(
                "alpha_beta", {"alpha": 1.0, "beta": 0.0}, layer, a, r, signed=signed
            ),
            reference_relevance("zplus", {}, layer, a, r, signed=signed),
        )


def test_alpha_beta_conserves_alpha_minus_beta_and_hand_example():
    layer, a, _, r = random_case("conv2d", seed=15)
    got = reference_relevance(
        "alpha_beta", {"alpha": 2.0, "beta": 1.0, "eps": 0.0}, layer, a, r, zero_bias=True
    )
    # Each output passes alpha R_j through its positive and -beta R_j through its negative
    # contributions; a side without any contribution passes nothing.
    w, _, _, _ = dense_operator(layer, a.shape[1:])
    c = a.reshape(3, -1)[:, :, None] * w[None]
    has_pos, has_neg = (c > 0).any(axis=1), (c < 0).any(axis=1)
    assert not (has_pos.all() and has_neg.all())  # the example covers that case
    expected = (r.reshape(3, -1) * (2.0 * has_pos - 1.0 * has_neg)).sum(1)
    np.testing.assert_allclose(got.reshape(3, -1).sum(1), expected, rtol=1e-8)

    small = nn.Linear(3, 1).double()
    with torch.no_grad():
        small.weight[:] = torch.tensor([[1.0, -1.0, 2.0]])
        small.bias[:] = -1.0
    x = np.array([[-1.0, 2.0, 1.0]])  # c = (-1, -2, 2): positive {2}, negative {-1, -2, b=-1}
    got = reference_relevance(
        "alpha_beta", {"alpha": 2.0, "beta": 1.0, "eps": 0.0}, small, x, [[1]]
    )
    np.testing.assert_allclose(got, [[-1 / 4, -2 / 4, 2.0]])


# ---------------------------------------------------------------------------------------------
# Properties and robustness


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_zplus_is_nonnegative_and_conserves(data):
    n_in = data.draw(st.integers(1, 6), label="n_in")
    n_out = data.draw(st.integers(1, 5), label="n_out")
    floats = st.floats(-2.0, 2.0, allow_nan=False, allow_subnormal=False)
    w = data.draw(hnp.arrays(np.float64, (n_out, n_in), elements=floats), label="w")
    a = data.draw(
        hnp.arrays(np.float64, (2, n_in), elements=st.floats(0.0, 3.0, allow_subnormal=False)),
        label="a",
    )
    r = data.draw(
        hnp.arrays(np.float64, (2, n_out), elements=st.floats(0.0, 5.0, allow_subnormal=False)),
        label="r",
    )
    layer = nn.Linear(n_in, n_out, bias=False).double()
    with torch.no_grad():
        layer.weight[:] = torch.from_numpy(w)

    got = reference_relevance("zplus", {}, layer, a, r)
    assert np.isfinite(got).all()
    assert (got >= 0.0).all()
    assert (got.sum(1) <= r.sum(1) * (1 + 1e-12) + 1e-12).all()  # never creates relevance

    exact = reference_relevance("zplus", {"eps": 0.0}, layer, a, r)
    assert (exact >= 0.0).all()
    positive = (np.maximum(a[:, :, None] * w.T[None], 0.0)).sum(1) > 0  # (batch, n_out)
    np.testing.assert_allclose(exact.sum(1), (r * positive).sum(1), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", RULE_LAYERS)
@pytest.mark.parametrize(("rule", "params"), ALL_RULES)
def test_no_nan_or_inf_for_all_zero_inputs(name, rule, params):
    layer, a, _, r = random_case(name, seed=16)
    zeros = np.zeros_like(a)
    for zero_bias in (False, True):
        got = reference_relevance(
            rule, params, layer, zeros, r, low=-1.0, high=1.0, zero_bias=zero_bias
        )
        assert got.shape == a.shape
        assert np.isfinite(got).all()


def test_bad_arguments_are_refused():
    layer, a, _, r = random_case("linear")
    with pytest.raises(ValueError, match="unknown rule"):
        reference_relevance("lrp", {}, layer, a, r)
    with pytest.raises(ValueError, match="does not take"):
        reference_relevance("epsilon", {"epsilon": 0.1}, layer, a, r)
    with pytest.raises(ValueError, match="needs"):
        reference_relevance("gamma", {}, layer, a, r)
    with pytest.raises(ValueError, match="needs"):
        reference_relevance("zbox", {}, layer, a, r, low=0.0)
    with pytest.raises(ValueError, match="shape"):
        reference_relevance("epsilon", {}, layer, a, r[:, :2])
