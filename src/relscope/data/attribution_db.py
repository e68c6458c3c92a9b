"""Attribution databases: streamed, compressed, sharded and resumable.

Layout (readable by ViRelAy's viewer)::

    index        int64 (N,)            sample positions in the dataset
    attribution  float32 (N, C, H, W)  or a group attribution/<id> of per-sample arrays
    label        int64 (N,) or bool (N, K)
    prediction   float32 (N, classes)  model outputs

plus file attributes: ``format``, ``relscope_version``, ``method`` (JSON of the
attribution configuration), ``model``, ``created``, ``rows_complete``.

Writing goes through :class:`AttributionWriter`, which streams rows into blocks
("segments"). A segment becomes durable as an atomically completed part file; the final
file appears, complete, in one rename when the last segment is done. A killed run restarted
with the same settings continues with the first missing segment and produces exactly the
file an uninterrupted run produces.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from relscope._atomic import atomic_path, atomic_write_text
from relscope._version import __version__
from relscope.data._h5 import closed_on_error, describe, open_h5, read_rows, reading, require_array
from relscope.data._parts import PartStore
from relscope.errors import ConfigError, FormatError

__all__ = [
    "AttributionDatabase",
    "AttributionRecord",
    "AttributionSet",
    "AttributionWriter",
    "shard_indices",
    "write_attribution_groups",
]

FORMAT_NAME = "relscope-attribution"
_SEGMENT_BYTES = 32 * 1024 * 1024  # parts of ~32 MiB: little lost on a kill, few files
_CHUNK_BYTES = 64 * 1024  # one row per chunk from 3x64x64 up: a random read inflates one row


@dataclass(frozen=True)
class AttributionRecord:
    """The attribution of one sample with its label and the model's output."""

    index: int
    attribution: np.ndarray
    label: int | np.ndarray
    prediction: np.ndarray


def shard_indices(index: Sequence[int] | np.ndarray, num_shards: int, shard: int) -> np.ndarray:
    """The contiguous part ``shard`` (0-based) of ``index`` split into ``num_shards`` shards."""
    if num_shards < 1 or not 0 <= shard < num_shards:
        raise ConfigError(f"shard must satisfy 0 <= shard < num_shards, got {shard}/{num_shards}")
    return np.array_split(np.asarray(index, dtype=np.int64), num_shards)[shard]


