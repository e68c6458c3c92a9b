"""The AttnLRP rules (softmax, bilinear products, LayerNorm / RMSNorm / GroupNorm, scale,
constant) against independent float64 references written with explicit formulas.

The references never call the rules' code: each one is a loop or an ``einsum`` over NumPy
arrays. ``stab(d) = d + eps * sign(d)`` with ``sign(0) = +1``; a share whose denominator is
exactly zero (only with ``eps = 0``) is zero.
"""

import operator

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from relscope.attribution.lrp import functions
from relscope.attribution.lrp.attention import attention_scores, attention_softmax
from relscope.attribution.lrp.layers import Operation, foreign_kind, module_kind
from relscope.attribution.lrp.rules import Norm
from relscope.attribution.lrp.transformer_rules import (
    Bilinear,
    Constant,
    LayerNorm,
    Scale,
    Softmax,
)
from relscope.errors import ConfigError, RelscopeWarning

INF = float("inf")


# ------------------------------------------------------------------------------ helpers
def stab(d, eps):
    return d + eps * np.where(d >= 0, 1.0, -1.0)


def divide(r, d, eps):
    """``r / stab(d)``; 0 where the denominator is exactly 0."""
    denominator = stab(d, eps)
    safe = np.where(denominator == 0, 1.0, denominator)
    return np.where(denominator == 0, 0.0, r / safe)


def tensor(a, grad=True):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def relevance(y, inputs, r):
    """Input relevance of a rule's output ``y`` for output relevance ``r`` (NumPy arrays)."""
    grads = torch.autograd.grad(y, inputs, torch.as_tensor(r, dtype=y.dtype), allow_unused=True)
    return [None if g is None else g.detach().numpy() for g in grads]


def assert_close(got, expected, atol=1e-10):
    assert np.isfinite(got).all()
    scale = max(float(np.abs(expected).max(initial=0.0)), 1.0)
    np.testing.assert_allclose(got / scale, expected / scale, rtol=0, atol=atol)


def rng(seed):
    return np.random.default_rng(seed)


# ------------------------------------------------------------------------------ softmax
def softmax_reference(logits, r, dim, multiplier=None):
    """``R_in = x * (R - s * sum R)`` along ``dim``, row by row; ``s = softmax(logits)``, ``x``
    the multiplier (default: the logits). Entries whose logit is -inf get 0, and so does
    every entry of a row without a finite logit. Returns (R_in, s)."""
    logits = np.moveaxis(np.asarray(logits, dtype=np.float64), dim, -1)
    x = logits if multiplier is None else np.moveaxis(multiplier, dim, -1)
    r = np.moveaxis(r, dim, -1)
    out = np.zeros_like(logits)
    probabilities = np.full_like(logits, np.nan)
    for index in np.ndindex(logits.shape[:-1]):
        row = logits[index]
        finite = np.isfinite(row)
        if not finite.any():
            out[index] = 0.0
            continue
        top = row[finite].max()
        e = np.array([np.exp(v - top) if f else 0.0 for v, f in zip(row, finite, strict=True)])
        s = e / e.sum()
        probabilities[index] = s
        total = r[index].sum()
        for i in range(len(row)):
            out[index][i] = x[index][i] * (r[index][i] - s[i] * total) if finite[i] else 0.0
    return np.moveaxis(out, -1, dim), np.moveaxis(probabilities, -1, dim)


def softmax_input(seed, shape=(3, 4, 5)):
    g = rng(seed)
    x = g.standard_normal(shape) * 2
    x[0, 1] = 0.0  # exact zeros
    x[1, 2, 3] = -INF  # masked entries
    x[-1, 0, 0] = -INF
    return x


def _method(name):
    def call(self_, *args, **kwargs):
        return getattr(self_, name)(*args, **kwargs)

    return call


def softmax_call(form, dim):
    """(operation, positional arguments after x, keyword arguments) for each way of writing it."""
    if form == "module":
        module = nn.Softmax(dim)
        return Operation("softmax", "softmax", module, module), (), {}
    if form == "functional":
        return Operation("softmax", "softmax", F.softmax), (), {"dim": dim}
    if form == "torch":
        return Operation("softmax", "softmax", torch.softmax), (dim,), {}
    return Operation("softmax", "softmax", _method("softmax")), (dim,), {}


