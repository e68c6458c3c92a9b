"""Colour maps: built-in palettes against an independent exact reference, the specification
language (round trips, hard steps, error columns), lookup, and registry conformance."""

import itertools
import math
import re
import sys
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from relscope.errors import ConfigError
from relscope.render import colormaps
from relscope.render.colormaps import (
    COLORMAPS,
    ColorMap,
    ColorMapSpecError,
    ColorStop,
    format_spec,
    get_colormap,
    list_colormaps,
    palette_from_spec,
    palette_to_spec,
    parse_spec,
    register_colormap,
    stop_positions,
    to_indices,
)

BUILTIN_SPECS = {
    "gray": "000,fff",
    "wred": "fff,f00",
    "wblue": "fff,00f",
    "hot": "000,f00,ff0,fff",
    "cold": "000,00f,0ff",
    "coldnhot": "0ff,40:00f,80:000,c0:f00,ff0",
    "bwr": "00f,80:fff,f00",
    "france": "0055a4,50:0055a4,70:fff,90:fff,b0:ef4135,ef4135",
    "seismic": "00004d,40:00f,80:fff,c0:f00,4d0000",
    "coolio": "0b4f6c,40:20b2c8,80:eee,c0:e05cb0,7a1357",
    "coleus": "1e5631,40:7bc043,80:f4f1de,c0:d1495b,5b1a5b",
}


def raises(error, text):
    """``pytest.raises`` for a message that contains ``text`` literally."""
    return pytest.raises(error, match=re.escape(text))


def reference_palette(spec):
    """Straightforward exact reading of a *valid* spec: Fractions, one entry at a time."""
    positions, colours = [], []
    for item in spec.split(","):
        position, _, digits = item.strip().rpartition(":")
        positions.append(Fraction(int(position, 16)) if position else None)
        if len(digits) == 3:
            digits = "".join(digit * 2 for digit in digits)
        colours.append([int(digits[i : i + 2], 16) for i in (0, 2, 4)])
    if positions[0] is None:
        positions[0] = Fraction(0)
    if positions[-1] is None:
        positions[-1] = Fraction(255)
    known = [k for k, position in enumerate(positions) if position is not None]
    for a, b in itertools.pairwise(known):
        for k in range(a + 1, b):
            positions[k] = positions[a] + (positions[b] - positions[a]) * Fraction(k - a, b - a)
    palette = []
    for x in range(256):
        before = [k for k, position in enumerate(positions) if position <= x]
        if not before:
            palette.append(colours[0])
        elif before[-1] == len(positions) - 1:
            palette.append(colours[-1])
        else:
            k = before[-1]
            t = (x - positions[k]) / (positions[k + 1] - positions[k])
            palette.append(
                [
                    math.floor(c0 + t * (c1 - c0) + Fraction(1, 2))
                    for c0, c1 in zip(colours[k], colours[k + 1], strict=True)
                ]
            )
    return np.array(palette, dtype=np.uint8)


# ----------------------------------------------------------------------------- built-ins
def test_builtin_maps_are_registered():
    assert list_colormaps() == sorted(BUILTIN_SPECS)


@pytest.mark.parametrize("name", sorted(BUILTIN_SPECS))
def test_builtin_palette_matches_reference(name):
    cmap = get_colormap(name)
    assert cmap.spec == BUILTIN_SPECS[name]
    assert cmap.name == name
    np.testing.assert_array_equal(cmap.palette, reference_palette(BUILTIN_SPECS[name]))
    np.testing.assert_array_equal(palette_from_spec(cmap.spec), cmap.palette)


