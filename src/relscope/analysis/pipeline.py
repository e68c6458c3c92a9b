"""Processors, pipelines of named tasks, flow control and configuration (de)serialization.

Output of a pipeline
--------------------
A :class:`Pipeline` runs its tasks front to back, each on the previous task's result. If no
step anywhere in it is flagged ``is_output``, it returns the final result (the input itself
when every task is skipped). Otherwise it returns a dict keyed by task name holding the flagged
results only; a :class:`Sequential` or :class:`Parallel` task that is not itself flagged
contributes a dict keyed by child position holding its flagged children's results (nested the
same way). A flagged container contributes its own result. A nested :class:`Pipeline` is
opaque: its result is whatever it returns.

Caching
-------
A processor whose ``io`` is a :class:`~relscope.analysis.cache.Storage` looks its result up by
the key of its identity (module and qualified name), class attribute ``version``, every
declared param (except ``io`` and its own ``is_output``, which do not change the result) and
the exact content of its input. Give each step its own ``io`` (or the same storage): after one
param changes, that step's key changes, and the steps after it see a new input. ``Sequential``
and ``Parallel`` refuse ``io`` themselves; a ``Pipeline`` with ``io`` caches its return value.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, TypeVar

import yaml

from relscope.analysis.cache import MISSING, Storage, cache_key
from relscope.analysis.params import Configurable, Param
from relscope.errors import ConfigError
from relscope.registry import Registry

__all__ = [
    "PROCESSORS",
    "FunctionProcessor",
    "Parallel",
    "Pipeline",
    "Processor",
    "Sequential",
    "Shaper",
    "Task",
    "as_processor",
    "get_processor",
    "list_processors",
    "register_processor",
]

_T = TypeVar("_T")


class _Nothing:
    """Marks "no flagged output" (``None`` is a legitimate result)."""


_NOTHING = _Nothing()

#: The processor extension point: name -> processor class or function.
PROCESSORS: Registry[Any] = Registry("processor", module=__name__)


def register_processor(name: str) -> Callable[[_T], _T]:
    """Decorator registering a processor class or plain function under ``name``.

    Registered names are what :meth:`Processor.to_dict` writes and :meth:`Processor.from_dict`
    reads; a name already taken by another object is refused.

    Examples
    --------
    >>> @register_processor("doc-double")
    ... def double(data):
    ...     return 2 * data
    >>> get_processor("doc-double") is double
    True
    """

    def decorator(obj: _T) -> _T:
        if not callable(obj):
            raise ConfigError(f"cannot register {obj!r} as processor {name!r}: not callable")
        return PROCESSORS.register(name, obj)

    return decorator


def get_processor(name: str) -> Any:
    """The processor class or function registered under ``name``."""
    return PROCESSORS.get(name)


def list_processors() -> list[str]:
    """Names of all registered processors."""
    return PROCESSORS.names()


def _registered_name(obj: Any) -> str:
    name = PROCESSORS.name_of(obj)
    if name is None:
        raise ConfigError(
            f"{_identity(obj)} is not registered; add @register_processor(name) to serialize it"
        )
    return name


def _identity(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or type(obj).__module__
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)
    return f"{module}.{name}"


def _plain(value: Any) -> Any:
    """Tuples as lists, so that YAML's safe dumper and JSON accept the value."""
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


