"""The explosion detector: a layer handing on more relevance than its rule's bound allows is
named (diagnostics) and warned about once; the zoo stays silent with every named composite."""

import dataclasses
import warnings

import pytest
import torch
from torch import nn

from relscope.attribution import LRP, Composite, get_composite
from relscope.attribution.lrp.composites import list_composites
from relscope.attribution.lrp.rules import Gamma
from relscope.errors import RelscopeWarning
from support import zoo

LRP_COMPOSITES = [
    name for name in list_composites() if name not in ("gradient", "guided_backprop", "deconvnet")
]


class SingleDenominatorGamma(Gamma):
    """The old fault: ``w + gamma w^+`` for every output, also for outputs below zero."""

    def apply(self, op, *args, **kwargs):
        return super().apply(dataclasses.replace(op, silent_negative_outputs=True), *args, **kwargs)


def cancelling_net() -> nn.Module:
    # a = (1, 1), w = (2, -3): z = -1 reaches the output through a linear layer, and with
    # gamma = 0.5 the single denominator 3 - 3 cancels.
    conv = nn.Conv1d(2, 1, 1, bias=False)
    head = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        conv.weight[:] = torch.tensor([2.0, -3.0]).reshape(1, 2, 1)
        head.weight[:] = 1.0
    return nn.Sequential(conv, nn.Flatten(), head).double().eval()


def test_the_old_gamma_on_a_negative_output_is_named_and_warned_once():
    x = torch.ones(1, 2, 1, dtype=torch.float64)
    with LRP(cancelling_net(), Composite([("convolution", SingleDenominatorGamma(0.5))])) as lrp:
        with pytest.warns(RelscopeWarning, match=r"explodes at layer 0 .*bound 5\b"):
            result = lrp(x, 0, initial="one")
        assert result.relevance.abs().sum() > 1e5  # the explosion itself
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            lrp(x, 0, initial="one")  # once per layer and LRP object
            report = lrp(x, 0, initial="one", diagnostics=True).diagnostics
    assert [name for name, _, _ in report.exploding] == ["0"]
    _, growth, bound = report.exploding[0]
    assert bound == pytest.approx(5.0)
    assert growth > 1e5
    assert report.growth["0"].shape == (2, 1)


def test_the_output_sign_gamma_on_the_same_net_is_silent_and_within_its_bound():
    x = torch.ones(1, 2, 1, dtype=torch.float64)
    with LRP(cancelling_net(), Composite([("convolution", Gamma(0.5))])) as lrp:
        result = lrp(x, 0, initial="one", diagnostics=True)
    assert result.diagnostics.exploding == []
    assert float(result.diagnostics.growth["0"][0, 0]) == pytest.approx(6.5 / 2.5)
    torch.testing.assert_close(
        result.relevance.flatten(),
        torch.tensor([2 / -2.5, -4.5 / -2.5], dtype=torch.float64),
        rtol=1e-5,
        atol=0,
    )


def test_the_old_gamma_on_resnet18_is_flagged():
    torch.manual_seed(0)
    model = zoo.randomize_batchnorm(zoo.MODELS["resnet18"]()).double()
    x = torch.rand(1, 3, 64, 64, dtype=torch.float64) * 2 - 1
    old = get_composite("epsilon_gamma_box", low=-1.0, high=1.0).prepend(
        ("convolution", SingleDenominatorGamma(0.25))
    )
    with LRP(model, old) as lrp:
        with pytest.warns(RelscopeWarning, match="explodes at layer"):
            lrp(x, None, initial="one")
        report = lrp(x, None, initial="one", diagnostics=True).diagnostics
    assert report.exploding
    assert all(growth > bound for _, growth, bound in report.exploding)
    with LRP(model, get_composite("epsilon_gamma_box", low=-1.0, high=1.0)) as lrp:
        assert lrp(x, None, initial="one", diagnostics=True).diagnostics.exploding == []


# The vision transformer's attention has no dedicated rules yet (issue 17), which is warned.
@pytest.mark.filterwarnings("ignore:no dedicated relevance rule")
@pytest.mark.parametrize("composite", LRP_COMPOSITES)
@pytest.mark.parametrize("name", sorted(zoo.MODELS))
def test_the_zoo_stays_silent_with_every_named_composite(name, composite):
    torch.manual_seed(0)
    model = zoo.MODELS[name]()
    if name in zoo.BIG_MODELS:
        model = zoo.randomize_batchnorm(model)
    shape = (3, 64, 64) if name in zoo.BIG_MODELS else zoo.INPUT_SHAPES[name]
    x = torch.rand(1, *shape) * 2 - 1
    params = {"low": -1.0, "high": 1.0} if composite == "epsilon_gamma_box" else {}
    with LRP(model, get_composite(composite, **params)) as lrp:  # warnings are errors here
        result = lrp(x, None, diagnostics=True)
        lrp(x, None, initial="one")
    assert result.diagnostics.exploding == []
    assert result.diagnostics.growth


class Branching(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.c3 = nn.Conv2d(4, 4, 1)
        self.fc = nn.Linear(4 * 8 * 8, 2)

    def forward(self, x):
        a = torch.relu(self.c1(x))
        y = torch.relu(self.c2(a) + self.c3(a))
        return self.fc(torch.flatten(nn.functional.max_pool2d(y, 1), 1))


def silent_layers(composite) -> set[str]:
    lrp = LRP(Branching().eval(), composite)
    _ = lrp.layers  # builds the rewritten module
    return {
        m.operation.name
        for m in lrp._module.modules()
        if hasattr(m, "operation") and m.operation.silent_negative_outputs
    }


def test_the_fast_path_is_taken_only_where_negative_outputs_provably_get_nothing():
    gamma = Composite([("convolution", Gamma(0.25))])
    # c1 feeds a ReLU whose consumers hand relevance in proportion to the values; c2 and c3
    # feed a sum (their negative outputs can be part of a positive sum); y's ReLU feeds a
    # max pooling and a flatten into an epsilon layer (only linear layers carry the flag).
    assert silent_layers(gamma) == {"c1"}
    # A w^2 rule after c1's ReLU hands relevance to zero activations: no proof any more.
    wsquare = gamma.prepend(("c2", "wsquare"))
    assert silent_layers(wsquare) == set()
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    model = Branching().double().eval()
    with LRP(model, gamma) as fast, LRP(model, Composite([("convolution", Gamma(0.25))])) as full:
        _ = full.layers
        for module in full._module.modules():  # force the output-sign form everywhere
            if hasattr(module, "operation"):
                object.__setattr__(module.operation, "silent_negative_outputs", False)
        torch.testing.assert_close(fast(x, 0).relevance, full(x, 0).relevance)
