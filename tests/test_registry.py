"""One registry contract for every extension point: register, get, names, build; an unknown
name and a duplicate name are both a one-line RegistryError (a ConfigError and ValueError)."""

from __future__ import annotations

import pytest

import relscope.analysis
import relscope.attribution
import relscope.registry
import relscope.render
from relscope.analysis import Processor
from relscope.attribution import Attributor, Composite, Rule
from relscope.errors import ConfigError, RegistryError
from relscope.registry import Registry, registries, registry
from relscope.render import ColorMap

EXTENSION_POINTS = {
    "rule",
    "composite",
    "attributor",
    "visualization style",
    "colour map",
    "processor",
}


@pytest.fixture
def shapes():
    made = Registry("test shape", plural="test shapes", module=__name__)
    yield made
    relscope.registry._REGISTRIES.pop("test shape")


def test_register_get_names_build(shapes):
    @shapes.register("square")
    class Square:
        def __init__(self, side: float = 1.0) -> None:
            self.area = side * side

    assert shapes.register("line", len) is len  # the call form returns the item too
    assert shapes.get("square") is Square and shapes["square"] is Square
    stamped = Registry("test stamped", stamp="name")
    try:
        assert stamped.register("box", Square) is Square and Square.name == "box"
    finally:
        relscope.registry._REGISTRIES.pop("test stamped")
    assert shapes.names() == ["line", "square"] == list(shapes) and len(shapes) == 2
    assert "square" in shapes and "circle" not in shapes
    assert shapes.build("square", side=3.0).area == 9.0
    assert shapes.name_of(Square) == "square" and shapes.name_of(object()) is None
    assert registry("test shape") is shapes


def test_unknown_and_duplicate_names_are_one_error_type(shapes):
    shapes.register("square", int)
    with pytest.raises(
        RegistryError, match="unknown test shape 'circle'; known test shapes: square"
    ):
        shapes.get("circle")
    with pytest.raises(RegistryError, match="test shape 'square' is registered twice"):
        shapes.register("square", list)
    assert shapes.get("square") is int  # the refused duplicate changed nothing
    with pytest.raises(RegistryError, match=r"test shape 'square': 'nope' is an invalid keyword"):
        shapes.build("square", nope=1)
    for bad in ("", " square", 3):
        with pytest.raises(RegistryError, match="cannot name a test shape"):
            shapes.register(bad, set)  # type: ignore[arg-type]
    assert issubclass(RegistryError, ConfigError) and issubclass(RegistryError, ValueError)
    with pytest.raises(RegistryError, match="no extension point 'nothing'"):
        registry("nothing")
    with pytest.raises(RegistryError, match="exists twice"):
        Registry("test shape")
    assert shapes.unregister("square") is int and "square" not in shapes


def test_every_extension_point_is_one_registry():
    assert set(registries()) >= EXTENSION_POINTS


#: What each extension point holds, checked for every registered item.
CONTRACTS = {
    "rule": lambda item: isinstance(item, type) and issubclass(item, Rule),
    "composite": lambda item: callable(item),
    "attributor": lambda item: isinstance(item, type) and issubclass(item, Attributor),
    "visualization style": callable,
    "colour map": lambda item: isinstance(item, ColorMap),
    "processor": lambda item: callable(item),
}


@pytest.mark.parametrize(
    ("kind", "name"),
    [(kind, name) for kind in sorted(EXTENSION_POINTS) for name in registry(kind).names()],
)
def test_registered_item_conforms(kind, name):
    points = registry(kind)
    item = points.get(name)
    assert CONTRACTS[kind](item), f"{kind} {name!r} is {item!r}"
    assert points.name_of(item) == name
    if kind in ("rule", "attributor"):
        assert item.name == name
    if kind == "colour map":
        assert item.name == name
    if kind == "composite":
        try:
            built = item()
        except ConfigError:  # composites with required parameters (box bounds) say so
            return
        assert isinstance(built, Composite) and built.name == name
    if kind == "processor" and isinstance(item, type):
        assert issubclass(item, Processor)
    with pytest.raises(RegistryError, match="registered twice"):
        points.register(name, item)
    assert points.get(name) is item
