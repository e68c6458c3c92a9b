"""The designer's configurations: JSON files in a project's ``designs/`` folder.

Each configuration is ``designs/<name>.json`` in the format of
:mod:`relscope.attribution.config` (what ``relscope attribute --method designs/x.json``
reads), written atomically; its ``name`` field is the design's name. Names are safe file
names (:data:`NAME_PATTERN`). Saving validates with
:func:`~relscope.attribution.config.method_config` (errors name the field) and, given a
session, checks segment ranges against the model's layers.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relscope._atomic import atomic_write_text
from relscope.attribution.config import MethodConfig, method_config
from relscope.errors import ConfigError, ConflictError, NotFoundError

if TYPE_CHECKING:
    from relscope.engine.designer.session import DesignSession

__all__ = ["DESIGNS_FOLDER", "NAME_PATTERN", "DesignStore", "check_name", "check_segments"]

#: The folder of a project that holds the configurations.
DESIGNS_FOLDER = "designs"
#: Design names: a letter or digit, then up to 63 letters, digits, ``_``, ``-`` or ``.``.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: Stored files larger than this are not read.
MAX_DESIGN_BYTES = 1024 * 1024


def check_name(name: object) -> str:
    """``name`` if it is a safe design name, else a :class:`ConfigError`."""
    if (
        not isinstance(name, str)
        or not NAME_PATTERN.fullmatch(name)
        or ".." in name
        or name.endswith(".")
    ):
        raise ConfigError(
            f"design name {str(name)[:80]!r}: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit (no '..')"
        )
    return name


class DesignStore:
    """The configurations of one project folder (``<folder>/designs/*.json``).

    ``session`` (optional) is the design session whose model the configurations are for:
    saving then also checks every segment range against its layers. Writes are atomic;
    ``create``, ``rename`` and ``duplicate`` refuse to replace an existing design unless
    ``overwrite=True``. One store may be used from several threads.
    """

    def __init__(
        self, project_folder: str | os.PathLike[str], *, session: DesignSession | None = None
    ) -> None:
        self.folder = Path(project_folder) / DESIGNS_FOLDER
        self.session = session
        self._lock = threading.RLock()

    def path(self, name: str) -> Path:
        """The file of design ``name`` (whether or not it exists)."""
        return self.folder / f"{check_name(name)}.json"

    def list(self) -> list[str]:
        """The names of the stored designs, sorted."""
        if not self.folder.is_dir():
            return []
        names = (path.name[: -len(".json")] for path in self.folder.glob("*.json"))
        return sorted(name for name in names if _is_name(name))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _is_name(name) and self.path(name).is_file()

    def get(self, name: str) -> MethodConfig:
        """The stored configuration ``name``."""
        path = self._existing(name)
        if path.stat().st_size > MAX_DESIGN_BYTES:
            raise ConfigError(f"design {name!r}: {path} is larger than {MAX_DESIGN_BYTES} bytes")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ConfigError(f"design {name!r}: {path} is not valid JSON ({error})") from None
        try:
            return method_config(data)
        except ConfigError as error:
            raise ConfigError(f"design {name!r}: {error}") from None

    def create(
        self, name: str, config: Mapping[str, Any] | str, *, overwrite: bool = False
    ) -> MethodConfig:
        """Store a new design ``name`` (refused if it exists, unless ``overwrite``)."""
        with self._lock:
            self._free(name, overwrite)
            return self._write(name, config)

    def save(self, name: str, config: Mapping[str, Any] | str) -> MethodConfig:
        """Store design ``name``, created or replaced."""
        with self._lock:
            return self._write(name, config)

    def rename(self, old: str, new: str, *, overwrite: bool = False) -> MethodConfig:
        """Give design ``old`` the name ``new``."""
        with self._lock:
            config = self.get(old)
            if new == old:
                return config
            self._free(new, overwrite)
            stored = self._write(new, config.to_dict(), check_layers=False)
            self.path(old).unlink()
            return stored

    def duplicate(self, name: str, new: str, *, overwrite: bool = False) -> MethodConfig:
        """Store a copy of design ``name`` as ``new``."""
        with self._lock:
            config = self.get(name)
            self._free(new, overwrite)
            return self._write(new, config.to_dict(), check_layers=False)

    def delete(self, name: str) -> None:
        """Remove design ``name``."""
        with self._lock:
            self._existing(name).unlink()

    # ---------------------------------------------------------------------------- inner
    def _existing(self, name: str) -> Path:
        path = self.path(name)
        if not path.is_file():
            raise NotFoundError(f"no design named {name!r}")
        return path

    def _free(self, name: str, overwrite: bool) -> None:
        if not overwrite and self.path(name).exists():
            raise ConflictError(f"a design named {name!r} exists already (overwrite to replace it)")

    def _write(
        self, name: str, config: Mapping[str, Any] | str, *, check_layers: bool = True
    ) -> MethodConfig:
        path = self.path(name)
        if isinstance(config, Mapping):
            config = {**config, "name": name}
        else:
            config = {"name": name, "method": config}
        validated = method_config(config)
        if check_layers and self.session is not None:
            check_segments(validated, len(self.session.layers()))
        try:
            text = json.dumps(validated.to_dict(), indent=2, allow_nan=False) + "\n"
        except (TypeError, ValueError) as error:
            raise ConfigError(f"design {name!r}: not storable as JSON ({error})") from None
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
        return validated


def check_segments(config: MethodConfig, layers: int) -> None:
    """Refuse segments that start or stop past the ``layers`` layers of the model."""
    for position, segment in enumerate(config.segments):
        where = f"attribution configuration: segments[{position}]"
        if segment.start >= layers:
            raise ConfigError(
                f"{where}: 'start' {segment.start} is past the last layer (the model has "
                f"{layers} layers, 0..{layers - 1})"
            )
        if segment.stop is not None and segment.stop > layers:
            raise ConfigError(
                f"{where}: 'stop' {segment.stop} is past the end (the model has {layers} "
                f"layers; stop may be at most {layers} or null)"
            )


def _is_name(name: str) -> bool:
    try:
        check_name(name)
    except ConfigError:
        return False
    return True