@pytest.mark.parametrize("form", ["module", "functional", "torch", "method"])
@pytest.mark.parametrize("dim", [0, -1, 1])
def test_softmax_rule_equals_reference(form, dim):
    a = softmax_input(0)
    r = rng(1).standard_normal(a.shape)
    op, args, kwargs = softmax_call(form, dim)
    x = tensor(a)
    y = Softmax()(op, x, *args, **kwargs)
    with torch.no_grad():
        torch.testing.assert_close(y, torch.softmax(x, dim), rtol=0, atol=0)
    (got,) = relevance(y, [x], r)
    expected, s = softmax_reference(a, r, dim)
    np.testing.assert_allclose(y.detach().numpy(), s, rtol=1e-12, atol=1e-15)
    assert_close(got, expected, atol=1e-12)
    masked = ~np.isfinite(a)
    assert (got[masked] == 0).all()  # -inf entries get nothing, and no NaN


def test_softmax_rule_on_fully_masked_rows_gives_zero_relevance():
    a = softmax_input(2, (2, 3, 4))
    a[0, 1, :] = -INF  # a row without any finite entry
    a[1, :, 2] = -INF
    r = rng(3).standard_normal(a.shape)
    x = tensor(a)
    y = Softmax()(Operation("softmax", "softmax", torch.softmax), x, -1)
    with torch.no_grad():  # the value is softmax's, NaN in the fully masked row included
        torch.testing.assert_close(y, torch.softmax(x, -1), equal_nan=True, rtol=0, atol=0)
    (got,) = relevance(y, [x], r)
    assert np.isfinite(got).all()
    assert (got[0, 1] == 0).all()
    expected, _ = softmax_reference(a, r, -1)
    assert_close(got, expected, atol=1e-12)


@pytest.mark.parametrize("dim", [0, -1])
def test_softmax_rule_follows_the_documented_non_conservation(dim):
    a = rng(4).standard_normal((4, 6)) * 3
    a[1, 2] = 0.0
    r = rng(5).standard_normal(a.shape)
    x = tensor(a)
    y = Softmax()(Operation("softmax", "softmax", torch.softmax), x, dim)
    (got,) = relevance(y, [x], r)
    s = np.exp(a - a.max(dim, keepdims=True))
    s /= s.sum(dim, keepdims=True)
    # sum R_in = sum x R - (sum x s)(sum R), per row along dim
    expected = (a * r).sum(dim) - (a * s).sum(dim) * r.sum(dim)
    np.testing.assert_allclose(got.sum(dim), expected, rtol=1e-12, atol=1e-12)
    assert not np.allclose(got.sum(dim), r.sum(dim))  # it does not conserve


@pytest.mark.parametrize(
    "mask", ["none", "bool", "float", "causal", "bool_causal", "fully_masked_row"]
)
def test_softmax_rule_on_attention_softmax_gives_masked_entries_nothing(mask):
    g = rng(6)
    scores = g.standard_normal((2, 3, 4, 5))
    scores[0, 0, 0, 0] = 0.0
    r = g.standard_normal(scores.shape)
    args, logits = (), scores.copy()
    bool_mask = g.random((4, 5)) > 0.3
    bool_mask[:, 0] = True
    if mask in ("bool", "bool_causal", "fully_masked_row"):
        if mask == "fully_masked_row":
            bool_mask[2] = False
        args = (torch.as_tensor(bool_mask),)
        logits = np.where(bool_mask, logits, -INF)
    elif mask == "float":
        additive = g.standard_normal((4, 5))
        additive[1, 3] = -INF
        args = (torch.as_tensor(additive),)
        logits = logits + additive
    kwargs = {}
    if "causal" in mask:
        kwargs["causal"] = True
        logits = np.where(np.tril(np.ones((4, 5), dtype=bool)), logits, -INF)
    x = tensor(scores)
    y = Softmax()(Operation("softmax", "softmax", attention_softmax), x, *args, **kwargs)
    with torch.no_grad():
        torch.testing.assert_close(y, attention_softmax(x, *args, **kwargs), rtol=0, atol=0)
    assert torch.isfinite(y).all()
    (got,) = relevance(y, [x], r)
    # The scores are the multiplier; an additive finite mask only shifts the logits.
    expected, _ = softmax_reference(logits, r, -1, multiplier=scores)
    assert_close(got, expected, atol=1e-12)
    assert (got[np.broadcast_to(~np.isfinite(logits), got.shape)] == 0).all()


