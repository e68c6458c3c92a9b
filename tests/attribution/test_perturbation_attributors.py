"""Occlusion, LIME and RISE against independent references written out here (float64).

- Occlusion: a brute-force Python loop over window positions, one occluded image at a time.
- LIME: an explicit loop over the same on/off samples (regenerated with ``lime_masks``)
  and a numpy weighted ridge on the augmented design ``[1, z]``; and a model that is linear
  in its segments, whose coefficients the surrogate must recover.
- RISE: an explicit loop over the same masks (regenerated with ``rise_masks``); and, for
  a model linear in the input, convergence to the exact expectation, computed from
  bilinear interpolation weights written out by hand.
"""

import itertools
import math
import sys

import numpy as np
import pytest
import torch
from torch import nn

from relscope.attribution.attributors import get_attributor, list_attributors
from relscope.attribution.methods.lime import LIME, LimeAttribution, grid_segments, lime_masks
from relscope.attribution.methods.occlusion import Occlusion
from relscope.attribution.methods.rise import RISE, rise_masks
from relscope.errors import ConfigError

DTYPE = torch.float64


class Total(nn.Module):
    """Any input shape -> two class scores (for errors raised around the model)."""

    def forward(self, x):
        return x.flatten(1).sum(1, keepdim=True).repeat(1, 2)


def conv_model(dims: int, channels: int, spatial: tuple[int, ...], seed: int = 0) -> nn.Module:
    """A small non-linear, position-sensitive model (float64)."""
    torch.manual_seed(seed)
    conv = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[dims - 1]
    return nn.Sequential(
        conv(channels, 4, 3, padding=1),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(4 * math.prod(spatial), 5),
    ).to(DTYPE)


def linear_model(channels: int, spatial: tuple[int, ...], seed: int = 0) -> nn.Linear:
    """``f_k(x) = sum_i W_ki x_i`` on the flattened input (no bias), as a module."""
    torch.manual_seed(seed)
    layer = nn.Linear(channels * math.prod(spatial), 3, bias=False).to(DTYPE)
    return nn.Sequential(nn.Flatten(), layer)


