"""AttnLRP's rules against independent float64 references (explicit formulas), the written-
out attention against the fused forms, and conservation of CP-LRP on a bias-free
transformer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from relscope.attribution import LRP, get_composite
from relscope.attribution.lrp.attention import (
    attention_scores,
    multi_head_attention,
    scaled_dot_product_attention,
)
from relscope.attribution.lrp.layers import Operation
from relscope.attribution.lrp.transformer_rules import (
    Bilinear,
    Constant,
    LayerNorm,
    Scale,
    Softmax,
)
from relscope.errors import ConfigError, RelscopeWarning

EPS = 1e-6


def stab(d: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    return d + eps * torch.where(d >= 0, 1.0, -1.0).to(d.dtype)


def relevance(rule, operation, inputs, extra=(), out_relevance=None, **kwargs):
    leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
    y = rule(operation, *leaves, *extra, **kwargs)
    r = torch.randn_like(y) if out_relevance is None else out_relevance
    grads = torch.autograd.grad(y, leaves, r, allow_unused=True)
    return y, r, grads


# ------------------------------------------------------------------------------- softmax
def softmax_reference(x: torch.Tensor, r: torch.Tensor, dim: int) -> torch.Tensor:
    s = torch.exp(x - x.amax(dim, keepdim=True))
    s = s / s.sum(dim, keepdim=True)
    out = x * (r - s * r.sum(dim, keepdim=True))
    return torch.where(torch.isfinite(x), out, torch.zeros_like(out))


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize(
    "form",
    ["function", "module", "method"],
)
def test_softmax_rule_is_deep_taylor_at_the_input(dim, form):
    torch.manual_seed(dim + 3)
    x = torch.randn(3, 4, 5, dtype=torch.float64)
    x[0, 0, 0] = 0.0
    if form == "function":
        operation, extra, kwargs = Operation("s", "softmax", F.softmax), (), {"dim": dim}
    elif form == "module":
        module = nn.Softmax(dim)
        operation, extra, kwargs = Operation("s", "softmax", module, module), (), {}
    else:
        operation = Operation("s", "softmax", lambda t, d: t.softmax(d))
        extra, kwargs = (dim,), {}
    y, r, (got,) = relevance(Softmax(), operation, [x], extra, **kwargs)
    torch.testing.assert_close(y, torch.softmax(x, dim))
    torch.testing.assert_close(got, softmax_reference(x, r, dim))
    # The documented non-conservation: sum R_in = sum x R - (sum x s)(sum R) per row.
    s = torch.softmax(x, dim)
    expected = (x * r).sum(dim) - (x * s).sum(dim) * r.sum(dim)
    torch.testing.assert_close(got.sum(dim), expected)


def test_softmax_rule_gives_masked_entries_nothing_and_never_nan():
    x = torch.randn(2, 3, 6, dtype=torch.float64)
    x[..., 4:] = float("-inf")  # masked keys
    x[1, 2, :] = float("-inf")  # a row masked everywhere
    operation = Operation("s", "attention_softmax", lambda t: torch.nan_to_num(t.softmax(-1)))
    operation.function.relscope_softmax_dim = -1
    _y, r, (got,) = relevance(Softmax(), operation, [x])
    assert torch.isfinite(got).all()
    assert got[..., 4:].abs().max() == 0 and got[1, 2].abs().max() == 0
    torch.testing.assert_close(got[0], softmax_reference(x[0], r[0], -1))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 7), st.floats(0.01, 30.0), st.integers(0, 2**31 - 1))
def test_softmax_rule_property(rows, width, spread, seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, width, generator=generator, dtype=torch.float64) * spread
    _y, r, (got,) = relevance(Softmax(), Operation("s", "softmax", F.softmax), [x], dim=1)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, softmax_reference(x, r, 1), rtol=1e-9, atol=1e-9)


def test_softmax_without_an_axis_is_a_one_line_error():
    with pytest.raises(ConfigError, match="explicit dim"):
        relevance(Softmax(), Operation("s", "softmax", F.softmax), [torch.rand(2, 3)])


def test_constant_rule_passes_no_relevance():
    x = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    y = Constant()(Operation("s", "softmax", F.softmax), x, dim=1)
    torch.testing.assert_close(y, torch.softmax(x, 1).detach())
    assert not y.requires_grad


# ------------------------------------------------------------------------------ products
def test_bilinear_rule_on_attention_like_matmuls():
    torch.manual_seed(0)
    a = torch.randn(2, 3, 5, 4, dtype=torch.float64)
    b = torch.randn(2, 3, 4, 6, dtype=torch.float64)
    a[0, 0, 0] = 0.0
    _y, r, (ra, rb) = relevance(Bilinear(), Operation("m", "matmul", torch.matmul), [a, b])
    z = a @ b
    q = r / stab(z)
    expected_a = 0.5 * torch.einsum("...ik,...kj,...ij->...ik", a, b, q)
    expected_b = 0.5 * torch.einsum("...ik,...kj,...ij->...kj", a, b, q)
    torch.testing.assert_close(ra, expected_a)
    torch.testing.assert_close(rb, expected_b)


def test_bilinear_rule_conserves_without_stabilizer_and_recomputes_exactly():
    torch.manual_seed(1)
    q = torch.randn(2, 12, 3, dtype=torch.float64)  # scores 12 x 12 > inputs: recomputed
    k = torch.randn(2, 12, 3, dtype=torch.float64)
    operation = Operation("scores", "matmul", attention_scores)
    y, r, (rq, rk) = relevance(Bilinear(0.0), operation, [q, k], (0.5,))
    torch.testing.assert_close(y, (q @ k.transpose(-2, -1)) * 0.5)
    torch.testing.assert_close(rq.sum() + rk.sum(), r.sum())
    ratio = r / (q @ k.transpose(-2, -1) * 0.5)
    torch.testing.assert_close(rq, 0.5 * q * ((ratio * 0.5) @ k))


def test_bilinear_rule_with_one_relevant_operand_is_epsilon():
    torch.manual_seed(2)
    attention = torch.softmax(torch.randn(4, 4, dtype=torch.float64), -1)  # a constant
    v = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    y = Bilinear()(Operation("m", "matmul", torch.matmul), attention, v)
    r = torch.randn_like(y)
    (got,) = torch.autograd.grad(y, v, r)
    expected = v.detach() * (attention.T @ (r / stab(attention @ v.detach())))
    torch.testing.assert_close(got, expected)


def test_scale_rule_hands_relevance_on_unchanged():
    x = torch.tensor([[0.0, 2.0, -3.0]], dtype=torch.float64)
    y, r, (got,) = relevance(Scale(), Operation("d", "scale", torch.div), [x], (8.0,))
    torch.testing.assert_close(y, x / 8)
    torch.testing.assert_close(got, r)


# ------------------------------------------------------------------------- normalization
def layer_norm_reference(x, r, weight, bias, eps, rms=False, stabilizer=EPS):
    """Epsilon on y = C x / sigma * w + b with sigma constant, by the explicit Jacobian."""
    n = x.shape[-1]
    if rms:
        sigma = torch.sqrt((x * x).mean(-1, keepdim=True) + eps)
        centring = torch.eye(n, dtype=x.dtype)
    else:
        sigma = torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + eps)
        centring = torch.eye(n, dtype=x.dtype) - 1.0 / n
    w = torch.ones(n, dtype=x.dtype) if weight is None else weight
    b = torch.zeros(n, dtype=x.dtype) if bias is None else bias
    jacobian = centring[None] * w[None, None, :] / sigma[..., None]  # J[., i, j] = dy_j/dx_i
    y = torch.einsum("bij,bi->bj", jacobian, x) + b
    return x * torch.einsum("bij,bj->bi", jacobian, r / stab(y, stabilizer)), y


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.LayerNorm(6),
        lambda: nn.LayerNorm(6, elementwise_affine=False),
        lambda: nn.LayerNorm(6, bias=False),
        lambda: nn.RMSNorm(6, eps=1e-5),
    ],
)
def test_layer_and_rms_norm_hold_the_normalizer_constant(make):
    torch.manual_seed(3)
    module = make().double()
    if module.weight is not None:
        with torch.no_grad():
            module.weight.normal_()
            if getattr(module, "bias", None) is not None:
                module.bias.normal_()
    x = torch.randn(5, 6, dtype=torch.float64)
    x[0] = 0.0
    operation = Operation("n", "normalization", module, module)
    y, r, (got,) = relevance(LayerNorm(), operation, [x])
    rms = isinstance(module, nn.RMSNorm)
    eps = module.eps
    bias = getattr(module, "bias", None)
    expected, value = layer_norm_reference(x, r, module.weight, bias, eps, rms)
    torch.testing.assert_close(y, module(x).detach())
    torch.testing.assert_close(value, module(x).detach())
    torch.testing.assert_close(got, expected)
    assert torch.isfinite(got).all()


def test_functional_layer_norm_and_conservation_without_bias():
    torch.manual_seed(4)
    x = torch.randn(4, 8, dtype=torch.float64)
    weight = torch.randn(8, dtype=torch.float64)
    operation = Operation("n", "normalization", F.layer_norm)
    _y, r, (got,) = relevance(LayerNorm(1e-12), operation, [x], ((8,), weight, None, 1e-5))
    torch.testing.assert_close(got.sum(1), r.sum(1), rtol=1e-9, atol=1e-12)
    expected, _ = layer_norm_reference(x, r, weight, None, 1e-5, stabilizer=1e-12)
    torch.testing.assert_close(got, expected)


class LlamaRMSNorm(nn.Module):  # the Hugging Face layout: known by its class name
    def __init__(self, size: int, offset: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(size, dtype=torch.float64))
        self.variance_epsilon = 1e-6
        self.offset = offset

    def forward(self, x):
        variance = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
        normed = x * torch.rsqrt(variance + self.variance_epsilon).to(x.dtype)
        return (self.weight + self.offset) * normed


def test_other_libraries_rms_norm_by_name_and_a_mismatch_warns():
    torch.manual_seed(5)
    x = torch.randn(3, 6, dtype=torch.float64)
    module = LlamaRMSNorm(6)
    operation = Operation("n", "normalization", module, module)
    _, r, (got,) = relevance(LayerNorm(), operation, [x])
    expected, _ = layer_norm_reference(x, r, module.weight.detach(), None, 1e-6, rms=True)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)  # float32 statistics
    odd = LlamaRMSNorm(6, offset=1.0)  # (1 + w): another formula
    with pytest.warns(RelscopeWarning, match="does not compute a layer or RMS norm"):
        relevance(LayerNorm(), Operation("n", "normalization", odd, odd), [x])


# --------------------------------------------------------------------- attention written out
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"is_causal": True},
        {"scale": 0.3},
        {"mask": "bool"},
        {"mask": "float"},
        {"enable_gqa": True},
    ],
)
def test_written_out_scaled_dot_product_attention_equals_the_fused_one(options):
    torch.manual_seed(6)
    q = torch.randn(2, 4, 5, 8, dtype=torch.float64)
    heads = 2 if options.get("enable_gqa") else 4
    k = torch.randn(2, heads, 7, 8, dtype=torch.float64)
    v = torch.randn(2, heads, 7, 3, dtype=torch.float64)
    options = dict(options)
    mask = options.pop("mask", None)
    if mask == "bool":
        options["attn_mask"] = torch.rand(5, 7) > 0.3
        options["attn_mask"][:, 0] = True
    elif mask == "float":
        options["attn_mask"] = torch.randn(2, 1, 5, 7, dtype=torch.float64)
    if options.get("is_causal"):
        k, v = k[:, :, :5], v[:, :, :5]
    expected = F.scaled_dot_product_attention(q, k, v, **options)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, **options), expected)


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("case", ["self", "cross", "kdim", "masks", "weights", "no_bias"])
def test_written_out_multi_head_attention_equals_the_module(batch_first, case):
    torch.manual_seed(7)
    kdim = 5 if case == "kdim" else None
    module = nn.MultiheadAttention(
        8, 2, batch_first=batch_first, kdim=kdim, vdim=kdim, bias=case != "no_bias"
    ).double().eval()  # fmt: skip
    shape = (3, 6, 8) if batch_first else (6, 3, 8)
    x = torch.randn(*shape, dtype=torch.float64)
    other = torch.randn(*shape[:2], kdim or 8, dtype=torch.float64)
    kwargs = {"need_weights": case == "weights"}
    if case == "self" or case == "no_bias" or case == "weights":
        args = (x, x, x)
    else:
        args = (x, other, other)
    if case == "masks":
        padding = torch.zeros(3, 6, dtype=torch.bool)
        padding[1, 4:] = True
        blocked = torch.rand(6, 6) > 0.7
        blocked.fill_diagonal_(False)
        kwargs.update(key_padding_mask=padding, attn_mask=blocked)
    out, weights = multi_head_attention(module, *args, **kwargs)
    expected, expected_weights = module(*args, **kwargs)
    torch.testing.assert_close(out, expected)
    if case == "weights":
        torch.testing.assert_close(weights, expected_weights)


def test_multi_head_attention_with_bias_kv_is_a_one_line_error():
    module = nn.MultiheadAttention(8, 2, add_bias_kv=True)
    x = torch.randn(4, 1, 8)
    with pytest.raises(ConfigError, match="add_bias_kv"):
        multi_head_attention(module, x, x, x)


class OneHead(nn.Module):
    """One single-head self-attention layer and a linear head, bias-free."""

    def __init__(self, width: int = 6, classes: int = 3) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(width, 1, bias=False, batch_first=True)
        self.head = nn.Linear(width, classes, bias=False)

    def forward(self, x):
        out, _ = self.attention(x, x, x, need_weights=False)
        return self.head(out.mean(1))


def one_head_reference(model: OneHead, x: torch.Tensor, target: torch.Tensor, softmax: bool):
    """AttnLRP (or CP-LRP) for OneHead by hand: explicit epsilon, bilinear and softmax
    formulas in float64, the relevance handed back layer by layer."""
    w_in = model.attention.in_proj_weight.detach()
    w_q, w_k, w_v = w_in.chunk(3)
    w_o = model.attention.out_proj.weight.detach()
    w_h = model.head.weight.detach()
    width = x.shape[-1]
    q, k, v = x @ w_q.T, x @ w_k.T, x @ w_v.T
    scores = q @ k.transpose(1, 2) / width**0.5
    a = torch.softmax(scores, -1)
    context = a @ v
    o = context @ w_o.T
    pooled = o.mean(1)
    logits = pooled @ w_h.T
    r_logits = torch.zeros_like(logits).scatter_(
        1, target[:, None], logits.gather(1, target[:, None])
    )
    r_pooled = pooled * ((r_logits / stab(logits)) @ w_h)
    tokens = x.shape[1]
    r_o = (o / tokens) * (r_pooled / stab(pooled))[:, None, :]  # mean: the norm rule
    r_context = context * ((r_o / stab(o)) @ w_o)
    ratio = r_context / stab(context)
    share = 0.5 if softmax else 1.0
    r_a = share * a * (ratio @ v.transpose(1, 2))
    r_v = share * v * (a.transpose(1, 2) @ ratio)
    r_x = x * ((r_v / stab(v)) @ w_v)
    if softmax:
        r_scores = scores * (r_a - a * r_a.sum(-1, keepdim=True))
        ratio_s = r_scores / stab(scores)
        r_q = 0.5 * q * ((ratio_s / width**0.5) @ k)
        r_k = 0.5 * k * ((ratio_s / width**0.5).transpose(1, 2) @ q)
        r_x = r_x + x * ((r_q / stab(q)) @ w_q) + x * ((r_k / stab(k)) @ w_k)
    return logits, r_x


@pytest.mark.parametrize("composite", ["attnlrp", "cp_lrp"])
def test_one_attention_layer_equals_the_hand_written_reference(composite):
    torch.manual_seed(8)
    model = OneHead().double().eval()
    x = torch.randn(2, 5, 6, dtype=torch.float64)
    target = torch.tensor([0, 2])
    with LRP(model, composite) as lrp:
        output, got = lrp(x, target)
        kinds = {layer.kind for layer in lrp.layers}
    expected_logits, expected = one_head_reference(model, x, target, composite == "attnlrp")
    assert {"softmax", "matmul"} <= kinds and "attention" not in kinds
    torch.testing.assert_close(output, expected_logits, rtol=0, atol=1e-12)
    # The in-projection is one dense layer of 3 x width outputs: epsilon there splits q, k,
    # v apart exactly as the three separate maps of the reference do.
    torch.testing.assert_close(got, expected, rtol=1e-8, atol=1e-10)


class BiasFreeTransformer(nn.Module):
    def __init__(self, width: int = 8, heads: int = 2, blocks: int = 2, classes: int = 4):
        super().__init__()
        self.blocks = nn.ModuleList()
        for _ in range(blocks):
            self.blocks.append(
                nn.ModuleDict(
                    {
                        "ln1": nn.LayerNorm(width, bias=False),
                        "attention": nn.MultiheadAttention(
                            width, heads, bias=False, batch_first=True
                        ),
                        "ln2": nn.LayerNorm(width, bias=False),
                        "mlp": nn.Sequential(
                            nn.Linear(width, 2 * width, bias=False),
                            nn.GELU(),
                            nn.Linear(2 * width, width, bias=False),
                        ),
                    }
                )
            )
        self.norm = nn.LayerNorm(width, bias=False)
        self.head = nn.Linear(width, classes, bias=False)

    def forward(self, x):
        for block in self.blocks:
            h = block["ln1"](x)
            x = x + block["attention"](h, h, h, need_weights=False)[0]
            x = x + block["mlp"](block["ln2"](x))
        return self.head(self.norm(x).mean(1))


def test_cp_lrp_conserves_on_a_bias_free_transformer():
    torch.manual_seed(9)
    model = BiasFreeTransformer().double().eval()
    x = torch.randn(3, 7, 8, dtype=torch.float64)
    with LRP(model, get_composite("cp_lrp", eps=1e-12)) as lrp:
        output, got = lrp(x)
    logit = output.max(1).values
    torch.testing.assert_close(got.sum((1, 2)), logit, rtol=1e-6, atol=0)
    with LRP(model, get_composite("attnlrp", eps=1e-12)) as lrp:
        _, with_softmax = lrp(x)
    assert torch.isfinite(with_softmax).all()
    assert not torch.allclose(with_softmax.sum((1, 2)), logit, rtol=1e-4)


def test_a_log_softmax_keeps_its_gradient():
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    for operation in (
        Operation("l", "softmax", F.log_softmax),
        Operation("l", "softmax", nn.LogSoftmax(1), nn.LogSoftmax(1)),
    ):
        y = Softmax()(operation, x, 1) if operation.module is None else Softmax()(operation, x)
        r = torch.randn_like(y)
        (got,) = torch.autograd.grad(y, x, r)
        (expected,) = torch.autograd.grad(F.log_softmax(x, 1), x, r)
        torch.testing.assert_close(got, expected)
