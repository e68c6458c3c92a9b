"""Colour maps for heatmaps, and a small language to specify them.

A colour map is a 256-entry RGB palette. Maps are written in the colour-map specification
language: comma-separated hex colours (``rgb`` or ``rrggbb``), each optionally prefixed by a
palette position ``00``-``ff`` and ``:``. Unpositioned colours are spaced evenly between
the positioned ones (the first defaults to ``00``, the last to ``ff``); the palette is the
linear interpolation between consecutive colours. Positions must not decrease; equal
positions make a hard step, whose position takes the later colour. Before the first and
after the last colour the palette holds that colour.

A built-in map is one specification plus one registration line
(``register_colormap("name", "spec")``); any other name is looked up in matplotlib, if it is
installed.

>>> cmap = get_colormap("000,80:f00,fff")
>>> cmap.palette[[0, 64, 128, 255]].tolist()
[[0, 0, 0], [128, 0, 0], [255, 0, 0], [255, 255, 255]]
>>> cmap([0.0, 0.5, 1.0]).tolist()
[[0, 0, 0], [255, 0, 0], [255, 255, 255]]
>>> get_colormap("70:0d0,70:ddd,90:ddd,90:d0d").palette[[111, 112, 143, 144]].tolist()
[[0, 221, 0], [221, 221, 221], [221, 221, 221], [221, 0, 221]]
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from typing import Any, NamedTuple, TypeAlias, overload

import numpy as np
import numpy.typing as npt

from relscope.errors import ConfigError, RegistryError
from relscope.registry import Registry

__all__ = [
    "COLORMAPS",
    "PALETTE_SIZE",
    "ColorMap",
    "ColorMapSpecError",
    "ColorStop",
    "format_spec",
    "get_colormap",
    "list_colormaps",
    "palette_from_spec",
    "palette_from_stops",
    "palette_to_spec",
    "parse_spec",
    "register_colormap",
    "stop_positions",
    "to_indices",
]

PALETTE_SIZE = 256
_LAST = PALETTE_SIZE - 1
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_BLANKS = " \t"

RGB: TypeAlias = tuple[int, int, int]


class ColorMapSpecError(ConfigError):
    """A colour-map specification does not parse.

    Parameters
    ----------
    column:
        1-based column of the offending text in the specification.
    expected:
        What the parser expected there.
    found:
        What it found instead (quoted text, or ``end of spec``).
    """

    def __init__(self, column: int, expected: str, found: str) -> None:
        self.column = column
        self.expected = expected
        self.found = found
        super().__init__(f"colour map spec, column {column}: expected {expected}, found {found}")


class ColorStop(NamedTuple):
    """One colour of a specification: its palette position (``None``: spaced evenly) and RGB."""

    position: int | None
    rgb: RGB


# ----------------------------------------------------------------------------- parsing
def _is_hex(text: str) -> bool:
    return bool(text) and all(character in _HEX_DIGITS for character in text)


def _found_at(text: str, index: int) -> str:
    return "end of spec" if index >= len(text) else repr(text[index])


def _rgb(digits: str) -> RGB:
    if len(digits) == 3:
        # 'f80' is shorthand for 'ff8800': each digit doubled, i.e. times 17.
        return (int(digits[0], 16) * 17, int(digits[1], 16) * 17, int(digits[2], 16) * 17)
    return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))


def _parse_item(text: str, start: int, end: int, floor: int | None) -> ColorStop:
    while start < end and text[start] in _BLANKS:
        start += 1
    stop = end
    while stop > start and text[stop - 1] in _BLANKS:
        stop -= 1
    if start == stop:
        raise ColorMapSpecError(start + 1, "a colour", _found_at(text, start))
    item = text[start:stop]
    position = None
    colour_start = start
    colon = item.find(":")
    if colon >= 0:
        token = item[:colon]
        if len(token) != 2 or not _is_hex(token):
            found = repr(token) if token else "':'"
            raise ColorMapSpecError(start + 1, "a position of 2 hex digits (00-ff)", found)
        position = int(token, 16)
        if floor is not None and position < floor:
            expected = f"a position >= {floor:02x} (positions must not decrease)"
            raise ColorMapSpecError(start + 1, expected, repr(token))
        colour_start = start + colon + 1
    digits = text[colour_start:stop]
    if len(digits) not in (3, 6) or not _is_hex(digits):
        found = repr(digits) if digits else _found_at(text, colour_start)
        raise ColorMapSpecError(colour_start + 1, "3 or 6 hex digits", found)
    return ColorStop(position, _rgb(digits))


def parse_spec(spec: str) -> tuple[ColorStop, ...]:
    """Parse a colour-map specification into its colour stops, as written.

    Parameters
    ----------
    spec:
        Comma-separated ``[pp:]rgb`` or ``[pp:]rrggbb`` items; blanks around items are allowed.

    Returns
    -------
    tuple of ColorStop
        One stop per item; ``position`` is ``None`` where the item has none.

    Raises
    ------
    ColorMapSpecError
        With the 1-based column and what was expected there.

    Examples
    --------
    >>> parse_spec("00f, 80:fff, f00")
    (ColorStop(position=None, rgb=(0, 0, 255)), ColorStop(position=128, rgb=(255, 255, 255)), \
ColorStop(position=None, rgb=(255, 0, 0)))
    """
    if not isinstance(spec, str):
        raise ConfigError(f"colour map spec: expected a string, found {type(spec).__name__}")
    stops: list[ColorStop] = []
    floor: int | None = None
    start = 0
    while True:
        end = spec.find(",", start)
        if end < 0:
            end = len(spec)
        stop = _parse_item(spec, start, end, floor)
        if stop.position is not None:
            floor = stop.position
        stops.append(stop)
        if end == len(spec):
            return tuple(stops)
        start = end + 1


def _hex(rgb: Sequence[int]) -> str:
    if all(value % 17 == 0 for value in rgb):
        return "".join(f"{value // 17:x}" for value in rgb)
    return "".join(f"{value:02x}" for value in rgb)


def format_spec(stops: Iterable[ColorStop | tuple[int | None, Sequence[int]]]) -> str:
    """Write colour stops as a specification (lowercase hex, 3 digits where exact).

    Examples
    --------
    >>> format_spec(parse_spec("0000FF,80:FFFFFF,ff:ff0000"))
    '00f,80:fff,ff:f00'
    """
    items = []
    for position, rgb in stops:
        if len(rgb) != 3 or not all(0 <= int(value) <= _LAST for value in rgb):
            raise ConfigError(f"colour stop: expected 3 values in 0-255, found {tuple(rgb)}")
        colour = _hex([int(value) for value in rgb])
        if position is None:
            items.append(colour)
        elif 0 <= position <= _LAST:
            items.append(f"{int(position):02x}:{colour}")
        else:
            raise ConfigError(f"colour stop: expected a position in 0-255, found {position}")
    if not items:
        raise ConfigError("colour stops: expected at least one stop, found none")
    return ",".join(items)


# ----------------------------------------------------------------------------- palettes
def _positions(stops: Sequence[ColorStop]) -> list[Fraction]:
    # Exact rationals: evenly spaced positions such as 255/7 must not pick up float error,
    # or an entry exactly halfway between two colour values could round either way.
    given: list[Fraction | None] = [
        None if stop.position is None else Fraction(stop.position) for stop in stops
    ]
    if not given:
        raise ConfigError("colour stops: expected at least one stop, found none")
    if given[0] is None:
        given[0] = Fraction(0)
    if given[-1] is None:
        given[-1] = Fraction(_LAST)
    anchors = [index for index, position in enumerate(given) if position is not None]
    for left, right in itertools.pairwise(anchors):
        low, high = given[left], given[right]
        assert low is not None
        assert high is not None
        for index in range(left + 1, right):
            given[index] = low + (high - low) * Fraction(index - left, right - left)
    return [position for position in given if position is not None]


def stop_positions(stops: Sequence[ColorStop]) -> npt.NDArray[np.float64]:
    """Palette positions (0-255, possibly fractional) of stops, filling in unpositioned ones.

    Examples
    --------
    >>> stop_positions(parse_spec("000,888,40:fff,f00,0f0")).tolist()
    [0.0, 32.0, 64.0, 159.5, 255.0]
    """
    return np.array([float(position) for position in _positions(stops)], dtype=np.float64)


def _round_half_up(numerator: npt.NDArray[np.int64], denominator: Any) -> npt.NDArray[np.int64]:
    """``floor(numerator / denominator + 1/2)`` in integers (positive denominators)."""
    return (2 * numerator + denominator) // (2 * denominator)


def palette_from_stops(stops: Sequence[ColorStop]) -> npt.NDArray[np.uint8]:
    """The 256 x 3 ``uint8`` palette that colour stops describe.

    Entry ``x`` (0-255) lies in the segment of the last stop at or before ``x``, so equal
    positions step to the later colour; its value is the linear interpolation between the
    segment's two colours, rounded half up. Before the first stop and after the last, the
    palette holds their colours.
    """
    positions = _positions(stops)
    colours = np.array([stop.rgb for stop in stops], dtype=np.int64)
    palette = np.empty((PALETTE_SIZE, 3), dtype=np.int64)
    palette[: max(0, math.ceil(positions[0]))] = colours[0]
    for index, (start, end) in enumerate(itertools.pairwise(positions)):
        x = np.arange(math.ceil(start), math.ceil(end), dtype=np.int64)
        if not len(x):
            continue
        # Scale positions to integers, then interpolate exactly in integer arithmetic.
        scale = math.lcm(start.denominator, end.denominator)
        low, high = int(start * scale), int(end * scale)
        scaled = x[:, None] * scale
        numerator = colours[index] * (high - scaled) + colours[index + 1] * (scaled - low)
        palette[x] = _round_half_up(numerator, high - low)
    palette[math.ceil(positions[-1]) :] = colours[-1]
    return palette.astype(np.uint8)


def palette_from_spec(spec: str) -> npt.NDArray[np.uint8]:
    """The 256 x 3 ``uint8`` palette of a specification (see :func:`parse_spec`)."""
    return palette_from_stops(parse_spec(spec))


def _check_palette(palette: Any) -> npt.NDArray[np.uint8]:
    array = np.asarray(palette)
    if array.shape != (PALETTE_SIZE, 3) or array.dtype.kind not in "ui":
        raise ConfigError(
            f"colour map palette: expected integers of shape (256, 3), "
            f"found {array.dtype} of shape {array.shape}"
        )
    if array.min() < 0 or array.max() > _LAST:
        raise ConfigError("colour map palette: expected values in 0-255")
    return array.astype(np.uint8)


def _longest_segment(colours: npt.NDArray[np.int64], start: int) -> int:
    """The furthest end whose segment from ``start`` reproduces every entry in between.

    Candidates are checked on growing windows of entries, so that the many that fail right
    after ``start`` (noisy or curved palettes) cost little; the arithmetic is that of
    :func:`palette_from_stops`, so an accepted segment is reproduced when parsed.
    """
    candidates = np.arange(start + 1, PALETTE_SIZE, dtype=np.int64)
    checked = start + 1  # entries start + 1 .. checked - 1 hold for every candidate
    width = 4
    while True:
        pending = candidates[candidates > checked]
        if not len(pending):
            return int(candidates.max())
        stop = min(int(pending.max()), checked + width)
        x = np.arange(checked, stop, dtype=np.int64)[None, :, None]
        ends = pending[:, None, None]
        numerator = colours[start] * (ends - x) + colours[pending][:, None, :] * (x - start)
        values = _round_half_up(numerator, ends - start)
        # Entries at or beyond a candidate's end are not part of its segment.
        holds = ((values == colours[checked:stop][None]) | (x >= ends)).all(axis=(1, 2))
        candidates = np.concatenate([candidates[candidates <= checked], pending[holds]])
        checked = stop
        width *= 2


def palette_to_spec(palette: npt.ArrayLike) -> str:
    """A specification that reproduces ``palette`` exactly, with few stops.

    Stops are placed greedily: each linear segment is made as long as interpolating between
    its end points still reproduces every palette entry in between.

    Examples
    --------
    >>> palette_to_spec(palette_from_spec("000,fff"))
    '000,fff'
    >>> palette_to_spec(palette_from_spec("00f,80:f00,0f0"))
    '00f,80:f00,0f0'
    """
    colours = _check_palette(palette).astype(np.int64)
    positions = [0]
    while positions[-1] < _LAST:
        positions.append(_longest_segment(colours, positions[-1]))
    stops = [
        ColorStop(
            None if position in (0, _LAST) else position, tuple(colours[position].astype(int))
        )
        for position in positions
    ]
    return format_spec(stops)  # type: ignore[arg-type]


def to_indices(values: Any) -> npt.NDArray[np.uint8]:
    """Palette indices (0-255) of values in [0, 1]; values outside are clipped.

    Raises
    ------
    ConfigError
        If a value is NaN or infinite.

    Examples
    --------
    >>> to_indices([0.0, 0.5, 1.0, 1.5]).tolist()
    [0, 128, 255, 255]
    """
    array = _numpy(values)
    if array.dtype.kind not in "biuf":
        raise ConfigError(f"colour map values: expected numbers in [0, 1], found {array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ConfigError("colour map values: expected numbers in [0, 1], found NaN or inf")
    return np.floor(np.clip(array, 0.0, 1.0) * _LAST + 0.5).astype(np.uint8)


def _numpy(values: Any) -> np.ndarray:
    """A numpy array of an array-like or a (possibly GPU) torch tensor, without importing torch."""
    if hasattr(values, "detach"):
        tensor = values.detach().cpu()
        try:
            return tensor.numpy()
        except TypeError:  # bfloat16 and other dtypes numpy lacks
            return tensor.float().numpy()
    return np.asarray(values)


# ----------------------------------------------------------------------------- maps
class ColorMap:
    """A 256-entry RGB palette that maps values in [0, 1] to colours.

    Parameters
    ----------
    palette:
        Integers in 0-255 of shape (256, 3).
    name:
        Display name.

    Examples
    --------
    >>> gray = get_colormap("gray")
    >>> gray([0.0, 0.25]).tolist(), gray.reversed().name
    ([[0, 0, 0], [64, 64, 64]], 'gray_r')
    """

    __slots__ = ("_palette", "_spec", "name")

    def __init__(self, palette: npt.ArrayLike, name: str = "custom") -> None:
        array = _check_palette(palette).copy()
        array.setflags(write=False)
        self._palette = array
        self._spec: str | None = None
        self.name = name

    @classmethod
    def from_spec(cls, spec: str, name: str | None = None) -> ColorMap:
        """The map of a specification; its :attr:`spec` is ``spec`` as given."""
        cmap = cls(palette_from_spec(spec), name=spec if name is None else name)
        cmap._spec = spec
        return cmap

    @property
    def palette(self) -> npt.NDArray[np.uint8]:
        """The read-only (256, 3) ``uint8`` palette."""
        return self._palette

    @property
    def spec(self) -> str:
        """A specification whose palette is exactly this map's palette."""
        if self._spec is None:
            self._spec = palette_to_spec(self._palette)
        return self._spec

    def __call__(self, values: Any) -> npt.NDArray[np.uint8]:
        """Colours of values in [0, 1] (clipped): a ``uint8`` array of shape ``(..., 3)``."""
        return self._palette[to_indices(values)]

    def reversed(self) -> ColorMap:
        """The map with its palette reversed (``name_r``; reversing twice restores the name)."""
        name = self.name[:-2] if self.name.endswith("_r") else f"{self.name}_r"
        return ColorMap(self._palette[::-1], name=name)

    def __repr__(self) -> str:
        return f"ColorMap(name={self.name!r})"


