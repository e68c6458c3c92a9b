"""Attribution configurations: validation, round trip, and the attributors they build."""

import json

import pytest
import torch

from relscope.attribution import segments
from relscope.attribution.config import MethodConfig, Segment, method_config
from relscope.attribution.methods.gradients import LRPAttributor, SmoothGrad
from relscope.errors import ConfigError


def small_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 4), torch.nn.ReLU(),
        torch.nn.Linear(4, 3),
    ).eval()  # fmt: skip


def test_a_composite_name_builds_lrp_with_that_composite_and_its_params():
    config = method_config({"method": "epsilon_plus", "params": {"eps": 0.01}})
    assert config == MethodConfig("epsilon_plus", "epsilon_plus", {"eps": 0.01})
    attributor = config.attributor()
    assert isinstance(attributor, LRPAttributor)
    model, x = small_net(), torch.randn(4, 6)
    direct = LRPAttributor("epsilon_plus", eps=0.01)(model, x, 1).relevance
    torch.testing.assert_close(attributor(model, x, 1).relevance, direct)


def test_attributor_names_win_over_composites_of_the_same_name():
    # "gradient" is both; as a method it must be the plain gradient, not LRP with logits.
    model, x = small_net(), torch.randn(3, 6, requires_grad=True)
    relevance = method_config("gradient").attributor()(model, x.detach(), 2).relevance
    (expected,) = torch.autograd.grad(model(x)[:, 2].sum(), x)
    torch.testing.assert_close(relevance, expected)
    smooth = method_config({"method": "smoothgrad", "params": {"n": 3}}).attributor()
    assert isinstance(smooth, SmoothGrad) and smooth.n == 3


def test_segments_equal_the_designer_composite_and_round_trip_through_json():
    data = {
        "name": "mine",
        "segments": [
            {"start": 0, "stop": 2, "rule": "epsilon", "params": {"eps": 0.5}},
            {"start": 2, "stop": None, "rule": "zplus"},
        ],
    }
    config = method_config(data)
    assert config.segments[1] == Segment(2, None, "zplus", {})
    again = method_config(json.loads(json.dumps(config.to_dict())))
    assert again == config
    model, x = small_net(), torch.randn(4, 6)
    expected = LRPAttributor(
        segments([(0, 2, {"rule": "epsilon", "eps": 0.5}), (2, None, "zplus")])
    )
    torch.testing.assert_close(
        config.attributor()(model, x, 0).relevance, expected(model, x, 0).relevance
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"method": "nope"}, "unknown method 'nope'"),
        (
            {"method": "epsilon_plus", "params": {"bad": 1}},
            "epsilon_plus has no parameter 'bad'; its parameters: eps, maxpool",
        ),
        (
            {"method": "epsilon_gamma_box", "params": {"low": "abc"}},
            "parameter low of epsilon_gamma_box: expected a number or a list of numbers, got 'abc'",
        ),
        (
            {"method": "smoothgrad", "params": {"n": "3"}},
            "parameter n of smoothgrad: expected an integer, got '3'",
        ),
        (
            {"method": "smoothgrad", "params": {"eps": 0.1}},
            "smoothgrad has no parameter 'eps'; its parameters: n, noise_level, postprocess, "
            "batch_size, generator, composite \\(a composite's parameters need composite=NAME",
        ),
        (
            {"method": "lrp", "params": {"eps": "x"}},
            "parameter eps of epsilon: expected a number, got 'x'",
        ),
        (
            {"method": "deep_taylor", "params": {"high": 1}},
            "deep_taylor needs the parameter low \\(it has no default\\)",
        ),
        (
            {"segments": [{"start": 0, "rule": "zbox", "params": {"low": "a", "high": 1}}]},
            "segments\\[0\\]: parameter low of rule zbox: expected a number or a list",
        ),
        (
            {"segments": [{"start": 0, "rule": "epsilon", "params": {"gamma": 1}}]},
            "segments\\[0\\]: rule epsilon has no parameter 'gamma'; its parameters: eps",
        ),
        ({"method": "epsilon", "extra": 1}, "unknown key\\(s\\) extra"),
        ({"method": "epsilon", "params": [1]}, "'params' must map names to values"),
        ({"segments": []}, "'segments' is empty"),
        ({"segments": [{"start": 0, "rule": "zzz"}]}, "unknown rule 'zzz'"),
        ({"segments": [{"start": -1, "rule": "epsilon"}]}, "segments\\[0\\]: 'start'"),
        ({"segments": [{"start": 2, "stop": 2, "rule": "epsilon"}]}, "'stop' must be null"),
        ({"segments": [{"start": 0, "rule": "epsilon"}], "method": "epsilon"}, "either"),
        ({"method": "epsilon", "name": ""}, "'name' must be a non-empty text"),
        ([1, 2], "must be a mapping"),
    ],
)
def test_bad_configurations_are_refused_with_the_key_named(data, message):
    with pytest.raises(ConfigError, match=message):
        method_config(data)