def scores(model: nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return (model(x) * t).sum(-1)


def onehot(model: nn.Module, x: torch.Tensor, target) -> torch.Tensor:
    with torch.no_grad():
        out = model(x)
    if target is None:
        target = out.argmax(1)
    if isinstance(target, torch.Tensor) and target.is_floating_point():
        return target
    index = torch.as_tensor(target).expand(len(x))
    return nn.functional.one_hot(index, out.shape[1]).to(DTYPE)


# ------------------------------------------------------------------------------ Occlusion
def window_starts(size: int, window: int, stride: int) -> list[int]:
    out, pos = [], 0
    while pos + window <= size:
        out.append(pos)
        pos += stride
    if out[-1] + window < size:
        out.append(size - window)
    return out


def occlusion_reference(model, x, target, window, stride, fill) -> torch.Tensor:
    """One occluded image per (sample, window position); mean drop over covering windows."""
    batch, _, *spatial = x.shape
    dims = len(spatial)
    window = (window,) * dims if isinstance(window, int) else window
    stride = (stride,) * dims if isinstance(stride, int) else stride
    t = onehot(model, x, target)
    if fill == "mean":
        fill = x.mean(dim=tuple(range(2, x.ndim)), keepdim=True)
    fill = torch.as_tensor(fill, dtype=DTYPE).expand_as(x)
    clean = scores(model, x, t)
    total = torch.zeros(batch, *spatial, dtype=DTYPE)
    count = torch.zeros(*spatial, dtype=DTYPE)
    positions = [window_starts(s, w, st) for s, w, st in zip(spatial, window, stride, strict=True)]
    for corner in itertools.product(*positions):
        box = tuple(slice(c, c + w) for c, w in zip(corner, window, strict=True))
        count[box] += 1
        for b in range(batch):
            occluded = x[b : b + 1].clone()
            occluded[(slice(None), slice(None), *box)] = fill[b : b + 1][
                (slice(None), slice(None), *box)
            ]
            drop = clean[b] - scores(model, occluded, t[b])[0]
            total[(b, *box)] += drop
    return (total / count).unsqueeze(1)


OCCLUSION_CASES = [
    # (shape, window, stride, fill): windows dividing the size or not, overlapping or not.
    ((2, 3, 7, 9), 3, 3, 0.0),
    ((2, 3, 7, 9), 3, 1, "mean"),
    ((2, 3, 7, 9), (2, 4), (1, 3), "tensor"),
    ((2, 3, 7, 9), (7, 9), 1, -0.5),
    ((2, 3, 7, 9), (2, 4), (1, 3), -0.5),
    ((2, 3, 6, 6), 1, 1, "mean"),
    ((2, 2, 11), 4, 3, 0.0),
    ((2, 2, 11), 4, 3, "tensor"),
    ((1, 2, 4, 5, 3), (2, 3, 2), (1, 2, 2), "mean"),
]


@pytest.mark.parametrize(("shape", "window", "stride", "fill"), OCCLUSION_CASES)
def test_occlusion_matches_brute_force(shape, window, stride, fill):
    torch.manual_seed(1)
    x = torch.randn(shape, dtype=DTYPE)
    if fill == "tensor":
        fill = torch.rand(shape[1:], dtype=DTYPE)
    model = conv_model(len(shape) - 2, shape[1], shape[2:])
    expected = occlusion_reference(model, x, None, window, stride, fill)
    for batch_size in (0, 1, 5):
        output, attribution = Occlusion(window, stride, fill, batch_size=batch_size)(model, x)
        assert attribution.shape == (shape[0], 1, *shape[2:])
        torch.testing.assert_close(attribution, expected, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(output, model(x).detach(), rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["int", "indices", "weights"])
def test_occlusion_targets(kind):
    torch.manual_seed(2)
    x = torch.randn(3, 2, 6, 5, dtype=DTYPE)
    model = conv_model(2, 2, (6, 5))
    target = {
        "int": 4,
        "indices": torch.tensor([0, 3, 1]),
        "weights": torch.randn(3, 5, dtype=DTYPE),
    }[kind]
    expected = occlusion_reference(model, x, target, (2, 3), (2, 1), 0.25)
    _, attribution = Occlusion((2, 3), (2, 1), fill=0.25, batch_size=4)(model, x, target)
    torch.testing.assert_close(attribution, expected, rtol=1e-12, atol=1e-13)


def test_occlusion_of_single_elements_on_a_linear_model_is_input_times_weight():
    # s(x) - s(x with x_l = 0) = sum_c w_cl x_cl for a linear score.
    x = torch.randn(2, 3, 4, 5, dtype=DTYPE)
    model = linear_model(3, (4, 5))
    _, attribution = Occlusion(1, 1)(model, x, target=2)
    weight = model[1].weight[2].detach().reshape(3, 4, 5)
    torch.testing.assert_close(attribution, (weight * x).sum(1, keepdim=True))


def test_occlusion_defaults_and_window_positions():
    occlusion = Occlusion()
    assert occlusion.windows((16, 20)) == [[0, 2, 4, 6, 8, 10, 12, 14], list(range(0, 20, 2))]
    assert Occlusion(3, 2).windows((8,)) == [[0, 2, 4, 5]]
    x = torch.randn(1, 1, 16, 20, dtype=DTYPE)
    model = conv_model(2, 1, (16, 20))
    torch.testing.assert_close(
        occlusion(model, x).relevance, Occlusion(2, 2)(model, x).relevance, rtol=0, atol=0
    )
    assert occlusion.params() == {"window": None, "stride": None, "fill": 0.0, "batch_size": 64}
    assert Occlusion(fill=torch.zeros(1)).params()["fill"] == [0.0]


@pytest.mark.parametrize(
    ("make", "shape", "message"),
    [
        (lambda: Occlusion(window=9), (1, 1, 8, 8), "window (9, 9) is larger than the input"),
        (lambda: Occlusion(window=(2, 2)), (1, 1, 8), "one entry per spatial dimension"),
        (lambda: Occlusion(window=2), (4, 8), "1 to 3 spatial dimensions"),
        (lambda: Occlusion(window=1), (1, 1, 2, 2, 2, 2), "1 to 3 spatial dimensions"),
        (lambda: Occlusion(fill=torch.zeros(3)), (1, 1, 8, 8), "does not broadcast"),
    ],
)
def test_occlusion_errors_at_call(make, shape, message):
    model = Total()
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()(model, torch.zeros(shape, dtype=DTYPE))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"stride": 0}, "stride must be an integer >= 1"),
        ({"stride": (1, 0)}, "stride must be an integer >= 1"),
        ({"window": 0}, "window must be an integer >= 1"),
        ({"window": "big"}, "window must be a positive integer"),
        ({"fill": "median"}, "fill must be a number, 'mean' or a tensor"),
        ({"fill": math.nan}, "fill must be a finite number"),
        ({"batch_size": -1}, "batch_size must be an integer >= 0"),
    ],
)
def test_occlusion_parameter_errors(params, message):
    with pytest.raises(ConfigError, match=message) as error:
        get_attributor("occlusion", **params)
    assert "\n" not in str(error.value)


