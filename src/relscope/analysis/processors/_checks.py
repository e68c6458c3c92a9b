"""Parameter checks shared by the processors (one-line errors naming the processor)."""

from __future__ import annotations

from relscope.analysis.pipeline import Processor
from relscope.errors import ConfigError


def choice(processor: Processor, name: str, options: tuple[str, ...]) -> str:
    """The value of the string parameter ``name``, refused unless it is one of ``options``."""
    value = getattr(processor, name)
    if value not in options:
        raise ConfigError(
            f"{type(processor).__name__}: parameter {name!r} must be one of "
            f"{', '.join(options)}, found {value!r}"
        )
    return value


def below_samples(processor: Processor, name: str, n: int, low: int = 1) -> int:
    """The integer parameter ``name``, refused unless ``low <= value < n`` (``n``: samples)."""
    value = getattr(processor, name)
    if not low <= value < n:
        raise ConfigError(
            f"{type(processor).__name__}: {name} must be between {low} and N - 1 = {n - 1}, "
            f"found {value}"
        )
    return value
