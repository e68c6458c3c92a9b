"""Perturbation curves against an explicit formula on a model that is a weighted pixel sum.

For ``f_k(x) = sum_i w_ki x_i`` (no bias), replacing pixel ``i`` by ``v_i`` changes the
score by ``-w_ki (x_i - v_i)``, so the whole curve is known in closed form.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from relscope.errors import ConfigError
from relscope.evaluation import PerturbationCurve, perturbation_curve


def linear_model(weight: torch.Tensor) -> nn.Module:
    """Bias-free ``output_k = sum_i weight[k].flatten()[i] * x.flatten()[i]``."""
    classes = weight.shape[0]
    model = nn.Sequential(nn.Flatten(), nn.Linear(weight[0].numel(), classes, bias=False))
    model = model.double().eval()
    with torch.no_grad():
        model[1].weight.copy_(weight.reshape(classes, -1))
    return model


def regions_of(shape, patch):
    """Region -> list of (row, col) positions, row-major over the patch grid."""
    height, width = shape
    out = []
    for top in range(0, height, patch):
        for left in range(0, width, patch):
            out.append(
                [
                    (r, c)
                    for r in range(top, min(top + patch, height))
                    for c in range(left, min(left + patch, width))
                ]
            )
    return out


def expected_scores(weight, x, attribution, target, patch, steps, order, fill):
    """The curve by the closed form, in numpy float64 with explicit loops.

    ``weight`` (K, C, H, W), ``x``/``attribution``/``fill`` (B, C, H, W) numpy arrays.
    """
    batch, _, height, width = x.shape
    regions = regions_of((height, width), patch)
    count = len(regions)
    steps = count if steps is None else steps
    curves = np.zeros((batch, steps + 1))
    for b in range(batch):
        w = weight[target[b]]
        relevance = [sum(attribution[b, :, r, c].sum() for r, c in region) for region in regions]
        drop = [
            sum((w[:, r, c] * (x[b, :, r, c] - fill[b, :, r, c])).sum() for r, c in region)
            for region in regions
        ]
        ranking = sorted(range(count), key=lambda i: relevance[i], reverse=order == "most")
        clean = float((w * x[b]).sum())
        for k in range(steps + 1):
            removed = k * count // steps
            curves[b, k] = clean - sum(drop[i] for i in ranking[:removed])
    fractions = np.array([k * count // steps for k in range(steps + 1)]) / count
    return fractions, curves


def trapezoid(fractions, curve):
    return sum(
        (fractions[i + 1] - fractions[i]) * (curve[i] + curve[i + 1]) / 2
        for i in range(len(fractions) - 1)
    )


def problem(seed, batch=3, channels=2, height=5, width=5, classes=4):
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(classes, channels, height, width, dtype=torch.float64, generator=generator)
    x = torch.randn(batch, channels, height, width, dtype=torch.float64, generator=generator)
    target = torch.randint(0, classes, (batch,), generator=generator)
    exact = weight[target] * x  # w_ki x_i: the exact attribution of the target score
    return linear_model(weight), weight, x, target, exact


def check_against_formula(curve, weight, x, attribution, target, patch, steps, order, fill):
    fractions, scores = expected_scores(
        weight.numpy(),
        x.numpy(),
        attribution.numpy(),
        target.numpy(),
        patch,
        steps,
        order,
        np.broadcast_to(fill, x.shape),
    )
    np.testing.assert_allclose(curve.fractions.numpy(), fractions, rtol=0, atol=1e-12)
    np.testing.assert_allclose(curve.scores.numpy(), scores, rtol=0, atol=1e-6)
    auc = [trapezoid(fractions, row) for row in scores]
    aopc = [np.mean(row[0] - row) for row in scores]
    np.testing.assert_allclose(curve.auc().numpy(), auc, rtol=0, atol=1e-6)
    np.testing.assert_allclose(curve.aopc().numpy(), aopc, rtol=0, atol=1e-6)


@pytest.mark.parametrize("order", ["most", "least"])
def test_pixel_flipping_matches_the_closed_form(order):
    model, weight, x, target, exact = problem(seed=0)
    curve = perturbation_curve(model, x, exact, target, order=order)
    assert isinstance(curve, PerturbationCurve)
    assert curve.scores.shape == (3, 26) and curve.regions == 25 and curve.order == order
    assert torch.equal(curve.target, target)
    check_against_formula(curve, weight, x, exact, target, 1, None, order, 0.0)
    # with the exact attribution and zero fill the curve is the sorted cumulative sum of
    # the contributions of each position (both channels removed together)
    contributions = exact.sum(1).flatten(1).numpy()
    ordered = -np.sort(-contributions, axis=1) if order == "most" else np.sort(contributions, 1)
    cumulative = np.concatenate([np.zeros((3, 1)), np.cumsum(ordered, axis=1)], axis=1)
    np.testing.assert_allclose(
        curve.scores.numpy(), contributions.sum(1, keepdims=True) - cumulative, atol=1e-9
    )


@pytest.mark.parametrize(("patch", "steps"), [(2, None), (3, None), (2, 4), (3, 3), (7, 1)])
def test_region_perturbation_with_patches_and_steps(patch, steps):
    # 7 x 5 is not a multiple of the patch: the last row and column of patches are smaller
    model, weight, x, target, exact = problem(seed=1, height=7, width=5)
    for order in ("most", "least"):
        curve = perturbation_curve(model, x, exact, target, order=order, patch=patch, steps=steps)
        regions = math.ceil(7 / patch) * math.ceil(5 / patch)
        assert curve.regions == regions
        assert curve.removed[-1] == regions and curve.fractions[-1] == 1
        check_against_formula(curve, weight, x, exact, target, patch, steps, order, 0.0)


def test_regions_are_ranked_by_relevance_summed_over_channels():
    model, _, x, target, exact = problem(seed=2)
    # one channel carries all the relevance, the other none: only the sum over channels
    # may decide the order, and a (batch, H, W) heatmap ranks the same
    moved = torch.stack([exact.sum(1), torch.zeros_like(exact[:, 0])], dim=1)
    a = perturbation_curve(model, x, exact, target, patch=2)
    b = perturbation_curve(model, x, moved, target, patch=2)
    c = perturbation_curve(model, x, exact.sum(1), target, patch=2)
    assert torch.equal(a.scores, b.scores) and torch.equal(a.scores, c.scores)


def test_exact_attribution_falls_faster_than_random_attribution():
    model, _, x, target, exact = problem(seed=3, batch=4, height=6, width=6)
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(exact.shape, dtype=torch.float64, generator=generator)
    morf = perturbation_curve(model, x, exact, target, order="most")
    random_attribution = perturbation_curve(model, x, noise, target, order="most")
    random_order = perturbation_curve(model, x, None, target, order="random", generator=generator)
    lerf = perturbation_curve(model, x, exact, target, order="least")
    assert (morf.auc() < random_attribution.auc()).all()
    assert (morf.auc() < random_order.auc()).all()
    assert (morf.aopc() > random_attribution.aopc()).all()
    assert (random_attribution.auc() < lerf.auc()).all()
    # the curve ends at the same point whatever the order: everything removed
    torch.testing.assert_close(morf.scores[:, -1], random_order.scores[:, -1])


@pytest.mark.parametrize("kind", ["mean", "constant", "tensor", "function"])
def test_deterministic_fills_match_the_closed_form(kind):
    model, weight, x, target, exact = problem(seed=4)
    if kind == "mean":
        fill, values = "mean", x.mean(dim=(2, 3), keepdim=True).expand_as(x)
    elif kind == "constant":
        fill, values = 0.5, torch.full_like(x, 0.5)
    elif kind == "tensor":  # one value per channel, broadcast
        fill = torch.tensor([-1.0, 2.0], dtype=torch.float64).view(1, 2, 1, 1)
        values = fill.expand_as(x)
    else:

        def fill(inputs, generator):
            return inputs.flip(-1)  # a mirrored image as the replacement

        values = x.flip(-1)
    for order in ("most", "least"):
        curve = perturbation_curve(model, x, exact, target, order=order, patch=2, fill=fill)
        check_against_formula(curve, weight, x, exact, target, 2, None, order, values.numpy())


class Recorder(nn.Module):
    """Wraps a model and keeps every batch it sees."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.clone())
        return self.model(x)


