"""Gradient-family attributors against float64 references written here (autograd loops,
hand-written backward passes, explicit matrix formulas) and mathematical identities
(Integrated Gradients completeness, LRP-0 = input x gradient)."""

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from relscope.attribution.attributors import ATTRIBUTORS, get_attributor, list_attributors
from relscope.attribution.lrp.composites import get_composite
from relscope.attribution.lrp.engine import attribute
from relscope.attribution.methods.gradients import (
    DeconvNet,
    DeepTaylor,
    Gradient,
    GuidedBackprop,
    InputXGradient,
    IntegratedGradients,
    LRPAttributor,
    SmoothGrad,
)
from relscope.errors import ConfigError

from .nets import make

F64 = torch.float64


# ------------------------------------------------------------------------------ helpers
def mlp(activation=nn.ReLU, *, bias: bool = True, sizes=(6, 8, 7, 4), seed: int = 0):
    torch.manual_seed(seed)
    layers = []
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        if i:
            layers.append(activation())
        layers.append(nn.Linear(fan_in, fan_out, bias=bias))
    return nn.Sequential(*layers).double().eval()


def batch(shape, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return scale * torch.randn(shape, generator=generator, dtype=F64)


def weights_of(output: torch.Tensor, target) -> torch.Tensor:
    """The reference's own target resolution (independent of the library's)."""
    if isinstance(target, torch.Tensor) and target.is_floating_point():
        return target
    if target is None:
        index = output.argmax(1)
    elif isinstance(target, int):
        index = torch.full((output.shape[0],), target)
    else:
        index = target
    weights = torch.zeros_like(output)
    weights[torch.arange(output.shape[0]), index] = 1.0
    return weights


def autograd_gradient(model, x, weights) -> torch.Tensor:
    leaf = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(leaf), leaf, weights)
    return grad


def clean_weights(model, x, target) -> torch.Tensor:
    with torch.no_grad():
        return weights_of(model(x), target)