# ----------------------------------------------------------------------------------- LIME
class SegmentLinear(nn.Module):
    """``f_k(x) = sum_s C_ks * mean of x over segment s (all channels)``."""

    def __init__(self, labels: torch.Tensor, coefficients: torch.Tensor) -> None:
        super().__init__()
        member = nn.functional.one_hot(labels.flatten()).to(DTYPE)  # (locations, S)
        self.register_buffer("average", member / member.sum(0))
        self.register_buffer("coefficients", coefficients)

    def forward(self, x):
        means = x.flatten(2).mean(1) @ self.average  # (B, S)
        return means @ self.coefficients.T


def lime_kernel(keep: np.ndarray, width: float) -> np.ndarray:
    """exp(-d^2 / width^2) with the cosine distance d between z and the all-on vector."""
    ones = np.ones(keep.shape[-1])
    norm = np.linalg.norm(keep, axis=-1) * np.linalg.norm(ones)
    cosine = np.divide(keep @ ones, norm, out=np.zeros(len(keep)), where=norm > 0)
    return np.exp(-((1 - cosine) ** 2) / width**2)


def ridge_reference(z: np.ndarray, y: np.ndarray, k: np.ndarray, alpha: float):
    """Weighted ridge on the augmented design [1, z], intercept unpenalized (numpy)."""
    k = k / k.mean()
    design = np.hstack([np.ones((len(z), 1)), z])
    penalty = alpha * np.diag([0.0] + [1.0] * z.shape[1])
    beta = np.linalg.solve(design.T @ (k[:, None] * design) + penalty, design.T @ (k * y))
    fitted = design @ beta
    mean = (k * y).sum() / k.sum()
    r2 = 1 - (k * (y - fitted) ** 2).sum() / (k * (y - mean) ** 2).sum()
    return beta[1:], beta[0], r2


@pytest.mark.parametrize(("spatial", "cell"), [((8, 8), (2, 4)), ((12,), 3)])
@pytest.mark.parametrize("alpha", [0.0, 1e-3])
def test_lime_recovers_a_model_linear_in_its_segments(spatial, cell, alpha):
    # With fill 0 a switched-off segment has mean 0, so s(x_z) = sum_s C_ts m_s z_s exactly:
    # the surrogate's coefficients are C_ts m_s (m_s: the segment's mean) and its intercept
    # is 0. The ridge shrinks them by alpha (A + alpha I)^-1 c, at most alpha |c| / lambda_min
    # of the kernel-weighted centred Gram matrix A.
    labels = grid_segments(spatial, cell)
    segments = int(labels.max()) + 1
    torch.manual_seed(3)
    coefficients = torch.randn(3, segments, dtype=DTYPE)
    model = SegmentLinear(labels, coefficients)
    x = torch.rand(2, 3, *spatial, dtype=DTYPE) + 0.5
    lime = LIME(cell=cell, samples=300, alpha=alpha, generator=7, batch_size=128)
    result = lime(model, x, target=torch.tensor([1, 2]))
    assert isinstance(result, LimeAttribution)
    means = x.flatten(2).mean(1) @ model.average
    expected = coefficients[[1, 2]] * means
    keep = lime_masks(300, [segments, segments], torch.Generator().manual_seed(7)).double()
    for b in range(2):
        z = keep[b].numpy()
        k = lime_kernel(z, 0.25)
        k = k / k.mean()
        centred = z - (k @ z) / k.sum()
        smallest = np.linalg.eigvalsh(centred.T @ (k[:, None] * centred))[0]
        bound = alpha * float(expected[b].norm()) / smallest + 1e-10
        assert float((result.coefficients[b] - expected[b]).norm()) <= bound
        assert abs(float(result.intercept[b])) <= bound * math.sqrt(segments) + 1e-10
    assert (
        torch.equal(result.segments[0], labels) and result.num_segments.tolist() == [segments] * 2
    )
    pixel = result.coefficients.gather(1, labels.flatten().expand(2, -1))
    assert torch.equal(result.relevance, pixel.reshape(2, 1, *spatial))
    if alpha == 0:
        torch.testing.assert_close(result.r_squared, torch.ones(2, dtype=DTYPE))