def test_builtin_palette_entries():
    np.testing.assert_array_equal(
        get_colormap("gray").palette, np.repeat(np.arange(256), 3).reshape(256, 3)
    )
    bwr = get_colormap("bwr").palette
    assert bwr[[0, 64, 128, 255]].tolist() == [
        [0, 0, 255],
        [128, 128, 255],
        [255, 255, 255],
        [255, 0, 0],
    ]
    # 191 is 63/127 of the way from white (128) to red (255): 255 * 64 / 127 = 128.50 -> 129
    assert bwr[191].tolist() == [255, 129, 129]
    hot = get_colormap("hot").palette  # stops at 0, 85, 170, 255
    assert hot[[0, 42, 85, 170, 255]].tolist() == [
        [0, 0, 0],
        [126, 0, 0],
        [255, 0, 0],
        [255, 255, 0],
        [255] * 3,
    ]
    cold = get_colormap("cold").palette  # blue at 127.5: entry 127 is 127/127.5 of the way
    assert cold[[0, 127, 128, 255]].tolist() == [[0, 0, 0], [0, 0, 254], [0, 1, 255], [0, 255, 255]]
    coldnhot = get_colormap("coldnhot").palette
    assert coldnhot[[0, 64, 128, 192, 255]].tolist() == [
        [0, 255, 255], [0, 0, 255], [0, 0, 0], [255, 0, 0], [255, 255, 0],
    ]  # fmt: skip
    assert get_colormap("seismic").palette[[0, 128, 255]].tolist() == [
        [0, 0, 77],
        [255] * 3,
        [77, 0, 0],
    ]
    assert get_colormap("wred")(0.5).tolist() == [255, 127, 127]  # entry 128: 255 * 127 / 255
    assert get_colormap("wblue")(1.0).tolist() == [0, 0, 255]


def test_france_has_flat_bands():
    palette = get_colormap("france").palette
    assert (palette[: 0x50 + 1] == [0x00, 0x55, 0xA4]).all()
    assert (palette[0x70 : 0x90 + 1] == 255).all()
    assert (palette[0xB0:] == [0xEF, 0x41, 0x35]).all()
    # the ramps between the bands are monotone in every channel
    assert (np.diff(palette[0x50:0x71].astype(int), axis=0) >= 0).all()
    assert (np.diff(palette[0x90:0xB1, 1:].astype(int), axis=0) <= 0).all()


@pytest.mark.parametrize("name", sorted(BUILTIN_SPECS))
def test_diverging_maps_centre(name):
    # Symmetric normalization puts zero relevance at 0.5 -> index 128.
    assert to_indices(0.5) == 128
    centre = {"bwr": [255] * 3, "seismic": [255] * 3, "coldnhot": [0, 0, 0]}
    centre.update({"france": [255] * 3, "coolio": [0xEE] * 3, "coleus": [0xF4, 0xF1, 0xDE]})
    if name in centre:
        assert get_colormap(name)(0.5).tolist() == centre[name]


# ----------------------------------------------------------------------------- conformance
@pytest.mark.parametrize("name", list_colormaps())
def test_registered_map_conformance(name):
    cmap = COLORMAPS[name]
    assert isinstance(cmap, ColorMap)
    assert cmap.name == name
    assert cmap.palette.shape == (256, 3)
    assert cmap.palette.dtype == np.uint8
    assert not cmap.palette.flags.writeable
    np.testing.assert_array_equal(palette_from_spec(cmap.spec), cmap.palette)
    np.testing.assert_array_equal(
        palette_from_spec(format_spec(parse_spec(cmap.spec))), cmap.palette
    )
    np.testing.assert_array_equal(palette_from_spec(palette_to_spec(cmap.palette)), cmap.palette)
    reverse = cmap.reversed()
    assert reverse.name == f"{name}_r"
    np.testing.assert_array_equal(reverse.palette, cmap.palette[::-1])
    np.testing.assert_array_equal(palette_from_spec(reverse.spec), cmap.palette[::-1])
    np.testing.assert_array_equal(get_colormap(f"{name}_r").palette, reverse.palette)
    assert reverse.reversed().name == name
    assert cmap([0.0, 1.0]).tolist() == [cmap.palette[0].tolist(), cmap.palette[255].tolist()]


# ----------------------------------------------------------------------------- language
def test_parse_spec_items_as_written():
    assert parse_spec(" 00f , 80:FFF,a0:123456") == (
        ColorStop(None, (0, 0, 255)),
        ColorStop(128, (255, 255, 255)),
        ColorStop(160, (0x12, 0x34, 0x56)),
    )
    assert stop_positions(parse_spec("000,888,40:fff,f00,0f0")).tolist() == [0, 32, 64, 159.5, 255]
    assert stop_positions(parse_spec("10:000,fff")).tolist() == [16, 255]
    assert stop_positions(parse_spec("000,f0:fff")).tolist() == [0, 240]


