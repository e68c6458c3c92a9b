"""What every command shares: consoles, one-line errors and exit codes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from relscope.errors import RelscopeError

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
