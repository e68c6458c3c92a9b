"""The diagnostics report: conservation ratios against identities, NaN named with its layer."""

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from relscope.attribution import Epsilon
from relscope.attribution.lrp.composites import Composite
from relscope.attribution.lrp.functions import normalize, tie
from relscope.errors import ConfigError
from relscope.evaluation import DiagnosticsReport, diagnose


def relu_net(seed: int, bias: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    return (
        nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1, bias=bias),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(4, 6, 3, padding=1, bias=bias),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(6 * 4 * 4, 5, bias=bias),
        )
        .double()
        .eval()
    )


def gradient_times_input(model, x, target):
    x = x.clone().requires_grad_(True)
    output = model(x)
    (grad,) = torch.autograd.grad(output[range(len(x)), target].sum(), x)
    return (grad * x).detach(), output.detach()


@pytest.mark.parametrize(
    ("composite", "params", "tolerance"), [("lrp0", {}, 1e-10), ("epsilon", {"eps": 1e-12}, 1e-8)]
)
def test_conservative_rules_on_a_bias_free_relu_net_give_ratio_one(composite, params, tolerance):
    model = relu_net(0)
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    report = diagnose(model, x, None, composite, **params)
    assert isinstance(report, DiagnosticsReport)
    assert report.composite == composite and report.finite and report.first_nonfinite is None
    with torch.no_grad():
        predicted = model(x).argmax(1)
    relevance, output = gradient_times_input(model, x, predicted)
    assert torch.equal(report.target, predicted)
    # relevance starts as the target logit; LRP-0 is gradient x input here
    torch.testing.assert_close(report.output_relevance, output.max(1).values)
    torch.testing.assert_close(
        report.input_relevance, relevance.flatten(1).sum(1), rtol=tolerance, atol=tolerance
    )
    torch.testing.assert_close(
        report.ratio, torch.ones(3, dtype=torch.float64), rtol=tolerance, atol=tolerance
    )
    # every layer of this chain passes the whole relevance on
    assert list(report.sums) == ["0", "1", "2", "3", "4", "5", "6"]
    assert report.kinds["0"] == "convolution" and report.kinds["6"] == "dense"
    for name, ratio in report.layer_ratios().items():
        torch.testing.assert_close(
            ratio, torch.ones(3, dtype=torch.float64), rtol=tolerance, atol=tolerance, msg=name
        )


def test_a_bias_absorbs_relevance_by_the_expected_ratio():
    # One dense layer with bias and LRP-0: R_i = x_i w_ti R / z_t with R = z_t, so the input
    # keeps z_t - b_t and the ratio is (z_t - b_t) / z_t.
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 3)).double()
    x = torch.randn(5, 4, dtype=torch.float64)
    target = torch.tensor([0, 1, 2, 0, 1])
    report = diagnose(model, x, target, "lrp0")
    with torch.no_grad():
        z = model(x)[range(5), target]
    bias = model[0].bias.detach()[target]
    torch.testing.assert_close(report.input_relevance, z - bias)
    torch.testing.assert_close(report.ratio, (z - bias) / z)
    assert torch.equal(report.target, target)
    assert diagnose(model, x, 2, "lrp0").target.tolist() == [2] * 5


def test_zero_output_relevance_makes_the_ratio_undefined_not_an_error():
    model = relu_net(1)
    x = torch.zeros(2, 3, 8, 8, dtype=torch.float64)
    report = diagnose(model, x, 0, "epsilon")
    assert report.output_relevance.tolist() == [0.0, 0.0]
    assert torch.isnan(report.ratio).all()
    assert report.finite  # the relevance itself is fine (all zero)
    assert "undefined for 2 samples with zero output" in str(report)
    assert report.to_dict()["ratio"] == [None, None]


class BackwardOnlyNaN(Epsilon):
    """A deliberately broken rule: finite forward, NaN relevance in backward."""

    def propagate(self, layer, x):
        z = layer(tie(x), layer.weight, layer.bias)
        return normalize(z.detach(), [z], [float("nan")], self.eps)


def test_nan_made_by_a_rule_is_reported_with_its_layer_instead_of_raised():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 2)).double().eval()
    x = torch.rand(2, 3, dtype=torch.float64)
    composite = Composite([("2", BackwardOnlyNaN()), ("linear", Epsilon())], name="broken")
    report = diagnose(model, x, None, composite)
    assert report.first_nonfinite == "2 (its rule made the relevance of 1 non-finite)"
    assert not report.finite
    assert torch.isnan(report.sums["1"]).all() and torch.isfinite(report.sums["2"]).all()
    lines = report.summary()
    assert "non-finite relevance: first at layer 2 (its rule made" in "\n".join(lines)
    assert lines[0] == "LRP diagnostics: 2 samples, composite 'broken'"
    layers = {item["name"]: item for item in report.to_dict()["layers"]}
    assert layers["1"]["sum"] == [None, None] and None not in layers["2"]["sum"]