def _check_name(name: str) -> None:
    if _looks_like_spec(name) or name.endswith("_r"):
        raise RegistryError(f"{name!r} cannot name a colour map")


#: The colour-map extension point: name -> :class:`ColorMap`.
COLORMAPS: Registry[ColorMap] = Registry("colour map", check_name=_check_name, module=__name__)

_Factory: TypeAlias = Callable[[], "str | ColorMap"]


@overload
def register_colormap(name: str, spec: str | ColorMap) -> ColorMap: ...


@overload
def register_colormap(name: str, spec: None = None) -> Callable[[_Factory], _Factory]: ...


def register_colormap(
    name: str, spec: str | ColorMap | None = None
) -> ColorMap | Callable[[_Factory], _Factory]:
    """Make a colour map available by ``name`` (one line per map).

    With ``spec`` (a specification or a :class:`ColorMap`) the map is registered and returned;
    without, this is a decorator for a function returning either, called once here.

    Raises
    ------
    RegistryError
        If ``name`` is taken, could be read as a specification (empty, hex digits only,
        ``,`` or ``:``), has surrounding blanks, or ends in ``_r`` (reserved for reversal).
    """
    COLORMAPS.check_new(name)

    def register(value: str | ColorMap) -> ColorMap:
        if isinstance(value, ColorMap):
            cmap = ColorMap(value.palette, name=name)
            cmap._spec = value._spec
        else:
            cmap = ColorMap.from_spec(value, name=name)
        return COLORMAPS.register(name, cmap)

    if spec is not None:
        return register(spec)

    def decorate(factory: _Factory) -> _Factory:
        register(factory())
        return factory

    return decorate