class Processor(Configurable):
    """One action of an analysis: ``function(data) -> result``.

    Subclasses declare their arguments as :class:`~relscope.analysis.params.Param` class
    attributes and implement :meth:`function`. Calling the processor runs it, through the
    cache when ``io`` is set. Bump the class attribute ``version`` when the computation changes
    so that old cache entries are no longer used.

    Examples
    --------
    >>> class Power(Processor):
    ...     exponent = Param(int, 2, "The exponent.")
    ...     def function(self, data):
    ...         return data**self.exponent
    >>> Power(exponent=3)(2)
    8
    >>> Power(exponent=3)
    Power(exponent=3)
    """

    version: ClassVar[int | str] = 0

    is_output = Param(bool, False, "Return this result from the pipeline even if intermediate.")
    io = Param((Storage, type(None)), None, "Storage caching the results; None computes always.")

    def function(self, data: Any) -> Any:
        """Compute the result of this step on ``data``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement function()")

    def __call__(self, data: Any) -> Any:
        storage = self.io
        if storage is None:
            return self.function(data)
        key = self.cache_key(data)
        value = storage.load(key)
        if value is MISSING:
            value = self.function(data)
            storage.store(key, value)
        return value

    def identity(self) -> str:
        """Module and qualified name of the code that computes the result."""
        return _identity(type(self))

    def cache_key(self, data: Any) -> str:
        """The key of this processor's result on ``data``."""
        return cache_key(data, self._key_config(with_output=False))

    def _key_config(self, with_output: bool) -> dict[str, Any]:
        params = {
            name: _plain(value)
            for name, value in self.get_params().items()
            if name != "io" and (with_output or name != "is_output")
        }
        return {"identity": self.identity(), "version": self.version, "params": params}

    def _run(self, data: Any) -> tuple[Any, Any]:
        """(result, flagged outputs or _NOTHING); containers collect their children's."""
        result = self(data)
        return result, (result if self.is_output else _NOTHING)

    # --- comparison and display -----------------------------------------------------------

    def _state(self) -> tuple[Any, ...]:
        params = {name: value for name, value in self.get_params().items() if name != "io"}
        return (type(self), params)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Processor):
            return NotImplemented
        return self._state() == other._state()

    __hash__ = None  # type: ignore[assignment]  # mutable: params can be reassigned

    def _param_repr(self) -> list[str]:
        # The processor's own params first: they say what it does; is_output/io say how.
        changed = self.changed_params()
        order = sorted(changed, key=lambda name: name in ("is_output", "io"))
        return [f"{name}={changed[name]!r}" for name in order]

    def _repr(self, indent: int) -> str:
        return f"{type(self).__name__}({', '.join(self._param_repr())})"

    def __repr__(self) -> str:
        return self._repr(0)

    # --- serialization --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain data (``io`` excluded); see :meth:`from_dict`."""
        params = {n: _plain(v) for n, v in self.get_params().items() if n != "io"}
        return {"processor": _registered_name(type(self)), "params": params}

    @classmethod
    def _from_config(cls, config: Mapping[str, Any]) -> Processor:
        _check_keys(config, {"processor", "params"})
        return cls(**_params_of(config))

    @staticmethod
    def from_dict(config: Mapping[str, Any]) -> Processor:
        """Rebuild a processor (or pipeline) from :meth:`to_dict`'s output."""
        if not isinstance(config, Mapping) or not isinstance(config.get("processor"), str):
            raise ConfigError(
                f"processor configuration: expected a mapping with a 'processor' name, "
                f"found {config!r:.60}"
            )
        target = get_processor(config["processor"])
        if isinstance(target, type) and issubclass(target, Processor):
            return target._from_config(config)
        _check_keys(config, {"processor", "params"})
        return FunctionProcessor(target, **_params_of(config))

    def to_yaml(self) -> str:
        """The configuration as YAML text (loadable with ``yaml.safe_load``)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @staticmethod
    def from_yaml(text: str) -> Processor:
        """Rebuild a processor from :meth:`to_yaml`'s output."""
        try:
            config = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError(f"pipeline YAML is not valid: {error}") from None
        return Processor.from_dict(config)


