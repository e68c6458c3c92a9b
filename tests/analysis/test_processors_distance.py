"""Pairwise distances against scipy and SSIM against scikit-image."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from skimage.metrics import structural_similarity

from relscope.analysis.processors import SSIM, PairwiseDistance
from relscope.errors import ConfigError

RNG = np.random.default_rng(7)
SAMPLES = RNG.standard_normal((12, 2, 3, 3))


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "correlation"])
def test_pairwise_distances_match_scipy(metric):
    flat = SAMPLES.reshape(12, -1)
    out = PairwiseDistance(metric=metric)(SAMPLES)
    np.testing.assert_allclose(out, cdist(flat, flat, metric=metric), atol=1e-12)
    np.testing.assert_array_equal(np.diag(out), 0.0)


def test_zero_and_constant_samples_give_no_nan():
    data = RNG.standard_normal((4, 5))
    data[1] = 0.0
    data[2] = 3.0
    for metric in ("cosine", "correlation"):
        out = PairwiseDistance(metric=metric)(data)
        assert np.isfinite(out).all()
        np.testing.assert_array_equal(np.diag(out), 0.0)
    np.testing.assert_allclose(PairwiseDistance(metric="cosine")(data)[1, [0, 2, 3]], 1.0)
    np.testing.assert_allclose(PairwiseDistance(metric="correlation")(data)[2, [0, 1, 3]], 1.0)


def test_pairwise_distance_refuses_large_n_and_unknown_metrics():
    assert PairwiseDistance().max_dense == 4096
    with pytest.raises(ConfigError, match="12 samples exceed max_dense=11"):
        PairwiseDistance(max_dense=11)(SAMPLES)
    with pytest.raises(ConfigError, match="metric must be"):
        PairwiseDistance(metric="manhattan")(SAMPLES)


@pytest.mark.parametrize("win_size", [3, 7])
def test_ssim_matches_scikit_image(win_size):
    a = RNG.random((16, 20))
    b = a + 0.2 * RNG.standard_normal((16, 20))
    expected = structural_similarity(a, b, win_size=win_size, data_range=2.0)
    out = SSIM(win_size=win_size, data_range=2.0)((a, b))
    assert isinstance(out, float)
    np.testing.assert_allclose(out, expected, rtol=1e-10)
    data_range = max(a.max(), b.max()) - min(a.min(), b.min())
    np.testing.assert_allclose(
        SSIM(win_size=win_size)((a, b)),
        structural_similarity(a, b, win_size=win_size, data_range=data_range),
        rtol=1e-10,
    )


def test_ssim_batches_and_identities():
    a = RNG.random((3, 9, 9))
    b = RNG.random((3, 9, 9))
    out = SSIM(data_range=1.0)((a, b))
    assert out.shape == (3,)
    for i in range(3):
        np.testing.assert_allclose(out[i], structural_similarity(a[i], b[i], data_range=1.0))
    np.testing.assert_allclose(SSIM()((a, a)), 1.0)
    np.testing.assert_allclose(SSIM()((np.ones((9, 9)), np.ones((9, 9)))), 1.0)
    with pytest.raises(ConfigError, match="equal shape"):
        SSIM()((a, b[:, :8]))
    with pytest.raises(ConfigError, match="win_size must be odd"):
        SSIM(win_size=4)((a, b))
    with pytest.raises(ConfigError, match="a pair"):
        SSIM()(a)
