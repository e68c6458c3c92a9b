"""Heatmap and image layer: normalization, styles on hand-computed arrays, palette PNGs
(indices, palette, byte-identical recolouring), grids and atomic writes."""

import io
import os
import re
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from relscope.errors import ConfigError, FormatError, PathError
from relscope.render import (
    STYLES,
    blend,
    get_style,
    graymap,
    grid,
    heatmap,
    heatmap_png,
    list_styles,
    load_heatmap,
    masked_input,
    normalize,
    overlay,
    project,
    projection,
    recolor,
    register_style,
    save_heatmap,
    save_image,
    scaled_input,
    to_map,
)
from relscope.render.colormaps import get_colormap

# One 2 x 2 map used throughout: symmetric normalization gives [[0, .5], [.75, 1]], i.e.
# palette indices [[0, 128], [191, 255]] (0.75 * 255 = 191.25); absolute gives
# [[1, 0], [.5, 1]].
R = np.array([[-2.0, 0.0], [1.0, 2.0]])
SYMMETRIC_INDICES = np.array([[0, 128], [191, 255]], dtype=np.uint8)


def raises(error, text):
    """``pytest.raises`` for a message that contains ``text`` literally."""
    return pytest.raises(error, match=re.escape(text))


def gray_rgb(levels):
    return np.repeat(np.asarray(levels, dtype=np.uint8)[..., None], 3, axis=-1)


