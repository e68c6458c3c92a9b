"""Conformance: every registered attributor keeps the one call signature and its promises."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from relscope.attribution import Attribution, get_attributor, list_attributors
from relscope.attribution.attributors import ATTRIBUTORS
from relscope.data.builtin import mnist_vit
from relscope.errors import ConfigError

#: Methods that score locations: their attribution is (batch, 1, *spatial).
LOCATION = {"gradcam", "occlusion", "lime", "rise", "attention_rollout"}
#: Methods that need attention layers: they are checked on a small vision transformer.
ATTENTION = {"attention_rollout"}
#: Methods whose backward starts from the target logit (float output weights start as given).
LOGIT_START = {"lrp", "deep_taylor", "patternnet", "pattern_attribution"}
#: Methods that draw random numbers: their rows depend on the batch's draws.
RANDOM = {"smoothgrad", "lime", "rise"}


def model(name: str = "") -> nn.Module:
    torch.manual_seed(0)
    if name in ATTENTION:
        # Same inputs (3 x 8 x 8) and outputs (5) as the CNN: 2 x 2 patches, 16 + 1 tokens.
        return mnist_vit(5, channels=3, size=8, patch=2, width=12, heads=2, hidden=16).eval()
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16, 5),
    ).eval()  # fmt: skip


def build(name: str, net: nn.Module, dtype: torch.dtype):
    params = {
        "deep_taylor": {"low": -3.0, "high": 3.0},
        "gradcam": {"layer": "3"},
        "smoothgrad": {"n": 4, "generator": 0},
        "integrated_gradients": {"steps": 4},
        "lime": {"samples": 40, "generator": 0, "cell": 2},
        "rise": {"masks": 40, "generator": 0, "cells": 4},
        "occlusion": {"window": 2},
    }.get(name, {})
    attributor = get_attributor(name, **params)
    if name in ("patternnet", "pattern_attribution"):
        data = torch.randn(32, 3, 8, 8, generator=torch.Generator().manual_seed(1))
        attributor.fit(net, data.to(dtype))
    return attributor


@pytest.fixture(params=list_attributors())
def name(request) -> str:
    return request.param


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_attributor_keeps_the_call_signature(name, dtype):
    net = model(name).to(dtype)
    x = torch.randn(3, 3, 8, 8, dtype=dtype)
    attributor = build(name, net, dtype)
    result = attributor(net, x, torch.tensor([0, 3, 4]))
    assert isinstance(result, Attribution)
    output, attribution = result
    torch.testing.assert_close(output, net(x).detach())
    expected = (3, 1, 8, 8) if name in LOCATION else tuple(x.shape)
    assert tuple(attribution.shape) == expected
    assert attribution.dtype == dtype
    assert torch.isfinite(attribution).all()
    assert attribution.abs().sum() > 0  # it explains something
    json.dumps(attributor.params())  # parameters are exportable


def test_every_attributor_understands_every_target_form(name):
    net = model(name).double()
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    output = net(x).detach()
    predicted = output.argmax(1)
    weights = torch.nn.functional.one_hot(predicted, 5).double()
    if name in LOGIT_START:
        weights = weights * output
    results = [
        build(name, net, torch.float64)(net, x, target).relevance
        for target in (None, predicted, weights)
    ]
    torch.testing.assert_close(results[0], results[1])
    torch.testing.assert_close(results[0], results[2])
    single = build(name, net, torch.float64)(net, x, 2).relevance
    listed = build(name, net, torch.float64)(net, x, torch.tensor([2, 2])).relevance
    torch.testing.assert_close(single, listed)


def test_rows_do_not_depend_on_their_batch_mates(name):
    if name in RANDOM:
        pytest.skip("random draws are made per batch")
    net = model(name).double()
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    batch = build(name, net, torch.float64)(net, x, torch.tensor([1, 2, 3])).relevance
    alone = build(name, net, torch.float64)(net, x[1:2], torch.tensor([2])).relevance
    torch.testing.assert_close(batch[1:2], alone)


def test_every_attributor_refuses_bad_inputs(name):
    net = model(name)
    attributor = build(name, net, torch.float32)
    for bad in (torch.zeros(2, 3, 8, 8, dtype=torch.long), torch.randn(8), "image"):
        with pytest.raises(ConfigError) as info:
            attributor(net, bad, None)
        assert "\n" not in str(info.value)


def test_registry():
    assert set(list_attributors()) == set(ATTRIBUTORS)
    with pytest.raises(ConfigError, match="unknown attributor 'nope'; known attributors: "):
        get_attributor("nope")
    with pytest.raises(ConfigError, match="bogus"):
        get_attributor("smoothgrad", bogus=1)
