"""What the engine keeps from forward to backward: the memory-saving paths are exact and
really free what they claim to."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
from torch import nn

from relscope.attribution import LRP, AlphaBeta, Epsilon, Gamma, ZBox, ZPlus
from relscope.attribution.lrp import rules as rules_module
from relscope.attribution.lrp.layers import Operation, linear_op
from relscope.attribution.lrp.rules import LinearRule

RULES = {
    "epsilon": Epsilon,
    "gamma": Gamma,
    "alpha_beta": AlphaBeta,
    "zplus": ZPlus,
    "zbox": lambda: ZBox(-3.0, 3.0),
}


def _operation(layer: nn.Module) -> Operation:
    return Operation("layer", "convolution", layer, layer, linear_op(layer))


@pytest.mark.parametrize("name", sorted(RULES))
@pytest.mark.parametrize("signed", [False, True])
def test_modified_weights_are_not_kept_until_backward(name, signed, monkeypatch):
    made: list[weakref.ref] = []
    derived = LinearRule.derived

    def recording(self, layer, compute):
        value = derived(self, layer, compute)
        made.append(weakref.ref(value))
        return value

    monkeypatch.setattr(LinearRule, "derived", recording)
    monkeypatch.setattr(rules_module, "RECOMPUTE_MACS", 0)
    torch.manual_seed(0)
    layer = nn.Conv2d(16, 8, 3, padding=1).double()
    x = torch.randn(2, 16, 6, 6, dtype=torch.float64)
    x = (x if signed else x.abs()).requires_grad_(True)
    rule = RULES[name]()
    y = rule(_operation(layer), x)
    gc.collect()
    assert made or name == "epsilon"
    assert all(reference() is None for reference in made)  # freed after forward
    grad = torch.randn_like(y)
    (ours,) = torch.autograd.grad(y, x, grad)
    # The same rule with the modified weights kept (no recipe hooks) gives the same result.
    monkeypatch.setattr(rules_module._Call, "pack", lambda self, tensor: tensor)
    y_kept = RULES[name]()(_operation(layer), x)
    (kept,) = torch.autograd.grad(y_kept, x, grad)
    torch.testing.assert_close(ours, kept, rtol=1e-12, atol=1e-12)


def _normalize_node(y: torch.Tensor):
    return y.grad_fn  # the rule's output comes straight out of normalize


@pytest.mark.parametrize("name", sorted(RULES))
def test_cheap_layers_recompute_their_denominators(name, monkeypatch):
    torch.manual_seed(0)
    cheap = nn.Conv2d(3, 8, 3, padding=1).double()  # 27 multiply-adds per output
    costly = nn.Conv2d(16, 8, 3, padding=1).double()  # 144
    assert rules_module._cheap(linear_op(cheap))
    assert not rules_module._cheap(linear_op(costly))
    for layer, channels, kept in ((cheap, 3, False), (costly, 16, True)):
        x = torch.randn(2, channels, 5, 5, dtype=torch.float64, requires_grad=True)
        y = RULES[name]()(_operation(layer), x)
        assert bool(_normalize_node(y).saved_tensors) is kept


def test_whole_network_is_the_same_either_way(monkeypatch):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16, 5),
    ).double().eval()  # fmt: skip
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    results = []
    for macs in (0, 10**9):
        monkeypatch.setattr(rules_module, "RECOMPUTE_MACS", macs)
        for composite in ("epsilon_alpha2_beta1", "epsilon_plus_flat"):
            with LRP(model, composite) as lrp:
                results.append(lrp(x).relevance)
    torch.testing.assert_close(results[0], results[2], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(results[1], results[3], rtol=1e-12, atol=1e-12)
