"""Declared, typed and documented processor arguments.

A :class:`Param` is a class attribute of a :class:`Configurable` (every processor is one). It
checks the type of every value assigned to it, so that a wrong argument fails at construction
with a one-line :class:`~relscope.errors.ConfigError` instead of deep inside a computation, and
it makes the arguments introspectable: :meth:`Configurable.params` lists them and
:meth:`Configurable.get_params` returns their current values.

Examples
--------
>>> class Scale(Configurable):
...     factor = Param(float, 1.0, "Multiplier applied to the input.")
>>> Scale(factor=2).factor  # an int is accepted for a float and stored as a float
2.0
>>> sorted(Scale.params())
['factor']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from relscope.errors import ConfigError

__all__ = ["Configurable", "Param"]


def _type_names(types: tuple[type, ...]) -> str:
    return " or ".join("None" if t is type(None) else t.__name__ for t in types)


class Param:
    """A typed, documented argument with a default value.

    Parameters
    ----------
    type:
        The accepted type, or a tuple of accepted types (``type(None)`` allows ``None``).
    default:
        The value used when the argument is not given; it must have an accepted type.
    doc:
        One sentence describing the argument.

    Notes
    -----
    Values are normalized so that equal configurations compare (and hash into cache keys)
    equally: ``bool`` is refused where only numbers are accepted, an ``int`` or numpy
    number given for a ``float`` is stored as ``float``, numpy scalars become Python
    scalars, and a ``list`` given where a ``tuple`` is accepted becomes a tuple (YAML and
    JSON have no tuples).
    """

    def __init__(self, type: type | tuple[type, ...], default: Any, doc: str = "") -> None:
        self.types: tuple[type, ...] = type if isinstance(type, tuple) else (type,)
        self.doc = doc
        self.name = "?"
        self.owner = "?"
        self.default = self.check(default)

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.owner = owner.__name__

    def check(self, value: Any, owner: str | None = None) -> Any:
        """Return ``value`` normalized, or raise :class:`ConfigError` if its type is wrong."""
        types = self.types
        if isinstance(value, np.generic) and not isinstance(value, types):
            value = value.item()
        # bool is an int subclass, but True is never meant as a count or a size.
        if isinstance(value, bool) and bool not in types and object not in types:
            self._refuse(value, owner)
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and float in types
            and int not in types
        ):
            return float(value)
        if isinstance(value, list) and tuple in types and list not in types:
            return _deep_tuple(value)
        if isinstance(value, tuple) and tuple in types:
            return _deep_tuple(value)
        if not isinstance(value, types):
            self._refuse(value, owner)
        return value

    def _refuse(self, value: Any, owner: str | None) -> None:
        found = type(value).__name__
        raise ConfigError(
            f"{owner or self.owner}: parameter {self.name!r} expects "
            f"{_type_names(self.types)}, found {found} {value!r:.60}"
        )

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return instance.__dict__.get(self.name, self.default)

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.name] = self.check(value, type(instance).__name__)

    def __repr__(self) -> str:
        return f"Param({_type_names(self.types)}, {self.default!r}, {self.doc!r})"


def _deep_tuple(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_deep_tuple(item) for item in value)
    return value


class Configurable:
    """Base class of objects whose arguments are declared as :class:`Param` class attributes.

    Keyword arguments of the constructor set the params; an unknown keyword is refused.
    """

    _params: ClassVar[dict[str, Param]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        params: dict[str, Param] = {}
        # Walk from the base to the subclass so that a subclass can override (or remove,
        # by assigning a non-Param) a param of its base.
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Param):
                    params[name] = value
                elif name in params:
                    del params[name]
        cls._params = params

    def __init__(self, **params: Any) -> None:
        self.set_params(**params)

    @classmethod
    def params(cls) -> dict[str, Param]:
        """The declared params by name, base-class params first."""
        return dict(cls._params)

    def get_params(self) -> dict[str, Any]:
        """The current value of every param by name."""
        return {name: getattr(self, name) for name in self._params}

    def set_params(self, **values: Any) -> None:
        """Assign several params, refusing unknown names."""
        for name, value in values.items():
            if name not in self._params:
                known = ", ".join(self._params) or "none"
                raise ConfigError(
                    f"{type(self).__name__}: unknown parameter {name!r} (known: {known})"
                )
            setattr(self, name, value)

    def changed_params(self) -> dict[str, Any]:
        """The params whose value differs from the default."""
        return {
            name: value
            for name, value in self.get_params().items()
            if not _same(value, self._params[name].default)
        }


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, Mapping):
        return a == b
    return a is b or a == b