def test_softmax_rule_needs_an_explicit_dim():
    x = tensor(rng(7).standard_normal((2, 3)))
    with pytest.raises(ConfigError, match="explicit dim"):
        Softmax()(Operation("softmax", "softmax", F.softmax), x)


@pytest.mark.parametrize("form", ["module", "functional"])
def test_log_softmax_keeps_its_gradient(form):
    a = rng(8).standard_normal((3, 4))
    r = rng(9).standard_normal(a.shape)
    if form == "module":
        module = nn.LogSoftmax(1)
        op, kwargs = Operation("log_softmax", "softmax", module, module), {}
    else:
        op, kwargs = Operation("log_softmax", "softmax", F.log_softmax), {"dim": 1}
    x = tensor(a)
    y = Softmax()(op, x, **kwargs)
    (got,) = relevance(y, [x], r)
    s = np.exp(a) / np.exp(a).sum(1, keepdims=True)
    np.testing.assert_allclose(got, r - s * r.sum(1, keepdims=True), rtol=1e-12, atol=1e-14)


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=3),
    axis=st.integers(0, 2),
    seed=st.integers(0, 2**16),
    spread=st.sampled_from([0.0, 1.0, 30.0, 300.0]),
    masked=st.sampled_from([0.0, 0.3, 1.0]),
)
def test_softmax_rule_on_random_inputs_is_finite_and_equals_reference(
    shape, axis, seed, spread, masked
):
    g = rng(seed)
    a = g.standard_normal(shape) * spread
    a[g.random(shape) < masked] = -INF
    r = g.standard_normal(shape) * 10
    dim = axis % len(shape)
    x = tensor(a)
    y = Softmax()(Operation("softmax", "softmax", torch.softmax), x, dim)
    (got,) = relevance(y, [x], r)
    assert np.isfinite(got).all()
    expected, _ = softmax_reference(a, r, dim)
    assert_close(got, expected, atol=1e-9)


# ----------------------------------------------------------------------------- bilinear
def bilinear_reference(a, b, r, eps, factor):
    """``z = a @ b``; ``R_a[i,k] = f sum_j a_ik b_kj R_ij / stab(z_ij)``, R_b likewise."""
    z = np.einsum("...ik,...kj->...ij", a, b)
    q = divide(r, z, eps)
    r_a = factor * np.einsum("...ik,...kj,...ij->...ik", a, b, q)
    r_b = factor * np.einsum("...ik,...kj,...ij->...kj", a, b, q)
    return r_a, r_b


def matmul_operands(seed, batch=(2, 3), rows=4, inner=3, columns=5):
    g = rng(seed)
    a = g.standard_normal((*batch, rows, inner))
    b = g.standard_normal((*batch, inner, columns))
    a[..., 0, :] = 0.0  # a zero row: z = 0 with zero numerators
    b[..., 1, 2] = 0.0
    return a, b


def cancelling_operands():
    """2-D operands with an output that is exactly zero from non-zero contributions, so
    that ``sign(0) = +1`` of the stabilizer matters."""
    a, b = matmul_operands(10, batch=())
    a[1] = [1.0, 1.0, 0.0]
    b[:, 0] = [1.0, -1.0, 7.0]
    assert (a @ b)[1, 0] == 0.0
    return a, b