def assert_one_line_config_error(call, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


TARGETS = {
    "int": lambda out: 2,
    "per_sample": lambda out: torch.tensor([3, 0, 1, 2])[: out.shape[0]],
    "predicted": lambda out: None,
    "weights": lambda out: batch(out.shape, seed=9),
}


# ---------------------------------------------------------------------- gradient, x*grad
@pytest.mark.parametrize("target_kind", sorted(TARGETS))
@pytest.mark.parametrize("net", ["mlp", "conv"])
def test_gradient_is_autograd_of_the_target_score(net, target_kind):
    model, x = (mlp(), batch((4, 6))) if net == "mlp" else (make("plain"), batch((4, 3, 8, 8)))
    with torch.no_grad():
        expected_output = model(x)
    target = TARGETS[target_kind](expected_output)
    output, gradient = Gradient()(model, x, target)
    expected = autograd_gradient(model, x, weights_of(expected_output, target))
    torch.testing.assert_close(output, expected_output, rtol=0, atol=0)
    torch.testing.assert_close(gradient, expected, rtol=1e-12, atol=1e-14)
    assert not gradient.requires_grad and not output.requires_grad


def test_gradient_target_as_function_of_the_output():
    model, x = mlp(), batch((3, 6))
    contrast = lambda out: torch.softmax(out, 1) - 0.25  # noqa: E731
    _, gradient = Gradient()(model, x, contrast)
    with torch.no_grad():
        weights = contrast(model(x))
    expected = autograd_gradient(model, x, weights)
    torch.testing.assert_close(gradient, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("target_kind", sorted(TARGETS))
def test_input_x_gradient_is_input_times_gradient(target_kind):
    model, x = make("plain", bias=True), batch((4, 3, 8, 8))
    with torch.no_grad():
        target = TARGETS[target_kind](model(x))
    _, attribution = InputXGradient()(model, x, target)
    expected = x * autograd_gradient(model, x, clean_weights(model, x, target))
    torch.testing.assert_close(attribution, expected, rtol=1e-12, atol=1e-14)


def test_bad_targets_are_one_line_config_errors():
    model, x = mlp(), batch((3, 6))
    for attributor in (Gradient(), SmoothGrad(n=2), IntegratedGradients(steps=2)):
        assert_one_line_config_error(lambda a=attributor: a(model, x, 4), "out of range")
        assert_one_line_config_error(
            lambda a=attributor: a(model, x, torch.tensor([0, 1])), "3 class indices"
        )
        assert_one_line_config_error(
            lambda a=attributor: a(model, x, torch.zeros(3, 2, dtype=torch.long)),
            "3 class indices",
        )
    assert_one_line_config_error(lambda: Gradient()(model, x[0], 0), "batch")


# ----------------------------------------------------------------------------- LRP, LRP-0
def conv_without_pooling():
    torch.manual_seed(2)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.Conv2d(4, 2, 3, stride=2, bias=False),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(2 * 3 * 3, 5, bias=False),
    ).double()


@pytest.mark.parametrize(
    ("net", "composite", "params", "tolerance"),
    [
        ("mlp", "lrp0", {}, 1e-10),
        ("plain", "lrp0", {}, 1e-10),
        ("resnet", "lrp0", {}, 1e-10),
        ("mlp", "epsilon", {"eps": 1e-13}, 1e-8),
        # (the epsilon composite keeps its own stabilizer on pooling and sums)
        ("conv", "epsilon", {"eps": 1e-13}, 1e-8),
    ],
)
def test_lrp0_on_bias_free_relu_nets_equals_input_x_gradient(net, composite, params, tolerance):
    model = {"mlp": lambda: mlp(bias=False), "conv": conv_without_pooling}.get(
        net, lambda: make(net)
    )()
    x = batch((3, 6)) if net == "mlp" else batch((3, 3, 8, 8))
    target = torch.tensor([1, 0, 3])
    output, relevance = LRPAttributor(composite, **params)(model, x, target)
    _, expected = InputXGradient()(model, x, target)
    torch.testing.assert_close(relevance, expected, rtol=tolerance, atol=1e-12)
    # started from the logit: relevance is conserved (bias-free, LRP-0)
    torch.testing.assert_close(
        relevance.flatten(1).sum(1), output[torch.arange(3), target], rtol=tolerance, atol=1e-12
    )


def test_lrp_attributor_is_the_engine_with_initial_logit_and_composite_params():
    model, x = make("plain", bias=True), batch((2, 3, 8, 8))
    low, high = -3.0 * torch.ones(3, 1, 1), 3.0 * torch.ones(3, 1, 1)
    composite = get_composite("epsilon_gamma_box", low=low, high=high, gamma=0.5)
    expected_output, expected = attribute(model, x, None, composite)
    output, relevance = LRPAttributor("epsilon_gamma_box", low=low, high=high, gamma=0.5)(
        model, x, None
    )
    torch.testing.assert_close(output, expected_output)
    torch.testing.assert_close(relevance, expected, rtol=1e-12, atol=1e-14)
    # a Composite object instead of a name
    _, again = LRPAttributor(composite)(model, x, None)
    torch.testing.assert_close(again, expected, rtol=1e-12, atol=1e-14)


def test_gradient_with_an_lrp_composite_starts_from_weight_one():
    model, x = make("plain"), batch((2, 3, 8, 8))
    target = torch.tensor([4, 1])
    _, relevance = Gradient("epsilon_plus")(model, x, target)
    _, expected = attribute(model, x, target, "epsilon_plus", initial="one")
    torch.testing.assert_close(relevance, expected, rtol=1e-12, atol=1e-14)
    _, logit_started = LRPAttributor("epsilon_plus")(model, x, target)
    with torch.no_grad():
        logits = model(x)[torch.arange(2), target]
    torch.testing.assert_close(logit_started, relevance * logits.reshape(-1, 1, 1, 1))


# -------------------------------------------------------------- guided backprop, deconvnet
def modified_relu_backward(model: nn.Sequential, x, weights, *, mask: bool) -> torch.Tensor:
    """Hand-written backward through Linear/ReLU: ReLUs pass ``g^+`` (times ``1[z > 0]``)."""
    pre_activations, a = [], x
    for layer in model:
        if isinstance(layer, nn.Linear):
            a = a @ layer.weight.T + layer.bias
        else:
            pre_activations.append(a)
            a = a.clamp(min=0)
    g = weights
    for layer in reversed(model):
        if isinstance(layer, nn.Linear):
            g = g @ layer.weight
        else:
            z = pre_activations.pop()
            g = g.clamp(min=0) * ((z > 0).to(g) if mask else 1.0)
    return g.detach()


@pytest.mark.parametrize(("cls", "mask"), [(GuidedBackprop, True), (DeconvNet, False)])
@pytest.mark.parametrize("target_kind", sorted(TARGETS))
def test_guided_backprop_and_deconvnet_equal_a_hand_written_backward(cls, mask, target_kind):
    model, x = mlp(sizes=(6, 9, 8, 7, 4), seed=3), batch((4, 6), seed=1)
    with torch.no_grad():
        target = TARGETS[target_kind](model(x))
    output, attribution = cls()(model, x, target)
    weights = clean_weights(model, x, target)
    expected = modified_relu_backward(model, x, weights, mask=mask)
    torch.testing.assert_close(attribution, expected, rtol=1e-12, atol=1e-14)
    plain = autograd_gradient(model, x, weights)
    assert not torch.allclose(attribution, plain)  # the modification matters here
    torch.testing.assert_close(output, model(x).detach())


# ---------------------------------------------------------------------------- deep Taylor
def deep_taylor_reference(model: nn.Sequential, x, target, low, high, eps):
    """z+ (no bias) on the output layer, z^B (no bias) on the input layer, numpy float64."""
    w1, w2 = (model[i].weight.detach().numpy() for i in (0, 2))
    b1, b2 = (model[i].bias.detach().numpy() for i in (0, 2))
    x = x.numpy()
    low, high = np.broadcast_to(low, x.shape), np.broadcast_to(high, x.shape)
    a1 = np.maximum(x @ w1.T + b1, 0)
    out = a1 @ w2.T + b2
    r2 = np.zeros_like(out)
    rows = np.arange(len(x))
    r2[rows, target] = out[rows, target]  # the target logit
    w2p = np.maximum(w2, 0)
    s2 = r2 / (a1 @ w2p.T + eps)  # z+ >= 0: the stabilizer adds eps
    r1 = a1 * (s2 @ w2p)
    w1p, w1n = np.maximum(w1, 0), np.minimum(w1, 0)
    z_box = x @ w1.T - low @ w1p.T - high @ w1n.T
    s1 = r1 / (z_box + eps * np.where(z_box >= 0, 1.0, -1.0))
    return x * (s1 @ w1) - low * (s1 @ w1p) - high * (s1 @ w1n)


@pytest.mark.parametrize("bounds", ["scalar", "per_feature"])
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), rows=st.integers(1, 4))
def test_deep_taylor_equals_z_plus_z_box_reference(bounds, seed, rows):
    model = mlp(sizes=(6, 8, 4), seed=seed % 5)
    generator = torch.Generator().manual_seed(seed)
    if bounds == "scalar":
        low, high = -1.5, 2.0
    else:
        low = -torch.rand(6, generator=generator, dtype=F64) - 0.5
        high = torch.rand(6, generator=generator, dtype=F64) + 0.5
    x = torch.as_tensor(low) + torch.rand(rows, 6, generator=generator, dtype=F64) * (
        torch.as_tensor(high) - torch.as_tensor(low)
    )
    target = torch.randint(0, 4, (rows,), generator=generator)
    _, relevance = DeepTaylor(low, high, eps=1e-6)(model, x, target)
    expected = deep_taylor_reference(
        model, x, target.numpy(), np.asarray(low), np.asarray(high), 1e-6
    )
    np.testing.assert_allclose(relevance.numpy(), expected, rtol=1e-9, atol=1e-12)


