"""Preprocessing processors against explicit numpy/scipy formulas."""

import numpy as np
import pytest
from scipy import ndimage

import relscope.analysis.processors as processors
from relscope.analysis import Processor, get_processor
from relscope.analysis.processors import (
    Absolute,
    ChannelReduce,
    Flatten,
    Histogram,
    Normalize,
    PadCrop,
    Pool,
    Resize,
)
from relscope.errors import ConfigError

RNG = np.random.default_rng(0)
MAPS = RNG.standard_normal((3, 2, 6, 8))

REGISTERED = {
    "flatten": Flatten,
    "channel-reduce": ChannelReduce,
    "absolute": Absolute,
    "pool": Pool,
    "resize": Resize,
    "pad-crop": PadCrop,
    "normalize": Normalize,
    "histogram": Histogram,
    "knn": processors.KNNGraph,
    "gaussian-knn": processors.GaussianKNNKernel,
    "rbf-dense": processors.DenseRBFKernel,
    "laplacian-sym": processors.SymmetricLaplacian,
    "laplacian-rw": processors.RandomWalkLaplacian,
    "spectral-embedding": processors.SpectralEmbedding,
    "pca": processors.PCA,
    "tsne": processors.TSNE,
    "umap": processors.UMAP,
    "lle": processors.LLE,
    "kmeans": processors.KMeans,
    "dbscan": processors.DBSCAN,
    "hdbscan": processors.HDBSCAN,
    "agglomerative": processors.Agglomerative,
    "spectral-clustering": processors.SpectralClustering,
    "pairwise-distance": processors.PairwiseDistance,
    "ssim": processors.SSIM,
}


@pytest.mark.parametrize(("name", "cls"), sorted(REGISTERED.items()))
def test_every_processor_is_registered_versioned_and_builds_with_defaults(name, cls):
    assert get_processor(name) is cls
    assert cls.__name__ in processors.__all__
    assert issubclass(cls, Processor)
    assert cls.version >= 1
    built = cls()
    assert built.changed_params() == {}
    assert Processor.from_dict(built.to_dict()) == built
    # Every declared param is documented.
    assert all(param.doc for param in cls.params().values())


def test_all_lists_exactly_the_registered_processors():
    assert sorted(processors.__all__) == sorted(cls.__name__ for cls in REGISTERED.values())


def test_flatten():
    out = Flatten()(MAPS)
    assert out.shape == (3, 96)
    np.testing.assert_array_equal(out[1], MAPS[1].ravel())


def test_channel_reduce_sum_and_mean():
    np.testing.assert_allclose(ChannelReduce()(MAPS), MAPS[:, 0] + MAPS[:, 1])
    np.testing.assert_allclose(ChannelReduce(mode="mean")(MAPS), (MAPS[:, 0] + MAPS[:, 1]) / 2)
    with pytest.raises(ConfigError, match="'mode' must be one of sum, mean"):
        ChannelReduce(mode="max")(MAPS)
    with pytest.raises(ConfigError, match="axis 0"):
        ChannelReduce(axis=0)(MAPS)


def test_absolute():
    np.testing.assert_array_equal(Absolute()(MAPS), np.abs(MAPS))


def _pool_reference(maps, size, stride, reduce):
    height = (maps.shape[-2] - size) // stride + 1
    width = (maps.shape[-1] - size) // stride + 1
    out = np.empty((*maps.shape[:-2], height, width))
    for i in range(height):
        for j in range(width):
            window = maps[..., i * stride : i * stride + size, j * stride : j * stride + size]
            out[..., i, j] = reduce(window, axis=(-2, -1))
    return out


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize(("size", "stride"), [(2, None), (3, 1), (3, 2), (4, 3)])
def test_pool_against_explicit_windows(mode, size, stride):
    reduce = {"sum": np.sum, "mean": np.mean, "max": np.max}[mode]
    expected = _pool_reference(MAPS, size, stride or size, reduce)
    np.testing.assert_allclose(Pool(mode=mode, size=size, stride=stride)(MAPS), expected)
    np.testing.assert_allclose(
        Pool(mode=mode, size=size, stride=stride)(MAPS[:, 0]), expected[:, 0]
    )