def list_colormaps() -> list[str]:
    """Names of the registered (built-in) colour maps."""
    return COLORMAPS.names()


def _looks_like_spec(text: str) -> bool:
    # No colour-map name consists of hex digits only, so '00000' gets the parser's message
    # ('expected 3 or 6 hex digits') rather than 'unknown colour map'.
    return not text or "," in text or ":" in text or _is_hex(text)


def get_colormap(cmap: str | ColorMap) -> ColorMap:
    """A colour map from a registered name, a specification or a matplotlib name.

    ``name_r`` reverses a registered map. Strings containing ``,`` or ``:``, or consisting
    of hex digits only, are specifications; other names are looked up in matplotlib.

    Raises
    ------
    ConfigError
        For unparseable specifications (:class:`ColorMapSpecError`) and unknown names.
    """
    if isinstance(cmap, ColorMap):
        return cmap
    if not isinstance(cmap, str):
        raise ConfigError(
            f"colour map: expected a name or a specification, found {type(cmap).__name__}"
        )
    text = cmap.strip()
    if text in COLORMAPS:
        return COLORMAPS[text]
    if _looks_like_spec(text):
        return ColorMap.from_spec(cmap)
    if text.endswith("_r") and text[:-2] in COLORMAPS:
        return COLORMAPS[text[:-2]].reversed()
    return _matplotlib_colormap(text)