def _check_keys(config: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = set(config) - allowed
    if unknown:
        raise ConfigError(
            f"processor {config.get('processor')!r}: unknown keys {sorted(unknown)} "
            f"(allowed: {sorted(allowed)})"
        )


def _params_of(config: Mapping[str, Any]) -> dict[str, Any]:
    params = config.get("params") or {}
    if not isinstance(params, Mapping):
        raise ConfigError(f"processor {config['processor']!r}: 'params' must be a mapping")
    return dict(params)


class FunctionProcessor(Processor):
    """A plain callable used as a processor; its identity is the callable's module and name.

    Parameters
    ----------
    function:
        Called with the data; must be deterministic for caching to be meaningful (lambdas
        and closures share identities, so give them no ``io``).
    **params:
        ``is_output`` and ``io``.
    """

    def __init__(self, function: Callable[[Any], Any], **params: Any) -> None:
        if not callable(function):
            raise ConfigError(f"FunctionProcessor: expected a callable, found {function!r:.60}")
        super().__init__(**params)
        self.callable = function

    def function(self, data: Any) -> Any:
        return self.callable(data)

    def identity(self) -> str:
        return _identity(self.callable)

    def _state(self) -> tuple[Any, ...]:
        return (*super()._state(), self.callable)

    def _repr(self, indent: int) -> str:
        name = getattr(self.callable, "__qualname__", None) or repr(self.callable)
        return f"FunctionProcessor({', '.join([name, *self._param_repr()])})"

    def to_dict(self) -> dict[str, Any]:
        params = {n: v for n, v in self.get_params().items() if n != "io"}
        return {"processor": _registered_name(self.callable), "params": params}


def as_processor(obj: Any) -> Processor:
    """``obj`` itself if it is a processor, a :class:`FunctionProcessor` if it is callable."""
    if isinstance(obj, Processor):
        return obj
    if isinstance(obj, type) and issubclass(obj, Processor):
        raise ConfigError(f"expected a processor instance, found the class {obj.__name__}")
    if callable(obj):
        return FunctionProcessor(obj)
    raise ConfigError(f"expected a processor or a callable, found {type(obj).__name__}")


def _indent(level: int) -> str:
    return "    " * level


class _Container(Processor):
    """A processor made of an ordered list of child processors."""

    io = Param(type(None), None, "Not supported on a container: give its children storage.")

    def __init__(self, children: Iterable[Any], **params: Any) -> None:
        super().__init__(**params)
        if isinstance(children, Processor) or callable(children):
            raise ConfigError(f"{type(self).__name__}: expected a list of processors")
        self.children: list[Processor] = [as_processor(child) for child in children]

    def _state(self) -> tuple[Any, ...]:
        return (*super()._state(), tuple(self.children))

    def _key_config(self, with_output: bool) -> dict[str, Any]:
        config = super()._key_config(with_output)
        config["children"] = [child._key_config(with_output=True) for child in self.children]
        return config

    def function(self, data: Any) -> Any:
        return self._run(data)[0]

    def _collect(self, result: Any, collected: dict[int, Any]) -> tuple[Any, Any]:
        if self.is_output:
            return result, result
        return result, (collected if collected else _NOTHING)

    def _repr(self, indent: int) -> str:
        inner = "".join(
            f"{_indent(indent + 1)}{child._repr(indent + 1)},\n" for child in self.children
        )
        items = f"[\n{inner}{_indent(indent)}]" if self.children else "[]"
        return f"{type(self).__name__}({', '.join([items, *self._param_repr()])})"

    def to_dict(self) -> dict[str, Any]:
        config = super().to_dict()
        config["children"] = [child.to_dict() for child in self.children]
        return config

    @classmethod
    def _from_config(cls, config: Mapping[str, Any]) -> Processor:
        _check_keys(config, {"processor", "params", "children"})
        children = config.get("children") or []
        if not isinstance(children, list):
            raise ConfigError(f"processor {config['processor']!r}: 'children' must be a list")
        return cls([Processor.from_dict(child) for child in children], **_params_of(config))


@register_processor("sequential")
class Sequential(_Container):
    """Several steps in one task: each child runs on the previous child's result.

    Examples
    --------
    >>> Sequential([lambda x: x + 1, lambda x: 2 * x])(3)
    8
    """

    def _run(self, data: Any) -> tuple[Any, Any]:
        collected: dict[int, Any] = {}
        for index, child in enumerate(self.children):
            data, output = child._run(data)
            if output is not _NOTHING:
                collected[index] = output
        return self._collect(data, collected)


@register_processor("parallel")
class Parallel(_Container):
    """Children side by side; the result is the tuple of their results.

    Examples
    --------
    >>> Parallel([abs, str])(-2)
    (2, '-2')
    >>> Parallel([abs, str], broadcast=False)((-2, 3))
    (2, '3')
    """

    broadcast = Param(
        bool, True, "Give every child the same input (True) or zip children with a tuple/list."
    )

    def _run(self, data: Any) -> tuple[Any, Any]:
        count = len(self.children)
        if self.broadcast:
            inputs: Any = [data] * count
        elif not isinstance(data, tuple | list) or len(data) != count:
            found = f"{type(data).__name__} of length {len(data)}" if _sized(data) else data
            raise ConfigError(
                f"Parallel(broadcast=False): expected a tuple or list of {count} inputs, "
                f"found {found!r:.60}"
            )
        else:
            inputs = data
        results: list[Any] = []
        collected: dict[int, Any] = {}
        for index, (child, item) in enumerate(zip(self.children, inputs, strict=True)):
            result, output = child._run(item)
            results.append(result)
            if output is not _NOTHING:
                collected[index] = output
        return self._collect(tuple(results), collected)


def _sized(data: Any) -> bool:
    return isinstance(data, tuple | list)


@register_processor("shaper")
class Shaper(Processor):
    """Pick and rearrange elements of nested results.

    ``spec`` is an ``int`` (an index), a ``str`` (a path of indices and dict keys separated by
    ``/``, e.g. ``"1/labels"``) or a tuple of specs (a tuple of their picks, nested freely).

    Examples
    --------
    >>> Shaper((1, 0))(("a", "b"))
    ('b', 'a')
    >>> Shaper(("0/x", 1))(({"x": 5}, 6))
    (5, 6)
    """

    spec = Param((int, str, tuple), (), "Index, '/'-separated path, or tuple of specs.")

    def __init__(self, spec: int | str | tuple[Any, ...], **params: Any) -> None:
        super().__init__(spec=spec, **params)
        self._validate(self.spec)

    def _validate(self, spec: Any) -> None:
        if isinstance(spec, tuple):
            for item in spec:
                self._validate(item)
        elif isinstance(spec, bool) or not isinstance(spec, int | str):
            raise ConfigError(f"Shaper: spec items must be int, str or tuples, found {spec!r}")

    def function(self, data: Any) -> Any:
        return self._pick(data, self.spec)

    def _pick(self, data: Any, spec: Any) -> Any:
        if isinstance(spec, tuple):
            return tuple(self._pick(data, item) for item in spec)
        if isinstance(spec, int):
            return self._step(data, spec)
        for segment in spec.split("/"):
            data = self._step(data, segment)
        return data

    @staticmethod
    def _step(data: Any, key: int | str) -> Any:
        try:
            if isinstance(data, Mapping):
                if key not in data and isinstance(key, str) and key.lstrip("-").isdigit():
                    key = int(key)
                return data[key]
            return data[int(key)]
        except (KeyError, IndexError, ValueError, TypeError):
            raise ConfigError(
                f"Shaper: cannot pick {key!r} from {type(data).__name__} "
                f"of length {len(data) if hasattr(data, '__len__') else '?'}"
            ) from None


class Task:
    """A named step of a :class:`Pipeline`, declared as a class attribute.

    Parameters
    ----------
    default:
        The processor (or callable) used unless the pipeline is built with another; ``None``
        makes the step a no-op until one is given.
    allowed:
        A processor type (or tuple of types) a replacement must be an instance of.
    doc:
        One sentence describing the step.
    """

    def __init__(
        self,
        default: Any = None,
        allowed: type | tuple[type, ...] | None = None,
        doc: str = "",
    ) -> None:
        self.default = default
        self.allowed = allowed
        self.doc = doc
        self.name = "?"

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def check(self, owner: str, value: Any) -> Processor | None:
        """``value`` as a processor allowed for this task, or :class:`ConfigError`."""
        if value is None:
            return None
        processor = as_processor(value)
        if self.allowed is not None and not isinstance(processor, self.allowed):
            allowed = self.allowed if isinstance(self.allowed, tuple) else (self.allowed,)
            raise ConfigError(
                f"{owner}: task {self.name!r} expects "
                f"{' or '.join(t.__name__ for t in allowed)}, found {type(processor).__name__}"
            )
        return processor

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return instance._tasks[self.name]

    def __set__(self, instance: Any, value: Any) -> None:
        instance._tasks[self.name] = self.check(type(instance).__name__, value)

    def __repr__(self) -> str:
        return f"Task({self.default!r}, allowed={self.allowed!r}, doc={self.doc!r})"


class Pipeline(Processor):
    """A processor made of named :class:`Task` steps run front to back.

    Tasks are replaced at construction by keyword, alongside the params (``is_output``,
    ``io``). The return value is described in the module documentation.

    Examples
    --------
    >>> class Demo(Pipeline):
    ...     first = Task(abs, doc="Make it positive.")
    ...     second = Task(lambda x: x + 1, doc="Add one.")
    >>> Demo()(-3)
    4
    >>> Demo(second=FunctionProcessor(str, is_output=True))(-3)
    {'second': '3'}
    """

    _tasks_declared: ClassVar[dict[str, Task]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        tasks: dict[str, Task] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Task):
                    tasks[name] = value
        clash = set(tasks) & set(cls._params)
        if clash:
            raise ConfigError(f"{cls.__name__}: tasks {sorted(clash)} clash with params")
        for task in tasks.values():
            task.check(cls.__name__, task.default)
        cls._tasks_declared = tasks

    def __init__(self, **kwargs: Any) -> None:
        params = {name: value for name, value in kwargs.items() if name not in self._tasks_declared}
        unknown = set(params) - set(self._params)
        if unknown:
            raise ConfigError(
                f"{type(self).__name__}: unknown tasks or params {sorted(unknown)} (tasks: "
                f"{', '.join(self._tasks_declared) or 'none'}; params: {', '.join(self._params)})"
            )
        super().__init__(**params)
        self._tasks: dict[str, Processor | None] = {}
        for name, task in self._tasks_declared.items():
            # Defaults are copied so that reconfiguring one pipeline never changes another.
            value = kwargs[name] if name in kwargs else copy.deepcopy(task.default)
            self._tasks[name] = task.check(type(self).__name__, value)

    @classmethod
    def declared_tasks(cls) -> dict[str, Task]:
        """The declared tasks by name, in execution order."""
        return dict(cls._tasks_declared)

    def tasks(self) -> dict[str, Processor | None]:
        """The processor of every task (``None``: skipped), in execution order."""
        return dict(self._tasks)

    def function(self, data: Any) -> Any:
        collected: dict[str, Any] = {}
        for name, processor in self._tasks.items():
            if processor is None:
                continue
            data, output = processor._run(data)
            if output is not _NOTHING:
                collected[name] = output
        return collected if collected else data

    def _state(self) -> tuple[Any, ...]:
        return (*super()._state(), tuple(self._tasks.items()))

    def _key_config(self, with_output: bool) -> dict[str, Any]:
        config = super()._key_config(with_output)
        config["tasks"] = {
            name: None if processor is None else processor._key_config(with_output=True)
            for name, processor in self._tasks.items()
        }
        return config

    def _repr(self, indent: int) -> str:
        lines = [
            f"{_indent(indent + 1)}{name}="
            f"{'None' if processor is None else processor._repr(indent + 1)},\n"
            for name, processor in self._tasks.items()
        ]
        lines += [f"{_indent(indent + 1)}{item},\n" for item in self._param_repr()]
        body = "".join(lines)
        name = type(self).__name__
        return f"{name}(\n{body}{_indent(indent)})" if body else f"{name}()"

    def to_dict(self) -> dict[str, Any]:
        config = super().to_dict()
        config["tasks"] = {
            name: None if processor is None else processor.to_dict()
            for name, processor in self._tasks.items()
        }
        return config

    @classmethod
    def _from_config(cls, config: Mapping[str, Any]) -> Processor:
        _check_keys(config, {"processor", "params", "tasks"})
        tasks = config.get("tasks") or {}
        if not isinstance(tasks, Mapping):
            raise ConfigError(f"processor {config['processor']!r}: 'tasks' must be a mapping")
        unknown = set(tasks) - set(cls._tasks_declared)
        if unknown:
            raise ConfigError(
                f"{cls.__name__}: unknown tasks {sorted(unknown)} "
                f"(declared: {', '.join(cls._tasks_declared) or 'none'})"
            )
        built = {
            name: None if value is None else Processor.from_dict(value)
            for name, value in tasks.items()
        }
        return cls(**built, **_params_of(config))
