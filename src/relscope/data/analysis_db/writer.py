"""Writing an analysis into an analysis database: one part file per category, merged
atomically (:class:`AnalysisWriter`)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from relscope._atomic import atomic_path
from relscope._version import __version__
from relscope.data._h5 import require_group
from relscope.data._parts import PartStore
from relscope.data.analysis_db.layout import (
    CLUSTER,
    EMBEDDING,
    FORMAT,
    INDEX,
    INT64_MIN,
    LAYOUTS,
    SCORE,
    Layout,
)
from relscope.data.analysis_db.reader import AnalysisDatabase
from relscope.data.analysis_db.records import CategoryAnalysis, check_name, plain
from relscope.errors import ConfigError, FormatError


def _write_category(group: h5py.Group, category: CategoryAnalysis) -> None:
    # ViRelAy's scripts store the index as uint32; validate() guarantees it fits.
    group.create_dataset(INDEX, data=category.index.astype(np.uint32))
    embeddings = group.create_group(EMBEDDING)
    for name in sorted(category.embeddings):
        embedding = category.embeddings[name]
        data = embedding.data
        dataset = embeddings.create_dataset(
            name, data=data if data.dtype.kind == "f" else data.astype(np.float64)
        )
        if embedding.eigenvalue is not None:
            eigenvalue = embedding.eigenvalue
            dataset.attrs["eigenvalue"] = (
                eigenvalue if eigenvalue.dtype.kind == "f" else eigenvalue.astype(np.float64)
            )
        if embedding.base is not None:
            dataset.attrs["embedding"] = embedding.base
        if embedding.dims is not None:
            dataset.attrs["index"] = embedding.dims.astype(np.int64)
    # ViRelAy lists clusterings from this group, so it exists even when empty.
    clusters = group.create_group(CLUSTER)
    for name in sorted(category.clusterings):
        clustering = category.clusterings[name]
        dataset = clusters.create_dataset(name, data=clustering.labels)
        if clustering.embedding is not None:
            dataset.attrs["embedding"] = clustering.embedding
        if clustering.k is not None:
            dataset.attrs["k"] = np.int64(clustering.k)
        if clustering.dims is not None:
            dataset.attrs["index"] = clustering.dims.astype(np.uint32)
        dataset.attrs["params"] = json.dumps(clustering.params, sort_keys=True)
        for key in sorted(clustering.params):
            value = clustering.params[key]
            if isinstance(value, str | bool | float) or (
                isinstance(value, int) and INT64_MIN <= value < 2**63
            ):
                dataset.attrs[key] = value
    for name in sorted(category.extras):
        clusters.create_dataset(name, data=category.extras[name])
    if category.scores:
        scores = group.create_group(SCORE)
        for name in sorted(category.scores):
            scores.create_dataset(name, data=np.float64(category.scores[name]))
    for key in sorted(category.attrs):
        value = category.attrs[key]
        if isinstance(value, int) and not isinstance(value, bool) and value >= 2**63:
            value = np.uint64(value)
        group.attrs[key] = value


def _check_metadata(metadata: object) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping) or not all(isinstance(key, str) for key in metadata):
        raise ConfigError(f"metadata must be a dict with string keys, got {metadata!r}")
    try:
        return json.loads(json.dumps(plain(metadata)))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"metadata must be JSON-serializable ({error})") from None


class AnalysisWriter:
    """Write one analysis into an analysis database, resumably and atomically.

    Each category is written to its own completed part file, so an interrupted run keeps every
    finished category; :meth:`close` merges the parts (sorted by category) into ``path`` in one
    atomic step. Leaving the ``with`` block through an exception merges nothing and keeps the
    parts, so a new writer with the same settings resumes (``done()`` is true for them).

    Parameters
    ----------
    path:
        The analysis database to create or extend.
    analysis:
        Name of the analysis (``"spray"``, ``"spray_abs"``, ...; ViRelAy's server cannot
        reach a name with a ``-``).
    layout:
        ``"virelay"`` (the default: categories at the top level, one analysis per file, as
        ViRelAy reads it) or ``"nested"`` (analyses as top-level groups; other analyses already
        in ``path`` are kept; ViRelAy cannot open it).
    metadata:
        JSON-serializable user metadata, stored as the ``metadata`` file attribute; when
        extending a nested file it is merged over the metadata already there.
    overwrite:
        Replace an existing analysis of the same name (nested) or the existing file (virelay).
        A nested writer keeps the other analyses of a readable nested file either way.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        analysis: str = "spray",
        *,
        layout: Layout = "virelay",
        metadata: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        self.analysis = analysis
        self.layout = layout
        self.overwrite = overwrite
        check_name(analysis, "analysis")
        if layout not in LAYOUTS:
            raise ConfigError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        self.metadata = _check_metadata(metadata)
        if self.path.is_dir():
            raise ConfigError(f"{self.path}: is a directory, expected an analysis database file")
        # Refuse before any part is written rather than after hours of computation.
        self._existing_analyses()
        self._store = PartStore(
            self.path,
            {
                "format": FORMAT,
                "analysis": analysis,
                "layout": layout,
                "metadata": self.metadata,
            },
        )
        self._closed = False

    def __repr__(self) -> str:
        return f"AnalysisWriter({str(self.path)!r}, {self.analysis!r}, layout={self.layout!r})"

    def __enter__(self) -> AnalysisWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abandon()

    def done(self, category: str) -> bool:
        """Whether ``category`` was written completely (in this or an interrupted earlier run)."""
        return self._store.has(category)

    def completed(self) -> list[str]:
        """Completed categories, sorted."""
        return self._store.keys()

    def write(self, category: CategoryAnalysis) -> None:
        """Validate ``category`` and store it; writing a category again replaces it."""
        if self._closed:
            raise ConfigError(f"{self.path}: the analysis writer is already closed")
        if not isinstance(category, CategoryAnalysis):
            raise ConfigError(f"expected a CategoryAnalysis, got {type(category).__name__}")
        category.validate()
        with self._store.write(category.name) as part:
            _write_category(part.create_group(category.name), category)

    def close(self) -> Path:
        """Merge all completed categories into ``path`` atomically and remove the parts."""
        if self._closed:
            return self.path
        existing = self._existing_analyses()
        with atomic_path(self.path) as temporary, h5py.File(temporary, "w") as out:
            metadata = dict(self.metadata)
            if existing:
                with AnalysisDatabase(self.path) as old:
                    metadata = {**old.metadata, **self.metadata}
                    for name in existing:
                        old._file.copy(old._file[name], out, name=name)
            out.attrs["format"] = FORMAT
            out.attrs["layout"] = self.layout
            out.attrs["relscope_version"] = __version__
            out.attrs["metadata"] = json.dumps(metadata, sort_keys=True)
            if self.layout == "virelay":
                out.attrs["analysis"] = self.analysis
                target = out
            else:
                target = out.create_group(self.analysis)
            for name in self.completed():
                with self._store.read(name) as part:
                    source = require_group(part, name, file=self._store.directory / name)
                    part.copy(source, target, name=name)
        self._store.remove()
        self._closed = True
        return self.path

    def abandon(self) -> None:
        """Stop without merging; completed categories stay on disk for a later resume."""
        if not self._closed and not self._store.keys():
            self._store.remove()
        self._closed = True

    def _existing_analyses(self) -> list[str]:
        """Analyses of the file at ``path`` to carry over; raises if ours may not replace it."""
        if not self.path.exists():
            return []
        if self.layout == "virelay":
            if not self.overwrite:
                raise ConfigError(
                    f"{self.path}: exists; a ViRelAy-layout file holds a single analysis, pass "
                    "overwrite=True to replace it"
                )
            return []
        try:
            with AnalysisDatabase(self.path) as old:
                layout, analyses = old.layout, old.analyses
        except FormatError:
            if self.overwrite:
                return []
            raise
        if layout != "nested":
            if self.overwrite:
                return []
            raise ConfigError(
                f"{self.path}: exists in the ViRelAy layout and cannot take a second analysis; "
                "pass overwrite=True to replace it"
            )
        if self.analysis in analyses and not self.overwrite:
            raise ConfigError(
                f"{self.path}: already contains the analysis {self.analysis!r}; pass "
                "overwrite=True to replace it"
            )
        return [name for name in analyses if name != self.analysis]
