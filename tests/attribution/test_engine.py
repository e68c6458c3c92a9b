"""The LRP engine on whole networks: identities, conservation, canonizers, targets, records."""

import copy
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from relscope.attribution import (
    LRP,
    AttributeOverride,
    Epsilon,
    Flat,
    Gamma,
    MergeBatchNorm,
    Norm,
    NumericalError,
    WSquare,
    ZPlus,
    get_composite,
    segments,
    trace,
)
from relscope.attribution.lrp.composites import Composite
from relscope.attribution.lrp.functions import normalize, tie
from relscope.errors import ConfigError, RelscopeWarning

from .nets import gradient_times_input, make, with_batch_norm


@pytest.mark.parametrize("net", ["plain", "resnet", "dense"])
@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 4))
def test_lrp0_equals_gradient_times_input_on_bias_free_relu_nets(net, seed, batch):
    model = make(net, seed=seed % 7)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, 8, 8, dtype=torch.float64, generator=generator)
    target = torch.randint(0, 5 if net != "dense" else 6, (batch,), generator=generator)
    with LRP(model, "lrp0") as lrp:
        output, relevance = lrp(x, target)
    expected, reference_output = gradient_times_input(model, x, target)
    torch.testing.assert_close(output, reference_output, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(relevance, expected, rtol=1e-9, atol=1e-12)


def exact(*mapping, first=None):
    """A composite whose every rule is unstabilized, so conservation is exact."""
    unstabilized = dict.fromkeys(("avgpool", "sum", "scale", "batchnorm"), lambda: Norm(0.0))
    composite = Composite(mapping, defaults=unstabilized)
    if first is not None:
        composite = composite.prepend((lambda layer, _: layer.index == 0, first))
    return composite


CONSERVATIVE = {
    "lrp0": exact(("linear", Epsilon(0.0))),
    "zplus": exact(("linear", ZPlus(eps=0.0))),
    "gamma": exact(("linear", Gamma(0.5, eps=0.0))),
    "flat_first": exact(("linear", ZPlus(eps=0.0)), first=Flat(0.0)),
    "wsquare_first": exact(("linear", ZPlus(eps=0.0)), first=WSquare(0.0)),
}


@pytest.mark.parametrize("net", ["plain", "resnet", "dense"])
@pytest.mark.parametrize("rules", sorted(CONSERVATIVE))
def test_conservation_of_conservative_rules(net, rules):
    model = make(net, seed=1)
    x = torch.rand(3, 3, 8, 8, dtype=torch.float64)  # non-negative: z+/gamma are conservative
    with LRP(model, CONSERVATIVE[rules]) as lrp:
        result = lrp(x, None, diagnostics=True)
    output, relevance = result
    logit = output.max(1).values
    torch.testing.assert_close(relevance.flatten(1).sum(1), logit, rtol=1e-5, atol=1e-9)
    if net != "plain":
        return  # branches (residual, concatenation) carry only part of the total
    # every layer's output relevance sums to the same total (layer-wise conservation)
    for name, total in result.diagnostics.sums.items():
        layer = next(item for item in lrp.layers if item.name == name)
        if layer.kind in ("dense", "convolution", "activation", "maxpool", "avgpool", "sum"):
            torch.testing.assert_close(total, logit, rtol=1e-5, atol=1e-9, msg=name)


def test_output_is_the_models_output_and_the_model_is_untouched():
    model = with_batch_norm().double()
    before = {k: (v, v.clone()) for k, v in model.state_dict(keep_vars=True).items()}
    modes = [m.training for m in model.modules()]
    hooks = sum(len(m._forward_hooks) + len(m._backward_hooks) for m in model.modules())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    optimizer_params = [id(p) for group in optimizer.param_groups for p in group["params"]]
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        expected = model(x)
    for name in ("epsilon_gamma_box", "epsilon_plus_flat", "epsilon_alpha2_beta1"):
        with get_composite(name).context(model) as lrp:
            output, relevance = lrp(x)
            torch.testing.assert_close(output, expected, rtol=1e-5, atol=1e-9)
            assert torch.isfinite(relevance).all()
    after = model.state_dict(keep_vars=True)
    for key, (tensor, copy_) in before.items():
        assert after[key] is tensor, key  # the same tensor objects
        assert torch.equal(after[key], copy_), key  # bitwise unchanged
    assert [m.training for m in model.modules()] == modes
    assert sum(len(m._forward_hooks) + len(m._backward_hooks) for m in model.modules()) == hooks
    assert [id(p) for group in optimizer.param_groups for p in group["params"]] == optimizer_params
    assert all(p.grad is None for p in model.parameters())


def test_batch_norm_merge_keeps_outputs_and_eps():
    model = with_batch_norm().double()
    eps = [m.eps for m in model.modules() if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d)]
    traced = trace(model)
    MergeBatchNorm().apply(traced)
    assert sorted(traced.merged) == ["1", "3.bn1", "3.bn2", "7"]
    assert traced.merged["3.bn2"] == "3.conv2"
    x = torch.randn(5, 3, 8, 8, dtype=torch.float64)
    with LRP(model, Composite([("any", "gradient")])) as lrp:
        output, _ = lrp(x)
    with torch.no_grad():
        torch.testing.assert_close(output, model(x), rtol=1e-10, atol=1e-12)
    assert eps == [m.eps for m in model.modules() if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d)]
    assert all(eps_ > 0 for eps_ in eps)