def test_deep_taylor_needs_bounds():
    with pytest.raises(ConfigError, match="low"):
        get_attributor("deep_taylor")
    assert_one_line_config_error(lambda: DeepTaylor(1.0, -1.0), "low <= high")
    assert DeepTaylor(-1.0, 1.0, eps=0.5).params() == {"low": -1.0, "high": 1.0, "eps": 0.5}


# ------------------------------------------------------------------- Integrated Gradients
def reference_quadrature(method: str, m: int):
    k = np.arange(m, dtype=np.float64)
    if method == "left":
        return k / m, np.full(m, 1 / m)
    if method == "right":
        return (k + 1) / m, np.full(m, 1 / m)
    if method == "middle":
        return (k + 0.5) / m, np.full(m, 1 / m)
    weights = np.full(m, 1 / (m - 1))
    weights[[0, -1]] /= 2
    return np.linspace(0, 1, m), weights


def integrated_gradients_reference(model, x, x0, weights, method, steps):
    alphas, quadrature = reference_quadrature(method, steps)
    total = torch.zeros_like(x)
    for alpha, w in zip(alphas, quadrature, strict=True):
        total += w * autograd_gradient(model, x0 + alpha * (x - x0), weights)
    return (x - x0) * total


@pytest.mark.parametrize("method", ["left", "right", "middle", "trapezoid", "riemann_trapezoid"])
def test_integrated_gradients_equals_an_explicit_quadrature(method):
    model, x = mlp(nn.Tanh, seed=1), batch((3, 6), seed=2)
    x0 = batch((3, 6), seed=3, scale=0.3)
    target = torch.tensor([0, 3, 1])
    steps = 6
    output, attribution = IntegratedGradients(x0, steps, method, batch_size=4)(model, x, target)
    expected = integrated_gradients_reference(
        model, x, x0, clean_weights(model, x, target), method.removeprefix("riemann_"), steps
    )
    torch.testing.assert_close(attribution, expected, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(output, model(x).detach())


@pytest.mark.parametrize("method", ["left", "right", "middle", "trapezoid"])
@pytest.mark.parametrize("activation", [nn.Tanh, nn.Softplus])
def test_integrated_gradients_completeness_error_shrinks_with_steps(activation, method):
    model, x = mlp(activation, seed=4), batch((5, 6), seed=5, scale=2.0)
    target = torch.tensor([0, 1, 2, 3, 0])
    with torch.no_grad():
        rows = torch.arange(5)
        difference = model(x)[rows, target] - model(torch.zeros_like(x))[rows, target]
    errors = {}
    for steps in (8, 64):
        _, attribution = IntegratedGradients(steps=steps, method=method)(model, x, target)
        errors[steps] = (attribution.sum(1) - difference).abs().max().item()
    order = 1 if method in ("left", "right") else 2  # Riemann sums O(1/m), the others O(1/m^2)
    assert errors[8] > 1e-7  # the quadrature error is real at 8 steps ...
    assert errors[64] < errors[8] / (8**order / 3)  # ... and shrinks at its order
    assert errors[64] < 0.2 * (8 / 64) ** order


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    rows=st.integers(1, 4),
    steps=st.integers(2, 9),
    method=st.sampled_from(["left", "right", "middle", "trapezoid"]),
    batch_size=st.integers(0, 10),
    baseline=st.sampled_from(["zeros", "number", "tensor", "per_feature", "function"]),
)
def test_integrated_gradients_is_exactly_complete_on_linear_models(
    seed, rows, steps, method, batch_size, baseline
):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 4), nn.Linear(4, 3)).double()
    x = batch((rows, 5), seed=seed)
    x0 = {
        "zeros": "zeros",
        "number": 0.7,
        "tensor": batch((rows, 5), seed=seed + 1),
        "per_feature": batch((5,), seed=seed + 2),
        "function": lambda inputs: inputs.mean(1, keepdim=True),
    }[baseline]
    x0_tensor = IntegratedGradients(x0).baseline_for(x)
    attributor = IntegratedGradients(x0, steps, method, batch_size=batch_size)
    output, attribution = attributor(model, x, None)
    predicted = output.argmax(1)
    with torch.no_grad():
        at_baseline = model(x0_tensor)[torch.arange(rows), predicted]
    torch.testing.assert_close(
        attribution.sum(1), output[torch.arange(rows), predicted] - at_baseline, rtol=1e-10,
        atol=1e-10,
    )  # fmt: skip


