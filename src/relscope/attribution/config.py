"""Attribution configurations as plain data: what ``relscope attribute`` and the designer share.

A configuration is a mapping (from JSON or YAML)::

    {"method": "epsilon_plus_flat"}                         # an LRP composite by name
    {"method": "epsilon_gamma_box", "params": {"low": -2.1, "high": 2.6}}
    {"method": "smoothgrad", "params": {"n": 16, "noise": 0.1}}   # any registered attributor
    {"name": "mine", "segments": [                           # the designer's composite
        {"start": 0, "stop": 1, "rule": "zbox", "params": {"low": 0.0, "high": 1.0}},
        {"start": 1, "stop": null, "rule": "epsilon", "params": {"eps": 0.25}}]}

``method`` names a registered attributor or a registered composite (attributed with LRP; the
names both share, ``gradient``, ``guided_backprop`` and ``deconvnet``, are the attributors);
``params`` are the composite's or the attributor's parameters. ``segments`` assign one rule
to each range ``[start, stop)`` of the model's layers in execution order (``stop`` null: to
the end) and replace ``method``. ``name`` labels the configuration (default: the method).
:func:`method_config` validates a mapping; :meth:`MethodConfig.attributor` builds it.

>>> config = method_config({"method": "epsilon_plus", "params": {"eps": 0.01}})
>>> config.name, config.to_dict()
('epsilon_plus', {'name': 'epsilon_plus', 'method': 'epsilon_plus', 'params': {'eps': 0.01}})
>>> type(config.attributor()).__name__
'LRPAttributor'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from relscope.attribution.attributors import (
    ATTRIBUTORS,
    Attributor,
    get_attributor,
    list_attributors,
)
from relscope.attribution.lrp.composites import COMPOSITES, get_composite, list_composites, segments
from relscope.attribution.lrp.rules import RULES, get_rule
from relscope.attribution.parameters import ParameterError, check_parameters
from relscope.errors import ConfigError

__all__ = ["MethodConfig", "Segment", "method_config", "method_parameters"]

_KEYS = {"name", "method", "params", "segments"}
_SEGMENT_KEYS = {"start", "stop", "rule", "params"}


@dataclass(frozen=True)
class Segment:
    """One rule for the layers ``[start, stop)`` (``stop=None``: to the last layer)."""

    start: int
    stop: int | None
    rule: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MethodConfig:
    """A validated attribution configuration; see the module documentation."""

    name: str
    method: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    segments: tuple[Segment, ...] = ()

    def attributor(self) -> Attributor:
        """The configured attributor (LRP for composites and segments)."""
        if self.segments:
            composite = segments(
                (s.start, s.stop, get_rule(s.rule, **s.params)) for s in self.segments
            )
            return get_attributor("lrp", composite=composite)
        assert self.method is not None
        if self.method in list_attributors():
            return get_attributor(self.method, **self.params)
        return get_attributor("lrp", composite=self.method, **self.params)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as JSON-ready data (what :func:`method_config` reads back)."""
        out: dict[str, Any] = {"name": self.name}
        if self.segments:
            out["segments"] = [
                {"start": s.start, "stop": s.stop, "rule": s.rule, "params": dict(s.params)}
                for s in self.segments
            ]
        else:
            out["method"] = self.method
            out["params"] = dict(self.params)
        return out


def method_config(data: Mapping[str, Any] | str) -> MethodConfig:
    """Validate a configuration mapping (or a bare method name) into a :class:`MethodConfig`.

    Raises :class:`ConfigError` naming the offending key; a parameter that is unknown or of
    the wrong type for the method's signature raises its subclass
    :class:`~relscope.attribution.parameters.ParameterError`. Number literals that YAML
    reads as text (``1e-3``) become numbers. The attributor is built once to check the
    parameters' values.
    """
    if isinstance(data, str):
        data = {"method": data}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"an attribution configuration must be a mapping, got {type(data).__name__}"
        )
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(
            f"attribution configuration: unknown key(s) {', '.join(map(str, unknown))}; "
            f"valid: {', '.join(sorted(_KEYS))}"
        )
    params = data.get("params") or {}
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise ConfigError("attribution configuration: 'params' must map names to values")
    if "segments" in data:
        if "method" in data or params:
            raise ConfigError(
                "attribution configuration: give either 'segments' or 'method' (with 'params')"
            )
        parts = tuple(_segment(i, part) for i, part in enumerate(data["segments"] or []))
        if not parts:
            raise ConfigError("attribution configuration: 'segments' is empty")
        config = MethodConfig(name=_name(data, "segments"), segments=parts)
    else:
        method = data.get("method")
        known = list_composites() + list_attributors()
        if not isinstance(method, str) or method not in known:
            raise ConfigError(
                f"attribution configuration: unknown method {method!r}; composites: "
                f"{', '.join(list_composites())}; attributors: {', '.join(list_attributors())}"
            )
        params = method_parameters(method, params)
        if method not in list_attributors():
            get_composite(method, **params)  # refuse bad composite parameters now
        config = MethodConfig(name=_name(data, method), method=method, params=params)
    config.attributor()
    return config


def method_parameters(method: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` of the registered attributor or composite ``method``, checked against its
    signature (an attributor's extra keywords against its composite's, if named)."""
    if method not in ATTRIBUTORS:
        return check_parameters(method, COMPOSITES[method], params)

    def composite_parameters(rest: dict[str, Any], values: dict[str, Any]) -> dict | None:
        composite = values.get("composite")
        if composite is None:
            note = "a composite's parameters need composite=NAME"
            raise ParameterError(method, next(iter(rest)), known=tuple(values), note=note)
        if isinstance(composite, str) and composite in COMPOSITES:
            return check_parameters(composite, COMPOSITES[composite], rest)
        return rest  # a Composite object or an unknown name: the attributor refuses those

    return check_parameters(method, ATTRIBUTORS[method], params, extra=composite_parameters)


def _name(data: Mapping[str, Any], default: str) -> str:
    name = data.get("name", default)
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(
            f"attribution configuration: 'name' must be a non-empty text, got {name!r}"
        )
    return name


def _segment(position: int, part: Any) -> Segment:
    where = f"attribution configuration: segments[{position}]"
    if not isinstance(part, Mapping):
        raise ConfigError(f"{where} must be a mapping with start, stop, rule, params")
    unknown = sorted(set(part) - _SEGMENT_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}")
    start, stop, rule = part.get("start"), part.get("stop"), part.get("rule")
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise ConfigError(f"{where}: 'start' must be a layer index >= 0, got {start!r}")
    if stop is not None and (not isinstance(stop, int) or isinstance(stop, bool) or stop <= start):
        raise ConfigError(f"{where}: 'stop' must be null or an index above start, got {stop!r}")
    params = part.get("params") or {}
    if not isinstance(rule, str) or not isinstance(params, Mapping):
        raise ConfigError(f"{where}: 'rule' must be a rule name and 'params' a mapping")
    if rule in RULES:
        try:
            params = check_parameters(f"rule {rule}", RULES[rule], params)
        except ParameterError as error:
            raise ConfigError(f"{where}: {error}") from None
    try:
        get_rule(rule, **params)  # refuse unknown rules and bad parameter values now
    except (ConfigError, ValueError, TypeError) as error:
        raise ConfigError(f"{where}: {error}") from None
    return Segment(start, stop, rule, dict(params))