@pytest.mark.parametrize("eps", [1e-6, 0.1, 0.0])
@pytest.mark.parametrize("case", ["batched", "two_d", "cancelling"])
def test_bilinear_rule_on_matmul_equals_reference(case, eps):
    if case == "batched":
        a, b = matmul_operands(11)  # (B, H, T, d) @ (B, H, d, S), like attention
    elif case == "two_d":
        a, b = matmul_operands(12, batch=())
    else:
        a, b = cancelling_operands()
    r = rng(13).standard_normal((*a.shape[:-1], b.shape[-1]))
    x, w = tensor(a), tensor(b)
    y = Bilinear(eps)(Operation("matmul", "matmul", torch.matmul), x, w)
    with torch.no_grad():
        torch.testing.assert_close(y, x @ w, rtol=0, atol=0)
    got_a, got_b = relevance(y, [x, w], r)
    expected_a, expected_b = bilinear_reference(a, b, r, eps, 0.5)
    assert_close(got_a, expected_a)
    assert_close(got_b, expected_b)


@pytest.mark.parametrize("scale", [None, 0.3])
def test_bilinear_rule_on_attention_scores_equals_reference(scale):
    g = rng(14)
    q, k = g.standard_normal((2, 3, 4, 6)), g.standard_normal((2, 3, 5, 6))
    q[0, 0, 1] = 0.0
    r = g.standard_normal((2, 3, 4, 5))
    tq, tk = tensor(q), tensor(k)
    op = Operation("attention_scores", "matmul", attention_scores)
    y = Bilinear()(op, tq, tk, scale)
    factor = 6**-0.5 if scale is None else scale
    with torch.no_grad():
        torch.testing.assert_close(y, attention_scores(tq, tk, scale), rtol=0, atol=0)
        np.testing.assert_allclose(y.numpy(), factor * q @ k.swapaxes(-1, -2), rtol=1e-13)
    got_q, got_k = relevance(y, [tq, tk], r)
    # z_ij = sum_d q_id (c k_jd): the scale is part of the second factor's values.
    expected_q, expected_kt = bilinear_reference(q, factor * k.swapaxes(-1, -2), r, 1e-6, 0.5)
    assert_close(got_q, expected_q)
    assert_close(got_k, expected_kt.swapaxes(-1, -2))


@pytest.mark.parametrize("broadcast", [False, True])
def test_bilinear_rule_on_elementwise_products_equals_reference(broadcast):
    g = rng(15)
    a = g.standard_normal((3, 4))
    b = g.standard_normal((4,) if broadcast else (3, 4))
    a[0, 0] = 0.0
    r = g.standard_normal((3, 4))
    x, w = tensor(a), tensor(b)
    y = Bilinear()(Operation("mul", "product", torch.mul), x, w)
    z = a * b
    q = divide(r, z, 1e-6)
    got_a, got_b = relevance(y, [x, w], r)
    assert_close(got_a, 0.5 * a * b * q)
    assert_close(got_b, (0.5 * a * b * q).sum(0) if broadcast else 0.5 * a * b * q)


def test_bilinear_rule_on_einsum_equals_reference():
    g = rng(16)
    a, b, c = g.standard_normal((2, 3, 4)), g.standard_normal((2, 4, 5)), g.standard_normal((5, 2))
    a[1, 0] = 0.0
    r2, r3 = g.standard_normal((2, 3, 5)), g.standard_normal((2, 3, 2))
    op = Operation("einsum", "matmul", torch.einsum)
    ta, tb, tc = tensor(a), tensor(b), tensor(c)
    y = Bilinear()(op, "bij,bjk->bik", ta, tb)
    expected_a, expected_b = bilinear_reference(a, b, r2, 1e-6, 0.5)
    got_a, got_b = relevance(y, [ta, tb], r2)
    assert_close(got_a, expected_a)
    assert_close(got_b, expected_b)
    # Three relevant operands: each gets a third.
    y = Bilinear()(op, "bij,bjk,kl->bil", ta, tb, tc)
    z = np.einsum("bij,bjk,kl->bil", a, b, c)
    q = divide(r3, z, 1e-6)
    got = relevance(y, [ta, tb, tc], r3)
    expected = [np.einsum("bij,bjk,kl,bil->" + out, a, b, c, q) / 3 for out in ("bij", "bjk", "kl")]
    for got_part, expected_part in zip(got, expected, strict=True):
        assert_close(got_part, expected_part)