def test_integrated_gradients_baselines():
    model, x = mlp(nn.Tanh), batch((3, 6))
    zeros = IntegratedGradients("zeros", 5)(model, x, 1).relevance
    for same in (0.0, 0, torch.zeros(6), torch.zeros(1, 6), lambda inputs: 0.0 * inputs):
        torch.testing.assert_close(IntegratedGradients(same, 5)(model, x, 1).relevance, zeros)
    per_feature = batch((6,), seed=7)
    torch.testing.assert_close(
        IntegratedGradients(per_feature, 5)(model, x, 1).relevance,
        IntegratedGradients(per_feature.expand(3, 6).clone(), 5)(model, x, 1).relevance,
    )
    # a baseline that is part of a graph gives an attribution without one
    tracked = IntegratedGradients(torch.zeros(6, dtype=F64, requires_grad=True), 5)
    assert not tracked(model, x, 1).relevance.requires_grad
    # at x = baseline the path is empty: zero attribution
    torch.testing.assert_close(
        IntegratedGradients(lambda inputs: inputs, 5)(model, x, 1).relevance, torch.zeros_like(x)
    )


@pytest.mark.parametrize("bad", [torch.zeros(5), torch.zeros(2, 6), torch.zeros(4, 3, 6)])
def test_integrated_gradients_baseline_of_the_wrong_shape(bad):
    model, x = mlp(), batch((3, 6))
    for baseline in (bad, lambda inputs, bad=bad: bad):
        assert_one_line_config_error(
            lambda b=baseline: IntegratedGradients(b, 4)(model, x, 0), "baseline of shape"
        )
    assert_one_line_config_error(
        lambda: IntegratedGradients(lambda inputs: "zeros", 4)(model, x, 0), "baseline function"
    )