def _as_index(index: Sequence[int] | np.ndarray) -> np.ndarray:
    array = np.asarray(index)
    if array.ndim != 1 or array.size == 0:
        raise ConfigError(f"index must be a non-empty 1-D sequence, got shape {array.shape}")
    if array.dtype.kind not in "iu":
        raise ConfigError(f"index must hold integers, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if array.min() < 0:
        raise ConfigError("index must hold non-negative sample indices")
    if np.unique(array).size != array.size:
        raise ConfigError("index holds duplicate sample indices")
    return array


def _rows_for(row_bytes: int, budget: int) -> int:
    return max(1, budget // max(row_bytes, 1))


class AttributionWriter:
    """Stream attributions into an attribution database, resumably.

    Parameters
    ----------
    path:
        The final ``.h5`` file. It appears only when every row was written.
    index:
        Sample indices (dataset positions) in the order their rows are written.
    shape:
        Shape of one attribution, e.g. ``(3, 224, 224)``.
    num_outputs:
        Number of model outputs stored per row in ``prediction``.
    num_labels:
        ``None`` for single-label integer labels, else the number of classes of boolean
        multi-label rows.
    method:
        JSON-serializable attribution configuration, stored as the ``method`` attribute.
    model:
        Name of the model, stored as the ``model`` attribute.
    segment_rows:
        Rows per durable segment (default: about 32 MiB of attributions).
    compression:
        ``"gzip"`` (default), ``"lzf"`` or ``None`` for the final file.
    overwrite:
        Replace an existing final file instead of refusing.

    Examples
    --------
    >>> with AttributionWriter(path, index, shape=(1, 28, 28), num_outputs=10) as writer:
    ...     for batch in batches_of(writer.pending_index()):   # doctest: +SKIP
    ...         writer.add(attribution, label, prediction)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        index: Sequence[int] | np.ndarray,
        *,
        shape: Sequence[int],
        num_outputs: int,
        num_labels: int | None = None,
        method: Mapping[str, Any] | None = None,
        model: str = "",
        segment_rows: int | None = None,
        compression: str | None = "gzip",
        overwrite: bool = False,
        created: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.index = _as_index(index)
        self.shape = tuple(int(s) for s in shape)
        if not self.shape or min(self.shape) < 1:
            raise ConfigError(f"shape must be positive dimensions, got {tuple(shape)}")
        if num_outputs < 1:
            raise ConfigError(f"num_outputs must be >= 1, got {num_outputs}")
        if num_labels is not None and num_labels < 1:
            raise ConfigError(f"num_labels must be None or >= 1, got {num_labels}")
        if compression not in ("gzip", "lzf", None):
            raise ConfigError(f"compression must be 'gzip', 'lzf' or None, got {compression!r}")
        try:
            method_json = json.dumps(dict(method or {}), sort_keys=True)
        except TypeError as error:
            raise ConfigError(f"method must be JSON-serializable: {error}") from None
        if self.path.exists() and not overwrite:
            raise ConfigError(f"{self.path} exists; pass overwrite=True to replace it")
        self.num_outputs = int(num_outputs)
        self.num_labels = num_labels
        self.compression = compression
        row_bytes = 4 * math.prod(self.shape)
        self.segment_rows = int(segment_rows or _rows_for(row_bytes, _SEGMENT_BYTES))
        if self.segment_rows < 1:
            raise ConfigError(f"segment_rows must be >= 1, got {segment_rows}")
        self.num_segments = math.ceil(len(self.index) / self.segment_rows)
        manifest = {
            "format": FORMAT_NAME,
            "index_sha256": hashlib.sha256(self.index.tobytes()).hexdigest(),
            "rows": len(self.index),
            "shape": list(self.shape),
            "num_outputs": self.num_outputs,
            "num_labels": self.num_labels,
            "method": method_json,
            "model": model,
            "segment_rows": self.segment_rows,
            "compression": compression,
        }
        self._store = PartStore(self.path, manifest)
        created_file = self._store.directory / "created"
        if not created_file.is_file():
            atomic_write_text(created_file, created or datetime.now(UTC).isoformat())
        self.attrs: dict[str, Any] = {
            "format": FORMAT_NAME,
            "relscope_version": __version__,
            "method": method_json,
            "model": model,
            "created": created_file.read_text(encoding="utf-8"),
        }
        completed = self._store.keys()
        self._done = {int(k) for k in completed}
        self._pending_segments = [s for s in range(self.num_segments) if s not in self._done]
        self._buffer: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._buffered = 0
        self._closed = False

    # ----------------------------------------------------------------------------- progress
    def _segment_slice(self, segment: int) -> slice:
        start = segment * self.segment_rows
        return slice(start, min(start + self.segment_rows, len(self.index)))

    @property
    def rows_complete(self) -> int:
        """Rows already durable in completed segments."""
        return sum(self._segment_slice(s).stop - self._segment_slice(s).start for s in self._done)

    def pending_index(self) -> np.ndarray:
        """Sample indices still to attribute, in the order :meth:`add` expects them."""
        if not self._pending_segments:
            return np.empty(0, dtype=np.int64)
        return np.concatenate([self.index[self._segment_slice(s)] for s in self._pending_segments])

    # ------------------------------------------------------------------------------ writing
    def _check_rows(self, attribution, label, prediction) -> tuple[np.ndarray, ...]:
        attribution = np.asarray(attribution, dtype=np.float32)
        rows = attribution.shape[0] if attribution.ndim else 0
        if attribution.shape[1:] != self.shape:
            raise ConfigError(
                f"attribution rows must have shape (B, {', '.join(map(str, self.shape))}), "
                f"got {attribution.shape}"
            )
        label = np.asarray(label)
        if self.num_labels is None:
            if label.shape != (rows,) or label.dtype.kind not in "iu":
                raise ConfigError(f"label must be {rows} integers, got {label.dtype} {label.shape}")
            label = label.astype(np.int64)
        else:
            if label.shape != (rows, self.num_labels) or label.dtype.kind not in "bi":
                raise ConfigError(
                    f"label must be ({rows}, {self.num_labels}) booleans, got {label.shape}"
                )
            label = label.astype(bool)
        prediction = np.asarray(prediction, dtype=np.float32)
        if prediction.shape != (rows, self.num_outputs):
            raise ConfigError(
                f"prediction must have shape ({rows}, {self.num_outputs}), got {prediction.shape}"
            )
        for name, array in (("attribution", attribution), ("prediction", prediction)):
            bad = ~np.isfinite(array.reshape(rows, -1)).all(axis=1)
            if bad.any():
                raise ConfigError(f"{name} holds NaN or inf in {int(bad.sum())} of {rows} rows")
        return attribution, label, prediction

    def add(self, attribution: Any, label: Any, prediction: Any) -> None:
        """Append rows for the next samples of :meth:`pending_index` (any batch size)."""
        if self._closed:
            raise ConfigError(f"{self.path}: the writer is closed")
        rows = self._check_rows(attribution, label, prediction)
        remaining = sum(
            self._segment_slice(s).stop - self._segment_slice(s).start
            for s in self._pending_segments
        )
        if self._buffered + len(rows[0]) > remaining:
            raise ConfigError(
                f"{self.path}: {self._buffered + len(rows[0])} rows given, only {remaining} pending"
            )
        self._buffer.append(rows)
        self._buffered += len(rows[0])
        self._flush_full_segments()

    def _flush_full_segments(self) -> None:
        while self._pending_segments:
            segment = self._pending_segments[0]
            part = self._segment_slice(segment)
            need = part.stop - part.start
            if self._buffered < need:
                return
            merged = [np.concatenate(column) for column in zip(*self._buffer, strict=True)]
            with self._store.write(f"{segment:08d}") as handle:
                handle["attribution"] = merged[0][:need]
                handle["label"] = merged[1][:need]
                handle["prediction"] = merged[2][:need]
            self._done.add(segment)
            self._pending_segments.pop(0)
            rest = [column[need:] for column in merged]
            self._buffer = [tuple(rest)] if len(rest[0]) else []
            self._buffered = len(rest[0])

    def close(self) -> Path:
        """Merge the completed segments into the final file (atomically) and return its path."""
        if self._closed:
            return self.path
        if self._pending_segments:
            raise ConfigError(
                f"{self.path}: {len(self.pending_index())} of {len(self.index)} rows are missing; "
                "the completed rows are kept for a resumed run"
            )
        self._merge()
        self._store.remove()
        self._closed = True
        return self.path

    def _merge(self) -> None:
        n = len(self.index)
        chunk_rows = min(n, _rows_for(4 * math.prod(self.shape), _CHUNK_BYTES))
        options: dict[str, Any] = {"compression": self.compression}
        if self.compression == "gzip":
            # Level 1: the ratio of level 4 on heatmaps at ~1.4x the speed (benchmarks/data_io.py).
            options["compression_opts"] = 1
        with (
            atomic_path(self.path) as temporary,
            h5py.File(temporary, "w", track_order=True) as out,
        ):
            out.create_dataset("index", data=self.index)
            attribution = out.create_dataset(
                "attribution",
                shape=(n, *self.shape),
                dtype=np.float32,
                chunks=(chunk_rows, *self.shape),
                shuffle=self.compression is not None,
                **options,
            )
            label_shape = (n,) if self.num_labels is None else (n, self.num_labels)
            label_dtype = np.int64 if self.num_labels is None else bool
            label = out.create_dataset("label", shape=label_shape, dtype=label_dtype)
            prediction = out.create_dataset(
                "prediction", shape=(n, self.num_outputs), dtype=np.float32, **options
            )
            for segment in range(self.num_segments):
                part = self._segment_slice(segment)
                with self._store.read(f"{segment:08d}") as handle:
                    attribution[part] = handle["attribution"][()]
                    label[part] = handle["label"][()]
                    prediction[part] = handle["prediction"][()]
            for key, value in self.attrs.items():
                out.attrs[key] = value
            out.attrs["rows_complete"] = n

    def __enter__(self) -> AttributionWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # On an error the completed segments stay on disk for a resumed run.
        if exc_type is None:
            self.close()


def write_attribution_groups(
    path: str | os.PathLike[str],
    attributions: Mapping[str, np.ndarray],
    labels: Mapping[str, int | np.ndarray],
    predictions: Mapping[str, np.ndarray],
    index: Mapping[str, int],
    *,
    method: Mapping[str, Any] | None = None,
    model: str = "",
) -> Path:
    """Write varying-size attributions as per-id groups (small sets; written atomically)."""
    ids = list(attributions)
    for name, mapping in (("labels", labels), ("predictions", predictions), ("index", index)):
        if set(mapping) != set(ids):
            raise ConfigError(f"{name} must have exactly the ids of attributions")
    if not ids:
        raise ConfigError("attributions must not be empty")
    for key in ids:
        if "/" in key or key in ("", "."):
            raise ConfigError(f"invalid id {key!r}: ids are non-empty and contain no '/'")
        if not np.isfinite(np.asarray(attributions[key], dtype=np.float32)).all():
            raise ConfigError(f"attribution {key!r} holds NaN or inf")
    _as_index([index[key] for key in ids])
    path = Path(path)
    with atomic_path(path) as temporary, h5py.File(temporary, "w") as out:
        out.create_dataset("index", data=np.asarray([index[k] for k in ids], dtype=np.int64))
        for group_name, mapping, dtype in (
            ("attribution", attributions, np.float32),
            ("prediction", predictions, np.float32),
        ):
            group = out.create_group(group_name)
            for key in ids:
                group.create_dataset(key, data=np.asarray(mapping[key], dtype=dtype))
        label_group = out.create_group("label")
        for key in ids:
            value = np.asarray(labels[key])
            label_group.create_dataset(
                key, data=value if value.dtype == bool else value.astype(np.int64)
            )
        out.attrs.update(
            {
                "format": FORMAT_NAME,
                "relscope_version": __version__,
                "method": json.dumps(dict(method or {}), sort_keys=True),
                "model": model,
                "created": datetime.now(UTC).isoformat(),
                "rows_complete": len(ids),
            }
        )
    return path


# ------------------------------------------------------------------------------------ reading
@dataclass
class _Column:
    """One of attribution/label/prediction: a dataset with rows, or a group of per-id entries."""

    name: str
    node: h5py.Dataset | h5py.Group
    ids: list[str] | None = field(default=None)

    def __len__(self) -> int:
        return len(self.ids) if self.ids is not None else int(self.node.shape[0])

    def row(self, position: int) -> np.ndarray:
        if self.ids is not None:
            return self.node[self.ids[position]][()]
        return self.node[position]

    def rows(self, positions: np.ndarray) -> list[np.ndarray] | np.ndarray:
        if self.ids is not None:
            return [self.node[self.ids[p]][()] for p in positions]
        return read_rows(self.node, positions)


class AttributionDatabase:
    """Read and validate one attribution database (a context manager).

    Opening checks the layout cheaply (keys, ranks, dtypes, row counts, unique index);
    rows are read lazily.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file = open_h5(self.path)
        with closed_on_error(self._file):
            self._validate()

    def _column(self, key: str, kinds: str, ndim: tuple[int, ...]) -> _Column:
        file = self._file
        if key not in file:
            raise FormatError(
                self.path, f"/{key}", "a dataset or a group of per-id datasets", "nothing"
            )
        with reading(self.path, f"/{key}"):
            node = file[key]
        if isinstance(node, h5py.Group):
            ids = list(node.keys())
            if not ids:
                raise FormatError(self.path, f"/{key}", "a non-empty group", "an empty group")
            for item in ids[:1]:
                require_array(node, item, kinds=kinds, ndim=tuple(d - 1 for d in ndim))
            return _Column(key, node, ids)
        if not isinstance(node, h5py.Dataset):
            raise FormatError(self.path, f"/{key}", "a dataset or a group", describe(node))
        require_array(file, key, kinds=kinds, ndim=ndim)
        return _Column(key, node)

    def _validate(self) -> None:
        self.attribution = self._column("attribution", "fiu", (2, 3, 4, 5))
        n = len(self.attribution)
        self.label = self._column("label", "iub", (1, 2))
        self.prediction = self._column("prediction", "fiu", (2,))
        for column in (self.label, self.prediction):
            if len(column) != n:
                raise FormatError(self.path, f"/{column.name}", f"{n} rows", f"{len(column)} rows")
        if self.attribution.ids is not None and self.label.ids != self.attribution.ids:
            raise FormatError(self.path, "/label", "the same ids as /attribution", "other ids")
        self.multi_label = (
            self.label.node.dtype == bool
            if self.label.ids is None
            else (self.label.node[self.label.ids[0]].dtype == bool)
        )
        if self.label.ids is None and self.multi_label != (self.label.node.ndim == 2):
            raise FormatError(
                self.path,
                "/label",
                "N integers or an N x K boolean array",
                describe(self.label.node),
            )
        if "index" in self._file:
            dataset = require_array(self._file, "index", kinds="iu", shape=(n,))
            with reading(self.path, "/index"):
                index = dataset[()].astype(np.int64)
            if index.size and index.min() < 0:
                raise FormatError(self.path, "/index", "non-negative sample indices", "negatives")
            if np.unique(index).size != index.size:
                raise FormatError(self.path, "/index", "unique sample indices", "duplicates")
        else:
            index = np.arange(n, dtype=np.int64)
        self.indices = index
        self._position = {int(v): p for p, v in enumerate(index)}
        self.metadata = self._read_metadata()

    def _read_metadata(self) -> dict[str, Any]:
        attrs = self._file.attrs
        metadata: dict[str, Any] = {}
        for key in ("format", "relscope_version", "model", "created"):
            if key in attrs:
                value = attrs[key]
                metadata[key] = value.decode() if isinstance(value, bytes) else str(value)
        if "method" in attrs:
            try:
                metadata["method"] = json.loads(attrs["method"])
            except (TypeError, json.JSONDecodeError):
                raise FormatError(
                    self.path, "/@method", "a JSON string", "unparsable text"
                ) from None
        if "rows_complete" in attrs and int(attrs["rows_complete"]) != len(self.indices):
            raise FormatError(
                self.path,
                "/@rows_complete",
                f"{len(self.indices)} (all rows)",
                str(attrs["rows_complete"]),
            )
        return metadata

    # ------------------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.indices)

    def __contains__(self, sample_index: object) -> bool:
        return isinstance(sample_index, int | np.integer) and int(sample_index) in self._position

    @property
    def shape(self) -> tuple[int, ...] | None:
        """Shape of one attribution, or ``None`` for per-id groups of varying size."""
        return None if self.attribution.ids is not None else tuple(self.attribution.node.shape[1:])

    def position(self, sample_index: int) -> int:
        """Row of ``sample_index`` in this file."""
        try:
            return self._position[int(sample_index)]
        except KeyError:
            raise KeyError(f"{self.path}: no attribution for sample {sample_index}") from None

    def get(self, sample_index: int) -> AttributionRecord:
        """The attribution record of one sample."""
        row = self.position(sample_index)
        with reading(self.path, f"/attribution[{row}]"):
            label = self.label.row(row)
            return AttributionRecord(
                int(sample_index),
                np.asarray(self.attribution.row(row), dtype=np.float32),
                label if self.multi_label else int(label),
                np.asarray(self.prediction.row(row), dtype=np.float32),
            )

    def scores(self, sample_index: int) -> np.ndarray:
        """The model's output scores of one sample, without reading its attribution."""
        row = self.position(sample_index)
        with reading(self.path, f"/prediction[{row}]"):
            return np.asarray(self.prediction.row(row), dtype=np.float32)

    def read(self, sample_indices: Sequence[int] | np.ndarray) -> tuple[np.ndarray, ...]:
        """``(attribution, label, prediction)`` arrays for several samples, in the given order."""
        positions = np.asarray([self.position(i) for i in sample_indices], dtype=np.int64)
        with reading(self.path, "/attribution"):
            columns = [c.rows(positions) for c in (self.attribution, self.label, self.prediction)]
        return tuple(np.asarray(c) if not isinstance(c, list) else _stack(c) for c in columns)

    def labels(self) -> np.ndarray:
        """All labels in row order (int64 N or bool N x K)."""
        with reading(self.path, "/label"):
            if self.label.ids is None:
                return self.label.node[()]
            return _stack([self.label.row(p) for p in range(len(self))])

    def predictions(self) -> np.ndarray:
        """All model outputs in row order."""
        with reading(self.path, "/prediction"):
            if self.prediction.ids is None:
                return self.prediction.node[()].astype(np.float32)
            return _stack([self.prediction.row(p) for p in range(len(self))])

    def iter_batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, ...]]:
        """Yield ``(index, attribution, label, prediction)`` batches in row order."""
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        for start in range(0, len(self), batch_size):
            index = self.indices[start : start + batch_size]
            yield (index, *self.read(index))

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> AttributionDatabase:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AttributionDatabase({str(self.path)!r}, rows={len(self)})"


