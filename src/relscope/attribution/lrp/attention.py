"""Attention as the operations it is made of, so that each one gets its rule.

``nn.MultiheadAttention`` (a leaf for ``torch.fx``) and ``F.scaled_dot_product_attention``
(one fused call) hide the attention matrix from the rules. While LRP's rewritten graph is
built, both are replaced by the same computation written out: in-projection (dense layers),
``attention_scores`` (``q k^T`` times the scale: a product of two activations),
``attention_softmax`` (masks and causal masking folded in: a softmax), dropout, the product
with the values and the out-projection. The user's model is never touched; outside the
rewritten graph the fused fast paths stay as they are.

The written-out forms equal the fused ones to rounding (``tests/attribution/
test_attention.py``). Every function here works on tensors and on ``torch.fx`` proxies; the
three marked as leaves are recorded as single operations by the tracer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn
from torch.overrides import handle_torch_function, has_torch_function

from relscope.errors import ConfigError

__all__ = [
    "attention_logits",
    "attention_mask",
    "attention_scores",
    "attention_softmax",
    "multi_head_attention",
    "scaled_dot_product_attention",
]


def attention_scores(
    query: torch.Tensor, key: torch.Tensor, scale: float | None = None
) -> torch.Tensor:
    """``query @ key^T * scale`` over the last two axes (bilinear in query and key); the
    default scale is ``1 / sqrt(head dimension)``."""
    if has_torch_function((query, key)):  # one operation for the rules of an active mode
        return handle_torch_function(attention_scores, (query, key), query, key, scale)
    if scale is None:
        scale = query.shape[-1] ** -0.5
    return torch.matmul(query, key.transpose(-2, -1)) * scale


def attention_logits(
    scores: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False
) -> torch.Tensor:
    """The input :func:`attention_softmax` normalizes: ``scores`` with the masks applied
    (entries that take no part are ``-inf``, an additive mask is added)."""
    if causal:
        rows, columns = scores.shape[-2], scores.shape[-1]
        allowed = torch.ones(rows, columns, dtype=torch.bool, device=scores.device).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask.to(scores.dtype)
    return scores


def attention_softmax(
    scores: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False
) -> torch.Tensor:
    """``softmax(scores + mask)`` over the last axis; ``mask`` additive (float) or a bool
    mask of the entries that take part (``F.scaled_dot_product_attention``'s convention);
    ``causal`` masks the entries above the diagonal. Fully masked rows give zeros."""
    if has_torch_function((scores,)):
        return handle_torch_function(attention_softmax, (scores,), scores, mask, causal)
    weights = torch.softmax(attention_logits(scores, mask, causal), dim=-1)
    if mask is None and not causal:
        return weights
    # A row masked everywhere is NaN in softmax; the fused kernels give 0 there too.
    return torch.nan_to_num(weights, nan=0.0)


#: The softmax rule reads the axis from here (masks are extra arguments, not the axis),
#: and which entries the masks remove (those receive no relevance).
attention_softmax.relscope_softmax_dim = -1  # type: ignore[attr-defined]
attention_softmax.relscope_softmax_logits = attention_logits  # type: ignore[attr-defined]


def attention_mask(
    key_padding_mask: torch.Tensor | None,
    attn_mask: torch.Tensor | None,
    heads: int,
) -> torch.Tensor | None:
    """``nn.MultiheadAttention``'s masks (``True`` = ignore, or additive floats) as one
    additive mask broadcasting to ``(batch, heads, target, source)``."""
    out = None
    for mask, shape in ((key_padding_mask, "padding"), (attn_mask, "attention")):
        if mask is None:
            continue
        additive = (
            torch.zeros(mask.shape, device=mask.device).masked_fill(mask, float("-inf"))
            if mask.dtype == torch.bool
            else mask
        )
        if shape == "padding":
            additive = additive[:, None, None, :]
        elif additive.ndim == 3:
            additive = additive.unflatten(0, (-1, heads))
        out = additive if out is None else out + additive
    return out


# The tracer records these as one operation each (their insides are rules' business).
torch.fx.wrap("attention_scores")
torch.fx.wrap("attention_softmax")
torch.fx.wrap("attention_mask")


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
    *,
    observe: Callable[[torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` written out (same arguments; dropout as given,
    since the function has no training flag of its own). ``observe`` is called with the
    attention weights ``(batch, heads, target, source)`` before dropout."""
    if enable_gqa:
        groups = query.shape[-3] // key.shape[-3]
        key = key.repeat_interleave(groups, dim=-3)
        value = value.repeat_interleave(groups, dim=-3)
    weights = attention_softmax(attention_scores(query, key, scale), attn_mask, is_causal)
    if observe is not None:
        observe(weights)
    if dropout_p > 0:
        weights = F.dropout(weights, dropout_p)
    return torch.matmul(weights, value)


def multi_head_attention(
    module: nn.MultiheadAttention,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    key_padding_mask: torch.Tensor | None = None,
    need_weights: bool = True,
    attn_mask: torch.Tensor | None = None,
    average_attn_weights: bool = True,
    is_causal: bool = False,
    *,
    parameter: Callable[[str, torch.Tensor], Any] | None = None,
    linear: Callable[[Any, Any, Any, str], Any] | None = None,
) -> tuple[Any, Any]:
    """``module(query, key, value, ...)`` written out, for batched (3-D) inputs.

    ``parameter(name, tensor)`` turns a (sliced) parameter into what the computation uses
    (the tracer: a named constant of the graph); ``linear(x, weight, bias, name)`` applies an
    in-projection (default ``F.linear``).
    """
    if module._parameters.get("bias_k") is not None or module.add_zero_attn:
        raise ConfigError(
            "nn.MultiheadAttention with add_bias_kv or add_zero_attn is not supported by the "
            "attention decomposition"
        )
    parameter = parameter or (lambda name, tensor: tensor)
    linear = linear or (lambda x, weight, bias, name: F.linear(x, weight, bias))
    if not module.batch_first:
        query, key, value = (t.transpose(0, 1) for t in (query, key, value))
    embed, heads = module.embed_dim, module.num_heads
    # The parameters themselves, not what attribute access gives while tracing (proxies).
    own = module._parameters
    bias = own.get("in_proj_bias")
    biases = [None] * 3 if bias is None else [bias[i * embed : (i + 1) * embed] for i in range(3)]
    if module._qkv_same_embed_dim and query is key and key is value:
        both = linear(
            query,
            parameter("in_proj.weight", own["in_proj_weight"]),
            None if bias is None else parameter("in_proj.bias", bias),
            "in_proj",
        )
        q, k, v = both.chunk(3, dim=-1)
    else:
        if module._qkv_same_embed_dim:
            weights = [own["in_proj_weight"][i * embed : (i + 1) * embed] for i in range(3)]
        else:
            weights = [own["q_proj_weight"], own["k_proj_weight"], own["v_proj_weight"]]
        q, k, v = (
            linear(
                x,
                parameter(f"{name}_proj.weight", w),
                None if b is None else parameter(f"{name}_proj.bias", b),
                f"{name}_proj",
            )
            for x, w, b, name in zip((query, key, value), weights, biases, "qkv", strict=True)
        )
    q, k, v = (t.unflatten(-1, (heads, embed // heads)).transpose(1, 2) for t in (q, k, v))
    mask = attention_mask(key_padding_mask, attn_mask, heads)
    scores = attention_scores(q, k, (embed // heads) ** -0.5)
    weights = attention_softmax(scores, mask, is_causal and mask is None)
    if module.dropout > 0 and module.training:
        weights = F.dropout(weights, module.dropout)
    out = torch.matmul(weights, v).transpose(1, 2).flatten(-2)
    out = module.out_proj(out)
    if not module.batch_first:
        out = out.transpose(0, 1)
    if not need_weights:
        return out, None
    return out, weights.mean(dim=1) if average_attn_weights else weights