def test_format_spec_is_canonical():
    assert format_spec(parse_spec("0000FF, 80:FFFFFF ,ff:ff0000")) == "00f,80:fff,ff:f00"
    assert format_spec([(None, (0x12, 0x34, 0x56)), (3, (17, 34, 51))]) == "123456,03:123"
    with raises(ConfigError, "expected a position in 0-255"):
        format_spec([(256, (0, 0, 0))])
    with raises(ConfigError, "expected 3 values in 0-255"):
        format_spec([(None, (0, 0, 300))])


def test_hard_steps_from_the_spec_example():
    palette = palette_from_spec("70:0d0,70:ddd,90:ddd,90:d0d")
    expected = np.concatenate(
        [
            np.repeat([[0x00, 0xDD, 0x00]], 0x70, axis=0),
            np.repeat([[0xDD, 0xDD, 0xDD]], 0x90 - 0x70, axis=0),
            np.repeat([[0xDD, 0x00, 0xDD]], 256 - 0x90, axis=0),
        ]
    )
    np.testing.assert_array_equal(palette, expected)


def test_discrete_map_of_four_bands():
    palette = palette_from_spec("f00,40:f00,40:0f0,80:0f0,80:00f,c0:00f,c0:fff,fff")
    bands = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]
    np.testing.assert_array_equal(palette, np.repeat(bands, 64, axis=0))
    assert palette_to_spec(palette) == "f00,3f:f00,40:0f0,7f:0f0,80:00f,bf:00f,c0:fff,fff"


def test_steps_at_the_ends_and_single_colours():
    np.testing.assert_array_equal(
        palette_from_spec("00:f00,00:00f"), np.repeat([[0, 0, 255]], 256, 0)
    )
    np.testing.assert_array_equal(palette_from_spec("ff:f00,ff:00f,00f")[255], [0, 0, 255])
    np.testing.assert_array_equal(palette_from_spec("abc"), np.repeat([[0xAA, 0xBB, 0xCC]], 256, 0))
    np.testing.assert_array_equal(palette_from_spec("80:fff"), np.full((256, 3), 255))
    # before the first and after the last positioned colour the palette holds it
    palette = palette_from_spec("40:000,c0:fff")
    assert (palette[:0x41] == 0).all() and (palette[0xC0:] == 255).all()
    assert palette[0x80].tolist() == [128] * 3


def test_palette_to_spec_of_an_arbitrary_palette():
    palette = np.random.default_rng(0).integers(0, 256, size=(256, 3), dtype=np.uint8)
    spec = palette_to_spec(palette)
    assert spec.count(",") == 255
    np.testing.assert_array_equal(palette_from_spec(spec), palette)
    np.testing.assert_array_equal(ColorMap(palette).palette, palette)
    np.testing.assert_array_equal(palette_from_spec(ColorMap(palette).spec), palette)


@pytest.mark.parametrize(
    ("spec", "column", "message"),
    [
        ("", 1, "expected a colour, found end of spec"),
        ("   ", 4, "expected a colour, found end of spec"),
        ("000,ffz", 5, "expected 3 or 6 hex digits, found 'ffz'"),
        ("00000", 1, "expected 3 or 6 hex digits, found '00000'"),
        ("000,fff,", 9, "expected a colour, found end of spec"),
        ("000,,fff", 5, "expected a colour, found ','"),
        (",fff", 1, "expected a colour, found ','"),
        ("zz:000", 1, "expected a position of 2 hex digits (00-ff), found 'zz'"),
        ("000,100:fff", 5, "expected a position of 2 hex digits (00-ff), found '100'"),
        ("000,8:fff", 5, "expected a position of 2 hex digits (00-ff), found '8'"),
        ("000,:fff", 5, "expected a position of 2 hex digits (00-ff), found ':'"),
        ("80:f00,40:00f", 8, "expected a position >= 80 (positions must not decrease), found '40'"),
        (
            "00:000,c0:fff,80:f00",
            15,
            "expected a position >= c0 (positions must not decrease), found '80'",
        ),
        ("10:", 4, "expected 3 or 6 hex digits, found end of spec"),
        ("10:,fff", 4, "expected 3 or 6 hex digits, found ','"),
        ("000, 12:ff0000x", 9, "expected 3 or 6 hex digits, found 'ff0000x'"),
        ("000, #fff", 6, "expected 3 or 6 hex digits, found '#fff'"),
        ("000 fff,fff", 1, "expected 3 or 6 hex digits, found '000 fff'"),
        ("10:20:fff", 4, "expected 3 or 6 hex digits, found '20:fff'"),
        ("000;fff,fff", 1, "expected 3 or 6 hex digits, found '000;fff'"),
    ],
)
def test_spec_errors_name_the_column(spec, column, message):
    with pytest.raises(ColorMapSpecError) as caught:
        parse_spec(spec)
    error = caught.value
    assert isinstance(error, ConfigError)
    assert error.column == column
    assert str(error) == f"colour map spec, column {column}: {message}"
    with pytest.raises(ColorMapSpecError, match=f"column {column}:"):
        get_colormap(spec if spec.strip() else spec + ",")  # lookups report the same way