@pytest.mark.parametrize("constant", ["second", "first"])
def test_bilinear_rule_with_one_constant_operand_is_the_epsilon_rule(constant):
    a, b = matmul_operands(17, batch=(2,))
    r = rng(18).standard_normal((2, 4, 5))
    x, w = tensor(a, grad=constant != "first"), tensor(b, grad=constant != "second")
    y = Bilinear()(Operation("matmul", "matmul", torch.matmul), x, w)
    expected_a, expected_b = bilinear_reference(a, b, r, 1e-6, 1.0)  # the full share
    relevant, expected = (x, expected_a) if constant == "second" else (w, expected_b)
    (got,) = relevance(y, [relevant], r)
    assert_close(got, expected)


@pytest.mark.parametrize("case", ["batched", "cancelling"])
def test_bilinear_rule_conserves_without_epsilon(case):
    a, b = matmul_operands(19) if case == "batched" else cancelling_operands()
    r = rng(20).standard_normal((*a.shape[:-1], b.shape[-1]))
    x, w = tensor(a), tensor(b)
    y = Bilinear(0.0)(Operation("matmul", "matmul", torch.matmul), x, w)
    got_a, got_b = relevance(y, [x, w], r)
    z = a @ b
    assert (z == 0).any()
    np.testing.assert_allclose(got_a.sum() + got_b.sum(), r[z != 0].sum(), rtol=1e-12)


def test_bilinear_rule_keeps_only_its_operands_and_scores_carry_a_recipe():
    g = rng(21)
    q, k = g.standard_normal((1, 2, 64, 3)), g.standard_normal((1, 2, 64, 3))
    q[0, 0, 5] = 0.0
    r = g.standard_normal((1, 2, 64, 64))
    op = Operation("attention_scores", "matmul", attention_scores)
    tq, tk = tensor(q), tensor(k)
    y = Bilinear()(op, tq, tk)
    saved = y.grad_fn.saved_tensors
    # The scores (64 x 64) are larger than q and k: only q and k are kept, and the scores
    # are made again (the softmax after them reads the same recipe).
    assert [tuple(t.shape) for t in saved] == [q.shape, k.shape]
    remade = functions.remake(functions.recipe_of(y))
    np.testing.assert_array_equal(remade.numpy(), y.detach().numpy())
    got_q, got_k = relevance(y, [tq, tk], r)
    expected_q, expected_kt = bilinear_reference(q, 3**-0.5 * k.swapaxes(-1, -2), r, 1e-6, 0.5)
    assert_close(got_q, expected_q)
    assert_close(got_k, expected_kt.swapaxes(-1, -2))


# ------------------------------------------------------------------------ normalization
def normalization_reference(rows, r, weight, bias, centre, eps_norm, eps):
    """Rows of one normalization each (``(N, n)``; weight and bias ``(N, n)``): the linear map
    ``y = J x + b``, ``J = diag(w) C / sigma`` with ``sigma`` held constant (``C`` the centring
    matrix, or the identity for RMS norms), and epsilon: ``R_i = x_i sum_j J_ji R_j /
    stab(y_j)``. Returns (R_in, y)."""
    out, values = np.zeros_like(rows), np.zeros_like(rows)
    n = rows.shape[1]
    for row in range(rows.shape[0]):
        x = rows[row]
        if centre:
            c = np.eye(n) - np.full((n, n), 1.0 / n)
            sigma = np.sqrt(((x - x.mean()) ** 2).mean() + eps_norm)
        else:
            c = np.eye(n)
            sigma = np.sqrt((x**2).mean() + eps_norm)
        jacobian = weight[row][:, None] * c / sigma  # J[j, i] = dy_j / dx_i
        y = jacobian @ x + bias[row]
        out[row] = x * (jacobian.T @ divide(r[row], y, eps))
        values[row] = y
    return out, values


def rows_of(a, trailing):
    return a.reshape(-1, int(np.prod(a.shape[-trailing:])))


def affine(parameter, rows, n, default):
    if parameter is None:
        return np.full((rows, n), default)
    return np.broadcast_to(parameter.detach().numpy().reshape(-1), (rows, n))


