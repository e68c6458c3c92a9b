"""Resumable writing through a directory of atomically completed part files.

HDF5 gives no guarantee about a file whose writer was killed, so long writes never append to
the final file in place. Each unit of work (a block of attribution rows, one analysis
category) is written to its own part file, which appears under its final name only after it
was written completely and fsync'd. A restarted writer trusts exactly the parts present.
The parts are merged into the final file in one atomic step at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import h5py

from relscope._atomic import atomic_path, atomic_write_text, fsync_directory
from relscope.errors import ConfigError, FormatError

__all__ = ["PartStore"]

_MANIFEST = "manifest.json"
_SUFFIX = ".h5"


class PartStore:
    """A directory ``<target>.parts`` of completed part files plus a manifest of the settings.

    Parameters
    ----------
    target:
        The final file the parts will be merged into.
    manifest:
        JSON-serializable settings of the write. A store found on disk with a different
        manifest belongs to another run and is refused rather than mixed with this one.
    """

    def __init__(self, target: str | os.PathLike[str], manifest: dict[str, Any]) -> None:
        self.target = Path(target)
        self.directory = self.target.with_name(self.target.name + ".parts")
        self.manifest = json.loads(json.dumps(manifest))
        manifest_path = self.directory / _MANIFEST
        if manifest_path.is_file():
            try:
                found = json.loads(manifest_path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise FormatError(manifest_path, "/", "a JSON manifest", "a damaged file") from None
            if found != self.manifest:
                changed = sorted(
                    key
                    for key in set(found) | set(self.manifest)
                    if found.get(key) != self.manifest.get(key)
                )
                raise ConfigError(
                    f"{self.directory}: an interrupted write with different settings "
                    f"({', '.join(changed)}) is in the way; resume it with the same settings "
                    "or delete the folder"
                )
        else:
            self.directory.mkdir(parents=True, exist_ok=True)
            atomic_write_text(manifest_path, json.dumps(self.manifest, indent=1, sort_keys=True))
            fsync_directory(self.directory.parent)

    def _path(self, key: str) -> Path:
        return self.directory / (quote(key, safe="") + _SUFFIX)

    def has(self, key: str) -> bool:
        """Whether the part ``key`` was completed."""
        return self._path(key).is_file()

    def keys(self) -> list[str]:
        """Keys of all completed parts, sorted."""
        return sorted(
            unquote(p.name[: -len(_SUFFIX)])
            for p in self.directory.glob("*" + _SUFFIX)
            if not p.name.startswith(".")
        )

    @contextlib.contextmanager
    def write(self, key: str) -> Iterator[h5py.File]:
        """Open a new part for writing; it becomes visible only if the block succeeds."""
        with atomic_path(self._path(key)) as temporary, h5py.File(temporary, "w") as handle:
            yield handle

    @contextlib.contextmanager
    def read(self, key: str) -> Iterator[h5py.File]:
        """Open a completed part for reading."""
        path = self._path(key)
        try:
            handle = h5py.File(path, "r")
        except OSError as error:
            raise FormatError(
                path, "/", "a readable part file", f"a damaged file ({error})"
            ) from None
        with handle:
            yield handle

    def remove(self) -> None:
        """Delete the store after its parts were merged."""
        shutil.rmtree(self.directory, ignore_errors=True)
