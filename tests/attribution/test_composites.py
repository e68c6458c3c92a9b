"""Composite registry conformance, selectors, and layer naming in the traced graph."""

import pytest
import torch
from torch import nn

from relscope.attribution import (
    LRP,
    First,
    Index,
    Kind,
    Last,
    Name,
    Predicate,
    get_composite,
    list_composites,
    trace,
)
from relscope.attribution.lrp.composites import COMPOSITES, Composite
from relscope.errors import ConfigError

from .nets import make, with_batch_norm


@pytest.mark.parametrize("name", list_composites())
@pytest.mark.parametrize("net", ["plain", "resnet", "dense"])
def test_every_registered_composite_conforms(name, net):
    model = make(net, bias=True, seed=5)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    composite = get_composite(name)
    assert composite.name == name
    with composite.context(model) as lrp:
        output, relevance = lrp(x, torch.tensor([0, 1]))
        assigned = lrp.rules()
    assert relevance.shape == x.shape
    assert torch.isfinite(relevance).all()
    with torch.no_grad():
        torch.testing.assert_close(output, model(x))
    assert len(assigned) == len(lrp.layers)
    assert len({id(rule) for _, rule in assigned}) == len(assigned)  # one instance per layer


def test_gradient_composites_are_gradients():
    model = make("plain", bias=True)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    with LRP(model, "gradient") as lrp:
        _, relevance = lrp(x, torch.tensor([1, 2]), initial="one")
    leaf = x.clone().requires_grad_(True)
    out = model(leaf)
    (grad,) = torch.autograd.grad(
        out, leaf, nn.functional.one_hot(torch.tensor([1, 2]), 5).double()
    )
    torch.testing.assert_close(relevance, grad)
    with LRP(model, "guided_backprop") as lrp:
        _, guided = lrp(x, torch.tensor([1, 2]), initial="one")
    assert not torch.allclose(guided, grad)


def test_selectors():
    model = with_batch_norm().double()
    layers = trace(model).layers
    by_name = {layer.name: layer for layer in layers}
    assert Kind("convolution")(by_name["0"], layers)
    assert not Kind("dense")(by_name["0"], layers)
    assert Kind("linear")(by_name["6"], layers)
    assert Name("3.*")(by_name["3.conv1"], layers)
    assert First()(by_name["0"], layers)
    assert not First()(by_name["3.conv1"], layers)
    assert Last()(by_name["9"], layers)
    assert Index(2, 4)(layers[3], layers)
    assert not Index(2, 4)(layers[4], layers)
    assert Predicate(lambda layer, _: layer.type == "ReLU")(by_name["2"], layers)
    with pytest.raises(ConfigError, match="unknown layer group"):
        Kind("conv")
    with pytest.raises(ConfigError, match="unknown composite 'nope'"):
        get_composite("nope")
    with pytest.raises(ConfigError, match="composite 'epsilon'"):
        get_composite("epsilon", gamma=2)
    assert set(COMPOSITES) == set(list_composites())


class Reuse(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.head = nn.Linear(3 * 8 * 8, 4)

    def forward(self, x):
        x = self.conv(x).relu()
        x = self.conv(x) + x  # the same module twice, a functional sum, a method call
        return self.head(x.flatten(1))


def test_reused_modules_and_functional_operations_get_rules():
    model = Reuse().double().eval()
    with LRP(model, Composite([("conv", "zplus"), ("linear", "epsilon")])) as lrp:
        rules = {layer.name: (layer.kind, type(rule).__name__) for layer, rule in lrp.rules()}
        _output, relevance = lrp(torch.rand(2, 3, 8, 8, dtype=torch.float64))
    assert rules["conv"] == ("convolution", "ZPlus")
    assert rules["conv@2"] == ("convolution", "ZPlus")  # the second call of the module
    assert rules["relu"] == ("activation", "Pass")
    assert rules["add"] == ("sum", "Norm")
    assert rules["flatten"] == ("reshape", "Gradient")
    assert rules["head"] == ("dense", "Epsilon")
    assert torch.isfinite(relevance).all()


class Signs(nn.Module):
    def forward(self, x):
        a = torch.relu(x)  # non-negative
        b = nn.functional.max_pool2d(a, 2)  # still non-negative
        c = b * -1.0  # negative
        d = torch.cat([a.flatten(1), b.view(b.shape[0], -1)], 1)  # non-negative
        e = nn.functional.pad(a, (1, 1), value=-2.0)  # may be negative
        f = a - b.mean()  # a difference: unknown
        return c, d, e, f


def test_non_negativity_analysis_is_sound():
    from relscope.attribution.lrp.graph import nonnegative_nodes

    model = Signs()
    graph = torch.fx.symbolic_trace(model).graph
    known = nonnegative_nodes(graph, dict(model.named_modules()))
    assert {"relu", "max_pool2d", "cat"} <= known
    assert "mul" not in known
    assert "pad" not in known
    assert "sub" not in known
    assert "x" not in known  # the model input may have any sign
