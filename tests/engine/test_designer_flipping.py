"""Pixel flipping in the designer: strokes cover what their distance says, flipped inputs
change exactly the brushed pixels, the new top-10 is the model's, and the curves equal
``perturbation_curve`` run on each configuration alone."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from relscope.attribution.config import method_config
from relscope.engine.designer import Stroke, flip, stroke_mask
from relscope.errors import ConfigError
from relscope.evaluation import perturbation_curve


def covered(strokes, height, width):
    """Brute force: a pixel is covered when some point sampled densely along a stroke's
    path lies within the radius less 1e-3 (the sampling error is below 3e-3 pixels)."""
    out = np.zeros((height, width), dtype=bool)
    for stroke in strokes:
        points = np.asarray(stroke.points, dtype=float)
        path = [points[0]]
        for a, b in itertools.pairwise(points):
            path.extend(a + (b - a) * t for t in np.linspace(0, 1, 4001))
        path = np.asarray(path)
        for r in range(height):
            for c in range(width):
                if np.hypot(path[:, 0] - r, path[:, 1] - c).min() <= stroke.radius - 1e-3:
                    out[r, c] = True
    return out


point = st.tuples(st.floats(-2, 9), st.floats(-2, 9))


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(point, min_size=1, max_size=3), st.floats(0.3, 3.0)),
        min_size=1,
        max_size=3,
    )
)
def test_stroke_mask_covers_pixels_within_the_radius(raw):
    strokes = [Stroke(points, radius) for points, radius in raw]
    mask = stroke_mask(strokes, 8, 8).numpy()
    inner = covered(strokes, 8, 8)
    assert (mask | ~inner).all()  # everything clearly inside is covered
    grown = covered([Stroke(s.points, s.radius + 1e-2) for s in strokes], 8, 8)
    assert (~mask | grown).all()  # nothing clearly outside is


def test_flip_changes_exactly_the_brushed_pixels(session, x):
    mask = stroke_mask([Stroke([(3, 3), (3, 20)], 2.0)], 28, 28)
    assert 0 < int(mask.sum()) < 28 * 28
    for fill in (0.25, "mean", "blur", "noise"):
        flipped = flip(x, mask, fill, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(flipped[0, 0][~mask], x[0, 0][~mask])
        assert not torch.equal(flipped[0, 0][mask], x[0, 0][mask])
    assert (flip(x, mask, 0.25)[0, 0][mask] == 0.25).all()
    assert torch.allclose(flip(x, mask, "mean")[0, 0][mask], x.mean())
    blurred = ndimage.gaussian_filter(x.numpy(), sigma=(0, 0, 2.0, 2.0), mode="reflect")
    torch.testing.assert_close(
        flip(x, mask, "blur", sigma=2.0)[0, 0][mask], torch.from_numpy(blurred)[0, 0][mask]
    )


def test_session_flip_returns_the_new_prediction(session, x):
    flipped, top = session.flip(x, strokes=[Stroke([(10, 4), (10, 24)], 3.0)], fill=1.0)
    assert flipped.shape == x.shape and not torch.equal(flipped, x)
    assert top == session.predict(flipped)
    mask = torch.zeros(28, 28, dtype=torch.bool)
    mask[:14] = True
    masked, _ = session.flip(x, mask=mask, fill=0.0)
    assert (masked[0, 0, :14] == 0).all() and torch.equal(masked[0, 0, 14:], x[0, 0, 14:])


def test_flip_refuses_bad_input(session, x):
    mask = torch.zeros(28, 28, dtype=torch.bool)
    for bad, message in (
        ({"fill": "median"}, "fill must be a number or one of"),
        ({"fill": math.nan}, "finite number"),
        ({"fill": True}, "fill must be a number"),
        ({"fill": "blur", "sigma": 0}, "blur sigma"),
    ):
        with pytest.raises(ConfigError, match=message):
            flip(x, mask, **bad)
    with pytest.raises(ConfigError, match="booleans of shape"):
        flip(x, torch.zeros(28, 28), 0.0)
    with pytest.raises(ConfigError, match="radius must be a number > 0"):
        stroke_mask([Stroke([(1, 1)], 0.0)], 4, 4)
    with pytest.raises(ConfigError, match="points must be"):
        stroke_mask([Stroke([("a", "b")], 1.0)], 4, 4)
    with pytest.raises(ConfigError, match="finite"):
        stroke_mask([Stroke([], 1.0)], 4, 4)


def test_curves_equal_perturbation_curve_per_configuration(session, x):
    configs = ["epsilon_plus", {"name": "z", "method": "epsilon_gamma_box",
                                "params": {"low": 0.0, "high": 1.0}}]  # fmt: skip
    curves = session.curves(x, configs, steps=8, patch=4)
    assert [c.name for c in curves] == ["epsilon_plus", "z"]
    target = int(session.model(x).argmax(1))
    for config, result in zip(configs, curves, strict=True):
        relevance = method_config(config).attributor()(session.model, x, target).relevance
        for order, curve in (("most", result.most), ("least", result.least)):
            alone = perturbation_curve(
                session.model, x, relevance, target, order=order, patch=4, steps=8
            )
            torch.testing.assert_close(curve.scores, alone.scores)
            torch.testing.assert_close(curve.fractions, alone.fractions)
        assert result.auc == (float(result.most.auc()[0]), float(result.least.auc()[0]))
        assert result.aopc[0] == pytest.approx(float(result.most.aopc()[0]))
    with pytest.raises(ConfigError, match="at least one configuration"):
        session.curves(x, [])
