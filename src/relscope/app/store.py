"""What the web application serves, read through ``relscope.data``: loaded projects only.

The API never takes a path: projects are addressed by their position in the list given at
start-up, analyses, categories, embeddings and clusterings by the names their files hold,
samples by dataset position. Every file read is one a loaded project references, and
project loading already refuses paths outside the project folder (or an allowed root).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from relscope.data.analysis_db import AnalysisDatabase, CategoryAnalysis
from relscope.data.attribution_db import AttributionSet
from relscope.data.check import open_project_dataset
from relscope.data.dataset import ImageDataset
from relscope.data.labels import LabelMap, load_label_map
from relscope.data.project import Project, load_project

__all__ = ["ProjectStore", "ServedProject", "UnknownItemError"]


class UnknownItemError(LookupError):
    """A name or index the loaded projects do not have (answered with 404)."""


@dataclass
class ServedProject:
    """One loaded project and its lazily opened files."""

    project: Project
    labels: LabelMap
    _dataset: ImageDataset | None = None
    _attributions: AttributionSet | None = None
    _categories: dict[tuple[str, str], CategoryAnalysis] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def dataset(self) -> ImageDataset:
        with self._lock:
            if self._dataset is None:
                self._dataset = open_project_dataset(self.project.dataset, self.labels)
            return self._dataset

    @property
    def attributions(self) -> AttributionSet | None:
        if self.project.attributions is None:
            return None
        with self._lock:
            if self._attributions is None:
                self._attributions = AttributionSet(self.project.attributions.sources)
            return self._attributions

    def analyses(self) -> list[str]:
        """Analysis names in project order."""
        return [spec.analysis_method for spec in self.project.analyses]

    def _sources(self, analysis: str) -> list[Path]:
        for spec in self.project.analyses:
            if spec.analysis_method == analysis:
                return list(spec.sources)
        raise UnknownItemError(
            f"unknown analysis {analysis!r}; analyses: {', '.join(self.analyses())}"
        )

    def categories(self, analysis: str) -> list[str]:
        """Category names of ``analysis`` over all its files."""
        names: list[str] = []
        for source in self._sources(analysis):
            with AnalysisDatabase(source, default_analysis=analysis) as database:
                if analysis in database.analyses:
                    names += [n for n in database.categories(analysis) if n not in names]
        return names

    def category(self, analysis: str, name: str) -> CategoryAnalysis:
        """One category of ``analysis`` (read once, then kept)."""
        key = (analysis, name)
        with self._lock:
            if key in self._categories:
                return self._categories[key]
        for source in self._sources(analysis):
            with AnalysisDatabase(source, default_analysis=analysis) as database:
                if analysis in database.analyses and name in database.categories(analysis):
                    category = database.category(name, analysis)
                    with self._lock:
                        self._categories[key] = category
                    return category
        raise UnknownItemError(f"unknown category {name!r} of analysis {analysis!r}")

    def close(self) -> None:
        """Release open files."""
        with self._lock:
            if self._dataset is not None:
                self._dataset.close()
            if self._attributions is not None:
                self._attributions.close()
            self._dataset = self._attributions = None


class ProjectStore:
    """The projects a server was started with, by position."""

    def __init__(self, paths: Sequence[str | Path], allowed_roots: Sequence[str | Path] = ()):
        self.projects: list[ServedProject] = []
        for path in paths:
            project = load_project(path, allowed_roots=allowed_roots)
            self.projects.append(ServedProject(project, load_label_map(project.label_map)))

    def get(self, position: int) -> ServedProject:
        """The project at ``position`` (0-based)."""
        if not 0 <= position < len(self.projects):
            raise UnknownItemError(f"no project {position}; projects: 0..{len(self.projects) - 1}")
        return self.projects[position]

    def warm(self) -> None:
        """Open every project's dataset and attribution files now (the server does this in
        the background at start-up), so that the first gallery request does not wait for
        it; a file that fails to open is left for the request that needs it to report."""
        for served in self.projects:
            with contextlib.suppress(Exception):
                served.dataset.labels()
            with contextlib.suppress(Exception):
                served.attributions  # noqa: B018 - opening is the point

    def close(self) -> None:
        """Release every project's files."""
        for served in self.projects:
            served.close()


def label_name(labels: LabelMap, index: int) -> str:
    """The class name of ``index``, or the index as text if the label map lacks it."""
    try:
        return labels.by_index(index).name
    except (KeyError, LookupError):
        return str(index)


def category_label(labels: LabelMap, category: CategoryAnalysis) -> int | None:
    """The class index of a category: its ``label_index`` attribute, else its name resolved.

    ViRelAy's meta-analysis script stores no class index; it names each category by the
    class's WordNet id (``%08d`` of the index without one), which the label map resolves.
    """
    label = category.attrs.get("label_index")
    if label is not None:
        return int(label)
    try:
        return labels.resolve(category.name).index
    except KeyError:
        return None


def summary(served: ServedProject, position: int) -> dict[str, Any]:
    """The JSON description of one project."""
    project = served.project
    attributions = project.attributions
    return {
        "id": position,
        "name": project.name,
        "model": project.model,
        "dataset": {
            "name": project.dataset.name,
            "type": project.dataset.type,
            "samples": len(served.dataset),
        },
        "attribution": None
        if attributions is None
        else {
            "method": attributions.attribution_method,
            "strategy": attributions.attribution_strategy,
        },
        "analyses": served.analyses(),
    }


def finite(value: float) -> float | None:
    """``value`` for JSON (NaN and infinities become null)."""
    return float(value) if np.isfinite(value) else None
