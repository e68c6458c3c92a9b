"""Winner-takes-all max pooling: autograd's gradient exactly, with compact saved state."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from relscope.attribution.lrp.layers import Operation
from relscope.attribution.lrp.pooling import max_pool_settings, winner_takes_all
from relscope.attribution.lrp.rules import WinnerTakesAll

POOLS = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}


def _check(module: nn.Module, x: torch.Tensor) -> None:
    settings_ = max_pool_settings(module, module, (x,), {})
    assert settings_ is not None
    expected_x = x.clone().requires_grad_()
    expected = module(expected_x)
    grad = torch.randn_like(expected)
    expected.backward(grad)
    ours_x = x.clone().requires_grad_()
    ours = winner_takes_all(ours_x, settings_)
    ours.backward(grad)
    assert torch.equal(ours, expected)
    assert torch.equal(ours_x.grad, expected_x.grad)


@settings(max_examples=60, deadline=None)
@given(
    dims=st.sampled_from([1, 2, 3]),
    kernel=st.integers(1, 3),
    stride=st.integers(1, 3),
    dilation=st.integers(1, 2),
    ceil=st.booleans(),
    pad=st.booleans(),
    batched=st.booleans(),
    ties=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_gradient_equals_autograd(dims, kernel, stride, dilation, ceil, pad, batched, ties, seed):
    generator = torch.Generator().manual_seed(seed)
    size = (7, 6, 5)[:dims]
    shape = ((2, 3) if batched else (3,)) + size
    x = torch.randn(shape, generator=generator, dtype=torch.float64)
    if ties:  # ReLU outputs: many equal maxima
        x = x.clamp(min=0).round()
    padding = kernel // 2 if pad else 0
    module = POOLS[dims](kernel, stride, padding, dilation, ceil_mode=ceil)
    _check(module, x)


def test_overlapping_windows_accumulate():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 1.0  # the winner of all nine overlapping windows around it
    _check(nn.MaxPool2d(3, 1, 1), x)


def test_keeps_two_bytes_per_output():
    saved = []

    def pack(tensor):
        saved.append(tensor)
        return tensor

    x = torch.randn(2, 4, 16, 16, requires_grad=True)
    settings_ = max_pool_settings(nn.MaxPool2d(2), nn.MaxPool2d(2), (x,), {})
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        winner_takes_all(x, settings_)
    assert [(t.dtype, tuple(t.shape)) for t in saved] == [(torch.int16, (2, 4, 8, 8))]


def test_functional_calls_and_fallbacks():
    x = torch.randn(1, 2, 8, 8)
    found = max_pool_settings(None, F.max_pool2d, (x, 2), {"padding": 1})
    assert found["kernel_size"] == (2, 2)
    assert found["stride"] == (2, 2)
    assert found["padding"] == (1, 1)
    assert max_pool_settings(None, F.max_pool2d, (x, 2), {"return_indices": True}) is None
    assert max_pool_settings(nn.MaxPool2d(2, return_indices=True), None, (x,), {}) is None
    adaptive = nn.AdaptiveMaxPool2d(3)
    assert max_pool_settings(adaptive, adaptive, (x,), {}) is None


@pytest.mark.parametrize(
    "module", [nn.MaxPool2d(3, 2, 1), nn.AdaptiveMaxPool2d(3)], ids=["pool", "adaptive"]
)
def test_rule_equals_the_gradient(module):
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64, requires_grad=True)
    expected = torch.autograd.grad(module(x).sum(), x)[0]
    op = Operation("pool", "maxpool", module, module)
    ours = torch.autograd.grad(WinnerTakesAll()(op, x).sum(), x)[0]
    assert torch.equal(ours, expected)
