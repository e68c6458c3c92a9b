"""Attention written out (relscope.attribution.lrp.attention) against PyTorch's fused forms,
and LRP through attention: the engine's AttnLRP relevance against a float64 reference
written by hand, and CP-LRP's conservation on a small bias-free transformer."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from relscope.attribution import LRP
from relscope.attribution.lrp.attention import multi_head_attention, scaled_dot_product_attention
from relscope.attribution.lrp.composites import get_composite
from relscope.errors import ConfigError

B, T, S, E = 2, 4, 5, 8


def generator(seed):
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed, dtype=torch.float64):
    return torch.randn(*shape, generator=generator(seed), dtype=dtype)


def tolerance(dtype):
    return {"rtol": 0, "atol": 1e-12 if dtype == torch.float64 else 1e-5}


# ----------------------------------------------- scaled_dot_product_attention written out
def sdpa_mask(kind, dtype, heads=4):
    g = generator(1)
    if kind == "bool":
        mask = torch.rand(T, S, generator=g) > 0.4
        mask[:, 0] = True
        return {"attn_mask": mask}
    if kind == "bool_fully_masked_row":
        mask = torch.rand(T, S, generator=g) > 0.4
        mask[2] = False  # the fused kernels give zeros for such a row
        return {"attn_mask": mask}
    if kind == "float":
        return {"attn_mask": torch.randn(B, heads, T, S, generator=g, dtype=dtype)}
    if kind == "float_broadcast":
        mask = torch.randn(T, S, generator=g, dtype=dtype)
        mask[1, 2] = float("-inf")
        return {"attn_mask": mask}
    if kind == "causal":
        return {"is_causal": True}
    if kind == "scale":
        return {"scale": 0.37}
    return {}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    "kind", ["none", "bool", "bool_fully_masked_row", "float", "float_broadcast", "causal", "scale"]
)
def test_scaled_dot_product_attention_equals_the_fused_one(kind, dtype):
    q = randn(B, 4, T, 6, seed=2, dtype=dtype)
    k = randn(B, 4, S, 6, seed=3, dtype=dtype)
    v = randn(B, 4, S, 3, seed=4, dtype=dtype)
    options = sdpa_mask(kind, dtype)
    got = scaled_dot_product_attention(q, k, v, **options)
    expected = F.scaled_dot_product_attention(q, k, v, **options)
    assert got.dtype == dtype and torch.isfinite(got).all()
    torch.testing.assert_close(got, expected, **tolerance(dtype))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("options", [{}, {"is_causal": True}, {"scale": 0.5}])
def test_scaled_dot_product_attention_with_grouped_key_value_heads(options, dtype):
    q = randn(B, 6, T, 4, seed=5, dtype=dtype)
    k = randn(B, 2, S, 4, seed=6, dtype=dtype)  # 3 query heads share each key/value head
    v = randn(B, 2, S, 4, seed=7, dtype=dtype)
    got = scaled_dot_product_attention(q, k, v, enable_gqa=True, **options)
    expected = F.scaled_dot_product_attention(q, k, v, enable_gqa=True, **options)
    torch.testing.assert_close(got, expected, **tolerance(dtype))


# ------------------------------------------------------------ nn.MultiheadAttention written out
def attention_module(kind, batch_first, bias=True, heads=2, dtype=torch.float64):
    torch.manual_seed(8)
    extra = {"kdim": 6, "vdim": 3} if kind == "cross_dims" else {}
    module = nn.MultiheadAttention(E, heads, bias=bias, batch_first=batch_first, **extra)
    return module.to(dtype).eval()


def attention_inputs(kind, batch_first, dtype=torch.float64):
    x = randn(B, T, E, seed=9, dtype=dtype)
    if kind == "self":
        q = k = v = x
    elif kind == "cross_dims":
        q, k, v = x, randn(B, S, 6, seed=10, dtype=dtype), randn(B, S, 3, seed=11, dtype=dtype)
    else:  # same dimensions, other tensors: the sliced in-projection
        q, k = x, randn(B, S, E, seed=10, dtype=dtype)
        v = k if kind == "cross" else randn(B, S, E, seed=11, dtype=dtype)
    if not batch_first:
        q, k, v = (t.transpose(0, 1) for t in (q, k, v))
        if kind == "self":
            k = v = q
        elif kind == "cross":
            v = k
    return q, k, v


def attention_masks(kind, source, dtype=torch.float64):
    g = generator(12)
    padding = torch.rand(B, source, generator=g) < 0.3
    padding[:, 0] = False
    if kind == "padding_bool":
        return {"key_padding_mask": padding}
    if kind == "padding_float":
        return {"key_padding_mask": padding.to(dtype) * -1e4}
    if kind == "attn_2d_bool":
        mask = torch.rand(T, source, generator=g) < 0.3
        mask[:, 0] = False
        return {"attn_mask": mask}
    if kind == "attn_2d_float":
        return {"attn_mask": torch.randn(T, source, generator=g, dtype=dtype)}
    if kind == "attn_3d":
        return {"attn_mask": torch.randn(B * 2, T, source, generator=g, dtype=dtype)}
    if kind == "both":
        mask = torch.rand(T, source, generator=g) < 0.3
        mask[:, 0] = False
        return {"attn_mask": mask, "key_padding_mask": padding}
    if kind == "causal":
        mask = torch.ones(T, source, dtype=torch.bool).triu(1)
        return {"attn_mask": mask, "is_causal": True}
    return {}


def check_attention(module, q, k, v, options, dtype=torch.float64):
    with torch.no_grad():
        expected, expected_weights = module(q, k, v, **options)
        got, weights = multi_head_attention(module, q, k, v, **options)
    torch.testing.assert_close(got, expected, **tolerance(dtype))
    if expected_weights is None:
        assert weights is None
    else:
        torch.testing.assert_close(weights, expected_weights, **tolerance(dtype))


MASKS = [
    "none", "padding_bool", "padding_float", "attn_2d_bool", "attn_2d_float", "attn_3d",
    "both", "causal",
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "masks"),
    [
        (kind, masks)
        for kind in ("self", "cross", "cross_qkv", "cross_dims")
        for masks in MASKS
        if masks != "causal" or kind == "self"  # a causal mask is square
    ],
)
@pytest.mark.parametrize("batch_first", [True, False])
def test_multi_head_attention_equals_the_module(batch_first, kind, masks):
    source = T if kind == "self" else S
    module = attention_module(kind, batch_first)
    q, k, v = attention_inputs(kind, batch_first)
    check_attention(module, q, k, v, attention_masks(masks, source))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(
    "weights",
    [{"need_weights": True}, {"need_weights": True, "average_attn_weights": False},
     {"need_weights": False}],
)  # fmt: skip
@pytest.mark.parametrize("kind", ["self", "cross_dims"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_multi_head_attention_weights_and_bias_equal_the_module(kind, weights, bias, dtype):
    module = attention_module(kind, True, bias=bias, dtype=dtype)
    q, k, v = attention_inputs(kind, True, dtype)
    masks = attention_masks("padding_bool", T if kind == "self" else S)
    check_attention(module, q, k, v, {**weights, **masks}, dtype)


@pytest.mark.parametrize("option", [{"add_bias_kv": True}, {"add_zero_attn": True}])
def test_multi_head_attention_refuses_extra_keys_in_one_line(option):
    module = nn.MultiheadAttention(E, 2, batch_first=True, **option)
    x = torch.randn(B, T, E)
    with pytest.raises(ConfigError) as error:
        multi_head_attention(module, x, x, x)
    assert "\n" not in str(error.value)
    assert "add_bias_kv" in str(error.value)


# -------------------------------------------------------------------- through the engine
class FunctionalAttention(nn.Module):
    """One head through F.scaled_dot_product_attention, explicit q/k/v maps."""

    def __init__(self, causal=False, mask=None, tokens=T, embed=6, head=4, classes=3):
        super().__init__()
        self.q, self.k, self.v = (nn.Linear(embed, head) for _ in range(3))
        self.head = nn.Linear(tokens * head, classes)
        self.causal = causal
        self.register_buffer("mask", mask)  # bool: the entries that take part

    def forward(self, x):
        a = F.scaled_dot_product_attention(
            self.q(x), self.k(x), self.v(x), attn_mask=self.mask, is_causal=self.causal
        )
        return self.head(a.flatten(1))

    def allowed(self):
        allowed = np.ones((T, T), dtype=bool)
        if self.causal:
            allowed = np.tril(allowed)
        if self.mask is not None:
            allowed = allowed & self.mask.numpy()
        return allowed

    def parameters_for_reference(self):
        return {
            "q": (self.q.weight, self.q.bias),
            "k": (self.k.weight, self.k.bias),
            "v": (self.v.weight, self.v.bias),
            "out": None,
            "head": (self.head.weight, self.head.bias),
            "heads": 1,
        }


class ModuleAttention(nn.Module):
    """nn.MultiheadAttention self-attention, then a dense classifier on all tokens."""

    def __init__(self, heads=1, batch_first=True, bias=True, tokens=T, classes=3):
        super().__init__()
        self.attention = nn.MultiheadAttention(E, heads, batch_first=batch_first, bias=bias)
        self.head = nn.Linear(tokens * E, classes)
        self.batch_first = batch_first

    def forward(self, x):
        if not self.batch_first:
            x = x.transpose(0, 1)
        a, _ = self.attention(x, x, x)
        if not self.batch_first:
            a = a.transpose(0, 1)
        return self.head(a.flatten(1))

    def parameters_for_reference(self):
        m = self.attention
        w, b = m.in_proj_weight, m.in_proj_bias
        split = [
            (w[i * E : (i + 1) * E], None if b is None else b[i * E : (i + 1) * E])
            for i in range(3)
        ]
        return {
            "q": split[0],
            "k": split[1],
            "v": split[2],
            "out": (m.out_proj.weight, m.out_proj.bias),
            "head": (self.head.weight, self.head.bias),
            "heads": m.num_heads,
        }


def stab(d, eps):
    return d + eps * np.where(d >= 0, 1.0, -1.0)


def numpy_parameters(model):
    out = {}
    for name, value in model.parameters_for_reference().items():
        if isinstance(value, tuple):
            weight, bias = value
            value = (
                weight.detach().numpy(),
                None if bias is None else bias.detach().numpy(),
            )
        out[name] = value
    return out


def reference_attnlrp(model, x, target, eps=1e-6):
    """AttnLRP for ``x (B, T, E) -> q, k, v maps -> heads -> softmax(q k^T / sqrt(d)) v ->
    out map -> flatten -> classifier`` in NumPy float64, every step written out:

    * dense layers, epsilon: ``R_i = x_i sum_j W_ji R_j / stab(z_j)`` (bias in ``z``);
    * a product of two activations, epsilon and the uniform split:
      ``R_a[i,k] = 1/2 sum_j a_ik b_kj R_ij / stab(z_ij)`` (likewise ``R_b``);
    * the softmax: ``R_z = z (R_s - s sum_j R_s)``, 0 where masked;
    * reshapes and head splits move relevance with the values.
    """
    p = numpy_parameters(model)
    heads = p["heads"]
    batch, tokens, _ = x.shape

    def dense(a, layer):
        weight, bias = layer
        return a @ weight.T + (0.0 if bias is None else bias)

    def dense_relevance(a, layer, r):
        return a * ((r / stab(dense(a, layer), eps)) @ layer[0])

    def split(t):  # (B, T, D) -> (B, H, T, d)
        return t.reshape(batch, tokens, heads, -1).transpose(0, 2, 1, 3)

    def merge(t):
        return t.transpose(0, 2, 1, 3).reshape(batch, tokens, -1)

    def product_relevance(a, b, r):
        q = r / stab(np.einsum("...ik,...kj->...ij", a, b), eps)
        return (
            0.5 * np.einsum("...ik,...kj,...ij->...ik", a, b, q),
            0.5 * np.einsum("...ik,...kj,...ij->...kj", a, b, q),
        )

    # forward
    q, k, v = (dense(x, p[name]) for name in "qkv")
    qh, kh, vh = split(q), split(k), split(v)
    scale = qh.shape[-1] ** -0.5
    scores = scale * np.einsum("bhtd,bhsd->bhts", qh, kh)
    allowed = model.allowed() if hasattr(model, "allowed") else True
    logits = np.where(allowed, scores, -np.inf)
    taking_part = np.isfinite(logits).any(-1, keepdims=True)  # a fully masked row gives 0
    e = np.exp(logits - np.where(taking_part, logits.max(-1, keepdims=True), 0.0))
    s = np.where(taking_part, e / np.where(taking_part, e.sum(-1, keepdims=True), 1.0), 0.0)
    mixed = merge(np.einsum("bhts,bhsd->bhtd", s, vh))
    projected = mixed if p["out"] is None else dense(mixed, p["out"])
    flat = projected.reshape(batch, -1)
    logit = dense(flat, p["head"])
    # backward
    r = np.zeros_like(logit)
    r[np.arange(batch), target] = logit[np.arange(batch), target]  # relevance = the logit
    r_flat = dense_relevance(flat, p["head"], r)
    r_projected = r_flat.reshape(projected.shape)
    r_mixed = r_projected if p["out"] is None else dense_relevance(mixed, p["out"], r_projected)
    r_s, r_vh = product_relevance(s, vh, split(r_mixed))
    r_scores = np.where(allowed, scores * (r_s - s * r_s.sum(-1, keepdims=True)), 0.0)
    r_qh, r_kt = product_relevance(qh, scale * kh.transpose(0, 1, 3, 2), r_scores)
    r_q, r_k, r_v = merge(r_qh), merge(r_kt.transpose(0, 1, 3, 2)), merge(r_vh)
    relevance = sum(
        dense_relevance(x, p[name], part) for name, part in zip("qkv", (r_q, r_k, r_v), strict=True)
    )
    return logit, relevance


TOKEN_MASK = torch.tensor(
    [[1, 0, 1, 1], [0, 0, 0, 0], [1, 1, 0, 1], [0, 1, 1, 1]], dtype=torch.bool
)  # the second query takes part nowhere: its output is zero

ENGINE_MODELS = {
    "sdpa": lambda: FunctionalAttention(),
    "sdpa_causal": lambda: FunctionalAttention(causal=True),
    "sdpa_bool_mask": lambda: FunctionalAttention(mask=TOKEN_MASK),
    "mha_one_head": lambda: ModuleAttention(heads=1),
    "mha_two_heads": lambda: ModuleAttention(heads=2),
    "mha_sequence_first": lambda: ModuleAttention(heads=2, batch_first=False),
    "mha_no_bias": lambda: ModuleAttention(heads=1, bias=False),
}


def engine_input(name):
    embed = 6 if name.startswith("sdpa") else E
    x = randn(3, T, embed, seed=13)
    x[0, 1] = 0.0  # a silent token
    return x


@pytest.mark.parametrize("name", sorted(ENGINE_MODELS))
def test_attnlrp_through_attention_equals_the_hand_written_reference(name):
    torch.manual_seed(14)
    model = ENGINE_MODELS[name]().double().eval()
    x = engine_input(name)
    target = torch.tensor([0, 2, 1])
    lrp = LRP(model, "attnlrp")
    kinds = {layer.kind for layer in lrp.layers}
    assert {"softmax", "matmul"} <= kinds
    assert "attention" not in kinds
    output, relevance = lrp(x, target)
    with torch.no_grad():
        torch.testing.assert_close(output, model(x), rtol=0, atol=1e-12)
    logit, expected = reference_attnlrp(model, x.numpy(), target.numpy())
    np.testing.assert_allclose(output.numpy(), logit, rtol=0, atol=1e-12)
    assert torch.isfinite(relevance).all()
    scale = np.abs(expected).max()
    np.testing.assert_allclose(relevance.numpy() / scale, expected / scale, rtol=0, atol=1e-8)
    assert np.abs(relevance.numpy()[0, 1]).max() == 0  # the silent token gets nothing


def test_attnlrp_rules_of_written_out_attention():
    model = ModuleAttention(heads=2).double()
    rules = {(layer.kind, type(rule).__name__) for layer, rule in LRP(model, "attnlrp").rules()}
    assert ("softmax", "Softmax") in rules and ("matmul", "Bilinear") in rules
    rules = {(layer.kind, type(rule).__name__) for layer, rule in LRP(model, "cp_lrp").rules()}
    assert ("softmax", "Constant") in rules and ("matmul", "Bilinear") in rules


# --------------------------------------------------------- CP-LRP on a bias-free transformer
class Block(nn.Module):
    """Pre-LN transformer block without biases."""

    def __init__(self, embed, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed, bias=False)
        self.attention = nn.MultiheadAttention(embed, heads, bias=False, batch_first=True)
        self.norm2 = nn.LayerNorm(embed, bias=False)
        self.fc1 = nn.Linear(embed, 2 * embed, bias=False)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(2 * embed, embed, bias=False)

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attention(h, h, h, need_weights=False)[0]
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class BiasFreeTransformer(nn.Module):
    def __init__(self, embed=8, heads=2, classes=3):
        super().__init__()
        self.blocks = nn.Sequential(Block(embed, heads), Block(embed, heads))
        self.norm = nn.LayerNorm(embed, bias=False)
        self.head = nn.Linear(embed, classes, bias=False)

    def forward(self, x):
        return self.head(self.norm(self.blocks(x)).mean(1))


def transformer_and_input():
    torch.manual_seed(15)
    model = BiasFreeTransformer().double().eval()
    return model, randn(4, 6, 8, seed=16)


def test_cp_lrp_conserves_on_a_bias_free_transformer():
    model, x = transformer_and_input()
    lrp = LRP(model, get_composite("cp_lrp", eps=1e-12))
    kinds = {layer.kind for layer in lrp.layers}
    assert {"softmax", "matmul", "normalization", "sum"} <= kinds and "attention" not in kinds
    output, relevance = lrp(x)
    with torch.no_grad():
        torch.testing.assert_close(output, model(x), rtol=0, atol=1e-12)
    logit = output.max(1).values
    total = relevance.sum((1, 2))
    torch.testing.assert_close(total, logit, rtol=1e-6, atol=0)


def test_attnlrp_on_a_bias_free_transformer_is_finite_but_not_conservative():
    model, x = transformer_and_input()
    output, relevance = LRP(model, "attnlrp", eps=1e-12)(x)
    assert torch.isfinite(relevance).all()
    logit = output.max(1).values
    # The softmax rule's bias term takes relevance out of (or into) the network.
    assert not torch.allclose(relevance.sum((1, 2)), logit, rtol=1e-3)