def png_chunks(data):
    """(type, body) of every chunk, read independently of the code under test."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, position = [], 8
    while position < len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        crc = int.from_bytes(data[position + 8 + length : position + 12 + length], "big")
        assert crc == zlib.crc32(kind + body)
        chunks.append((kind, body))
        position += 12 + length
    return chunks


# ----------------------------------------------------------------------------- normalize
def test_normalize_modes_per_sample():
    relevance = np.array([[-1.0, 0.0, 4.0], [2.0, -2.0, 1.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(
        normalize(relevance, "symmetric"),
        [[0.375, 0.5, 1.0], [1.0, 0.0, 0.75], [0.5, 0.5, 0.5]],
    )
    np.testing.assert_array_equal(
        normalize(relevance, "absolute"), [[0.25, 0.0, 1.0], [1.0, 1.0, 0.5], [0.0, 0.0, 0.0]]
    )
    np.testing.assert_array_equal(
        normalize(relevance, "minmax"), [[0.0, 0.2, 1.0], [1.0, 0.0, 0.75], [0.0, 0.0, 0.0]]
    )


def test_normalize_per_batch():
    relevance = np.array([[-1.0, 0.0, 4.0], [2.0, -2.0, 1.0]])
    np.testing.assert_array_equal(
        normalize(relevance, "symmetric", per="batch"),
        [[0.375, 0.5, 1.0], [0.75, 0.25, 0.625]],
    )
    np.testing.assert_array_equal(
        normalize(relevance, "absolute", per="batch"), [[0.25, 0.0, 1.0], [0.5, 0.5, 0.25]]
    )
    np.testing.assert_array_equal(
        normalize(relevance, "minmax", per="batch"),
        [[1 / 6, 2 / 6, 1.0], [4 / 6, 0.0, 3 / 6]],
    )


def test_normalize_zero_and_extreme_relevance_never_gives_nan():
    zeros = np.zeros((2, 3, 4, 4))
    for mode, value in [("symmetric", 0.5), ("absolute", 0.0), ("minmax", 0.0)]:
        for per in ("sample", "batch"):
            np.testing.assert_array_equal(normalize(zeros, mode, per), np.full(zeros.shape, value))
    huge = np.array([[-1e308, 1e308, 0.0]])
    np.testing.assert_array_equal(normalize(huge, "minmax"), [[0.0, 1.0, 0.5]])
    tiny = np.array([[5e-324, 0.0]])
    np.testing.assert_array_equal(normalize(tiny, "symmetric"), [[1.0, 0.5]])
    assert normalize(np.zeros((0, 3))).shape == (0, 3)


def test_normalize_accepts_tensors_and_keeps_shape():
    relevance = torch.arange(-12.0, 12.0).reshape(2, 3, 2, 2)
    result = normalize(relevance, "absolute")
    assert result.shape == (2, 3, 2, 2)
    np.testing.assert_array_equal(result, normalize(relevance.numpy(), "absolute"))
    np.testing.assert_array_equal(
        normalize(relevance.to(torch.bfloat16)), normalize(relevance.numpy())
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: normalize(R, "sym"),
            "normalize: mode: expected one of 'symmetric', 'absolute', 'minmax', found 'sym'",
        ),
        (
            lambda: normalize(R, per="pixel"),
            "normalize: per: expected one of 'sample', 'batch', found 'pixel'",
        ),
        (
            lambda: normalize(np.array([[1.0, np.nan]])),
            "relevance: expected finite numbers, found NaN or inf",
        ),
        (
            lambda: normalize(np.array([[1.0, -np.inf]])),
            "relevance: expected finite numbers, found NaN or inf",
        ),
        (
            lambda: normalize(np.float64(3.0)),
            "relevance: expected a batch (B, ...), found a scalar",
        ),
        (
            lambda: normalize(np.array(["a"])),
            "relevance: expected real numbers, found dtype <U1",
        ),
    ],
)
def test_normalize_errors(call, message):
    with pytest.raises(ConfigError) as caught:
        call()
    assert str(caught.value) == message


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=3, max_side=5),
        elements=st.floats(-1e6, 1e6, allow_subnormal=False),
    ),
    st.sampled_from(["sample", "batch"]),
)
def test_normalize_properties(relevance, per):
    symmetric = normalize(relevance, "symmetric", per)
    absolute = normalize(relevance, "absolute", per)
    minmax = normalize(relevance, "minmax", per)
    for result in (symmetric, absolute, minmax):
        assert result.shape == relevance.shape
        assert np.isfinite(result).all()
        assert ((result >= 0) & (result <= 1)).all()
    # symmetric keeps signs around 0.5 and is absolute folded around the centre
    # (a value tiny next to the maximum may round to 0.5 itself)
    assert (symmetric[relevance > 0] >= 0.5).all() and (symmetric[relevance < 0] <= 0.5).all()
    np.testing.assert_array_equal(symmetric[relevance == 0], 0.5)
    np.testing.assert_allclose(np.abs(symmetric - 0.5) * 2, absolute, atol=1e-12)
    np.testing.assert_array_equal(absolute, normalize(-relevance, "absolute", per))
    # scaling by a positive number changes nothing
    np.testing.assert_allclose(normalize(relevance * 8.0, "symmetric", per), symmetric, atol=1e-12)
    # within each normalization group: minmax keeps the order and spans [0, 1] unless
    # constant; absolute reaches 1 unless all zero
    if per == "batch":
        groups = [(relevance, minmax, absolute)]
    else:
        groups = list(zip(relevance, minmax, absolute, strict=True))
    for values, scaled, folded in groups:
        order = np.argsort(values.ravel(), kind="stable")
        assert (np.diff(scaled.ravel()[order]) >= 0).all()
        assert scaled.min() == 0.0 and scaled.max() in (0.0, 1.0)
        if values.min() == values.max():
            assert scaled.max() == 0.0
        assert folded.max() == (1.0 if np.any(values != 0) else 0.0)


def test_to_map_and_project():
    relevance = np.arange(24.0).reshape(2, 3, 2, 2)
    np.testing.assert_array_equal(to_map(relevance), relevance.sum(axis=1))
    np.testing.assert_array_equal(to_map(relevance[:, 0]), relevance[:, 0])
    np.testing.assert_array_equal(to_map(R), R)
    with raises(ConfigError, "found (1, 1, 1, 2, 2)"):
        to_map(np.zeros((1, 1, 1, 2, 2)))
    np.testing.assert_array_equal(project(R[None], (-1.0, 3.0))[0], [[-1.0, 1.0], [2.0, 3.0]])
    with raises(ConfigError, "value_range: expected finite low < high"):
        project(R[None], (1.0, 1.0))


# ----------------------------------------------------------------------------- styles
def test_heatmap_single_map():
    result = heatmap(R, cmap="gray")
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, gray_rgb(SYMMETRIC_INDICES))
    bwr = get_colormap("bwr").palette
    np.testing.assert_array_equal(heatmap(R), bwr[SYMMETRIC_INDICES])
    np.testing.assert_array_equal(heatmap(R)[0, 0], [0, 0, 255])


def test_heatmap_batch_sums_channels_and_normalizes_per_sample_or_batch():
    relevance = np.stack([np.stack([R, R, -R]), np.stack([2 * R, R, R])])  # (2, 3, 2, 2)
    # channel sums: R and 4R -> identical per-sample maps, different per-batch ones
    per_sample = heatmap(relevance, cmap="gray")
    assert per_sample.shape == (2, 2, 2, 3)
    np.testing.assert_array_equal(per_sample, gray_rgb([SYMMETRIC_INDICES] * 2))
    per_batch = heatmap(relevance, cmap="gray", per="batch")
    # first sample: R / 8 -> 0.5 + R / 16 -> [[.375, .5], [.5625, .625]] * 255
    np.testing.assert_array_equal(per_batch[0, ..., 0], [[96, 128], [143, 159]])
    np.testing.assert_array_equal(per_batch[1], per_sample[1])
    # (B, H, W) is a batch too
    np.testing.assert_array_equal(heatmap(np.stack([R, 4 * R]), cmap="gray"), per_sample)


def test_heatmap_modes_and_prenormalized_values():
    np.testing.assert_array_equal(
        heatmap(R, cmap="gray", mode="absolute"), gray_rgb([[255, 0], [128, 255]])
    )
    np.testing.assert_array_equal(
        heatmap(R, cmap="gray", mode="minmax"), gray_rgb([[0, 128], [191, 255]])
    )
    values = np.array([[0.0, 0.2], [0.6, 1.0]])
    np.testing.assert_array_equal(
        heatmap(values, cmap="gray", mode=None), gray_rgb([[0, 51], [153, 255]])
    )
    with raises(ConfigError, "values in [0, 1] with mode=None, found range [-2, 2]"):
        heatmap(R, mode=None)
    with raises(ConfigError, "unknown colour map 'nope'"):
        heatmap(R, cmap="nope")


def test_graymap_is_absolute():
    np.testing.assert_array_equal(
        graymap(np.array([[-4.0, 2.0], [0.0, 1.0]])), gray_rgb([[255, 128], [0, 64]])
    )
    np.testing.assert_array_equal(graymap(np.zeros((2, 2))), np.zeros((2, 2, 3), dtype=np.uint8))


def test_scaled_input():
    image = np.full((2, 2, 3), 200, dtype=np.uint8)
    relevance = np.array([[-4.0, 2.0], [0.0, 1.0]])
    np.testing.assert_array_equal(scaled_input(relevance, image), gray_rgb([[200, 100], [0, 50]]))


def test_float_images_use_min_max_or_the_given_range():
    image = np.array([[[0.0, 5.0], [10.0, 10.0]]])  # (1, 2, 2): one gray channel
    ones = np.ones((2, 2))
    np.testing.assert_array_equal(scaled_input(ones, image), gray_rgb([[0, 128], [255, 255]]))
    np.testing.assert_array_equal(
        scaled_input(ones, image, value_range=(0.0, 20.0)), gray_rgb([[0, 64], [128, 128]])
    )
    # values outside the range are clipped
    np.testing.assert_array_equal(
        scaled_input(ones, image, value_range=(2.0, 6.0)), gray_rgb([[0, 191], [255, 255]])
    )
    # a constant image shows as black rather than NaN
    np.testing.assert_array_equal(scaled_input(ones, np.full((3, 2, 2), 7.0)), np.zeros((2, 2, 3)))


def test_uint8_hwc_and_float_chw_inputs_agree():
    rng = np.random.default_rng(1)
    hwc = rng.integers(0, 256, size=(3, 4, 3), dtype=np.uint8)
    chw = np.moveaxis(hwc, -1, 0).astype(np.float32)
    relevance = rng.normal(size=(3, 3, 4))
    for style in ("scaled_input", "blend", "overlay", "masked_input"):
        expected = get_style(style)(relevance, hwc)
        np.testing.assert_array_equal(
            get_style(style)(relevance, chw, value_range=(0, 255)), expected
        )
        np.testing.assert_array_equal(
            get_style(style)(torch.tensor(relevance), torch.tensor(chw), value_range=(0, 255)),
            expected,
        )


def test_masked_input_keeps_the_most_relevant_pixels():
    image = np.arange(1, 13, dtype=np.uint8).reshape(2, 2, 3) * 10
    relevance = np.array([[1.0, 4.0], [-5.0, 2.0]])
    result = masked_input(relevance, image, fraction=0.5, fill=(1, 2, 3))
    expected = np.array([[[1, 2, 3], [40, 50, 60]], [[1, 2, 3], [100, 110, 120]]], dtype=np.uint8)
    np.testing.assert_array_equal(result, expected)
    by_size = masked_input(relevance, image, fraction=0.5, absolute=True)
    np.testing.assert_array_equal(by_size, [[[0, 0, 0], [40, 50, 60]], [[70, 80, 90], [0, 0, 0]]])
    # ties go to the earlier pixel; fraction 0 hides everything, 1 shows everything
    np.testing.assert_array_equal(
        masked_input(np.zeros((2, 2)), image, fraction=0.25, fill=255)[..., 0],
        [[10, 255], [255, 255]],
    )
    np.testing.assert_array_equal(
        masked_input(relevance, image, fraction=0.0), np.zeros_like(image)
    )
    np.testing.assert_array_equal(masked_input(relevance, image, fraction=1.0), image)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fraction": 1.5}, "masked_input: fraction: expected a number in [0, 1], found 1.5"),
        ({"fraction": "half"}, "masked_input: fraction: expected a number in [0, 1], found 'half'"),
        ({"fill": 300}, "fill: expected an integer 0-255 or an RGB triple of them, found 300"),
        (
            {"fill": (1, 2)},
            "fill: expected an integer 0-255 or an RGB triple of them, found (1, 2)",
        ),
    ],
)
def test_masked_input_errors(options, message):
    with raises(ConfigError, message):
        masked_input(R, np.zeros((2, 2), dtype=np.uint8), **options)


def test_blend():
    image = np.full((2, 2), 100, dtype=np.uint8)
    # 0.75 * 100 + 0.25 * [[0, 128], [191, 255]]
    np.testing.assert_array_equal(
        blend(R, image, cmap="gray", alpha=0.25), gray_rgb([[75, 107], [123, 139]])
    )
    np.testing.assert_array_equal(
        blend(R, image, cmap="gray", alpha=0.0), gray_rgb(np.full((2, 2), 100))
    )
    np.testing.assert_array_equal(blend(R, image, alpha=1.0), heatmap(R))
    with raises(ConfigError, "blend: alpha: expected a number in [0, 1], found -0.1"):
        blend(R, image, alpha=-0.1)


def test_overlay_uses_grayscale_input_and_relevance_opacity():
    image = np.tile(np.array([10, 20, 30], dtype=np.uint8), (2, 2, 1))
    # luma 0.299 * 10 + 0.587 * 20 + 0.114 * 30 = 18.15; opacity |R| / 2 = [[1, 0], [.5, 1]]
    np.testing.assert_array_equal(overlay(R, image, cmap="gray"), gray_rgb([[0, 18], [105, 255]]))
    # alpha 0.5 halves the opacity: [[9.075, 18.15], [61.36, 136.58]]
    np.testing.assert_array_equal(
        overlay(R, image, cmap="gray", alpha=0.5), gray_rgb([[9, 18], [61, 137]])
    )
    coloured = overlay(R, image)  # bwr: full blue where R = -2
    np.testing.assert_array_equal(coloured[0], [[0, 0, 255], [18, 18, 18]])


def test_projection_keeps_channels():
    relevance = np.array([[[2.0, -2.0]], [[0.0, 1.0]], [[-1.0, 0.0]]])  # (3, 1, 2)
    # 0.5 + R / 4 per channel -> (1, .5, .25) and (0, .75, .5)
    expected = np.array([[[255, 128, 64], [0, 191, 128]]], dtype=np.uint8)
    np.testing.assert_array_equal(projection(relevance[None])[0], expected)
    image = np.array([[[0.25, 0.75]], [[0.5, 0.5]], [[0.5, 0.5]]])
    np.testing.assert_array_equal(projection(relevance, image), expected)  # own min-max range
    # shown with the range (0, 1): projected into the image's span [.25, .75]
    np.testing.assert_array_equal(
        projection(relevance, image, value_range=(0.0, 1.0)),
        [[[191, 128, 96], [64, 159, 128]]],
    )
    np.testing.assert_array_equal(projection(R), gray_rgb(SYMMETRIC_INDICES))
    with raises(ConfigError, "projection: expected relevance with 1 or 3 channels, found 2"):
        projection(np.zeros((1, 2, 2, 2)))


# ----------------------------------------------------------------------------- shapes, registry
@pytest.mark.parametrize(
    ("relevance", "image", "message"),
    [
        (
            np.zeros((2, 2)),
            np.zeros((4, 2, 2)),
            "image: expected floats (B, C, H, W), (C, H, W) or (H, W) with 1 or 3 channels, "
            "found float64 of shape (4, 2, 2)",
        ),
        (
            np.zeros((2, 2)),
            np.zeros((1, 1, 1, 2, 2)),
            "image: expected floats (B, C, H, W), (C, H, W) or (H, W), "
            "found float64 of shape (1, 1, 1, 2, 2)",
        ),
        (
            np.zeros((2, 2)),
            np.zeros((2, 2, 5), dtype=np.uint8),
            "image: expected uint8 (B, H, W, C), (H, W, C) or (H, W) with 1 or 3 channels, "
            "found uint8 of shape (2, 2, 5)",
        ),
        (
            np.zeros((3, 2)),
            np.zeros((3, 2, 2)),
            "relevance: expected (H, W) = (2, 2) like the image, found (3, 2)",
        ),
        (
            np.zeros((2, 3, 2, 2)),
            np.zeros((3, 2, 2)),
            "relevance: expected shape (C, H, W) or (H, W) for one image, found (2, 3, 2, 2)",
        ),
        (
            np.zeros((2, 2)),
            np.zeros((2, 3, 2, 2)),
            "relevance: expected shape (B, C, H, W) or (B, H, W) for a batch of images, "
            "found (2, 2)",
        ),
        (
            np.zeros((3, 2, 2)),
            np.zeros((2, 3, 2, 2)),
            "relevance: expected (B, H, W) = (2, 2, 2) like the image, found (3, 2, 2)",
        ),
        (np.zeros((2, 2)), None, "scaled_input: expected an input image, found None"),
        (
            np.zeros((2, 2)),
            np.full((3, 2, 2), np.nan),
            "image: expected finite numbers, found NaN or inf",
        ),
        (
            np.zeros(4),
            np.zeros((2, 2)),
            "relevance: expected shape (C, H, W) or (H, W) for one image, found (4,)",
        ),
    ],
)
def test_shape_errors(relevance, image, message):
    with raises(ConfigError, message):
        scaled_input(relevance, image)


def test_value_range_errors():
    with raises(ConfigError, "value_range: expected two numbers (low, high), found 3"):
        scaled_input(R, np.zeros((2, 2)), value_range=3)


def test_registered_styles():
    assert list_styles() == [
        "blend", "graymap", "heatmap", "masked_input", "overlay", "projection", "scaled_input",
    ]  # fmt: skip
    assert get_style("overlay") is overlay
    with raises(ConfigError, "unknown visualization style 'fancy'; known styles: blend, graymap"):
        get_style("fancy")
    with raises(ValueError, "registered twice"):
        register_style("heatmap")(heatmap)


@pytest.mark.parametrize("name", sorted(STYLES))
def test_style_conformance(name):
    style = STYLES[name]
    rng = np.random.default_rng(2)
    image = rng.uniform(-1.0, 1.0, size=(2, 3, 5, 4))
    relevance = rng.normal(size=(2, 3, 5, 4))
    batch = style(relevance, image)
    assert batch.shape == (2, 5, 4, 3) and batch.dtype == np.uint8
    # one sample alone gives that sample's image (normalization is per sample by default)
    for index in range(2):
        np.testing.assert_array_equal(style(relevance[index], image[index]), batch[index])
    np.testing.assert_array_equal(style(torch.tensor(relevance), torch.tensor(image)), batch)
    zero = style(np.zeros_like(relevance), image)
    assert zero.shape == batch.shape and zero.dtype == np.uint8
    with raises(ConfigError, "relevance: expected finite numbers"):
        style(np.full_like(relevance, np.nan), image)


# ----------------------------------------------------------------------------- grid, files
def test_grid_layout():
    tiles = np.stack([np.full((1, 2, 3), value, dtype=np.uint8) for value in (10, 20, 30)])
    result = grid(tiles, nrow=2, padding=1, fill=(1, 2, 3))
    assert result.shape == (5, 7, 3)
    red = np.array(
        [
            [1, 1, 1, 1, 1, 1, 1],
            [1, 10, 10, 1, 20, 20, 1],
            [1, 1, 1, 1, 1, 1, 1],
            [1, 30, 30, 1, 1, 1, 1],
            [1, 1, 1, 1, 1, 1, 1],
        ]
    )
    np.testing.assert_array_equal(result[..., 0], red)
    assert result[0, 0].tolist() == [1, 2, 3] and result[3, 5].tolist() == [1, 2, 3]
    np.testing.assert_array_equal(
        grid(tiles[..., 0], nrow=8, padding=0), np.concatenate(gray_rgb(tiles[..., 0]), axis=1)
    )


@pytest.mark.parametrize(
    ("images", "options", "message"),
    [
        (np.zeros((2, 2, 2, 3)), {}, "grid: expected uint8 images"),
        (np.zeros((0, 2, 2, 3), dtype=np.uint8), {}, "grid: expected at least one image"),
        (
            np.zeros((1, 2, 2, 3), dtype=np.uint8),
            {"nrow": 0},
            "grid: nrow: expected a positive integer, found 0",
        ),
        (
            np.zeros((1, 2, 2, 3), dtype=np.uint8),
            {"padding": -1},
            "grid: padding: expected an integer >= 0, found -1",
        ),
    ],
)
def test_grid_errors(images, options, message):
    with raises(ConfigError, message):
        grid(images, **options)


def test_save_image_round_trip_and_atomic_replace(tmp_path):
    target = tmp_path / "grid.png"
    first = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    assert save_image(target, first) == target
    np.testing.assert_array_equal(np.asarray(Image.open(target)), first)
    second = 255 - first
    save_image(str(target), torch.tensor(second))
    np.testing.assert_array_equal(np.asarray(Image.open(target)), second)
    save_image(target, first[..., 0])
    assert Image.open(target).mode == "L"
    assert sorted(os.listdir(tmp_path)) == ["grid.png"]


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "keep.png"
    save_image(target, np.zeros((2, 2, 3), dtype=np.uint8))
    before = target.read_bytes()

    def broken_save(self, handle, *args, **kwargs):
        handle.write(b"\x89PNG partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with raises(PathError, "keep.png: cannot write: No space left on device"):
        save_image(target, np.ones((2, 2, 3), dtype=np.uint8))
    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["keep.png"]


def test_save_image_errors(tmp_path):
    with raises(ConfigError, "expected uint8 (H, W), (H, W, 3) or (H, W, 4), found float64"):
        save_image(tmp_path / "a.png", np.zeros((2, 2, 3)))
    with raises(ConfigError, "a.jpg: expected a file name ending in .png"):
        save_image(tmp_path / "a.jpg", np.zeros((2, 2, 3), dtype=np.uint8))
    with raises(PathError, "does not exist"):
        save_image(tmp_path / "missing" / "a.png", np.zeros((2, 2, 3), dtype=np.uint8))


def test_heatmap_png_stores_indices_and_palette(tmp_path):
    path = save_heatmap(tmp_path / "h.png", R, "coldnhot")
    indices, palette = load_heatmap(path)
    assert indices.dtype == np.uint8
    np.testing.assert_array_equal(indices, SYMMETRIC_INDICES)
    np.testing.assert_array_equal(palette, get_colormap("coldnhot").palette)
    chunks = dict(png_chunks(path.read_bytes()))
    width, height, bit_depth, colour_type = (
        int.from_bytes(chunks[b"IHDR"][0:4], "big"),
        int.from_bytes(chunks[b"IHDR"][4:8], "big"),
        chunks[b"IHDR"][8],
        chunks[b"IHDR"][9],
    )
    assert (width, height, bit_depth, colour_type) == (2, 2, 8, 3)
    assert chunks[b"PLTE"] == get_colormap("coldnhot").palette.tobytes()
    # the image data are the rows, each behind filter byte 0 (none), then the indices
    assert zlib.decompress(chunks[b"IDAT"]) == bytes([0, 0, 128, 0, 191, 255])
    assert sorted(os.listdir(tmp_path)) == ["h.png"]


def test_heatmap_png_inputs(tmp_path):
    indices = np.arange(256, dtype=np.uint8).reshape(16, 16)
    save_heatmap(tmp_path / "i.png", indices, "gray", mode=None)
    np.testing.assert_array_equal(load_heatmap(tmp_path / "i.png")[0], indices)
    # channels are summed; absolute mode; tensors
    save_heatmap(tmp_path / "c.png", torch.tensor(np.stack([R, R])), mode="absolute")
    np.testing.assert_array_equal(load_heatmap(tmp_path / "c.png")[0], [[255, 0], [128, 255]])
    data = heatmap_png(np.array([[0.0, 0.5], [1.0, 0.25]]), "bwr", mode=None)
    with Image.open(io.BytesIO(data)) as picture:
        assert picture.mode == "P"
        np.testing.assert_array_equal(np.asarray(picture), [[0, 128], [255, 64]])
    with raises(
        ConfigError, "expected one relevance map (H, W) or (C, H, W), found shape (1, 1, 2, 2)"
    ):
        save_heatmap(tmp_path / "x.png", np.zeros((1, 1, 2, 2)))
    with raises(ConfigError, "relevance: expected finite numbers"):
        heatmap_png(np.array([[np.nan, 1.0]]))
    assert sorted(os.listdir(tmp_path)) == ["c.png", "i.png"]


def test_recolor_swaps_only_the_palette(tmp_path):
    rng = np.random.default_rng(3)
    source = save_heatmap(tmp_path / "h.png", rng.normal(size=(9, 7)), "bwr")
    before = source.read_bytes()
    indices_before, _ = load_heatmap(source)
    out = recolor(source, "hot", out=tmp_path / "hot.png")
    assert out == tmp_path / "hot.png"
    assert source.read_bytes() == before  # out= leaves the source alone
    after = out.read_bytes()
    old_chunks, new_chunks = png_chunks(before), png_chunks(after)
    assert [kind for kind, _ in old_chunks] == [kind for kind, _ in new_chunks]
    for (kind, old), (_, new) in zip(old_chunks, new_chunks, strict=True):
        if kind == b"PLTE":
            assert new == get_colormap("hot").palette.tobytes()
        else:
            assert new == old  # IHDR, compressed IDAT, IEND: byte for byte
    indices_after, palette_after = load_heatmap(out)
    assert indices_after.tobytes() == indices_before.tobytes()
    np.testing.assert_array_equal(palette_after, get_colormap("hot").palette)
    # in place, from bytes, and for Pillow images
    assert recolor(source, "00f,f00") == source
    np.testing.assert_array_equal(load_heatmap(source)[1], get_colormap("00f,f00").palette)
    assert recolor(before, "hot") == after
    with Image.open(io.BytesIO(before)) as picture:
        swapped = recolor(picture, "hot")
        assert np.asarray(swapped).tobytes() == indices_before.tobytes()
        assert swapped.getpalette() == list(get_colormap("hot").palette.ravel())


def test_heatmap_file_errors(tmp_path):
    save_image(tmp_path / "rgb.png", np.zeros((2, 2, 3), dtype=np.uint8))
    (tmp_path / "text.png").write_text("not an image")
    with raises(
        FormatError,
        "rgb.png: /: expected an 8-bit palette PNG (mode 'P'), found PNG image of mode 'RGB'",
    ):
        load_heatmap(tmp_path / "rgb.png")
    with raises(
        FormatError,
        "rgb.png: IHDR: expected an 8-bit palette PNG, found colour type 2, bit depth 8",
    ):
        recolor(tmp_path / "rgb.png", "hot")
    with raises(FormatError, "text.png: /: expected a PNG image"):
        load_heatmap(tmp_path / "text.png")
    with raises(FormatError, "text.png: /: expected a PNG file, found another kind of data"):
        recolor(tmp_path / "text.png", "hot")
    with raises(PathError, "gone.png: heatmap file does not exist"):
        load_heatmap(tmp_path / "gone.png")
    with raises(PathError, "gone.png: heatmap file does not exist"):
        recolor(tmp_path / "gone.png", "hot")
    truncated = (tmp_path / "rgb.png").read_bytes()[:20]
    with raises(FormatError, "expected 13 bytes, found end of file"):
        recolor(truncated, "hot")
    with raises(ConfigError, "recolor: expected a palette image (mode 'P'), found 'RGB'"):
        recolor(Image.new("RGB", (2, 2)), "hot")