@pytest.mark.parametrize("fill", ["uniform", "normal"])
def test_random_fills_are_reproducible_and_drawn_once_per_sample(fill):
    model, _, x, target, exact = problem(seed=5, batch=2, channels=2, height=16, width=16)
    recorder = Recorder(model)

    def run(seed, batch_size=7):
        recorder.seen.clear()
        generator = torch.Generator().manual_seed(seed)
        curve = perturbation_curve(
            recorder,
            x,
            exact,
            target,
            fill=fill,
            steps=8,
            batch_size=batch_size,
            generator=generator,
        )
        return curve, torch.cat(recorder.seen)

    first, seen = run(1)
    again, _ = run(1, batch_size=3)
    other, _ = run(2)
    torch.testing.assert_close(first.scores, again.scores, rtol=0, atol=1e-12)
    assert not torch.allclose(first.scores[:, 1:], other.scores[:, 1:])
    # batches hold the clean inputs, then (sample, step) pairs in order
    perturbed = seen[2:].view(2, 8, 2, 16, 16)
    full = perturbed[:, -1]  # every position replaced
    # a position keeps its replacement value once removed (one draw per sample)
    removed_early = perturbed[:, 0] != x
    assert removed_early.any()
    assert torch.equal(perturbed[:, 3][removed_early], full[removed_early])
    if fill == "uniform":
        low = x.amin(dim=(2, 3), keepdim=True)
        high = x.amax(dim=(2, 3), keepdim=True)
        assert ((full >= low) & (full <= high)).all()
    else:
        std, mean = torch.std_mean(x, dim=(2, 3), correction=0)
        # 256 draws per channel: the sample mean lies within 4 standard errors
        assert ((full.mean(dim=(2, 3)) - mean).abs() < 4 * std / 16).all()
        assert ((full.std(dim=(2, 3)) / std - 1).abs() < 0.3).all()


