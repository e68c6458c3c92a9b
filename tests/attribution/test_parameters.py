"""Parameters checked against a factory's signature: descriptions, acceptance, coercion."""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import pytest
import torch

from relscope.attribution.parameters import ParameterError, check_parameters, describe


def factory(
    rate: float,
    count: int = 1,
    flag: bool = False,
    name: str | None = None,
    bounds: float | torch.Tensor = 0.0,
    size: tuple[int, int] = (1, 1),
    sizes: Sequence[int] = (),
    mode: Literal["a", "b"] = "a",
    options: Mapping[str, Any] | None = None,
    hook: Callable[[int], int] | None = None,
    **rest: Any,
) -> None:
    """A factory with one parameter of every annotation form configurations meet."""


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("rate", "a number"),
        ("count", "an integer"),
        ("flag", "true or false"),
        ("name", "a string or null"),
        ("bounds", "a number or a list of numbers"),
        ("size", "a list of integers"),
        ("sizes", "a list of integers"),
        ("mode", "one of a, b"),
        ("options", "a mapping or null"),
        ("hook", "a function or null"),
    ],
)
def test_descriptions(name, expected):
    assert describe(typing.get_type_hints(factory)[name]) == expected


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"rate": "x"}, "rate"),
        ({"rate": True}, "rate"),
        ({"rate": 1, "count": 1.0}, "count"),
        ({"rate": 1, "flag": 1}, "flag"),
        ({"rate": 1, "bounds": [[0, 1], [2, "x"]]}, "bounds"),
        ({"rate": 1, "size": [1, 2, 3]}, "size"),
        ({"rate": 1, "sizes": "12"}, "sizes"),
        ({"rate": 1, "mode": "c"}, "mode"),
        ({"rate": 1, "options": [1]}, "options"),
    ],
)
def test_wrong_types_are_refused_naming_the_parameter(params, bad):
    with pytest.raises(ParameterError, match=f"parameter {bad} of f: expected") as caught:
        check_parameters("f", factory, params)
    assert caught.value.name == bad


def test_right_types_pass_and_number_literals_become_numbers():
    params = {
        "rate": "1e-3", "count": 2, "flag": True, "name": None, "bounds": [[0, 1.5], [2, 3]],
        "size": [2, 3], "sizes": (4,), "mode": "b", "options": {"k": 1}, "hook": abs,
    }  # fmt: skip
    checked = check_parameters("f", factory, params, extra=lambda rest, values: rest)
    assert checked == {**params, "rate": 0.001}
    # Text stays text where text is accepted; "1e3" is no integer.
    assert check_parameters("f", factory, {"rate": 1, "name": "1e3"})["name"] == "1e3"
    with pytest.raises(ParameterError, match="expected an integer"):
        check_parameters("f", factory, {"rate": 1, "count": "1e3"})


def test_unknown_missing_and_extra_parameters():
    with pytest.raises(ParameterError, match="f has no parameter 'x'; its parameters: rate, count"):
        check_parameters("f", factory, {"rate": 1, "x": 1})
    with pytest.raises(ParameterError, match="f needs the parameter rate"):
        check_parameters("f", factory, {})
    seen = {}

    def extra(rest, values):
        seen.update(rest=rest, values=values)
        return {k: v * 2 for k, v in rest.items()}

    assert check_parameters("f", factory, {"rate": 1, "x": 1}, extra=extra)["x"] == 2
    assert seen["rest"] == {"x": 1} and seen["values"]["count"] == 1
    with pytest.raises(ParameterError, match="f has no parameter 'x'"):
        check_parameters("f", factory, {"rate": 1, "x": 1}, extra=lambda rest, values: None)


def test_unresolvable_annotations_disable_the_type_checks_not_the_names():
    def partly(a: float, b: NoSuchType = None):  # noqa: F821
        """``NoSuchType`` cannot be resolved."""

    assert check_parameters("p", partly, {"a": "x", "b": "y"}) == {"a": "x", "b": "y"}
    with pytest.raises(ParameterError, match="p has no parameter 'c'; its parameters: a, b"):
        check_parameters("p", partly, {"a": 1, "c": 1})


def test_the_message_for_a_command_line_item():
    with pytest.raises(ParameterError) as caught:
        check_parameters("f", factory, {"rate": "abc"})
    assert caught.value.at("-p rate=abc") == "-p rate=abc: expected a number (rate of f), got 'abc'"
