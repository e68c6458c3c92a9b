"""Named extension points: one contract for rules, composites, attributors, styles, colour
maps and processors.

Each extension point is one :class:`Registry`. ``register(name)`` adds an item (one line
per extension, usually as a decorator), ``get(name)`` returns the registered item,
``names()`` lists them, ``build(name, **params)`` calls the item. An unknown name and a
name registered twice both raise :class:`RegistryError` (a :class:`ConfigError`, so also a
``ValueError``), with a one-line message that lists what is known.

>>> shapes = Registry("shape", module=__name__)
>>> @shapes.register("square")
... def square(side=1.0):
...     return side * side
>>> shapes.build("square", side=3.0), shapes.names()
(9.0, ['square'])
>>> del _REGISTRIES["shape"]  # the doctest's registry is not a real extension point
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Generic, TypeVar, overload

from relscope.errors import RegistryError

__all__ = ["Registry", "RegistryError", "registries", "registry"]

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - the registered item's own type, kept by the decorator

_REGISTRIES: dict[str, Registry[Any]] = {}


class Registry(Generic[T]):
    """The items of one extension point, by name.

    Parameters
    ----------
    kind:
        What an item is, for messages: ``"rule"``, ``"visualization style"``.
    plural:
        The plural for messages (default ``kind + "s"``, with the last word pluralised).
    check_name:
        Called with each new name; raises :class:`RegistryError` for names the extension
        point reserves (colour maps refuse names that read as specifications).
    module:
        The module that owns the registry (shown by :func:`registries`).
    stamp:
        Registered classes get their name as this class attribute (rules and attributors
        know their ``name``).
    """

    def __init__(
        self,
        kind: str,
        *,
        plural: str | None = None,
        check_name: Callable[[str], None] | None = None,
        module: str = "",
        stamp: str | None = None,
    ) -> None:
        if kind in _REGISTRIES:
            raise RegistryError(f"the extension point {kind!r} exists twice")
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self.module = module
        self._check_name = check_name
        self._stamp = stamp
        self._items: dict[str, T] = {}
        self._names: dict[int, str] = {}
        _REGISTRIES[kind] = self

    @overload
    def register(self, name: str) -> Callable[[I], I]: ...

    @overload
    def register(self, name: str, item: I) -> I: ...

    def register(self, name: str, item: Any = None) -> Any:
        """Add ``item`` under ``name`` and return it; without ``item``, a decorator."""
        if item is None:
            return lambda obj: self.register(name, obj)
        self.check_new(name)
        if self._stamp is not None:
            setattr(item, self._stamp, name)
        self._items[name] = item
        self._names[id(item)] = name
        return item

    def check_new(self, name: str) -> None:
        """Raise :class:`RegistryError` unless ``name`` may be registered now."""
        if not isinstance(name, str) or not name or name != name.strip():
            raise RegistryError(f"{name!r} cannot name a {self.kind}")
        if self._check_name is not None:
            self._check_name(name)
        if name in self._items:
            raise RegistryError(
                f"{self.kind} {name!r} is registered twice (already registered to "
                f"{_identity(self._items[name])})"
            )

    def unregister(self, name: str) -> T | None:
        """Remove ``name`` (tests and interactive sessions); returns its item, if any."""
        item = self._items.pop(name, None)
        if item is not None:
            self._names.pop(id(item), None)
        return item

    def get(self, name: str) -> T:
        """The item registered as ``name``."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            known = ", ".join(self.names()) or "none"
            raise RegistryError(
                f"unknown {self.kind} {name!r}; known {self.plural}: {known}"
            ) from None

    def build(self, name: str, **params: Any) -> Any:
        """``get(name)(**params)``; a wrong parameter is a one-line :class:`RegistryError`."""
        factory = self.get(name)
        try:
            return factory(**params)  # type: ignore[operator]
        except TypeError as error:
            raise RegistryError(f"{self.kind} {name!r}: {error}") from None

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._items)

    def name_of(self, item: Any) -> str | None:
        """The name ``item`` is registered under, or ``None``."""
        name = self._names.get(id(item))
        return name if name is not None and self._items.get(name) is item else None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def items(self) -> list[tuple[str, T]]:
        """``(name, item)`` pairs, sorted by name."""
        return [(name, self._items[name]) for name in self.names()]

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} items)"


def registry(kind: str) -> Registry[Any]:
    """The extension point ``kind``; lets a module use one it cannot import (import order)."""
    try:
        return _REGISTRIES[kind]
    except KeyError:
        raise RegistryError(f"no extension point {kind!r} is loaded") from None


def registries() -> Mapping[str, Registry[Any]]:
    """Every extension point created so far, by kind (read-only)."""
    return MappingProxyType(_REGISTRIES)


def _identity(obj: Any) -> str:
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if name is None:
        return repr(obj)
    return f"{getattr(obj, '__module__', '?')}.{name}"