def test_integrated_gradients_batch_size_does_not_change_results():
    model, x = make("plain", bias=True), batch((2, 3, 8, 8))
    results = [
        IntegratedGradients(0.1, steps=7, batch_size=size)(model, x, None).relevance
        for size in (0, 1, 3, 7, 50)
    ]
    for result in results[1:]:
        torch.testing.assert_close(result, results[0], rtol=1e-12, atol=1e-14)


def test_integrated_gradients_target_is_resolved_on_the_input():
    model, x = mlp(nn.Tanh), batch((4, 6))
    predicted = model(x).argmax(1)
    torch.testing.assert_close(
        IntegratedGradients(steps=4)(model, x, None).relevance,
        IntegratedGradients(steps=4)(model, x, predicted).relevance,
    )
    weights = batch((4, 4), seed=11)
    expected = integrated_gradients_reference(model, x, torch.zeros_like(x), weights, "middle", 4)
    torch.testing.assert_close(
        IntegratedGradients(steps=4)(model, x, weights).relevance, expected, rtol=1e-12, atol=1e-14
    )


# ------------------------------------------------------------------------------ SmoothGrad
POST = {"none": lambda g: g, "abs": torch.abs, "square": torch.square}


def smoothgrad_reference(gradient_of, x, n, noise_level, post, seed):
    """Copy ``i`` draws ``torch.randn(x.shape)`` as the ``i``-th draw of a seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    sigma = noise_level * (x.flatten(1).max(1).values - x.flatten(1).min(1).values)
    sigma = sigma.reshape(-1, *[1] * (x.ndim - 1))
    total = torch.zeros_like(x)
    for _ in range(n):
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        total += POST[post](gradient_of(x + sigma * noise))
    return total / n


@pytest.mark.parametrize("composite", [None, "epsilon_plus", "guided_backprop"])
@pytest.mark.parametrize("postprocess", ["none", "abs", "square"])
def test_smoothgrad_without_noise_is_exactly_the_gradient(composite, postprocess):
    model, x = make("plain", bias=True), batch((3, 3, 8, 8))
    target = torch.tensor([0, 4, 2])
    output, gradient = Gradient(composite)(model, x, target)
    attributor = SmoothGrad(n=5, noise_level=0, postprocess=postprocess, composite=composite)
    smooth_output, smooth = attributor(model, x, target)
    assert torch.equal(smooth_output, output)
    assert torch.equal(smooth, POST[postprocess](gradient))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    rows=st.integers(1, 3),
    n=st.integers(1, 6),
    batch_size=st.integers(0, 7),
    postprocess=st.sampled_from(["none", "abs", "square"]),
    noise_level=st.sampled_from([0.05, 0.3, 1.0]),
)
def test_smoothgrad_equals_an_explicit_loop_over_the_same_noise(
    seed, rows, n, batch_size, postprocess, noise_level
):
    model = mlp(nn.Tanh, seed=seed % 3)
    # rows of very different ranges: the noise is relative to each sample's range
    x = batch((rows, 6), seed=seed) * torch.tensor([1.0, 10.0, 0.1])[:rows, None].to(F64)
    target = torch.randint(0, 4, (rows,), generator=torch.Generator().manual_seed(seed))
    attributor = SmoothGrad(
        n, noise_level, postprocess, batch_size, torch.Generator().manual_seed(seed)
    )
    output, attribution = attributor(model, x, target)
    weights = clean_weights(model, x, target)
    expected = smoothgrad_reference(
        lambda noisy: autograd_gradient(model, noisy, weights), x, n, noise_level, postprocess,
        seed,
    )  # fmt: skip
    torch.testing.assert_close(attribution, expected, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(output, model(x).detach(), rtol=0, atol=0)


def test_smoothgrad_over_lrp_equals_a_loop_over_the_engine():
    model, x = make("plain"), batch((2, 3, 8, 8))
    target = torch.tensor([1, 3])
    weights = clean_weights(model, x, target)

    def relevance(noisy):
        return attribute(model, noisy, weights, "epsilon_plus", initial="one").relevance

    attributor = SmoothGrad(4, 0.2, "abs", 3, torch.Generator().manual_seed(5), "epsilon_plus")
    _, attribution = attributor(model, x, target)
    expected = smoothgrad_reference(relevance, x, 4, 0.2, "abs", 5)
    torch.testing.assert_close(attribution, expected, rtol=1e-10, atol=1e-12)


def test_smoothgrad_noise_is_drawn_from_the_generator_or_the_global_rng():
    model, x = mlp(nn.Tanh), batch((2, 6))
    gradient = Gradient()(model, x, 0).relevance
    first = SmoothGrad(3, 0.5, generator=torch.Generator().manual_seed(1))(model, x, 0).relevance
    again = SmoothGrad(3, 0.5, generator=torch.Generator().manual_seed(1))(model, x, 0).relevance
    assert torch.equal(first, again)
    assert not torch.allclose(first, gradient)
    shared = SmoothGrad(3, 0.5, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(
        shared(model, x, 0).relevance, shared(model, x, 0).relevance
    )  # the stream goes on
    torch.manual_seed(8)
    global_first = SmoothGrad(3, 0.5)(model, x, 0).relevance
    torch.manual_seed(8)
    assert torch.equal(SmoothGrad(3, 0.5)(model, x, 0).relevance, global_first)


def test_smoothgrad_target_is_resolved_on_the_clean_input():
    model, x = mlp(nn.Tanh), batch((4, 6))
    predicted = model(x).argmax(1)
    results = [
        SmoothGrad(4, 2.0, generator=torch.Generator().manual_seed(0))(model, x, target).relevance
        for target in (None, predicted)
    ]
    assert torch.equal(results[0], results[1])


def test_smoothgrad_batch_size_does_not_change_results():
    model, x = make("plain", bias=True), batch((2, 3, 8, 8))
    results = [
        SmoothGrad(5, 0.2, "square", size, torch.Generator().manual_seed(3))(model, x, 1).relevance
        for size in (0, 1, 2, 5, 9)
    ]
    for result in results[1:]:
        torch.testing.assert_close(result, results[0], rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------- validation, registry, devices
@pytest.mark.parametrize(
    ("make_attributor", "match"),
    [
        (lambda: SmoothGrad(n=0), "n must be an integer >= 1"),
        (lambda: SmoothGrad(n=2.5), "n must be an integer >= 1"),
        (lambda: SmoothGrad(noise_level=-0.1), "noise_level must be a finite number >= 0"),
        (lambda: SmoothGrad(noise_level=math.nan), "noise_level"),
        (lambda: SmoothGrad(postprocess="sqrt"), "postprocess must be one of none, abs, square"),
        (lambda: SmoothGrad(batch_size=-1), "batch_size must be an integer >= 0"),
        (lambda: SmoothGrad(generator="3"), "generator must be a torch.Generator"),
        (lambda: IntegratedGradients(steps=0), "steps must be an integer >= 1"),
        (lambda: IntegratedGradients(method="simpson"), "method must be one of left, right"),
        (lambda: IntegratedGradients(method=["left"]), "method must be one of"),
        (lambda: SmoothGrad(postprocess=["abs"]), "postprocess must be one of"),
        (lambda: IntegratedGradients(steps=1, method="trapezoid"), "steps >= 2"),
        (lambda: IntegratedGradients(baseline="ones"), "baseline must be 'zeros'"),
        (lambda: IntegratedGradients(baseline=math.inf), "baseline must be finite"),
        (lambda: IntegratedGradients(baseline=[0.0]), "baseline must be 'zeros'"),
        (lambda: IntegratedGradients(batch_size=-2), "batch_size"),
        (lambda: Gradient("no_such_composite"), "unknown composite"),
        (lambda: Gradient("epsilon", gamma=1.0), "composite 'epsilon'"),
        (lambda: Gradient(eps=1.0), "gradient: unknown parameters eps \\(composite parameters"),
        (lambda: Gradient(composite=3), "composite must be a Composite"),
        (lambda: LRPAttributor(None), "lrp needs a composite"),
    ],
)
def test_bad_parameters_are_one_line_config_errors(make_attributor, match):
    assert_one_line_config_error(make_attributor, match)


def test_registry_names_and_parameters():
    expected = {
        "gradient": Gradient,
        "input_x_gradient": InputXGradient,
        "smoothgrad": SmoothGrad,
        "integrated_gradients": IntegratedGradients,
        "guided_backprop": GuidedBackprop,
        "deconvnet": DeconvNet,
        "lrp": LRPAttributor,
        "deep_taylor": DeepTaylor,
    }
    for name, cls in expected.items():
        assert ATTRIBUTORS[name] is cls and cls.name == name and name in list_attributors()
    built = get_attributor("smoothgrad", n=3, noise_level=0.2, postprocess="abs")
    assert built.params() == {
        "composite": None,
        "n": 3,
        "noise_level": 0.2,
        "postprocess": "abs",
        "batch_size": 8,
        "generator": None,
    }
    assert get_attributor("smoothgrad", generator=7).params()["generator"] == 7
    assert get_attributor("integrated_gradients", steps=4, method="riemann_left").method == "left"
    assert get_attributor("lrp", composite="epsilon_plus").params() == {"composite": "epsilon_plus"}
    assert get_attributor("guided_backprop").params() == {"composite": "guided_backprop"}
    assert IntegratedGradients(torch.zeros(2)).params()["baseline"] == [0.0, 0.0]
    assert_one_line_config_error(lambda: get_attributor("smoothgrad", bogus=1), "smoothgrad")
    assert_one_line_config_error(lambda: get_attributor("deconvnet", composite="lrp0"), "deconv")


ALL = {
    "gradient": lambda: Gradient(),
    "input_x_gradient": lambda: InputXGradient(),
    "smoothgrad": lambda: SmoothGrad(3, 0.1, generator=torch.Generator().manual_seed(0)),
    "smoothgrad_lrp": lambda: SmoothGrad(2, 0.1, composite="epsilon_plus"),
    "integrated_gradients": lambda: IntegratedGradients(constant_baseline(0.5), 4),
    "guided_backprop": lambda: GuidedBackprop(),
    "deconvnet": lambda: DeconvNet(),
    "lrp": lambda: LRPAttributor("epsilon_plus_flat"),
    "deep_taylor": lambda: DeepTaylor(-3.0, 3.0),
}


def constant_baseline(value):  # a baseline function that works on any device
    return lambda inputs: torch.full_like(inputs[:1], value)


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_attributor_follows_the_inputs_dtype(name):
    model, x = make("plain", bias=True).float(), batch((2, 3, 8, 8)).float()
    output, attribution = ALL[name]()(model, x, 1)
    assert attribution.dtype == output.dtype == torch.float32
    assert attribution.shape == x.shape and output.shape == (2, 5)
    assert torch.isfinite(attribution).all() and attribution.abs().sum() > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", sorted(ALL))
def test_every_attributor_runs_on_the_inputs_device(name):
    model, x = make("plain", bias=True), batch((2, 3, 8, 8))
    expected = ALL[name]()(model, x, 1)
    output, attribution = ALL[name]()(model.cuda(), x.cuda(), 1)
    assert attribution.device.type == output.device.type == "cuda"
    if name != "smoothgrad_lrp":  # global-RNG noise differs between devices
        torch.testing.assert_close(attribution.cpu(), expected.relevance, rtol=1e-9, atol=1e-11)
