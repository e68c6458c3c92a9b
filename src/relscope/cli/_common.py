"""What every command shares: consoles, one-line errors, exit codes, and common input parsing."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
import yaml
from rich.console import Console

from relscope.errors import ConfigError, PathError, RelscopeError

P = ParamSpec("P")
R = TypeVar("R")

#: Exit status of a command given bad input (same as click's usage errors).
EXIT_BAD_INPUT = 2

console = Console(highlight=False)
error_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str) -> typer.Exit:
    """Print ``relscope: error: <message>`` on one line and return the exit to raise."""
    error_console.print(f"relscope: error: {' '.join(message.split())}", markup=False)
    return typer.Exit(EXIT_BAD_INPUT)


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn :class:`RelscopeError` raised by a command into one line and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except RelscopeError as error:
            raise fail(str(error)) from None

    return wrapper


def read_yaml_file(path: Path, what: str, kind: str = "YAML") -> Any:
    """The safely loaded YAML (or JSON) document in ``path``; one-line errors name ``what``."""
    if not path.is_file():
        raise PathError(f"{path}: no such {what}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid {kind} ({' '.join(str(error).split())})") from None


def parse_classes(text: str | Sequence[int] | None, option: str = "classes") -> list[int] | None:
    """Class indices from ``"3,7"`` (or a list); ``None``/empty: every class.

    ``option`` names the setting in error messages.
    """
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text)
    if not [p for p in parts if p != ""]:
        return None
    classes = []
    for part in parts:
        try:
            value = int(part)
        except (TypeError, ValueError):
            raise ConfigError(f"{option}: {part!r} is not a class index") from None
        if value < 0:
            raise ConfigError(f"{option}: {value} is not a class index (negative)")
        classes.append(value)
    return sorted(set(classes))
