"""LXT 2.1's rules written out by hand, checked against the runner's reference files.

Usage (any environment with torch; LXT and transformers are not needed)::

    python tests/support/lxt_formulas.py OUT_DIR

``tests/support/lxt_runner.py`` writes LXT's relevance for each case. This module rebuilds
every model as plain tensor operations from the saved ``state_dict`` and computes gradient x
input with exactly the rule changes ``tests/support/LXT_REFERENCE.md`` lists, and nothing
else:

* LayerNorm / RMSNorm: the standard deviation (or ``rsqrt`` of the mean square) detached;
* element-wise activations (GELU, tanh, SiLU of the attnLRP gate): the identity rule, the
  backward pass multiplies the incoming gradient by ``act(x) / (x + 1e-10)``;
* attnLRP attention: the gradients of q and k divided by 4 and of v by 2 (the uniform rule
  over the two matrix products); the softmax is differentiated as it is;
* CP-LRP attention: q and k detached (the attention weights are constants);
* Llama's gated MLP: attnLRP divides the gradient of ``act(gate) * up`` by 2, CP-LRP
  detaches the gate's pre-activation;
* everything else (linear layers, embeddings, residual sums, biases): plain autograd.

It is an executable statement of what relscope's AttnLRP must reproduce, independent of
LXT's code: if it agrees with the reference files to rounding, the list above is complete.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

Tensor = torch.Tensor
EPSILON = 1e-10  # LXT's identity rule: output / (input + 1e-10)
HEADS = 2


class _IdentityRule(torch.autograd.Function):
    """y = fn(x); backward: gradient * fn(x) / (x + 1e-10), so that x * grad_x = y * grad_y."""

    @staticmethod
    def forward(ctx, x: Tensor, fn: Callable[[Tensor], Tensor]) -> Tensor:
        y = fn(x)
        ctx.save_for_backward(y / (x + EPSILON))
        return y

    @staticmethod
    def backward(ctx, gradient: Tensor) -> tuple[Tensor, None]:
        return ctx.saved_tensors[0] * gradient, None


def identity_rule(x: Tensor, fn: Callable[[Tensor], Tensor]) -> Tensor:
    return _IdentityRule.apply(x, fn)


def divide_gradient(x: Tensor, factor: float) -> Tensor:
    """Identity in the forward pass; the gradient is divided by ``factor``."""
    if x.requires_grad:
        x.register_hook(lambda gradient: gradient / factor)
    return x


def layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> Tensor:
    mean = x.mean(-1, keepdim=True)
    std = (((x - mean) ** 2).mean(-1, keepdim=True) + eps).sqrt()
    return (x - mean) / std.detach() * weight + bias


def attention(q: Tensor, k: Tensor, v: Tensor, additive_mask: Tensor, cp: bool) -> Tensor:
    """Heads already split: (batch, heads, tokens, head_dim); returns (batch, tokens, dim)."""
    if cp:
        q, k = q.detach(), k.detach()
    else:
        q, k, v = divide_gradient(q, 4), divide_gradient(k, 4), divide_gradient(v, 2)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + additive_mask
    output = scores.softmax(-1) @ v
    return output.transpose(1, 2).flatten(2)


def split_heads(x: Tensor, heads: int) -> Tensor:
    batch, tokens, dim = x.shape
    return x.view(batch, tokens, heads, dim // heads).transpose(1, 2)


def causal_mask(tokens: int) -> Tensor:
    allowed = torch.ones(tokens, tokens, dtype=torch.bool).tril()
    mask = torch.zeros(tokens, tokens, dtype=torch.float64)
    return mask.masked_fill(~allowed, torch.finfo(torch.float64).min)


def gelu_tanh(x: Tensor) -> Tensor:  # GPT-2's "gelu_new"
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


# --------------------------------------------------------------------------------------------
# The models (float64 forward passes from the saved state_dict)


def vit(record: dict, x: Tensor) -> Tensor:
    s, cp = record["state_dict"], record["lxt_map"] == "cp_LRP"
    patches = F.conv2d(x, s["conv_proj.weight"], s["conv_proj.bias"], stride=8)
    h = patches.flatten(2).transpose(1, 2)
    h = torch.cat([s["class_token"].expand(len(x), -1, -1), h], 1) + s["encoder.pos_embedding"]
    for layer in range(2):
        p = f"encoder.layers.encoder_layer_{layer}."
        a = layer_norm(h, s[p + "ln_1.weight"], s[p + "ln_1.bias"], 1e-6)
        qkv = F.linear(
            a, s[p + "self_attention.in_proj_weight"], s[p + "self_attention.in_proj_bias"]
        )
        q, k, v = (split_heads(t, HEADS) for t in qkv.chunk(3, -1))
        o = attention(q, k, v, torch.zeros(()), cp)
        h = h + F.linear(
            o, s[p + "self_attention.out_proj.weight"], s[p + "self_attention.out_proj.bias"]
        )
        m = layer_norm(h, s[p + "ln_2.weight"], s[p + "ln_2.bias"], 1e-6)
        m = identity_rule(F.linear(m, s[p + "mlp.0.weight"], s[p + "mlp.0.bias"]), F.gelu)
        h = h + F.linear(m, s[p + "mlp.3.weight"], s[p + "mlp.3.bias"])
    h = layer_norm(h, s["encoder.ln.weight"], s["encoder.ln.bias"], 1e-6)[:, 0]
    return F.linear(h, s["heads.head.weight"], s["heads.head.bias"])


def gpt2(record: dict, x: Tensor) -> Tensor:
    s, cp = record["state_dict"], record["lxt_map"] == "cp_LRP"
    tokens, dim = x.shape[1:]
    h = x + s["transformer.wpe.weight"][:tokens]
    for layer in range(2):
        p = f"transformer.h.{layer}."
        a = layer_norm(h, s[p + "ln_1.weight"], s[p + "ln_1.bias"], 1e-5)
        qkv = a @ s[p + "attn.c_attn.weight"] + s[p + "attn.c_attn.bias"]  # Conv1D: (in, out)
        q, k, v = (split_heads(t, HEADS) for t in qkv.split(dim, -1))
        o = attention(q, k, v, causal_mask(tokens), cp)
        h = h + o @ s[p + "attn.c_proj.weight"] + s[p + "attn.c_proj.bias"]
        m = layer_norm(h, s[p + "ln_2.weight"], s[p + "ln_2.bias"], 1e-5)
        m = identity_rule(m @ s[p + "mlp.c_fc.weight"] + s[p + "mlp.c_fc.bias"], gelu_tanh)
        h = h + m @ s[p + "mlp.c_proj.weight"] + s[p + "mlp.c_proj.bias"]
    h = layer_norm(h, s["transformer.ln_f.weight"], s["transformer.ln_f.bias"], 1e-5)
    return (h @ s["lm_head.weight"].T)[:, -1]


def llama(record: dict, x: Tensor, float32_like_transformers: bool = True) -> Tensor:
    """With ``float32_like_transformers``, RMSNorm and the softmax run in float32 as in
    transformers' Llama (bit-exact with LXT); without, everything is float64."""
    s, cp = record["state_dict"], record["lxt_map"] == "cp_LRP"
    batch, tokens, dim = x.shape
    head_dim = dim // HEADS
    low = torch.float32 if float32_like_transformers else torch.float64

    def rms_norm(h: Tensor, weight: Tensor) -> Tensor:
        t = h.to(low)
        t = t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-6).detach()
        return weight * t.to(h.dtype)

    # Rotary embedding, theta 10000, computed in float32 as transformers does.
    inv_freq = 1.0 / 10000 ** (torch.arange(0, head_dim, 2).float() / head_dim)
    angles = torch.arange(tokens).float()[:, None] * inv_freq[None]
    angles = torch.cat([angles, angles], -1)
    cos, sin = angles.cos().double(), angles.sin().double()

    def rotate(t: Tensor) -> Tensor:
        half = torch.cat([-t[..., head_dim // 2 :], t[..., : head_dim // 2]], -1)
        return t * cos + half * sin

    h = x
    for layer in range(2):
        p = f"model.layers.{layer}."
        a = rms_norm(h, s[p + "input_layernorm.weight"])
        q = rotate(split_heads(F.linear(a, s[p + "self_attn.q_proj.weight"]), HEADS))
        k = rotate(split_heads(F.linear(a, s[p + "self_attn.k_proj.weight"]), 1))
        v = split_heads(F.linear(a, s[p + "self_attn.v_proj.weight"]), 1)
        if cp:
            q, k = q.detach(), k.detach()
        else:
            q, k, v = divide_gradient(q, 4), divide_gradient(k, 4), divide_gradient(v, 2)
        k, v = k.expand(batch, HEADS, tokens, head_dim), v.expand(batch, HEADS, tokens, head_dim)
        scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim) + causal_mask(tokens)
        weights = scores.softmax(-1, dtype=low).to(scores.dtype)
        o = (weights @ v).transpose(1, 2).flatten(2)
        h = h + F.linear(o, s[p + "self_attn.o_proj.weight"])
        m = rms_norm(h, s[p + "post_attention_layernorm.weight"])
        gate = F.linear(m, s[p + "mlp.gate_proj.weight"])
        up = F.linear(m, s[p + "mlp.up_proj.weight"])
        if cp:
            product = F.silu(gate.detach()) * up
        else:
            product = divide_gradient(identity_rule(gate, F.silu) * up, 2)
        h = h + F.linear(product, s[p + "mlp.down_proj.weight"])
    return F.linear(rms_norm(h, s["model.norm.weight"]), s["lm_head.weight"])[:, -1]


def bert(record: dict, x: Tensor) -> Tensor:
    s = record["state_dict"]
    tokens = x.shape[1]

    def linear(t: Tensor, name: str) -> Tensor:
        return F.linear(t, s[name + ".weight"], s[name + ".bias"])

    def norm(t: Tensor, name: str) -> Tensor:
        return layer_norm(t, s[name + ".weight"], s[name + ".bias"], 1e-12)

    e = "bert.embeddings."
    h = x + s[e + "token_type_embeddings.weight"][0] + s[e + "position_embeddings.weight"][:tokens]
    h = norm(h, e + "LayerNorm")
    keep = record["attention_mask"][:, None, None, :].to(torch.float64)
    mask = (1.0 - keep) * torch.finfo(torch.float64).min
    for layer in range(2):
        p = f"bert.encoder.layer.{layer}."
        q, k, v = (
            split_heads(linear(h, p + f"attention.self.{n}"), HEADS)
            for n in ("query", "key", "value")
        )
        o = attention(q, k, v, mask, cp=False)  # LXT 2.1 has only attnLRP for BERT
        h = norm(h + linear(o, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        m = identity_rule(linear(h, p + "intermediate.dense"), F.gelu)
        h = norm(h + linear(m, p + "output.dense"), p + "output.LayerNorm")
    pooled = identity_rule(linear(h[:, 0], "bert.pooler.dense"), torch.tanh)
    return linear(pooled, "classifier")


MODELS = {"vit": vit, "gpt2": gpt2, "llama": llama, "bert": bert}


def relevance(record: dict, model: Callable[..., Tensor], **options: bool) -> tuple[Tensor, Tensor]:
    """(logits, input x gradient) of the hand-written model, backward from the targets."""
    key = "image" if record["family"] == "vit" else "inputs_embeds"
    x = record[key].clone().requires_grad_(True)
    logits = model(record, x, **options)
    logits.gather(1, record["target"][:, None]).sum().backward()
    return logits.detach(), (x * x.grad).detach()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    worst = 0.0
    for path in sorted(Path(argv[0]).glob("*.pt")):
        record = torch.load(path, weights_only=True)
        logits, mine = relevance(record, MODELS[record["family"]])
        scale = float(record["relevance"].abs().max())
        difference = float((mine - record["relevance"]).abs().max()) / scale
        worst = max(worst, difference)
        logit_difference = float((logits - record["logits"]).abs().max())
        line = (
            f"{record['case']:14s} |logits - LXT| {logit_difference:.1e}"
            f"  max|R - R_LXT| / max|R_LXT| {difference:.1e}"
        )
        if record["family"] == "llama":
            _, float64 = relevance(record, llama, float32_like_transformers=False)
            line += (
                f"  (all float64: {float((float64 - record['relevance']).abs().max()) / scale:.1e})"
            )
        print(line)
    return 0 if worst < 1e-12 else 1


if __name__ == "__main__":
    sys.exit(main())
