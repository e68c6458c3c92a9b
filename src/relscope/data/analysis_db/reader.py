"""Opening an analysis database of either layout (:class:`AnalysisDatabase`): layout
detection, the analyses and categories it holds, and reading them on demand."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py

from relscope.data._h5 import closed_on_error, open_h5, reading
from relscope.data.analysis_db.layout import CLUSTER, EMBEDDING, FORMAT, SCORE, Layout
from relscope.data.analysis_db.parse import (
    attr_string,
    check_category,
    key_of,
    looks_like_category,
    member_names,
    optional_group,
    read_attrs,
    read_category,
    read_scores,
    show_attr,
)
from relscope.data.analysis_db.records import CategoryAnalysis, listing
from relscope.errors import ConfigError, FormatError


class AnalysisDatabase:
    """Read an analysis database of either layout; data is read only when asked for.

    Parameters
    ----------
    path:
        The HDF5 file.
    default_analysis:
        Name reported for the single analysis of a ViRelAy-layout file without an ``analysis``
        attribute (ViRelAy keeps the name in the project file only).

    Raises
    ------
    FormatError
        If the file is missing, damaged or not laid out as an analysis database.
    """

    def __init__(self, path: str | os.PathLike[str], *, default_analysis: str = "spray") -> None:
        self.path = Path(path)
        self.default_analysis = default_analysis
        self._file = open_h5(self.path)
        with closed_on_error(self._file):
            self._scan()

    def _scan(self) -> None:
        file, root = self.path, self._file
        attrs = read_attrs(root, file)
        if "format" in attrs and attr_string(attrs["format"], file, "/@format") != FORMAT:
            raise FormatError(file, "/@format", repr(FORMAT), repr(attrs["format"]))
        self._metadata: dict[str, Any] = {}
        if "metadata" in attrs:
            text = attr_string(attrs["metadata"], file, "/@metadata")
            try:
                self._metadata = json.loads(text)
            except json.JSONDecodeError:
                raise FormatError(file, "/@metadata", "a JSON object", "invalid JSON") from None
            if not isinstance(self._metadata, dict):
                raise FormatError(file, "/@metadata", "a JSON object", show_attr(self._metadata))
        names = member_names(root, file, kind=h5py.Group)
        groups = {name: root[name] for name in names}
        categories = [name for name in names if looks_like_category(groups[name], file)]
        others = [name for name in names if name not in categories]
        stated = attrs.get("layout")
        if categories and others:
            raise FormatError(
                file,
                "/",
                "either only category groups (ViRelAy layout) or only analysis groups (nested)",
                f"category {categories[0]!r} next to non-category group {others[0]!r}",
            )
        # Category paths per analysis; the groups themselves are looked up again when read.
        self._analyses: dict[str, dict[str, str]] = {}
        self.layout: Layout
        if categories or (not names and isinstance(stated, str) and stated == "virelay"):
            self.layout = "virelay"
            name = self.default_analysis
            if "analysis" in attrs:
                name = attr_string(attrs["analysis"], file, "/@analysis")
            for category in categories:
                check_category(groups[category], file)
            self._analyses[name] = {category: f"/{category}" for category in categories}
        else:
            self.layout = "nested"
            for analysis in names:
                members = member_names(groups[analysis], file, kind=h5py.Group)
                for category in members:
                    check_category(groups[analysis][category], file)
                self._analyses[analysis] = {
                    category: f"/{analysis}/{category}" for category in members
                }

    def __repr__(self) -> str:
        return f"AnalysisDatabase({str(self.path)!r}, layout={self.layout!r})"

    def __enter__(self) -> AnalysisDatabase:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._file.close()

    @property
    def analyses(self) -> list[str]:
        """Names of the analyses in the file, sorted."""
        return sorted(self._analyses)

    @property
    def metadata(self) -> dict[str, Any]:
        """User metadata stored by the writer (empty for files from other tools)."""
        return dict(self._metadata)

    def _analysis(self, analysis: str | None) -> dict[str, str]:
        if analysis is None:
            if not self._analyses:
                raise KeyError(f"{self.path}: contains no analyses")
            analysis = self.analyses[0]
        try:
            return self._analyses[analysis]
        except KeyError:
            raise KeyError(
                f"{self.path}: no analysis {analysis!r}; {listing(self.analyses)}"
            ) from None

    def _group(self, category: str, analysis: str | None) -> h5py.Group:
        paths = self._analysis(analysis)
        if category not in paths:
            raise KeyError(f"{self.path}: no category {category!r}; {listing(sorted(paths))}")
        if not self._file:
            raise ConfigError(f"{self.path}: the analysis database is closed")
        return self._file[paths[category]]

    def categories(self, analysis: str | None = None) -> list[str]:
        """Category names of ``analysis`` (default: the first analysis), sorted."""
        return sorted(self._analysis(analysis))

    def category(self, name: str, analysis: str | None = None) -> CategoryAnalysis:
        """Read and validate one category completely."""
        return read_category(self._group(name, analysis), name, self.path)

    def _names(self, sub: str, analysis: str | None, category: str | None) -> list[str]:
        names: set[str] = set()
        for each in self.categories(analysis) if category is None else [category]:
            group = optional_group(self._group(each, analysis), sub, self.path)
            if group is None:
                continue
            for name in member_names(group, self.path, kind=h5py.Dataset):
                if sub == CLUSTER:
                    with reading(self.path, key_of(group, name)):
                        kind = group[name].dtype.kind
                    if kind not in "iu":
                        continue
                names.add(name)
        return sorted(names)

    def embedding_names(
        self, analysis: str | None = None, category: str | None = None
    ) -> list[str]:
        """Embedding names of ``category``, or of all categories of ``analysis`` together."""
        return self._names(EMBEDDING, analysis, category)

    def clustering_names(
        self, analysis: str | None = None, category: str | None = None
    ) -> list[str]:
        """Clustering names (integer datasets only, no extras), like :meth:`embedding_names`."""
        return self._names(CLUSTER, analysis, category)

    def scores(self, analysis: str | None = None) -> dict[str, dict[str, float]]:
        """Scores per category of ``analysis``; categories without scores map to ``{}``."""
        result: dict[str, dict[str, float]] = {}
        for category in self.categories(analysis):
            group = optional_group(self._group(category, analysis), SCORE, self.path)
            result[category] = {} if group is None else read_scores(group, self.path)
        return result