def test_non_string_spec():
    with raises(ConfigError, "expected a string, found int"):
        parse_spec(5)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- properties
@st.composite
def valid_specs(draw):
    count = draw(st.integers(1, 7))
    positions = sorted(draw(st.lists(st.integers(0, 255), min_size=count, max_size=count)))
    items = []
    for position in positions:
        rgb = draw(st.tuples(*[st.integers(0, 255)] * 3))
        if draw(st.booleans()):
            digits = "".join(f"{value // 17:x}" for value in rgb)
        else:
            digits = "".join(f"{value:02x}" for value in rgb)
        if draw(st.booleans()):
            digits = digits.upper()
        items.append(f"{position:02x}:{digits}" if draw(st.booleans()) else digits)
    return ",".join(items)


@settings(max_examples=100, deadline=None)
@given(valid_specs())
def test_random_specs_match_the_reference(spec):
    stops = parse_spec(spec)
    palette = palette_from_spec(spec)
    np.testing.assert_array_equal(palette, reference_palette(spec))
    assert parse_spec(format_spec(stops)) == stops
    np.testing.assert_array_equal(palette_from_spec(palette_to_spec(palette)), palette)
    # between consecutive stops each channel moves monotonically from one colour to the next
    positions = stop_positions(stops)
    for k in range(len(stops) - 1):
        inside = palette[math.ceil(positions[k]) : math.ceil(positions[k + 1])].astype(int)
        direction = np.sign(np.subtract(stops[k + 1].rgb, stops[k].rgb))
        assert (np.diff(inside, axis=0) * direction >= 0).all()
        assert (
            np.diff(inside, axis=0) * direction
            <= np.abs(np.subtract(stops[k + 1].rgb, stops[k].rgb))
        ).all()


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 254),
    st.integers(1, 255),
    st.tuples(*[st.integers(0, 255)] * 3),
    st.tuples(*[st.integers(0, 255)] * 3),
)
def test_two_stops_are_monotone_and_exact_at_the_stops(start, width, first, last):
    end = min(255, start + width)
    spec = f"{start:02x}:{format_spec([(None, first)])},{end:02x}:{format_spec([(None, last)])}"
    palette = palette_from_spec(spec).astype(int)
    assert (palette[: start + 1] == first).all()
    assert (palette[end:] == last).all()
    steps = np.diff(palette[start : end + 1], axis=0) * np.sign(np.subtract(last, first))
    assert (steps >= 0).all()


# ----------------------------------------------------------------------------- lookup
def test_get_colormap_lookups():
    bwr = get_colormap("bwr")
    assert get_colormap(bwr) is bwr
    assert get_colormap(" bwr ") is bwr
    custom = get_colormap("000,80:f00,fff")
    assert custom.spec == "000,80:f00,fff"
    assert custom.palette[[0, 64, 128, 255]].tolist() == [
        [0, 0, 0],
        [128, 0, 0],
        [255, 0, 0],
        [255] * 3,
    ]
    assert get_colormap("f80").palette[7].tolist() == [255, 136, 0]
    with raises(ConfigError, "found 'ffz'"):
        get_colormap("000,ffz")