def test_named_batch_norm_pairs():
    model = with_batch_norm().double()
    traced = trace(model)
    MergeBatchNorm([("0", "1")]).apply(traced)
    assert traced.merged == {"1": "0"}
    with pytest.raises(ConfigError, match="not adjacent"):
        MergeBatchNorm([("3.conv1", "3.bn2")]).apply(trace(model))


def test_train_mode_batch_norm_is_not_merged():
    model = with_batch_norm().double().train()
    traced = trace(model)
    MergeBatchNorm().apply(traced)
    assert traced.merged == {}


def test_attribute_override_is_restored():
    model = make("plain")
    relu = model[1]
    with LRP(model, Composite([], canonizers=[AttributeOverride({"1": {"inplace": True}})])):
        assert relu.inplace is True
    assert relu.inplace is False
    assert "inplace" not in vars(relu) or vars(relu)["inplace"] is False


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_no_grad_callers_inplace_activations_any_batch(dtype):
    model = make("resnet").to(dtype)  # Residual uses ReLU(inplace=True) and out += identity
    with LRP(model, "epsilon_plus") as lrp, torch.no_grad():
        for batch in (1, 5):
            x = torch.rand(batch, 3, 8, 8, dtype=dtype)
            _, relevance = lrp(x)
            assert relevance.shape == x.shape
            assert relevance.dtype == dtype
            assert torch.isfinite(relevance).all()


def test_targets():
    model = make("plain", seed=2)
    x = torch.rand(3, 3, 8, 8, dtype=torch.float64)
    with LRP(model, "lrp0") as lrp:
        output, predicted = lrp(x)
        best = output.argmax(1)
        torch.testing.assert_close(lrp(x, best).relevance, predicted)
        torch.testing.assert_close(lrp(x, 2).relevance, lrp(x, torch.tensor([2, 2, 2])).relevance)
        several = lrp(x, torch.tensor([[0, 1], [2, 3], [4, 0]]))
        assert several.relevance.shape == (3, 2, 3, 8, 8)
        torch.testing.assert_close(
            several.relevance[:, 1], lrp(x, torch.tensor([1, 3, 0])).relevance
        )
        torch.testing.assert_close(several.output, output)
        weights = torch.zeros(3, 5, dtype=torch.float64)
        weights[:, 1] = 1.0
        one = lrp(x, weights).relevance
        torch.testing.assert_close(one.flatten(1).sum(1), torch.ones(3, dtype=torch.float64))
        torch.testing.assert_close(lrp(x, lambda out: weights).relevance, one)
        torch.testing.assert_close(lrp(x, 1, initial="one").relevance, one)
        contrast = lrp(x, 1, contrastive=True)
        expected_total = output[:, 1] - (output.sum(1) - output[:, 1]) / 4
        torch.testing.assert_close(contrast.relevance.flatten(1).sum(1), expected_total)
        for bad in (7, torch.tensor([0, 1]), torch.zeros(3, 4, dtype=torch.float64)):
            with pytest.raises(ConfigError):
                lrp(x, bad)


def test_recorded_intermediate_relevance():
    model = make("plain", seed=4)
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    with LRP(model, "lrp0") as lrp:
        names = [layer.name for layer in lrp.layers]
        assert names[:4] == ["0", "1", "2", "3"]
        result = lrp(x, record=["3", "7"])
    assert set(result.layers) == {"3", "7"}
    assert result.layers["3"].shape == (2, 8, 4, 4)
    logit = result.output.max(1).values
    torch.testing.assert_close(result.layers["3"].flatten(1).sum(1), logit)
    with pytest.raises(ConfigError, match="unknown layers"):
        with LRP(model, "lrp0") as lrp:
            lrp(x, record=["nope"])


class Broken(nn.Module):
    def forward(self, x):
        return x * torch.sqrt(x - 10.0)  # NaN for ordinary inputs