def test_lime_matches_explicit_loop_and_numpy_ridge():
    # Different, non-consecutive label sets per sample (so the batched fit pads columns).
    torch.manual_seed(4)
    x = torch.randn(2, 3, 6, 8, dtype=DTYPE)
    model = conv_model(2, 3, (6, 8))
    labels = torch.stack([grid_segments((6, 8), 3) * 10 + 5, grid_segments((6, 8), (6, 2))])
    lime = LIME(labels, samples=50, kernel_width=0.5, fill="mean", alpha=0.01, generator=11)
    result = lime(model, x, target=None)
    counts = [len(torch.unique(label)) for label in labels]
    assert result.num_segments.tolist() == counts == [6, 4]
    keep = lime_masks(50, counts, torch.Generator().manual_seed(11))
    t = onehot(model, x, None)
    fill = x.mean(dim=(2, 3), keepdim=True).expand_as(x)
    for b in range(2):
        relabel = np.unique(labels[b].numpy(), return_inverse=True)[1].reshape(6, 8)
        z = keep[b, :, : counts[b]].numpy().astype(float)
        y = []
        for on in z:
            pixel_on = torch.as_tensor(on[relabel] > 0)
            copy = torch.where(pixel_on, x[b], fill[b])
            y.append(float(scores(model, copy[None], t[b])[0]))
        coef, intercept, r2 = ridge_reference(z, np.array(y), lime_kernel(z, 0.5), 0.01)
        np.testing.assert_allclose(result.coefficients[b, : counts[b]].numpy(), coef, atol=1e-10)
        assert torch.all(result.coefficients[b, counts[b] :] == 0)
        np.testing.assert_allclose(float(result.intercept[b]), intercept, atol=1e-10)
        np.testing.assert_allclose(float(result.r_squared[b]), r2, atol=1e-10)
        np.testing.assert_allclose(result.relevance[b, 0].numpy(), coef[relabel], atol=1e-10)
    for batch_size in (0, 7):
        again = LIME(labels, 50, 0.5, "mean", alpha=0.01, batch_size=batch_size, generator=11)
        torch.testing.assert_close(
            again(model, x).relevance, result.relevance, rtol=1e-12, atol=1e-13
        )


def test_lime_segmentations_callable_tensor_shapes_and_grid_default():
    torch.manual_seed(5)
    x = torch.rand(2, 1, 16, 16, dtype=DTYPE)
    model = conv_model(2, 1, (16, 16))
    labels = grid_segments((16, 16), (4, 8))

    def by_function(image):
        assert image.shape == (1, 16, 16)
        return labels.numpy()

    reference = LIME(labels, samples=20, generator=1)(model, x)
    for segmentation in (by_function, labels.expand(2, 1, 16, 16), labels.expand(2, 16, 16)):
        result = LIME(segmentation, samples=20, generator=1)(model, x)
        torch.testing.assert_close(result.relevance, reference.relevance, rtol=0, atol=0)
    # The default grid is an eighth of each dimension: 2 x 2 boxes, 64 segments.
    default = LIME(samples=20, generator=1)
    assert torch.equal(default.segments(x)[0][1], grid_segments((16, 16), 2))
    assert default(model, x).coefficients.shape == (2, 64)
    assert LIME(by_function).params()["segmentation"] == "function"