def normalization_input(seed, shape):
    a = rng(seed).standard_normal(shape) * 2 + 0.5
    a.reshape(-1)[3] = 0.0
    return a


def check_normalization(op, a, args, kwargs, trailing, weight, bias, centre, eps_norm, eps):
    r = rng(31).standard_normal(a.shape)
    x = tensor(a)
    y = LayerNorm(eps)(op, x, *args, **kwargs)
    with torch.no_grad():
        torch.testing.assert_close(y, op(x, *args, **kwargs), rtol=0, atol=0)
    (got,) = relevance(y, [x], r)
    rows = rows_of(a, trailing)
    n = rows.shape[1]
    expected, values = normalization_reference(
        rows,
        rows_of(r, trailing),
        affine(weight, len(rows), n, 1.0),
        affine(bias, len(rows), n, 0.0),
        centre,
        eps_norm,
        eps,
    )
    np.testing.assert_allclose(values.reshape(a.shape), y.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert_close(got, expected.reshape(a.shape))
    return got, r


def seeded(module):
    torch.manual_seed(30)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn_like(parameter))
    return module.double()


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"elementwise_affine": False},
        {"bias": False},
        {"eps": 0.1},
    ],
)
@pytest.mark.parametrize("shape", [(5,), (2, 5)])
def test_layernorm_rule_on_layer_norm_modules_equals_reference(settings, shape):
    module = seeded(nn.LayerNorm(shape, **settings))
    a = normalization_input(32, (3, 4, *shape))
    op = Operation("norm", "normalization", module, module)
    check_normalization(
        op, a, (), {}, len(shape), module.weight, module.bias, True, module.eps, 1e-6
    )


def test_layernorm_rule_on_functional_layer_norm_equals_reference():
    g = torch.Generator().manual_seed(33)
    weight = torch.randn(6, dtype=torch.float64, generator=g)
    bias = torch.randn(6, dtype=torch.float64, generator=g)
    a = normalization_input(34, (3, 6))
    op = Operation("layer_norm", "normalization", F.layer_norm)
    check_normalization(op, a, ((6,), weight, bias, 1e-3), {}, 1, weight, bias, True, 1e-3, 1e-6)
    # keywords, no affine part
    check_normalization(op, a, ((6,),), {"eps": 1e-4}, 1, None, None, True, 1e-4, 1e-6)


@pytest.mark.parametrize("eps", [None, 1e-3])
@pytest.mark.parametrize("affine_weight", [True, False])
def test_layernorm_rule_on_rms_norms_equals_reference(eps, affine_weight):
    module = seeded(nn.RMSNorm(5, eps=eps, elementwise_affine=affine_weight))
    a = normalization_input(35, (2, 3, 5))
    small = torch.finfo(torch.float64).eps if eps is None else eps
    op = Operation("norm", "normalization", module, module)
    check_normalization(op, a, (), {}, 1, module.weight, None, False, small, 1e-6)
    op = Operation("rms_norm", "normalization", F.rms_norm)
    args = ((5,), module.weight, eps)
    check_normalization(op, a, args, {}, 1, module.weight, None, False, small, 1e-6)


@pytest.mark.parametrize("affine_parameters", [True, False])
def test_layernorm_rule_on_group_norm_equals_reference(affine_parameters):
    module = seeded(nn.GroupNorm(2, 4, affine=affine_parameters))
    a = normalization_input(36, (3, 4, 2, 3))
    r = rng(31).standard_normal(a.shape)
    x = tensor(a)
    for op, args in (
        (Operation("norm", "normalization", module, module), ()),
        (
            Operation("group_norm", "normalization", F.group_norm),
            (2, module.weight, module.bias, module.eps),
        ),
    ):
        y = LayerNorm()(op, x, *args)
        (got,) = relevance(y, [x], r)
        rows = a.reshape(3 * 2, -1)  # (sample, group) rows of 2 channels x 6 positions
        if affine_parameters:
            # channel c of group g covers 6 positions: (groups, 2 * 6) per sample, 3 samples
            weight, bias = (
                np.tile(np.repeat(p.detach().numpy().reshape(2, 2), 6, axis=1), (3, 1))
                for p in (module.weight, module.bias)
            )
        else:
            weight, bias = np.ones_like(rows), np.zeros_like(rows)
        expected, values = normalization_reference(
            rows, r.reshape(rows.shape), weight, bias, True, module.eps, 1e-6
        )
        np.testing.assert_allclose(values.reshape(a.shape), y.detach().numpy(), rtol=1e-10)
        assert_close(got, expected.reshape(a.shape))


