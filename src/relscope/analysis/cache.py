"""Content-addressed storage of processor results.

A result is looked up by :func:`cache_key`: the SHA-256 of the processor's identity, version
and params (canonical JSON) and of an exact content hash of the input (:func:`content_hash`:
dtype, shape and raw bytes of every array; no rounding, no tolerance).

Supported values
----------------
numpy arrays of kind bool, signed/unsigned integer, float or complex (stored in native byte
order); numpy scalars of those kinds; Python ``bool``, ``int``, ``float``, ``str`` and
``None``; scipy.sparse matrices (read back as CSR); and tuples, lists and dicts (keys ``str``
or ``int``) nesting any of these. Other
values raise :class:`~relscope.errors.FormatError` before anything is written.

Reliability
-----------
Every entry carries a checksum over its structure and arrays and is marked complete only after
all of it was written (HDF5), or appears by an atomic rename (directory). An entry that is
damaged, partially written or fails its checksum is discarded with a
:class:`~relscope.errors.RelscopeWarning` and reported as missing, so the caller recomputes it.
Processes may share a cache: HDF5 access is serialized by ``fcntl.flock`` on a sibling lock
file (shared for reads, exclusive for writes); the directory backend writes one atomic file
per entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import warnings
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from relscope._atomic import atomic_path
from relscope.errors import ConfigError, FormatError, RelscopeWarning

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no inter-process lock available
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "MISSING",
    "DirectoryStorage",
    "HDF5Storage",
    "Storage",
    "cache_key",
    "content_hash",
    "open_storage",
]

_STORABLE_KINDS = "biufc"
_FORMAT = 1


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()
"""Returned by :meth:`Storage.load` for an absent (or discarded) entry."""


# --- hashing -----------------------------------------------------------------------------


def _update(digest: Any, data: Any) -> None:
    # Every item is prefixed by a tag and its lengths so that different structures can never
    # produce the same byte stream (e.g. (1, 2) vs [1, 2] vs a 2-element array).
    if isinstance(data, np.ndarray | np.generic):
        array = np.asarray(data)
        if array.dtype.hasobject:
            raise ConfigError(f"cannot hash an array of dtype {array.dtype} (object arrays)")
        # The canonical C-ordered copy makes equal arrays with different strides hash equally.
        raw = np.ascontiguousarray(array).tobytes()
        tag = b"G" if isinstance(data, np.generic) else b"A"
        header = f"{array.dtype.str}|{array.shape}|{len(raw)}".encode()
        digest.update(tag + len(header).to_bytes(8, "little") + header)
        digest.update(raw)
        return
    sparse = sys.modules.get("scipy.sparse")
    if sparse is not None and sparse.issparse(data):
        matrix = sparse.csr_matrix(data, copy=True)
        matrix.sum_duplicates()
        matrix.sort_indices()
        digest.update(b"S" + repr(matrix.shape).encode())
        for part in (matrix.data, matrix.indices, matrix.indptr):
            _update(digest, part)
        return
    if data is None or isinstance(data, bool | int | float | str | bytes):
        raw = data if isinstance(data, bytes) else repr(data).encode()
        tag = type(data).__name__.encode()
        digest.update(b"P" + tag + b"|" + len(raw).to_bytes(8, "little") + raw)
        return
    if isinstance(data, tuple | list):
        digest.update((b"T" if isinstance(data, tuple) else b"L") + len(data).to_bytes(8, "little"))
        for item in data:
            _update(digest, item)
        return
    if isinstance(data, dict):
        digest.update(b"D" + len(data).to_bytes(8, "little"))
        for key in sorted(data, key=repr):
            _update(digest, key)
            _update(digest, data[key])
        return
    raise ConfigError(
        f"cannot hash input of type {type(data).__name__} for the cache "
        "(expected numpy arrays, scipy.sparse matrices, scalars, str, None, tuples/lists/dicts)"
    )


def content_hash(data: Any) -> str:
    """Exact SHA-256 (hex) of ``data``: dtype, shape and bytes of every array, recursively.

    Examples
    --------
    >>> a = np.arange(6.0).reshape(2, 3)
    >>> content_hash(a) == content_hash(np.asfortranarray(a))
    True
    >>> content_hash(a) == content_hash(a.astype(np.float32))
    False
    """
    digest = hashlib.sha256()
    _update(digest, data)
    return digest.hexdigest()


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace; tuples are written as lists."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def cache_key(data: Any, config: Any) -> str:
    """Key of the result of a processor configured as ``config`` (JSON-able) on ``data``."""
    try:
        text = canonical_json(config)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"processor configuration is not JSON-serializable: {error}") from None
    digest = hashlib.sha256(b"relscope-cache-1\0" + text.encode() + b"\0")
    digest.update(content_hash(data).encode())
    return digest.hexdigest()


# --- value encoding ----------------------------------------------------------------------


def _encode(value: Any, arrays: list[np.ndarray], where: str) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        array = np.asarray(value)
        if array.dtype.kind not in _STORABLE_KINDS:
            raise _unsupported(where, f"array of dtype {array.dtype}")
        # Native byte order so that both backends read back exactly what the checksum saw.
        # (np.ascontiguousarray would turn a 0-d array into a 1-d one.)
        arrays.append(array.astype(array.dtype.newbyteorder("="), order="C"))
        kind = "scalar" if isinstance(value, np.generic) else "array"
        return {"t": kind, "i": len(arrays) - 1}
    if value is None or isinstance(value, bool | int | float | str):
        return {"t": "py", "v": value}
    sparse = sys.modules.get("scipy.sparse")
    if sparse is not None and sparse.issparse(value):
        # Kept as CSR parts (data, indices, indptr) plus the shape, and read back as a
        # csr_matrix: kNN graphs and Laplacians are sparse all the way through.
        matrix = sparse.csr_matrix(value)
        parts = [matrix.data, matrix.indices, matrix.indptr, np.asarray(matrix.shape)]
        return {"t": "csr", "items": [_encode(p, arrays, f"{where}.csr") for p in parts]}
    if isinstance(value, tuple | list):
        kind = "tuple" if isinstance(value, tuple) else "list"
        items = [_encode(item, arrays, f"{where}[{i}]") for i, item in enumerate(value)]
        return {"t": kind, "items": items}
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if isinstance(key, bool) or not isinstance(key, str | int):
                raise _unsupported(where, f"dict key of type {type(key).__name__}")
            items.append([key, _encode(item, arrays, f"{where}[{key!r}]")])
        return {"t": "dict", "items": items}
    raise _unsupported(where, type(value).__name__)


def _unsupported(where: str, found: str) -> FormatError:
    return FormatError(
        "<cache>",
        where or "/",
        "numpy arrays (bool/int/float/complex), scipy.sparse matrices, scalars, str, None, "
        "or tuples/lists/dicts of them",
        found,
    )


def _decode(node: Any, arrays: list[np.ndarray]) -> Any:
    kind = node["t"]
    if kind == "array":
        return arrays[node["i"]]
    if kind == "scalar":
        return arrays[node["i"]][()]
    if kind == "py":
        return node["v"]
    if kind == "tuple":
        return tuple(_decode(item, arrays) for item in node["items"])
    if kind == "list":
        return [_decode(item, arrays) for item in node["items"]]
    if kind == "dict":
        return {key: _decode(item, arrays) for key, item in node["items"]}
    if kind == "csr":
        from scipy.sparse import csr_matrix

        data, indices, indptr, shape = (_decode(item, arrays) for item in node["items"])
        return csr_matrix((data, indices, indptr), shape=tuple(int(n) for n in shape))
    raise ValueError(f"unknown node type {kind!r}")


def _checksum(structure: Any, arrays: list[np.ndarray]) -> str:
    digest = hashlib.sha256(canonical_json(structure).encode())
    for array in arrays:
        digest.update(content_hash(array).encode())
    return digest.hexdigest()


def _pack(value: Any) -> tuple[str, list[np.ndarray]]:
    arrays: list[np.ndarray] = []
    structure = _encode(value, arrays, "")
    header = {"format": _FORMAT, "structure": structure, "checksum": _checksum(structure, arrays)}
    return canonical_json(header), arrays


def _unpack(header_text: str, arrays: list[np.ndarray]) -> Any:
    header = json.loads(header_text)
    if header.get("format") != _FORMAT:
        raise ValueError(f"unknown entry format {header.get('format')!r}")
    if _checksum(header["structure"], arrays) != header["checksum"]:
        raise ValueError("checksum mismatch")
    return _decode(header["structure"], arrays)


# --- backends ----------------------------------------------------------------------------


class Storage(ABC):
    """A place where processor results are kept by key.

    Storages are shared, not copied, when the processors using them are deep-copied.
    """

    path: Path

    @abstractmethod
    def load(self, key: str) -> Any:
        """The value stored under ``key``, or :data:`MISSING` (absent, or damaged: discarded)."""

    @abstractmethod
    def store(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``, replacing any previous entry."""

    @abstractmethod
    def keys(self) -> list[str]:
        """The keys of the complete entries."""

    @abstractmethod
    def discard(self, key: str) -> None:
        """Remove the entry under ``key`` if present."""

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __len__(self) -> int:
        return len(self.keys())

    def __deepcopy__(self, memo: dict[int, Any]) -> Storage:
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.path == self.path  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self.path))

    def _damaged(self, key: str, reason: str) -> None:
        warnings.warn(
            f"{self.path}: cache entry {key[:16]} is damaged ({reason}); recomputing it",
            RelscopeWarning,
            stacklevel=4,
        )