def test_lime_slic_segments_are_skimage_slic_of_the_rescaled_image():
    from skimage.segmentation import slic

    torch.manual_seed(6)
    x = torch.rand(2, 3, 24, 24, dtype=DTYPE)
    x[:, 0, :, 12:] += 2  # four coloured quadrants, so that SLIC has something to find
    x[:, 1, 12:, :] += 2
    model = conv_model(2, 3, (24, 24))
    lime = LIME("slic", samples=30, slic_options={"n_segments": 8}, generator=2)
    result = lime(model, x)
    for b in range(2):
        image = x[b].movedim(0, -1).numpy()
        image = (image - image.min()) / (image.max() - image.min())
        expected = slic(image, n_segments=8, compactness=10.0, start_label=0, channel_axis=-1)
        relabel = np.unique(expected, return_inverse=True)[1].reshape(24, 24)
        np.testing.assert_array_equal(result.segments[b].numpy(), relabel)
        coef = result.coefficients[b][result.segments[b]]
        torch.testing.assert_close(result.relevance[b, 0], coef, rtol=0, atol=0)
    assert int(result.num_segments.min()) > 1


def test_lime_slic_without_scikit_image(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage.segmentation", None)
    model = conv_model(2, 1, (8, 8))
    with pytest.raises(ConfigError, match="segmentation 'slic' needs scikit-image") as error:
        LIME("slic", samples=4)(model, torch.rand(1, 1, 8, 8, dtype=DTYPE))
    assert "\n" not in str(error.value)


def test_lime_is_deterministic_given_a_generator():
    torch.manual_seed(8)
    x = torch.rand(2, 2, 8, 8, dtype=DTYPE)
    model = conv_model(2, 2, (8, 8))
    seeded = LIME(samples=40, cell=2, generator=3)
    first, second = seeded(model, x).relevance, seeded(model, x).relevance
    assert torch.equal(first, second)
    generator = torch.Generator().manual_seed(3)
    advancing = LIME(samples=40, cell=2, generator=generator)
    assert torch.equal(advancing(model, x).relevance, first)
    assert not torch.equal(advancing(model, x).relevance, first)
    assert seeded.params()["generator"] == 3 and advancing.params()["generator"] is None
    rebuilt = LIME(**seeded.params())
    assert repr(rebuilt) == repr(seeded) and torch.equal(rebuilt(model, x).relevance, first)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"samples": 0}, "samples must be an integer >= 1"),
        ({"segmentation": "quickshift"}, "segmentation must be 'grid', 'slic', a function"),
        ({"segmentation": 3}, "segmentation must be 'grid', 'slic', a function"),
        ({"segmentation": torch.zeros(4, 4)}, "must hold integer labels"),
        ({"kernel_width": 0}, "kernel_width must be a finite number > 0"),
        ({"alpha": -1.0}, "alpha must be a finite number >= 0"),
        ({"cell": 0}, "cell must be an integer >= 1"),
        ({"generator": "seed"}, "generator must be a torch.Generator"),
    ],
)
def test_lime_parameter_errors(params, message):
    with pytest.raises(ConfigError, match=message):
        get_attributor("lime", **params)


@pytest.mark.parametrize(
    ("segmentation", "shape", "message"),
    [
        ("grid", (1, 1, 4, 4), r"cell \(5, 5\) is larger than the input"),
        (torch.zeros(3, 3, dtype=torch.long), (1, 1, 4, 4), "do not fit inputs"),
        (lambda image: torch.zeros(2, 2), (1, 1, 4, 4), "must return integer labels of shape"),
        (lambda image: torch.zeros(4, 4), (1, 1, 4, 4), "must return integer labels of shape"),
        ("slic", (1, 1, 16), "'slic' needs 2-D or 3-D inputs"),
        ("grid", (1, 16), "1 to 3 spatial dimensions"),
    ],
)
def test_lime_errors_at_call(segmentation, shape, message):
    model = Total()
    with pytest.raises(ConfigError, match=message):
        LIME(segmentation, cell=5, samples=3)(model, torch.zeros(shape, dtype=DTYPE))


def test_lime_masks_layout():
    keep = lime_masks(500, torch.tensor([3, 7]), torch.Generator().manual_seed(0))
    assert keep.shape == (2, 500, 7) and keep.dtype == torch.bool
    assert keep[:, 0].sum(1).tolist() == [3, 7]  # the first sample is the clean input
    assert not keep[0, :, 3:].any()
    assert abs(float(keep[1].double().mean()) - 0.5) < 0.03


# ----------------------------------------------------------------------------------- RISE
def rise_reference(model, x, target, masks, probability) -> torch.Tensor:
    t = onehot(model, x, target)
    total = torch.zeros(x.shape[0], 1, *x.shape[2:], dtype=DTYPE)
    for mask in masks:
        for b in range(len(x)):
            total[b, 0] += scores(model, (x[b] * mask)[None], t[b])[0] * mask
    return total / (len(masks) * probability)