def test_pool_refuses_bad_input():
    with pytest.raises(ConfigError, match=r"expected maps of shape \(N, C, H, W\)"):
        Pool()(np.zeros((2, 4)))
    with pytest.raises(ConfigError, match="exceeds the map size"):
        Pool(size=7)(MAPS)


def test_resize_matches_zoom_and_reaches_the_target_shape():
    out = Resize(shape=(3, 5), order=1)(MAPS)
    assert out.shape == (3, 2, 3, 5)
    expected = ndimage.zoom(MAPS, (1, 1, 3 / 6, 5 / 8), order=1, grid_mode=True, mode="nearest")
    np.testing.assert_allclose(out, expected)
    assert Resize(shape=(11, 13))(MAPS[:, 0]).shape == (3, 11, 13)
    # Interpolation of a constant map is the constant.
    np.testing.assert_allclose(Resize(shape=(9, 4), order=3)(np.full((2, 5, 7), 2.5)), 2.5)
    with pytest.raises(ConfigError, match="two positive ints"):
        Resize(shape=(3,))(MAPS)


def test_pad_crop_centres_maps_of_different_sizes():
    small = np.ones((2, 2))
    large = np.arange(36.0).reshape(6, 6)
    out = PadCrop(shape=(4, 4), value=-1.0)([small, large])
    assert out.shape == (2, 4, 4)
    expected_small = np.full((4, 4), -1.0)
    expected_small[1:3, 1:3] = 1.0
    np.testing.assert_array_equal(out[0], expected_small)
    np.testing.assert_array_equal(out[1], large[1:5, 1:5])
    # Odd differences: one more row/column of padding after than before.
    np.testing.assert_array_equal(PadCrop(shape=(3, 1))(np.ones((1, 2, 2)))[0], [[1], [1], [0]])
    assert PadCrop(shape=(4, 10))(MAPS).shape == (3, 2, 4, 10)
    np.testing.assert_array_equal(PadCrop(shape=(4, 10))(MAPS)[:, :, :, 1:9], MAPS[:, :, 1:5])


@pytest.mark.parametrize(
    ("norm", "reference"),
    [
        ("l1", lambda x: np.abs(x).sum(axis=1)),
        ("l2", lambda x: np.sqrt((x**2).sum(axis=1))),
        ("max", lambda x: np.abs(x).max(axis=1)),
    ],
)
def test_normalize_divides_by_the_norm_and_keeps_zero_samples_zero(norm, reference):
    data = MAPS.copy()
    data[1] = 0.0
    out = Normalize(norm=norm)(data)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[1], 0.0)
    flat = data.reshape(3, -1)
    scale = reference(flat)
    for i in (0, 2):
        np.testing.assert_allclose(out[i], data[i] / scale[i])
        np.testing.assert_allclose(reference(out[i].reshape(1, -1)), [1.0])


def test_normalize_never_produces_nan_on_tiny_values_and_all_zeros():
    data = np.array([[0.0, 0.0], [1e-300, -1e-300], [0.0, 5e-324]])
    for norm in ("l1", "l2", "max"):
        assert np.isfinite(Normalize(norm=norm)(data)).all()
    assert not np.isnan(Normalize()(np.zeros((4, 3, 3)))).any()


def test_histogram_matches_numpy_with_shared_edges():
    data = RNG.standard_normal((4, 50))
    out = Histogram(bins=7)(data)
    edges = np.linspace(data.min(), data.max(), 8)
    np.testing.assert_array_equal(out, [np.histogram(row, bins=edges)[0] for row in data])
    assert out.sum() == data.size
    dense = Histogram(bins=5, value_range=(-1, 1), density=True)(data)
    expected = [np.histogram(row, bins=5, range=(-1, 1))[0] / 50 for row in data]
    np.testing.assert_allclose(dense, expected)
    np.testing.assert_array_equal(Histogram(bins=3)(np.ones((2, 4))), [[4, 0, 0], [4, 0, 0]])
    with pytest.raises(ConfigError, match="low < high"):
        Histogram(value_range=(1.0, 0.0))(data)


def test_params_are_typed():
    with pytest.raises(ConfigError, match="'size' expects int"):
        Pool(size=2.5)
    assert Pool.params()["mode"].default == "sum"
    assert Normalize().norm == "l2"