def _stack(arrays: list[np.ndarray]) -> np.ndarray | list[np.ndarray]:
    shapes = {a.shape for a in arrays}
    return np.stack(arrays) if len(shapes) == 1 else arrays


class AttributionSet:
    """Several attribution databases (shards) of one project read as one.

    Shards must agree on attribution shape, number of outputs and label kind, and no sample
    may appear in two shards.
    """

    def __init__(self, paths: Sequence[str | os.PathLike[str]]) -> None:
        if not paths:
            raise ConfigError("an attribution set needs at least one file")
        self.shards: list[AttributionDatabase] = []
        with closed_on_error(self):
            for path in paths:
                self.shards.append(AttributionDatabase(path))
            self._check_consistent()
        self.indices = np.concatenate([s.indices for s in self.shards])
        self._owner = {int(i): k for k, s in enumerate(self.shards) for i in s.indices}
        if len(self._owner) != len(self.indices):
            seen: dict[int, int] = {}
            for k, shard in enumerate(self.shards):
                for i in shard.indices:
                    if int(i) in seen:
                        raise FormatError(
                            shard.path,
                            "/index",
                            "samples not present in another shard",
                            f"sample {int(i)} also in {self.shards[seen[int(i)]].path}",
                        )
                    seen[int(i)] = k

    def _check_consistent(self) -> None:
        first = self.shards[0]
        for shard in self.shards[1:]:
            for what, mine, theirs in (
                ("attribution shape", shard.shape, first.shape),
                ("multi-label", shard.multi_label, first.multi_label),
                ("outputs", _width(shard.prediction), _width(first.prediction)),
            ):
                if mine != theirs:
                    raise FormatError(
                        shard.path, "/", f"{what} {theirs} like {first.path}", str(mine)
                    )

    def __len__(self) -> int:
        return len(self.indices)

    def __contains__(self, sample_index: object) -> bool:
        return isinstance(sample_index, int | np.integer) and int(sample_index) in self._owner

    @property
    def multi_label(self) -> bool:
        return self.shards[0].multi_label

    @property
    def shape(self) -> tuple[int, ...] | None:
        return self.shards[0].shape

    def _shard(self, sample_index: int) -> AttributionDatabase:
        try:
            return self.shards[self._owner[int(sample_index)]]
        except KeyError:
            raise KeyError(f"no attribution for sample {sample_index} in any shard") from None

    def get(self, sample_index: int) -> AttributionRecord:
        """The attribution record of one sample, from whichever shard holds it."""
        return self._shard(sample_index).get(sample_index)

    def scores(self, sample_index: int) -> np.ndarray:
        """The model's output scores of one sample, without reading its attribution."""
        return self._shard(sample_index).scores(sample_index)

    def read(self, sample_indices: Sequence[int] | np.ndarray) -> tuple[np.ndarray, ...]:
        """``(attribution, label, prediction)`` for several samples across shards, in order."""
        sample_indices = np.asarray(sample_indices, dtype=np.int64)
        owners = np.asarray([self._owner.get(int(i), -1) for i in sample_indices])
        if (owners < 0).any():
            missing = int(sample_indices[owners < 0][0])
            raise KeyError(f"no attribution for sample {missing} in any shard")
        parts: list[list[np.ndarray]] = [[], [], []]
        where: list[np.ndarray] = []
        for k in np.unique(owners):
            mask = owners == k
            where.append(np.flatnonzero(mask))
            for column, values in zip(
                parts, self.shards[k].read(sample_indices[mask]), strict=True
            ):
                column.append(values)
        order = np.argsort(np.concatenate(where), kind="stable")
        return tuple(np.concatenate(column)[order] for column in parts)

    def labels(self) -> np.ndarray:
        """All labels in the order of :attr:`indices`."""
        return np.concatenate([s.labels() for s in self.shards])

    def close(self) -> None:
        """Close every shard."""
        for shard in self.shards:
            shard.close()

    def __enter__(self) -> AttributionSet:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _width(column: _Column) -> int:
    if column.ids is None:
        return int(column.node.shape[1])
    return int(column.node[column.ids[0]].shape[0])