class LlamaRMSNorm(nn.Module):
    """Hugging Face's RMSNorm, as their models define it (computed in float32)."""

    def __init__(self, hidden_size, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states):
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)


class MisnamedRMSNorm(nn.Module):
    """Called an RMSNorm, but only scales."""

    def __init__(self, hidden_size):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = 1e-6

    def forward(self, x):
        return x * self.weight


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_layernorm_rule_on_a_hugging_face_rms_norm_equals_reference(dtype):
    module = seeded(LlamaRMSNorm(6, eps=1e-5)).to(dtype)
    assert foreign_kind(module) == "normalization" == module_kind(module)
    a = normalization_input(37, (2, 3, 6))
    r = rng(38).standard_normal(a.shape)
    x = torch.tensor(a, dtype=dtype, requires_grad=True)
    y = LayerNorm()(Operation("norm", "normalization", module, module), x)
    with torch.no_grad():
        torch.testing.assert_close(y, module(x), rtol=0, atol=0)
    (got,) = torch.autograd.grad(y, x, torch.tensor(r, dtype=dtype))
    # The reference in float64 from the values the module was given.
    rows = x.detach().double().numpy().reshape(-1, 6)
    given_r = torch.tensor(r, dtype=dtype).double().numpy().reshape(rows.shape)
    weight = affine(module.weight.double(), len(rows), 6, 1.0)
    expected, _ = normalization_reference(
        rows, given_r, weight, np.zeros_like(rows), False, 1e-5, 1e-6
    )
    tolerance = 1e-10 if dtype == torch.float64 else 1e-5
    assert_close(got.double().numpy(), expected.reshape(a.shape), atol=tolerance)


def test_layernorm_rule_warns_and_falls_back_on_a_module_that_is_no_norm():
    module = seeded(MisnamedRMSNorm(4))
    assert module_kind(module) == "normalization"
    a = normalization_input(39, (3, 4))
    r = rng(40).standard_normal(a.shape)
    x = tensor(a)
    rule = LayerNorm()
    op = Operation("norm", "normalization", module, module)
    with pytest.warns(RelscopeWarning, match="does not compute a layer or RMS norm"):
        y = rule(op, x)
    with torch.no_grad():
        torch.testing.assert_close(y, module(x), rtol=0, atol=0)
    (got,) = relevance(y, [x], r)
    w = module.weight.detach().numpy()
    # The proportional rule through the full gradient: R_i = x_i w_i R_i / stab(x_i w_i).
    assert_close(got, a * w * divide(r, a * w, 1e-6))
    x = tensor(a)
    y = rule(op, x)  # warned once per layer: no second warning (it would be an error here)
    np.testing.assert_array_equal(relevance(y, [x], r)[0], got)


def test_layernorm_rule_on_bias_free_layer_norm_conserves():
    module = seeded(nn.LayerNorm(7, bias=False))
    a = normalization_input(41, (4, 3, 7))
    r = rng(42).standard_normal(a.shape)
    x = tensor(a)
    for eps in (0.0, 1e-12):
        y = LayerNorm(eps)(Operation("norm", "normalization", module, module), x)
        (got,) = relevance(y, [x], r)
        # Without a bias y = J x, so sum_i R_i = sum_j R_j y_j / stab(y_j); the stabilizer
        # moves each output's share by at most eps / |y_j|.
        slack = (np.abs(r) * eps / np.abs(y.detach().numpy())).sum(-1)
        assert (np.abs(got.sum(-1) - r.sum(-1)) <= 1e-10 + 2 * slack).all()
        if eps == 0:
            np.testing.assert_allclose(got.sum(-1), r.sum(-1), rtol=0, atol=1e-10)


