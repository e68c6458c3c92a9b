"""Error and warning types shared by every layer.

Every user-facing error is a :class:`RelscopeError` whose message is one line naming what
was wrong (file, key or argument) and what was expected, so that the command line can
print it as is and exit with status 2.
"""

from __future__ import annotations

from os import PathLike

__all__ = [
    "ConfigError",
    "ConflictError",
    "FormatError",
    "NotFoundError",
    "PathError",
    "RegistryError",
    "RelscopeError",
    "RelscopeWarning",
]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class RelscopeError(Exception):
    """Base class of errors caused by user input; ``str(error)`` is a single line."""

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))


class FormatError(RelscopeError, ValueError):
    """A file does not have the layout, shape or type relscope expects.

    Parameters
    ----------
    file:
        The file that was read.
    key:
        The key inside the file (HDF5 path, YAML key, JSON position); ``"/"`` for the whole file.
    expected:
        What was expected there.
    found:
        What was found instead, if known.
    """

    def __init__(
        self,
        file: str | PathLike[str],
        key: str,
        expected: str,
        found: str | None = None,
    ) -> None:
        self.file = str(file)
        self.key = key
        self.expected = expected
        self.found = found
        message = f"{self.file}: {key}: expected {expected}"
        if found is not None:
            message += f", found {found}"
        super().__init__(message)


class PathError(RelscopeError, ValueError):
    """A referenced path is missing or lies outside the allowed roots."""


class ConfigError(RelscopeError, ValueError):
    """An argument or configuration value is invalid."""


class RegistryError(ConfigError):
    """A name is unknown to an extension point, or registered there twice."""


class NotFoundError(ConfigError, LookupError):
    """A named item (a stored design, an upload) does not exist (HTTP: 404)."""


class ConflictError(ConfigError):
    """The request conflicts with the current state: a name is taken, or a newer request
    replaced this one (HTTP: 409)."""


class RelscopeWarning(UserWarning):
    """Something was accepted but is probably not what the user meant (e.g. unknown keys)."""