def test_nan_in_the_forward_pass_names_the_layer():
    torch.manual_seed(5)
    model = (
        nn.Sequential(
            nn.Linear(3, 4, bias=False),
            nn.ReLU(),
            nn.Linear(4, 4, bias=False),
            nn.ReLU(),
            nn.Linear(4, 2, bias=False),
        )
        .double()
        .eval()
    )
    with torch.no_grad():
        model[2].weight[1, 0] = math.inf  # layer 2 overflows, later layers make NaN
    x = torch.rand(2, 3, dtype=torch.float64) + 0.1
    report = diagnose(model, x, 0, "epsilon")
    assert report.first_nonfinite == "2 (non-finite forward output)"
    assert not report.finite


def test_summary_and_json_export():
    model = relu_net(6, bias=True)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    report = diagnose(model, x, torch.tensor([1, 4]), "epsilon_plus")
    lines = report.summary()
    assert lines[0] == "LRP diagnostics: 2 samples, composite 'epsilon_plus'"
    ratio = report.ratio
    assert lines[3] == (
        f"input / output relevance: mean {ratio.mean().item():.6g} "
        f"(min {ratio.min().item():.6g}, max {ratio.max().item():.6g})"
    )
    assert lines[4] == "non-finite relevance: none"
    assert lines[5] == "exploding relevance: none"
    assert lines[6].startswith("layer relevance sum / output relevance")
    assert len(lines) == 7 + 7 and lines[7].split() == [
        "0",
        "convolution",
        f"{report.layer_ratios()['0'].mean():.6g}",
    ]
    assert str(report) == "\n".join(lines)
    exported = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert exported["target"] == [1, 4] and exported["composite"] == "epsilon_plus"
    assert exported["first_nonfinite"] is None
    assert exported["ratio"] == pytest.approx(ratio.tolist(), rel=1e-12)
    assert [item["name"] for item in exported["layers"]] == list(report.sums)
    assert exported["layers"][0]["sum"] == pytest.approx(report.sums["0"].tolist(), rel=1e-12)


def test_bad_target_and_inputs():
    model = relu_net(7)
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    with pytest.raises(ConfigError, match=r"target class out of range 0\.\.4"):
        diagnose(model, x, 5)
    with pytest.raises(ConfigError, match="target must hold 2 class indices"):
        diagnose(model, x, [0, 1, 2])
    with pytest.raises(ConfigError, match="inputs must be a floating point tensor"):
        diagnose(model, x.long())


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 1000), batch=st.integers(1, 4))
def test_lrp0_conserves_relevance_for_any_bias_free_relu_net(seed, batch):
    model = relu_net(seed % 5)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, 8, 8, dtype=torch.float64, generator=generator)
    report = diagnose(model, x, None, "lrp0")
    nonzero = report.output_relevance != 0
    torch.testing.assert_close(
        report.ratio[nonzero], torch.ones_like(report.ratio[nonzero]), rtol=1e-9, atol=1e-9
    )


def test_the_report_names_an_exploding_layer():
    import dataclasses

    from relscope.attribution import Composite
    from relscope.attribution.lrp.rules import Gamma
    from relscope.errors import RelscopeWarning

    class SingleDenominatorGamma(Gamma):  # the old fault: w + gamma w^+ on every output
        def apply(self, op, *args, **kwargs):
            op = dataclasses.replace(op, silent_negative_outputs=True)
            return super().apply(op, *args, **kwargs)

    conv = nn.Conv1d(2, 1, 1, bias=False)
    with torch.no_grad():
        conv.weight[:] = torch.tensor([2.0, -3.0]).reshape(1, 2, 1)
    model = nn.Sequential(conv, nn.Flatten(), nn.Linear(1, 1)).double().eval()
    x = torch.ones(1, 2, 1, dtype=torch.float64)
    with pytest.warns(RelscopeWarning, match="explodes at layer 0"):
        report = diagnose(model, x, 0, Composite([("convolution", SingleDenominatorGamma(0.5))]))
    assert [name for name, _, _ in report.exploding] == ["0"]
    assert "exploding relevance: 0 (" in "\n".join(report.summary())
    assert report.to_dict()["exploding"][0]["bound"] == pytest.approx(5.0)
    clean = diagnose(model, x, 0, Composite([("convolution", Gamma(0.5))]))
    assert clean.exploding == ()
    assert "exploding relevance: none" in clean.summary()