def test_random_order_is_reproducible_with_a_generator():
    model, _, x, target, _ = problem(seed=6)

    def run(seed):
        generator = torch.Generator().manual_seed(seed)
        return perturbation_curve(model, x, None, target, order="random", generator=generator)

    assert torch.equal(run(3).scores, run(3).scores)
    assert not torch.equal(run(3).scores, run(4).scores)


def test_batches_mix_samples_and_steps_and_do_not_change_the_result():
    model, _, x, target, exact = problem(seed=7)
    recorder = Recorder(model)
    reference = perturbation_curve(model, x, exact, target, patch=2, batch_size=1000)
    for batch_size in (1, 4, 9):
        recorder.seen.clear()
        curve = perturbation_curve(recorder, x, exact, target, patch=2, batch_size=batch_size)
        torch.testing.assert_close(curve.scores, reference.scores, rtol=0, atol=1e-12)
        sizes = [len(seen) for seen in recorder.seen]
        copies = 3 * 9  # 3 samples x 9 regions (steps) after the clean batch
        assert max(sizes) <= batch_size
        assert len(sizes) == math.ceil(3 / batch_size) + math.ceil(copies / batch_size)
        assert sum(sizes) == 3 + copies


def test_default_target_is_the_clean_prediction_for_all_steps():
    model, weight, x, _, exact = problem(seed=8)
    with torch.no_grad():
        clean = model(x)
    predicted = clean.argmax(1)
    curve = perturbation_curve(model, x, weight[predicted] * x)
    assert torch.equal(curve.target, predicted)
    torch.testing.assert_close(curve.scores[:, 0], clean.max(1).values, rtol=0, atol=0)
    same = perturbation_curve(model, x, weight[predicted] * x, predicted.tolist())
    assert torch.equal(curve.scores, same.scores)
    one = perturbation_curve(model, x, exact, 2)
    assert torch.equal(one.target, torch.full((3,), 2))


def test_probability_score_is_the_softmax_of_the_perturbed_logits():
    model, weight, x, target, exact = problem(seed=9)
    logits = perturbation_curve(model, x, exact, target, patch=2)
    probs = perturbation_curve(model, x, exact, target, patch=2, score="probability")
    # recompute every class's logit along the same removal order by the closed form
    order = exact.view(3, 2, 5, 5).sum(1)
    regions = regions_of((5, 5), 2)
    for b in range(3):
        relevance = [sum(float(order[b, r, c]) for r, c in region) for region in regions]
        ranking = sorted(range(9), key=lambda i: relevance[i], reverse=True)
        removed = torch.zeros(5, 5, dtype=torch.bool)
        for k in range(10):
            if k:
                for r, c in regions[ranking[k - 1]]:
                    removed[r, c] = True
            perturbed = torch.where(removed, torch.zeros(()), x[b])
            all_logits = (weight * perturbed).flatten(1).sum(1)
            expected = torch.softmax(all_logits, 0)[target[b]]
            torch.testing.assert_close(probs.scores[b, k], expected, rtol=1e-9, atol=1e-12)
            torch.testing.assert_close(logits.scores[b, k], all_logits[target[b]])


