"""Attention rollout against a float64 reference written here (NumPy, from the paper's
recipe), on nn.MultiheadAttention and on F.scaled_dot_product_attention models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from relscope.attribution import AttentionRollout, get_attributor
from relscope.attribution.methods.rollout import recorded_attention
from relscope.data.builtin import mnist_vit
from relscope.errors import ConfigError


def reference_rollout(per_layer: list[np.ndarray], token: int = 0, prefix: int = 1) -> np.ndarray:
    """Abnar & Zuidema: heads averaged, identity added, rows normalized, layers multiplied
    (the last on the left); the token's row without the prefix columns. ``(batch, n)``."""
    batch, _, tokens, _ = per_layer[0].shape
    out = []
    for b in range(batch):
        total = np.eye(tokens)
        for weights in per_layer:
            mixed = weights[b].mean(0) + np.eye(tokens)
            mixed /= mixed.sum(1, keepdims=True)
            total = mixed @ total
        out.append(total[token, prefix:])
    return np.array(out)


def vit_weights_by_hand(model, x: torch.Tensor) -> list[np.ndarray]:
    """The ViT's forward pass written out here, asking each attention for its weights."""
    found = []
    with torch.no_grad():
        patches = model.embedding(x).flatten(2).transpose(1, 2)
        h = torch.cat([model.class_token.expand(len(x), -1, -1), patches], 1) + model.position
        for block in model.blocks:
            normed = block.norm1(h)
            out, weights = block.attention(normed, normed, normed, average_attn_weights=False)
            found.append(weights.numpy())
            h = h + out
            h = h + block.mlp(block.norm2(h))
    return found


def test_rollout_of_the_vit_equals_the_reference():
    torch.manual_seed(3)
    model = mnist_vit(depth=3).double().eval()
    x = torch.rand(4, 1, 28, 28, dtype=torch.float64)
    output, relevance = AttentionRollout()(model, x, None)
    torch.testing.assert_close(output, model(x))
    expected = reference_rollout(vit_weights_by_hand(model, x)).reshape(4, 1, 7, 7)
    assert relevance.shape == (4, 1, 28, 28) and relevance.dtype == torch.float64
    # nearest upsampling: every 4 x 4 patch carries its token's score
    np.testing.assert_allclose(relevance.numpy(), np.kron(expected, np.ones((1, 1, 4, 4))),
                               rtol=1e-10, atol=1e-12)  # fmt: skip
    grid = AttentionRollout(upsample=None)(model, x, 3).relevance
    np.testing.assert_allclose(grid.numpy(), expected, rtol=1e-10, atol=1e-12)
    # The target does not matter, and the scores are a share of the class token's row.
    torch.testing.assert_close(grid, AttentionRollout(upsample=None)(model, x, 0).relevance)
    assert (grid > 0).all() and (grid.sum((1, 2, 3)) < 1).all()
    smooth = AttentionRollout(upsample="bilinear")(model, x, None).relevance
    assert smooth.shape == (4, 1, 28, 28) and not torch.equal(smooth, relevance)


def test_uniform_attention_gives_the_closed_form():
    # Zero query and key projections: every row attends uniformly, A = 1/T everywhere, so
    # one layer's rollout row of the class token is (1/T + [j = 0]) / 2.
    model = mnist_vit(depth=1).double().eval()
    with torch.no_grad():
        model.blocks[0].attention.in_proj_weight[: 2 * 48] = 0
        model.blocks[0].attention.in_proj_bias[: 2 * 48] = 0
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    grid = get_attributor("attention_rollout", upsample=None)(model, x).relevance
    torch.testing.assert_close(grid, torch.full_like(grid, 0.5 / 50))


class FusedAttention(nn.Module):
    """Two heads of self-attention through F.scaled_dot_product_attention, then a head."""

    def __init__(self, width: int = 8, classes: int = 3) -> None:
        super().__init__()
        self.embed = nn.Linear(2, width)
        self.qkv = nn.ModuleList(nn.Linear(width, 3 * width) for _ in range(2))
        self.head = nn.Linear(width, classes)

    def split(self, x):
        return x.unflatten(-1, (2, -1)).transpose(1, 2)

    def forward(self, x):  # x: (batch, 2, length): two channels per position
        h = self.embed(x.transpose(1, 2))
        h = torch.cat([h.mean(1, keepdim=True), h], 1)  # a class token
        for qkv in self.qkv:
            q, k, v = (self.split(t) for t in qkv(h).chunk(3, -1))
            h = h + F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(-2)
        return self.head(h[:, 0])


def test_fused_attention_is_written_out_and_recorded():
    torch.manual_seed(1)
    model = FusedAttention().double().eval()
    x = torch.randn(3, 2, 6, dtype=torch.float64)
    output, relevance = AttentionRollout(upsample=None)(model, x, None)
    torch.testing.assert_close(output, model(x))  # the written-out attention computes the same
    per_layer = []
    with torch.no_grad():
        h = model.embed(x.transpose(1, 2))
        h = torch.cat([h.mean(1, keepdim=True), h], 1)
        for qkv in model.qkv:
            q, k, v = (model.split(t).numpy() for t in qkv(h).chunk(3, -1))
            scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
            weights = np.exp(scores - scores.max(-1, keepdims=True))
            weights /= weights.sum(-1, keepdims=True)
            per_layer.append(weights)
            h = h + torch.from_numpy(weights @ v).transpose(1, 2).flatten(-2)
    np.testing.assert_allclose(relevance.numpy()[:, 0], reference_rollout(per_layer), rtol=1e-10)
    assert relevance.shape == (3, 1, 6)


class Unbatched(nn.Module):
    """nn.MultiheadAttention with batch_first=False, need_weights given positionally, and its
    averaged weights used by the model: the recorder must answer as asked."""

    def __init__(self) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(4, 2)

    def forward(self, x):  # (batch, 4, tokens)
        sequence = x.permute(2, 0, 1)  # (tokens, batch, width)
        out, weights = self.attention(sequence, sequence, sequence, None, True)
        return out.mean(0) + weights.sum((1, 2))[:, None]


def test_multihead_attention_callers_get_what_they_asked_for():
    torch.manual_seed(2)
    model = Unbatched().eval()
    x = torch.randn(2, 4, 5)
    with recorded_attention(model) as found:
        recorded = model(x)
    torch.testing.assert_close(recorded, model(x))
    assert len(found) == 1 and found[0].shape == (2, 2, 5, 5)  # per head, batch first
    assert not model.attention._forward_hooks and not model.attention._forward_pre_hooks
    grid = AttentionRollout(prefix=0, upsample=None)(model, x, None).relevance
    np.testing.assert_allclose(grid.numpy()[:, 0], reference_rollout([found[0].numpy()],
                               prefix=0), rtol=1e-6)  # fmt: skip


def test_refusals_are_one_line_config_errors():
    cnn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 26 * 26, 2))
    with pytest.raises(ConfigError, match="found no attention layer"):
        AttentionRollout()(cnn, torch.rand(1, 1, 28, 28))
    vit = mnist_vit().eval()
    with pytest.raises(ConfigError, match="do not form a grid"):
        AttentionRollout(prefix=2)(vit, torch.rand(1, 1, 28, 28))
    with pytest.raises(ConfigError, match="must be below the number of tokens"):
        AttentionRollout(token=50)(vit, torch.rand(1, 1, 28, 28))
    for bad in ({"token": -1}, {"prefix": 1.5}, {"upsample": "cubic"}):
        with pytest.raises(ConfigError):
            AttentionRollout(**bad)
