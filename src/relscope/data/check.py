"""Cross-file checks of a project: every file opens, and the files agree with each other.

:func:`check_project` never stops at the first problem: it collects findings (errors and
warnings) for the label map, the dataset, every attribution shard and every analysis, so
``relscope validate`` can print one complete report. It also warns about what the ViRelAy
viewer cannot open (:mod:`relscope.data.virelay`), and names categories with their classes.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np

from relscope.data.analysis_db import AnalysisDatabase
from relscope.data.attribution_db import AttributionSet
from relscope.data.dataset import HDF5Dataset, ImageDataset, ImageFolderDataset
from relscope.data.labels import LabelMap, describe_category, load_label_map
from relscope.data.project import DatasetSpec, Project, load_project
from relscope.data.virelay import VIRELAY, check_virelay
from relscope.errors import RelscopeError, RelscopeWarning

__all__ = [
    "Finding",
    "ProjectReport",
    "check_loaded_project",
    "check_project",
    "open_project_dataset",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Finding:
    """One problem: ``error`` makes the project unusable, ``warning`` is suspicious."""

    level: Literal["error", "warning"]
    where: str
    message: str


@dataclass
class ProjectReport:
    """Result of :func:`check_project`: facts about each part plus the findings."""

    project: Project
    facts: list[tuple[str, str]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    image_size: tuple[int, ...] | None = None

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        """True when no finding is an error."""
        return not self.errors

    def error(self, where: str, message: str) -> None:
        self.findings.append(Finding("error", where, message))

    def warn(self, where: str, message: str) -> None:
        self.findings.append(Finding("warning", where, message))

    def attempt(self, where: str, action: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """Call ``action``; a user-facing error becomes an error finding instead of stopping."""
        try:
            return action(*args, **kwargs)
        except (RelscopeError, KeyError) as error:
            self.error(where, str(error).strip("'\""))
            return None


def open_project_dataset(spec: DatasetSpec, label_map: LabelMap | None = None) -> ImageDataset:
    """Open the dataset a project's ``dataset`` section describes."""
    if spec.type == "hdf5":
        return HDF5Dataset(spec.path)
    size = None
    if spec.input_width is not None and spec.input_height is not None:
        size = (spec.input_height, spec.input_width)
    return ImageFolderDataset(
        spec.path,
        label_map=label_map,
        size=size,
        up_sampling=spec.up_sampling_method,
        down_sampling=spec.down_sampling_method,
        label_index_regex=spec.label_index_regex,
        label_word_net_id_regex=spec.label_word_net_id_regex,
    )