def test_nan_relevance_is_reported_with_its_layer():
    model = nn.Sequential(nn.Linear(4, 4), Broken(), nn.Linear(4, 2)).double().eval()
    x = torch.rand(2, 4, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RelscopeWarning)
        lrp = LRP(model, "epsilon")
        with lrp, pytest.raises(NumericalError, match="starting at layer") as info:
            lrp(x)
    assert "starting at layer sqrt (non-finite forward output)" in str(info.value)


class BackwardOnlyNaN(Epsilon):
    """A deliberately broken rule: finite forward, NaN relevance in backward."""

    def propagate(self, layer, x):
        z = layer(tie(x), layer.weight, layer.bias)
        return normalize(z.detach(), [z], [float("nan")], self.eps)


def test_nan_arising_in_backward_names_the_rule_that_made_it():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 2)).double().eval()
    x = torch.rand(2, 3, dtype=torch.float64)
    lrp = LRP(model, Composite([("2", BackwardOnlyNaN()), ("linear", Epsilon())]))
    with lrp, pytest.raises(NumericalError) as info:
        lrp(x)
    assert "starting at layer 2 (its rule made the relevance of 1 non-finite)" in str(info.value)


class Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 3)

    def forward(self, x):
        y = self.a(x)
        if y.sum() > -1e9:  # data-dependent control flow: fx cannot trace it
            y = y + x
        return self.b(torch.relu(y))


def test_untraceable_models_get_rules_for_every_operation_while_they_run():
    model = Untraceable().double().eval()
    x = torch.rand(3, 4, dtype=torch.float64)
    with pytest.warns(RelscopeWarning, match="cannot be traced"):
        with LRP(model, "epsilon") as lrp:
            output, relevance = lrp(x)
    torch.testing.assert_close(output, model(x).detach())
    # The functional operations are layers too, in execution order, with their rules.
    rules = [(layer.name, type(rule).__name__) for layer, rule in lrp.rules()]
    assert [layer.name for layer in lrp.layers] == ["a", "sum", "add", "relu", "b"]
    assert dict(rules) == {
        "a": "Epsilon", "sum": "Norm", "add": "Norm", "relu": "Pass", "b": "Epsilon"
    }  # fmt: skip
    # epsilon on a, b; the residual add splits in proportion: the explicit formula.
    with torch.no_grad():
        y = model.a(x)
        s = y + x
        h = torch.relu(s)
        z = model.b(h)
        r_out = torch.zeros_like(z).scatter_(1, z.argmax(1, keepdim=True), z.max(1, True).values)
        r_h = h * ((r_out / (z + 1e-6 * z.sign())) @ model.b.weight)
        r_s = r_h
        share = r_s / (s + 1e-6 * s.sign())
        r_y, r_x = y * share, x * share
        expected = r_x + x * ((r_y / (y + 1e-6 * y.sign())) @ model.a.weight)
    torch.testing.assert_close(relevance, expected)


def test_segments_composite_assigns_rules_by_position():
    model = make("plain")
    composite = segments([(0, 3, {"rule": "flat"}), (3, None, "zplus")])
    with composite.context(model) as lrp:
        rules = {layer.name: type(rule).__name__ for layer, rule in lrp.rules()}
    assert rules["0"] == "Flat"
    assert rules["1"] == "Pass"  # a linear rule never lands on an activation
    assert rules["3"] == "ZPlus"
    assert rules["9"] == "ZPlus"


def test_user_overrides_go_first():
    model = make("plain")
    composite = get_composite("epsilon_plus").prepend(("9", Epsilon(0.5)))
    with composite.context(model) as lrp:
        rules = dict((layer.name, rule) for layer, rule in lrp.rules())
    assert isinstance(rules["9"], Epsilon)
    assert rules["9"].eps == 0.5
    assert isinstance(rules["3"], ZPlus)
    assert rules["3"] is not rules["0"]  # rules are per-layer instances


def test_model_copy_is_equivalent():
    model = make("dense")
    twin = copy.deepcopy(model)
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    with LRP(model, "epsilon_plus_flat") as a, LRP(twin, "epsilon_plus_flat") as b:
        torch.testing.assert_close(a(x).relevance, b(x).relevance)


def test_in_place_weight_updates_reach_cached_rule_weights():
    model = make("plain", seed=6)
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    with LRP(model, "epsilon_plus_flat") as lrp:
        before = lrp(x, 1).relevance
        with torch.no_grad():
            model[3].weight.mul_(-1.5)  # training between two attributions
        after = lrp(x, 1).relevance
    with LRP(model, "epsilon_plus_flat") as fresh:
        expected = fresh(x, 1).relevance
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, expected)