_ENTRY_ERRORS = (OSError, KeyError, ValueError, TypeError, EOFError, zipfile.BadZipFile)


class HDF5Storage(Storage):
    """All entries in one HDF5 file, group ``/entries/<key>``; the default backend.

    An entry is readable only once its ``complete`` attribute is set, which happens after its
    datasets, structure and checksum were written and flushed. A file that cannot be opened at
    all (e.g. truncated by a crash) is discarded as a whole with a warning.

    Parameters
    ----------
    path:
        The HDF5 file; created with its parent directories on the first store. A lock file
        ``<path>.lock`` next to it serializes access between processes.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    @contextlib.contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as handle:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def _open(self, mode: str) -> h5py.File:
        # Our own flock already serializes access; HDF5's lock would refuse concurrent readers
        # on some file systems.
        return h5py.File(self.path, mode, locking=False)

    def _read(self, key: str) -> tuple[Any, str | None]:
        """(value or MISSING, reason the entry or file is damaged or None)."""
        if not self.path.exists():
            return MISSING, None
        try:
            handle = self._open("r")
        except OSError:
            return MISSING, "file"
        with handle:
            group = handle.get(f"entries/{key}")
            if group is None:
                return MISSING, None
            try:
                if not group.attrs.get("complete", False):
                    return MISSING, "incomplete entry"
                header = group.attrs["header"]
                names = sorted((name for name in group if name.startswith("a")), key=_index)
                arrays = [np.asarray(group[name][()]) for name in names]
                return _unpack(str(header), arrays), None
            except _ENTRY_ERRORS as error:
                return MISSING, f"{type(error).__name__}: {error}"

    def load(self, key: str) -> Any:
        with self._locked(exclusive=False):
            value, reason = self._read(key)
        if reason is None:
            return value
        with self._locked(exclusive=True):
            # Another process may have repaired it meanwhile: look again before discarding.
            value, reason = self._read(key)
            if reason is None:
                return value
            self._damaged(key, "unreadable file" if reason == "file" else reason)
            if reason == "file":
                self.path.unlink(missing_ok=True)
            else:
                with self._open("a") as handle:
                    del handle[f"entries/{key}"]
        return MISSING

    def store(self, key: str, value: Any) -> None:
        header, arrays = _pack(value)
        with self._locked(exclusive=True):
            try:
                handle = self._open("a")
            except OSError:
                self._damaged(key, "unreadable file")
                self.path.unlink(missing_ok=True)
                handle = self._open("a")
            with handle:
                entries = handle.require_group("entries")
                if key in entries:
                    del entries[key]
                group = entries.create_group(key)
                try:
                    for index, array in enumerate(arrays):
                        group.create_dataset(f"a{index}", data=array)
                    group.attrs["header"] = header
                    handle.flush()
                except BaseException:
                    # Clean up when we can; after a hard crash the missing marker does it.
                    del entries[key]
                    raise
                group.attrs["complete"] = True
                handle.flush()

    def keys(self) -> list[str]:
        if not self.path.exists():
            return []
        with self._locked(exclusive=False):
            try:
                with self._open("r") as handle:
                    entries = handle.get("entries", {})
                    return sorted(k for k in entries if entries[k].attrs.get("complete", False))
            except OSError:
                return []

    def discard(self, key: str) -> None:
        if not self.path.exists():
            return
        with self._locked(exclusive=True), self._open("a") as handle:
            if f"entries/{key}" in handle:
                del handle[f"entries/{key}"]


def _index(name: str) -> int:
    return int(name[1:])


class DirectoryStorage(Storage):
    """One ``<key>.npz`` file per entry in a directory, each written atomically.

    Parameters
    ----------
    path:
        The directory; created on the first store.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def file_of(self, key: str) -> Path:
        """The file that holds the entry under ``key``."""
        return self.path / f"{key}.npz"

    def load(self, key: str) -> Any:
        file = self.file_of(key)
        try:
            stat = file.stat()
        except FileNotFoundError:
            return MISSING
        try:
            with np.load(file, allow_pickle=False) as archive:
                header = bytes(archive["header"]).decode()
                names = sorted((n for n in archive.files if n.startswith("a")), key=_index)
                arrays = [archive[name] for name in names]
            return _unpack(header, arrays)
        except (*_ENTRY_ERRORS, UnicodeDecodeError) as error:
            self._damaged(key, f"{type(error).__name__}: {error}")
            # Only remove the file we read: another process may have replaced it meanwhile.
            with contextlib.suppress(FileNotFoundError):
                if file.stat().st_ino == stat.st_ino:
                    file.unlink()
            return MISSING

    def store(self, key: str, value: Any) -> None:
        header, arrays = _pack(value)
        self.path.mkdir(parents=True, exist_ok=True)
        payload = {f"a{index}": array for index, array in enumerate(arrays)}
        payload["header"] = np.frombuffer(header.encode(), dtype=np.uint8)
        with atomic_path(self.file_of(key)) as temporary, open(temporary, "wb") as handle:
            np.savez(handle, **payload)

    def keys(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return sorted(p.stem for p in self.path.glob("*.npz") if not p.name.startswith("."))

    def discard(self, key: str) -> None:
        self.file_of(key).unlink(missing_ok=True)


def open_storage(path: str | os.PathLike[str]) -> Storage:
    """An existing directory as :class:`DirectoryStorage`, anything else as :class:`HDF5Storage`."""
    return DirectoryStorage(path) if Path(path).is_dir() else HDF5Storage(path)