def test_flat_features_and_one_dimensional_signals():
    generator = torch.Generator().manual_seed(10)
    weight = torch.randn(3, 12, dtype=torch.float64, generator=generator)
    x = torch.randn(2, 12, dtype=torch.float64, generator=generator)
    model = nn.Linear(12, 3, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(weight)
    target = torch.tensor([0, 2])
    exact = weight[target] * x
    curve = perturbation_curve(model, x, exact, target, patch=4)  # (batch, features)
    assert curve.regions == 3
    drops = exact.view(2, 3, 4).sum(2)
    ordered = drops.sort(dim=1, descending=True).values
    expected = drops.sum(1, keepdim=True) - torch.cat(
        [torch.zeros(2, 1, dtype=torch.float64), ordered.cumsum(1)], dim=1
    )
    torch.testing.assert_close(curve.scores, expected)
    # the same numbers as a one-channel 1-d signal (batch, 1, length)
    signal = perturbation_curve(
        nn.Sequential(nn.Flatten(), model), x[:, None], exact[:, None], target, patch=4
    )
    torch.testing.assert_close(signal.scores, expected)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"order": "best"}, "order must be one of most, least, random"),
        ({"patch": 0}, "patch must be a positive integer"),
        ({"steps": 26}, "steps must be an integer from 1 to 25"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"fill": "blur"}, "fill must be 'zeros', 'mean', 'uniform', 'normal'"),
        ({"fill": torch.zeros(7)}, "a fill tensor must broadcast to the inputs"),
        ({"fill": lambda x, g: x[:1]}, "a fill function must return a tensor of shape"),
        ({"fill": math.inf}, "the fill values contain NaN"),
        ({"score": "loss"}, "score must be 'logit' or 'probability'"),
        ({"target": 4}, r"target class out of range 0..3"),
        ({"target": [0, 1]}, "target must hold 3 class indices"),
        ({"target": torch.zeros(3)}, "target must hold integer class indices"),
        ({"attribution": torch.zeros(3, 5, 5, 2)}, "attribution must have shape"),
        ({"attribution": torch.full((3, 2, 5, 5), math.nan)}, "attribution contains NaN"),
        ({"attribution": None}, "order='most' needs an attribution"),
    ],
)
def test_bad_arguments_give_one_line_config_errors(options, message):
    model, _, x, target, exact = problem(seed=11)
    arguments = {"attribution": exact, "target": target, **options}
    with pytest.raises(ConfigError, match=message) as info:
        perturbation_curve(model, x, **arguments)
    assert "\n" not in str(info.value)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    height=st.integers(1, 6),
    width=st.integers(1, 6),
    patch=st.integers(1, 4),
    order=st.sampled_from(["most", "least", "random"]),
    fill=st.sampled_from(["zeros", "mean", "uniform", "normal", -0.5]),
    batch_size=st.integers(1, 8),
)
def test_curve_starts_at_the_clean_score(seed, height, width, patch, order, fill, batch_size):
    generator = torch.Generator().manual_seed(seed)
    model = (
        nn.Sequential(
            nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * height * width, 4)
        )
        .double()
        .eval()
    )
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, dtype=torch.float64, generator=generator))
    x = torch.randn(2, 2, height, width, dtype=torch.float64, generator=generator)
    attribution = torch.randn(x.shape, dtype=torch.float64, generator=generator)
    curve = perturbation_curve(
        model,
        x,
        attribution,
        order=order,
        patch=patch,
        fill=fill,
        batch_size=batch_size,
        generator=generator,
    )
    with torch.no_grad():
        clean = model(x)
    assert torch.equal(curve.target, clean.argmax(1))
    # batches of another size may round differently in the last bits
    torch.testing.assert_close(curve.scores[:, 0], clean.max(1).values, rtol=1e-12, atol=1e-12)
    assert curve.fractions[0] == 0 and curve.fractions[-1] == 1
    assert (curve.fractions.diff() > 0).all()
    assert torch.isfinite(curve.scores).all()


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    height=st.integers(1, 6),
    width=st.integers(1, 6),
    patch=st.integers(1, 3),
    steps=st.integers(1, 36),
    zeros=st.booleans(),
)
def test_morf_area_is_at_most_lerf_area_for_the_exact_attribution(
    seed, height, width, patch, steps, zeros
):
    model, weight, x, target, exact = problem(seed, batch=2, height=height, width=width)
    if zeros:  # zero pixels make tied (zero) contributions
        x = x * (x > 0)
        exact = weight[target] * x
    regions = math.ceil(height / patch) * math.ceil(width / patch)
    steps = min(steps, regions)
    morf = perturbation_curve(model, x, exact, target, patch=patch, steps=steps)
    lerf = perturbation_curve(model, x, exact, target, patch=patch, steps=steps, order="least")
    # pointwise: removing the k largest contributions lowers the score the most
    assert (morf.scores <= lerf.scores + 1e-9).all()
    assert (morf.auc() <= lerf.auc() + 1e-9).all()
    assert (morf.aopc() >= lerf.aopc() - 1e-9).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_the_inputs_device_with_the_same_numbers():
    model, _, x, target, exact = problem(seed=12)
    generator = torch.Generator().manual_seed(0)
    cpu = perturbation_curve(model, x, exact, target, patch=2, fill="normal", generator=generator)
    generator = torch.Generator().manual_seed(0)  # a CPU generator: the same draws
    gpu = perturbation_curve(
        model.cuda(),
        x.cuda(),
        exact.cuda(),
        target.cuda(),
        patch=2,
        fill="normal",
        generator=generator,
    )
    assert gpu.scores.device.type == "cuda" and gpu.fractions.device.type == "cuda"
    torch.testing.assert_close(gpu.scores.cpu(), cpu.scores, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(gpu.auc().cpu(), cpu.auc(), rtol=1e-9, atol=1e-9)