@pytest.mark.parametrize(
    ("shape", "cells", "probability"),
    [
        ((2, 3, 8, 8), 3, 0.5),
        ((2, 3, 7, 9), (2, 4), 0.3),
        ((2, 2, 13), 4, 0.7),
        ((1, 2, 4, 5, 3), 2, 0.5),
    ],
)
def test_rise_matches_explicit_loop_over_the_same_masks(shape, cells, probability):
    torch.manual_seed(9)
    x = torch.randn(shape, dtype=DTYPE)
    model = conv_model(len(shape) - 2, shape[1], shape[2:])
    generator = torch.Generator().manual_seed(21)
    masks = rise_masks(30, shape[2:], cells, probability, generator, dtype=DTYPE)
    expected = rise_reference(model, x, 1, masks, probability)
    for batch_size in (0, 7):
        rise = RISE(30, cells, probability, batch_size=batch_size, generator=21)
        output, attribution = rise(model, x, target=1)
        torch.testing.assert_close(attribution, expected, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(output, model(x).detach(), rtol=0, atol=0)


def interpolation_matrix(cells: int, out: int) -> np.ndarray:
    """Linear upsampling ``cells -> out`` with half-pixel centres (align_corners=False)."""
    matrix = np.zeros((out, cells))
    for j in range(out):
        source = max((j + 0.5) * cells / out - 0.5, 0.0)
        low = int(source)
        high = min(low + 1, cells - 1)
        matrix[j, low] += 1 - (source - low)
        matrix[j, high] += source - low
    return matrix


def rise_second_moment(spatial, cells, probability) -> np.ndarray:
    """``E[M M^T]`` of RISE's masks, exactly: average over the shifts of
    ``p^2 (Phi 1)(Phi 1)^T + p (1 - p) Phi Phi^T``, ``Phi`` the upsampling-and-crop matrix
    from the grid cells to the locations (grid cells are independent Bernoulli(p))."""
    cell = [-(-s // cells) for s in spatial]
    ups = [interpolation_matrix(cells, (cells + 1) * c) for c in cell]
    moment = np.zeros((math.prod(spatial),) * 2)
    shifts = list(itertools.product(*[range(c) for c in cell]))
    for shift in shifts:
        phi = np.ones((1, 1))
        for up, start, size in zip(ups, shift, spatial, strict=True):
            phi = np.kron(phi, up[start : start + size])
        mean = phi.sum(1)
        moment += probability**2 * np.outer(mean, mean) + probability * (1 - probability) * (
            phi @ phi.T
        )
    return moment / len(shifts)


def test_rise_converges_to_its_expectation_on_a_linear_model():
    # s(x * M) = sum_l M_l v_l with v_l = sum_c w_cl x_cl, so E[s(x * M) M] / p = E[M M^T] v / p.
    # For masks independent per location this would be (1 - p) v + p s(x); RISE's smooth
    # masks are correlated, hence the exact second moment. The estimate is a mean of N
    # i.i.d. terms Y_i = s(x * M_i) M_i / p: by the central limit theorem its error at a
    # location stays below 5 standard errors sd(Y_l) / sqrt(N) (failure odds ~ 6e-7 each).
    spatial, cells, probability, count = (8, 8), 4, 0.5, 20000
    torch.manual_seed(10)
    x = torch.randn(2, 2, *spatial, dtype=DTYPE)
    model = linear_model(2, spatial)
    target = torch.tensor([0, 2])
    rise = RISE(count, cells, probability, batch_size=8192, generator=5)
    _, attribution = rise(model, x, target)
    w = model[1].weight.detach()[target].reshape(2, 2, -1)
    v = (w * x.flatten(2)).sum(1).numpy()  # (B, locations)
    limit = v @ rise_second_moment(spatial, cells, probability).T / probability
    independent = (1 - probability) * v + probability * v.sum(1, keepdims=True)
    generator = torch.Generator().manual_seed(5)
    flat = rise_masks(count, spatial, cells, probability, generator, DTYPE).flatten(1)
    for b in range(2):
        terms = (flat @ torch.as_tensor(v[b]))[:, None] * flat / probability
        tolerance = 5 * terms.std(0) / math.sqrt(count)
        error = (attribution[b, 0].flatten() - torch.as_tensor(limit[b])).abs()
        assert torch.all(error <= tolerance), float((error / tolerance).max())
        # The check can fail: the tolerance is small against the difference between the
        # exact limit and the one for independent masks.
        assert float(tolerance.max()) < 0.25 * float(np.abs(independent[b] - limit[b]).max())


def test_rise_masks_properties():
    generator = torch.Generator().manual_seed(0)
    masks = rise_masks(200, (10, 12), 3, 0.4, generator, dtype=DTYPE)
    assert masks.shape == (200, 10, 12) and masks.dtype == DTYPE
    assert float(masks.min()) >= 0 and float(masks.max()) <= 1
    # Cell centres of a grid cell fully inside the crop are exactly 0 or 1 only without
    # shift; in general the masks are smooth, with values strictly between 0 and 1.
    assert ((masks > 0) & (masks < 1)).any(dim=(1, 2)).sum() > 150
    assert abs(float(masks.mean()) - 0.4) < 0.03
    torch.testing.assert_close(rise_masks(5, (6,), 2, 1.0), torch.ones(5, 6))


def test_rise_with_probability_one_gives_the_score_everywhere():
    x = torch.randn(2, 3, 8, 8, dtype=DTYPE)
    model = conv_model(2, 3, (8, 8))
    output, attribution = RISE(masks=8, probability=1.0)(model, x, target=3)
    expected = output[:, 3].reshape(2, 1, 1, 1).expand(2, 1, 8, 8)
    torch.testing.assert_close(attribution, expected, rtol=1e-14, atol=1e-14)


def test_rise_is_deterministic_given_a_generator():
    x = torch.randn(1, 1, 8, 8, dtype=DTYPE)
    model = conv_model(2, 1, (8, 8))
    first = RISE(masks=16, generator=4)(model, x).relevance
    assert torch.equal(RISE(masks=16, generator=4)(model, x).relevance, first)
    generator = torch.Generator().manual_seed(4)
    advancing = RISE(masks=16, generator=generator)
    assert torch.equal(advancing(model, x).relevance, first)
    assert not torch.equal(advancing(model, x).relevance, first)
    params = RISE(masks=16, cells=(3, 2), generator=4).params()
    assert params == {
        "masks": 16,
        "cells": (3, 2),
        "probability": 0.5,
        "batch_size": 64,
        "generator": 4,
    }
    assert torch.equal(RISE(**{**params, "cells": 7})(model, x).relevance, first)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"probability": 0.0}, r"probability must be in \(0, 1\]"),
        ({"probability": 1.5}, r"probability must be in \(0, 1\]"),
        ({"masks": 0}, "masks must be an integer >= 1"),
        ({"cells": 0}, "cells must be an integer >= 1"),
        ({"batch_size": 1.5}, "batch_size must be an integer >= 0"),
    ],
)
def test_rise_parameter_errors(params, message):
    with pytest.raises(ConfigError, match=message):
        get_attributor("rise", **params)