@functools.lru_cache(maxsize=64)
def _matplotlib_colormap(name: str) -> ColorMap:
    builtin = ", ".join(list_colormaps())
    try:
        import matplotlib  # optional, and slow to import: only for names we do not know
    except ImportError:
        raise ConfigError(
            f"unknown colour map {name!r}: built-in maps are {builtin}; "
            f"other names need matplotlib, which is not installed"
        ) from None
    try:
        source = matplotlib.colormaps[name]
    except KeyError:
        raise ConfigError(
            f"unknown colour map {name!r}: not built-in ({builtin}) nor a matplotlib colour map"
        ) from None
    rgba = np.asarray(source(np.linspace(0.0, 1.0, PALETTE_SIZE)), dtype=np.float64)
    return ColorMap(np.floor(rgba[:, :3] * _LAST + 0.5).astype(np.uint8), name=name)


# ----------------------------------------------------------------------------- built-ins
register_colormap("gray", "000,fff")
register_colormap("wred", "fff,f00")
register_colormap("wblue", "fff,00f")
register_colormap("hot", "000,f00,ff0,fff")
register_colormap("cold", "000,00f,0ff")
register_colormap("coldnhot", "0ff,40:00f,80:000,c0:f00,ff0")
register_colormap("bwr", "00f,80:fff,f00")
register_colormap("france", "0055a4,50:0055a4,70:fff,90:fff,b0:ef4135,ef4135")
register_colormap("seismic", "00004d,40:00f,80:fff,c0:f00,4d0000")
register_colormap("coolio", "0b4f6c,40:20b2c8,80:eee,c0:e05cb0,7a1357")
register_colormap("coleus", "1e5631,40:7bc043,80:f4f1de,c0:d1495b,5b1a5b")