def test_layernorm_rule_on_other_normalizations_uses_the_proportional_rule():
    module = nn.InstanceNorm1d(3).double()
    a = normalization_input(43, (2, 3, 5))
    r = rng(44).standard_normal(a.shape)
    x = tensor(a)
    op = Operation("norm", "normalization", module, module)
    got = relevance(LayerNorm()(op, x), [x], r)[0]
    x2 = tensor(a)
    np.testing.assert_array_equal(got, relevance(Norm()(op, x2), [x2], r)[0])


# -------------------------------------------------------------------------------- scale
@pytest.mark.parametrize(
    ("function", "constant_first"),
    [
        (operator.truediv, False),
        (torch.div, False),
        (operator.mul, False),
        (operator.mul, True),
        (torch.mul, False),
        (_method("div"), False),
    ],
)
def test_scale_rule_passes_relevance_unchanged(function, constant_first):
    a = rng(50).standard_normal((3, 4))
    a[0] = 0.0  # also where x = 0
    r = rng(51).standard_normal(a.shape)
    c = 0.125 if function in (operator.mul, torch.mul) else 8.0
    x = tensor(a)
    args = (c, x) if constant_first else (x, c)
    y = Scale()(Operation("scale", "scale", function), *args)
    with torch.no_grad():
        torch.testing.assert_close(y, x / 8.0, rtol=0, atol=0)
    (got,) = relevance(y, [x], r)
    np.testing.assert_array_equal(got, r)


def test_scale_rule_with_two_relevant_operands_is_the_proportional_split():
    g = rng(52)
    a, b = g.standard_normal((3, 4)), g.standard_normal((3, 4)) + 3.0
    a[0, 0] = 0.0
    r = g.standard_normal(a.shape)
    x, w = tensor(a), tensor(b)
    y = Scale()(Operation("mul", "scale", torch.mul), x, w)
    z = a * b
    got_a, got_b = relevance(y, [x, w], r)
    # R_k = x_k dz/dx_k R / stab(z): each factor gets z R / stab(z).
    assert_close(got_a, z * divide(r, z, 1e-6))
    assert_close(got_b, z * divide(r, z, 1e-6))
    x, w = tensor(a), tensor(b)
    y = Scale()(Operation("div", "scale", operator.truediv), x, w)
    z = a / b
    got_a, got_b = relevance(y, [x, w], r)
    assert_close(got_a, z * divide(r, z, 1e-6))
    assert_close(got_b, -z * divide(r, z, 1e-6))  # b * (-a / b^2) R / stab(z)


def test_scale_rule_by_a_broadcasting_constant_is_the_proportional_split():
    g = rng(53)
    a, c = g.standard_normal(4), g.standard_normal((3, 4))
    r = g.standard_normal((3, 4))
    x = tensor(a)
    y = Scale()(Operation("mul", "scale", torch.mul), x, torch.as_tensor(c))
    z = a * c
    (got,) = relevance(y, [x], r)
    assert_close(got, (z * divide(r, z, 1e-6)).sum(0))


# ----------------------------------------------------------------------------- constant
@pytest.mark.parametrize(
    ("op", "args"),
    [
        (Operation("softmax", "softmax", torch.softmax), (-1,)),
        (Operation("softmax", "softmax", attention_softmax), ()),
        (Operation("matmul", "matmul", torch.matmul), ("second",)),
    ],
)
def test_constant_rule_keeps_the_value_and_passes_no_relevance(op, args):
    g = rng(54)
    a = g.standard_normal((2, 3, 3))
    x = tensor(a)
    if args == ("second",):
        args = (tensor(g.standard_normal((2, 3, 3))),)
    y = Constant()(op, x, *args)
    with torch.no_grad():
        torch.testing.assert_close(y, op(x, *args), rtol=0, atol=0)
    assert not y.requires_grad
    # Downstream, the constant carries no relevance back: only the direct path does.
    total = (y * x).sum()
    (got,) = torch.autograd.grad(total, x)
    np.testing.assert_array_equal(got.numpy(), y.numpy())