def test_rise_errors_at_call():
    model = Total()
    with pytest.raises(ConfigError, match="1 to 3 spatial dimensions"):
        RISE(masks=2)(model, torch.zeros(2, 8, dtype=DTYPE))
    with pytest.raises(ConfigError, match="one entry per spatial dimension"):
        RISE(masks=2, cells=(2, 2))(model, torch.zeros(1, 1, 8, dtype=DTYPE))


# ------------------------------------------------------------------------------- registry
@pytest.mark.parametrize("name", ["occlusion", "lime", "rise"])
def test_registered_with_defaults_on_a_small_image_batch(name):
    assert name in list_attributors()
    torch.manual_seed(12)
    x = torch.rand(3, 3, 8, 8, dtype=DTYPE)
    model = conv_model(2, 3, (8, 8))
    attributor = get_attributor(name, **({} if name == "occlusion" else {"generator": 0}))
    output, attribution = attributor(model, x, torch.tensor([0, 1, 2]))
    assert attribution.shape == (3, 1, 8, 8) and attribution.dtype == DTYPE
    assert torch.isfinite(attribution).all() and attribution.abs().sum() > 0
    torch.testing.assert_close(output, model(x).detach(), rtol=0, atol=0)
    assert type(attributor).__name__ in repr(attributor)
