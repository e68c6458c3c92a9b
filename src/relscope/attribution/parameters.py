"""Parameters of composites, attributors and rules checked against their factory's signature.

Configuration values come from YAML, JSON or ``-p name=value``, so a wrong one would
otherwise surface deep inside a factory (``-p low=abc`` used to end in torch's "new():
invalid data type 'str'"). :func:`check_parameters` reads the factory's signature and type
annotations and refuses an unknown name (listing the known ones), a missing required one,
or a value of the wrong type (saying what was expected), each as a :class:`ParameterError`
that names the parameter and its owner.

>>> from relscope.attribution.lrp.composites import COMPOSITES
>>> check_parameters("epsilon", COMPOSITES["epsilon"], {"eps": "1e-3"})
{'eps': 0.001}
>>> try:
...     check_parameters("epsilon", COMPOSITES["epsilon"], {"eps": "abc"})
... except ParameterError as error:
...     print(error)
parameter eps of epsilon: expected a number, got 'abc'
"""

from __future__ import annotations

import collections.abc
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

import torch

from relscope.errors import ConfigError

__all__ = ["ParameterError", "check_parameters", "describe", "signature_of"]

# YAML 1.1 (PyYAML) reads "1e-3" and "2E5" as text: a dot and a signed exponent are required.
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_SEQUENCES = {tuple, list, collections.abc.Sequence, collections.abc.Iterable}
_PLURALS = {"a number": "numbers", "an integer": "integers", "a string": "strings"}


class ParameterError(ConfigError):
    """A parameter that is unknown, missing or of the wrong type, named with its owner.

    ``expected`` is ``None`` for an unknown or missing parameter; ``known`` lists the
    owner's parameters. :meth:`at` rephrases the error for where the value was given.
    """

    def __init__(
        self,
        owner: str,
        name: str,
        *,
        expected: str | None = None,
        value: Any = None,
        known: tuple[str, ...] = (),
        missing: bool = False,
        note: str = "",
    ) -> None:
        self.owner, self.name, self.expected, self.value = owner, name, expected, value
        self.known, self.missing, self.note = known, missing, note
        super().__init__(self.at(None))

    def at(self, source: str | None) -> str:
        """The message, for a value given as ``source`` (e.g. ``-p low=abc``) if known."""
        if self.missing:
            return f"{self.owner} needs the parameter {self.name} (it has no default)"
        if self.expected is None:
            known = ", ".join(self.known) or "none"
            text = f"{self.owner} has no parameter {self.name!r}; its parameters: {known}"
            text += f" ({self.note})" if self.note else ""
            return text if source is None else f"{source}: {text}"
        if source is None:
            where = f"parameter {self.name} of {self.owner}"
            return f"{where}: expected {self.expected}, got {self.value!r}"
        return (
            f"{source}: expected {self.expected} ({self.name} of {self.owner}), got {self.value!r}"
        )


def signature_of(factory: Callable[..., Any]) -> tuple[inspect.Signature, dict[str, Any]]:
    """The signature of ``factory`` (a class: its constructor) and its resolved annotations.

    When an annotation cannot be resolved none are returned: values are then not checked,
    names still are.
    """
    function = factory.__init__ if isinstance(factory, type) else factory
    signature = inspect.signature(factory)
    try:
        hints = typing.get_type_hints(function)
    except (NameError, TypeError, AttributeError):
        hints = {}  # an unresolvable annotation only disables the checks
    return signature, hints


def check_parameters(
    owner: str,
    factory: Callable[..., Any],
    params: Mapping[str, Any],
    *,
    extra: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """``params`` checked against ``factory``'s signature, number literals made numbers.

    Names the factory takes through ``**kwargs`` go to ``extra(rest, values)`` (``values``:
    the named parameters with defaults filled in), which returns them checked, or ``None``
    when it does not take them: they are unknown then, as without ``extra``. Raises
    :class:`ParameterError`.
    """
    signature, hints = signature_of(factory)
    named = {
        name: p
        for name, p in signature.parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    takes_more = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    checked: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for name, value in params.items():
        if name not in named:
            if not (takes_more and extra is not None):
                raise ParameterError(owner, name, known=tuple(named))
            rest[name] = value
            continue
        hint = hints.get(name, Any)
        value = _numbers(hint, value)
        if not _accepts(hint, value):
            raise ParameterError(owner, name, expected=describe(hint), value=value)
        checked[name] = value
    for name, p in named.items():
        if p.default is p.empty and name not in checked:
            raise ParameterError(owner, name, known=tuple(named), missing=True)
    if rest:
        values = {n: p.default for n, p in named.items() if p.default is not p.empty}
        taken = extra(rest, {**values, **checked})
        if taken is None:
            raise ParameterError(owner, next(iter(rest)), known=tuple(named))
        checked.update(taken)
    return checked


def describe(hint: Any) -> str:
    """What a value of annotation ``hint`` looks like in a configuration, in words."""
    phrases = list(dict.fromkeys(_phrases(hint)))
    if len(phrases) <= 1:
        return phrases[0] if phrases else "any value"
    return ", ".join(phrases[:-1]) + " or " + phrases[-1]


def _phrases(hint: Any) -> list[str]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return [phrase for arg in args for phrase in _phrases(arg)]
    if origin is typing.Literal:
        return [f"one of {', '.join(map(str, args))}"]
    if origin in _SEQUENCES:
        items = [a for a in args if a is not Ellipsis]
        item = describe(items[0]) if len(set(items)) == 1 else None
        return [f"a list of {_PLURALS[item]}" if item in _PLURALS else "a list"]
    if origin in (dict, collections.abc.Mapping):
        return ["a mapping"]
    if origin is collections.abc.Callable or hint is Callable:
        return ["a function"]
    simple = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}
    if hint in simple:
        return [simple[hint]]
    if hint is type(None):
        return ["null"]
    if hint is torch.Tensor:
        return ["a number", "a list of numbers"]
    if hint is Any:
        return []
    return [f"a {getattr(hint, '__name__', hint)}"]


def _accepts(hint: Any, value: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(arg, value) for arg in args)
    if origin is typing.Literal:
        return any(value == arg and type(value) is type(arg) for arg in args)
    if origin in _SEQUENCES:
        if not isinstance(value, list | tuple):
            return False
        items = [a for a in args if a is not Ellipsis]
        if origin is tuple and items and Ellipsis not in args:
            return len(value) == len(items) and all(map(_accepts, items, value))
        return not items or all(_accepts(items[0], v) for v in value)
    if origin in (dict, collections.abc.Mapping):
        return isinstance(value, Mapping)
    if origin is collections.abc.Callable or hint is Callable:
        return callable(value)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is type(None):
        return value is None
    if hint is torch.Tensor:
        return isinstance(value, torch.Tensor) or _numeric(value)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a form this check does not know (a TypeVar, a Protocol): not refused


def _numeric(value: Any) -> bool:
    """A number or a (nested) list of numbers: what ``torch.as_tensor`` makes a tensor of."""
    if isinstance(value, list | tuple):
        return all(_numeric(v) for v in value)
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numbers(hint: Any, value: Any) -> Any:
    """``value`` with number literals YAML left as text made numbers, where ``hint`` wants a
    number and no text (``-p eps=1e-3``); anything else unchanged."""
    if not _accepts(hint, 1.0) or _accepts(hint, "text"):
        return value
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    if isinstance(value, list) and any(isinstance(v, str) for v in value):
        return [_numbers(float, v) for v in value]
    return value