def check_project(
    path: str | os.PathLike[str], *, allowed_roots: Sequence[str | os.PathLike[str]] = ()
) -> ProjectReport:
    """Load a project file and check every referenced file and their agreement.

    A project file that cannot be loaded at all raises (one-line :class:`RelscopeError`);
    everything after that is reported as findings.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RelscopeWarning)
        project = load_project(path, allowed_roots=allowed_roots)
    return check_loaded_project(project)


def check_loaded_project(project: Project) -> ProjectReport:
    """Check the files of an already loaded (or newly assembled) project."""
    report = ProjectReport(project)
    for message in project.warnings:
        where, _, text = message.rpartition(": unknown key")
        report.warn(where.split(": ", 1)[-1], "unknown key" + text)
    labels = report.attempt("label_map", load_label_map, project.label_map)
    if labels is not None:
        report.facts.append(("label map", f"{len(labels)} classes ({project.label_map.name})"))
    dataset = report.attempt("dataset", open_project_dataset, project.dataset, labels)
    try:
        dataset_labels = _check_dataset(report, project, dataset, labels)
        attribution_indices = _check_attributions(report, project, dataset, dataset_labels, labels)
        _check_analyses(report, project, attribution_indices, labels)
    finally:
        if dataset is not None:
            dataset.close()
    virelay = check_virelay(project, labels)
    for where, message in virelay.problems:
        report.warn(where, message)
    report.facts.append((VIRELAY, virelay.summary))
    return report


def _check_dataset(report, project, dataset, labels) -> np.ndarray | None:
    if dataset is None:
        return None
    dataset_labels = report.attempt("dataset", dataset.labels)
    if dataset_labels is None:
        return None
    first = report.attempt("dataset", dataset.sample, 0) if len(dataset) else None
    shape = "x".join(map(str, first.data.shape)) if first is not None else "?"
    report.image_size = tuple(first.data.shape[-2:]) if first is not None else None
    kind = "multi-label" if dataset.multi_label else "single-label"
    report.facts.append(
        ("dataset", f"{project.dataset.type}, {len(dataset)} samples, {shape}, {kind}")
    )
    if len(dataset) == 0:
        report.error("dataset", "the dataset holds no samples")
    if labels is not None and len(dataset_labels):
        if dataset.multi_label:
            width = dataset_labels.shape[1]
            unknown = [i for i in range(width) if i not in labels and dataset_labels[:, i].any()]
        else:
            unknown = sorted({int(v) for v in np.unique(dataset_labels)} - set(labels.indices))
        if unknown:
            report.error("dataset.label", f"classes {unknown[:10]} are not in the label map")
    return dataset_labels


def _check_attributions(report, project, dataset, dataset_labels, labels) -> set[int] | None:
    spec = project.attributions
    if spec is None:
        return None
    attributions = report.attempt("attributions", AttributionSet, spec.sources)
    if attributions is None:
        return None
    with attributions:
        indices = attributions.indices
        report.facts.append(
            (
                "attributions",
                f"{len(indices)} rows in {len(spec.sources)} file(s), "
                f"{spec.attribution_method}, {spec.attribution_strategy}",
            )
        )
        if dataset is not None:
            outside = indices[indices >= len(dataset)]
            if len(outside):
                report.error(
                    "attributions.index",
                    f"{len(outside)} indices beyond the dataset's {len(dataset)} samples "
                    f"(first: {int(outside[0])})",
                )
            elif dataset_labels is not None and attributions.multi_label == dataset.multi_label:
                mismatched = int(
                    (_as_rows(attributions.labels()) != _as_rows(dataset_labels[indices]))
                    .any(axis=1)
                    .sum()
                )
                if mismatched:
                    report.error(
                        "attributions.label",
                        f"{mismatched} rows disagree with the dataset's labels",
                    )
            elif dataset_labels is not None:
                report.error(
                    "attributions.label", "single/multi-label kind differs from the dataset"
                )
            image_size = report.image_size
            shape = attributions.shape
            if shape is not None and image_size is not None and tuple(shape[-2:]) != image_size:
                report.warn(
                    "attributions",
                    f"attribution size {tuple(shape[-2:])} differs from the image size "
                    f"{image_size}; heatmaps will be resampled",
                )
        width = attributions.read(indices[:1])[2].shape[1]
        if labels is not None and width != len(labels):
            report.warn(
                "attributions.prediction",
                f"{width} model outputs but {len(labels)} classes in the label map",
            )
        return {int(i) for i in indices}


def _as_rows(values: np.ndarray) -> np.ndarray:
    return values.reshape(len(values), -1)


def _check_analyses(report, project, attribution_indices, labels) -> None:
    for position, spec in enumerate(project.analyses):
        for source in spec.sources:
            where = f"analyses[{position}] {source.name}"
            database = report.attempt(
                where, AnalysisDatabase, source, default_analysis=spec.analysis_method
            )
            if database is None:
                continue
            with database:
                if spec.analysis_method not in database.analyses:
                    report.error(
                        where,
                        f"no analysis {spec.analysis_method!r} (found {database.analyses})",
                    )
                    continue
                categories = database.categories(spec.analysis_method)
                report.facts.append(
                    (
                        f"analysis {spec.analysis_method}",
                        f"{len(categories)} categories in {source.name}"
                        + _category_list(categories, labels),
                    )
                )
                for name in categories:
                    shown = describe_category(name, labels)
                    category = report.attempt(
                        f"{where} {shown}",
                        database.category,
                        name,
                        spec.analysis_method,
                    )
                    if category is None:
                        continue
                    if attribution_indices is not None:
                        missing = [
                            int(i) for i in category.index if int(i) not in attribution_indices
                        ]
                        if missing:
                            report.error(
                                f"{where} {shown} index",
                                f"{len(missing)} samples have no attribution (first: {missing[0]})",
                            )
                    if labels is not None:
                        try:
                            labels.resolve(name)
                        except KeyError:
                            report.warn(
                                f"{where} {shown}", "category matches no label of the label map"
                            )


def _category_list(categories: list[str], labels: LabelMap | None, shown: int = 6) -> str:
    """``": 00000000 (cat), 00000001 (dog), ..."``: the first categories with their classes."""
    if not categories:
        return ""
    names = [describe_category(name, labels) for name in categories[:shown]]
    more = f" and {len(categories) - shown} more" if len(categories) > shown else ""
    return ": " + ", ".join(names) + more