def test_matplotlib_maps():
    viridis = get_colormap("viridis")
    assert viridis.name == "viridis"
    # the published ends of matplotlib's viridis: #440154 and #fde725
    assert viridis.palette[0].tolist() == [0x44, 0x01, 0x54]
    assert viridis.palette[255].tolist() == [0xFD, 0xE7, 0x25]
    np.testing.assert_array_equal(palette_from_spec(viridis.spec), viridis.palette)
    np.testing.assert_array_equal(get_colormap("viridis_r").palette, viridis.palette[::-1])


def test_unknown_map_lists_builtins():
    with pytest.raises(ConfigError) as caught:
        get_colormap("no_such_map")
    message = str(caught.value)
    assert message.startswith("unknown colour map 'no_such_map'")
    assert "bwr, cold, coldnhot" in message and "matplotlib" in message
    assert "\n" not in message


def test_matplotlib_missing(monkeypatch):
    colormaps._matplotlib_colormap.cache_clear()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ConfigError) as caught:
        get_colormap("magma")
    assert str(caught.value) == (
        "unknown colour map 'magma': built-in maps are "
        "bwr, cold, coldnhot, coleus, coolio, france, gray, hot, seismic, wblue, wred; "
        "other names need matplotlib, which is not installed"
    )
    assert get_colormap("hot").name == "hot"  # built-ins never need matplotlib


@pytest.mark.parametrize("bad", [None, 3, ["bwr"]])
def test_get_colormap_rejects_non_strings(bad):
    with raises(ConfigError, "expected a name or a specification"):
        get_colormap(bad)


# ----------------------------------------------------------------------------- mapping values
def test_colormap_call():
    gray = get_colormap("gray")
    values = np.array([[0.0, 0.25, 0.5], [1.0, -3.0, 7.0]])
    expected = np.array([[0, 64, 128], [255, 0, 255]], dtype=np.uint8)
    result = gray(values)
    assert result.shape == (2, 3, 3) and result.dtype == np.uint8
    np.testing.assert_array_equal(result, np.repeat(expected[..., None], 3, axis=-1))
    np.testing.assert_array_equal(gray(torch.tensor(values)), result)
    assert to_indices([1 / 255 * 0.49, 1 / 255 * 0.5]).tolist() == [0, 1]


@pytest.mark.parametrize("bad", [[0.5, float("nan")], [float("inf")], ["a"]])
def test_colormap_call_rejects_non_numbers(bad):
    with raises(ConfigError, "colour map values: expected numbers in"):
        get_colormap("gray")(np.array(bad))


def test_colormap_from_palette_validation():
    with raises(ConfigError, "shape (256, 3)"):
        ColorMap(np.zeros((255, 3), dtype=np.uint8))
    with raises(ConfigError, "values in 0-255"):
        ColorMap(np.full((256, 3), 256))
    assert ColorMap(np.zeros((256, 3), dtype=int)).spec == "000,000"


# ----------------------------------------------------------------------------- registry
@pytest.fixture
def scratch_names():
    names = []
    yield names
    for name in names:
        COLORMAPS.unregister(name)


def test_register_colormap_forms(scratch_names):
    scratch_names += ["test_line", "test_factory", "test_palette"]
    line = register_colormap("test_line", "00:123,ff:456")
    assert get_colormap("test_line") is line
    assert line.spec == "00:123,ff:456"

    @register_colormap("test_factory")
    def factory():
        return "f00,0f0"

    assert callable(factory)
    assert get_colormap("test_factory").palette[255].tolist() == [0, 255, 0]
    palette = np.arange(768).reshape(256, 3) % 256
    register_colormap("test_palette", ColorMap(palette, name="other"))
    assert get_colormap("test_palette").name == "test_palette"
    np.testing.assert_array_equal(get_colormap("test_palette").palette, palette)
    assert "test_line" in list_colormaps()


@pytest.mark.parametrize("name", ["bwr", "", "a,b", "a:b", "mine_r", "fff", "abcdef", "bad", " x"])
def test_register_colormap_rejects_names(name):
    with pytest.raises(ValueError, match=r"registered twice|cannot name a colour map"):
        register_colormap(name, "000,fff")


def test_bad_spec_registration_fails_cleanly():
    with pytest.raises(ColorMapSpecError):
        register_colormap("test_broken", "000,xyz")
    assert "test_broken" not in COLORMAPS
