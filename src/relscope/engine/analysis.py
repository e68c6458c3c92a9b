"""Analyze an attribution database: a pipeline (SpRAy by default) per category, into an
analysis database, resumable per category, the categories ranked by tau.

A category is a class: the samples labelled with it (any of the labels, for multi-label
data). The categories run on a :class:`~relscope.engine.backend.Backend` (on Ray: one task
each, reading its attributions from the shards, which every node must see); the caller
writes their results into the analysis database as they arrive.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from relscope.analysis import (
    CategoryResult,
    HDF5Storage,
    SpRAy,
    analyze_category,
    load_spray_config,
    rank_categories,
    spray_config,
)
from relscope.data.analysis_db import (
    AnalysisDatabase,
    AnalysisWriter,
    CategoryAnalysis,
    Clustering,
    Embedding,
    Layout,
)
from relscope.data.attribution_db import AttributionSet
from relscope.data.labels import LabelMap
from relscope.engine.backend import Backend, or_local
from relscope.engine.progress import Progress, or_silent
from relscope.errors import ConfigError, PathError

__all__ = [
    "AnalysisSummary",
    "RankedCategory",
    "analyze",
    "category_members",
    "category_name",
    "pipeline_text",
]

#: The progress task of :func:`analyze` (its units are categories).
TASK = "analyze"


@dataclass(frozen=True)
class RankedCategory:
    """One analysed category: its key, number of samples and scores."""

    name: str
    size: int
    tau: float
    eigengap_k: float


@dataclass(frozen=True)
class AnalysisSummary:
    """What :func:`analyze` left in ``path``: the categories of analysis ``name`` ranked by tau
    (finished by this run or an earlier one), and those skipped with the reason."""

    path: Path
    name: str
    categories: list[RankedCategory]
    skipped: dict[str, tuple[int, str]]  # key: (samples, reason)
    labels: LabelMap | None = None  # class names, for showing the categories

    @property
    def ranking(self) -> list[tuple[str, float]]:
        """``(category, tau)``, best first."""
        return [(category.name, category.tau) for category in self.categories]


def category_members(labels: np.ndarray) -> dict[int, np.ndarray]:
    """Row positions of every class present in ``labels`` (int ``N`` or bool ``N x K``)."""
    if labels.ndim == 2:
        present = [k for k in range(labels.shape[1]) if labels[:, k].any()]
        return {k: np.flatnonzero(labels[:, k]) for k in present}
    return {int(k): np.flatnonzero(labels == k) for k in np.unique(labels)}


def category_name(label: int) -> str:
    """The analysis database's key of a class (ViRelAy's ``%08d`` of the class index)."""
    return f"{label:08d}"


def pipeline_text(pipeline: str) -> str:
    """The YAML of ``'spray'`` (the defaults) or of a pipeline configuration file."""
    if pipeline == "spray":
        return spray_config(SpRAy())
    path = Path(pipeline)
    if not path.is_file():
        raise PathError(f"{pipeline}: no such pipeline configuration (or use 'spray')")
    text = path.read_text(encoding="utf-8")
    load_spray_config(text)  # refuse a broken configuration before any work
    return text


def analyze(
    attribution: Path | Sequence[Path],
    out: Path,
    *,
    categories: list[int] | None = None,
    config: str | None = None,
    name: str = "spray",
    jobs: int = 1,
    cache: Path | None = None,
    replace: bool = False,
    labels: LabelMap | None = None,
    layout: Layout = "virelay",
    progress: Progress | None = None,
    backend: Backend | None = None,
) -> AnalysisSummary:
    """Run the pipeline ``config`` (YAML; default SpRAy) per category into ``out``.

    ``attribution`` is one attribution database or several (the shards of a sharded run),
    read as one.

    Finished categories of the same analysis and pipeline are kept (an interrupted run
    resumes, new categories extend it). ``layout`` is the analysis database's
    (:class:`~relscope.data.analysis_db.AnalysisWriter`): ``"virelay"`` holds this analysis
    only, ``"nested"`` keeps the other analyses of ``out``. ``replace`` rewrites an analysis
    made with another pipeline, and a file holding another analysis the layout cannot keep,
    instead of refusing. ``cache`` is an HDF5 file caching every pipeline step, so that a
    changed parameter recomputes only the steps after it. The categories run on ``backend``
    (default: a :class:`~relscope.engine.backend.LocalBackend` of ``jobs`` processes).
    ``progress`` hears the task ``"analyze"`` in categories, and the summary as a report;
    ``labels`` (class names) travels with the summary for showing it.
    """
    progress = or_silent(progress)
    backend = or_local(backend, jobs)
    config = spray_config(SpRAy()) if config is None else config
    load_spray_config(config)  # refuse a broken configuration before any work
    sources = (
        [str(attribution)] if isinstance(attribution, str | Path) else list(map(str, attribution))
    )
    with AttributionSet(sources) as database:
        members = category_members(np.asarray(database.labels()))
        indices = database.indices
    wanted = _wanted(categories, members)
    skipped: dict[str, tuple[int, str]] = {}
    overwrite = _may_replace(out, name, layout, replace)
    earlier = _finished(out, name, config, replace)
    with AnalysisWriter(
        out, name, layout=layout, metadata={"pipeline": config}, overwrite=overwrite
    ) as writer:
        for category in earlier:  # a finished analysis is extended, not recomputed
            if not writer.done(category.name):
                writer.write(category)
        todo = [label for label in wanted if not writer.done(category_name(label))]
        cache_path = None if cache is None else str(cache)
        work = functools.partial(_guarded, sources, config, cache_path)
        pieces = [(k, indices[members[k]]) for k in todo]
        progress.start(TASK, len(todo))
        try:
            for (label, samples), outcome in backend.map(work, pieces):
                key = category_name(label)
                if isinstance(outcome, CategoryResult):
                    writer.write(_record(key, samples, label, outcome))
                else:
                    skipped[key] = (len(samples), outcome)
                progress.advance(TASK)
        finally:
            progress.finish(TASK)
    summary = _summary(out, name, skipped, labels)
    progress.report(summary)
    return summary


def _run(sources: list[str], samples: np.ndarray, config: str, cache: str | None) -> CategoryResult:
    """One category, in a worker: read its attributions (by sample index) and run the
    pipeline."""
    with AttributionSet(sources) as database:
        attributions = database.read(samples)[0]
    storage = None if cache is None else HDF5Storage(cache)
    return analyze_category(np.asarray(attributions), load_spray_config(config), io=storage)


def _guarded(
    sources: list[str], config: str, cache: str | None, item: tuple[int, np.ndarray]
) -> CategoryResult | str:
    # A category too small for the pipeline (k-NN, t-SNE perplexity) is skipped, not fatal.
    try:
        return _run(sources, item[1], config, cache)
    except ConfigError as error:
        return f"skipped: {error}"


def _record(name: str, index: np.ndarray, label: int, result: CategoryResult) -> CategoryAnalysis:
    embeddings = {"spectral": Embedding("spectral", result.embeddings["spectral"],
                                        eigenvalue=result.eigenvalues)}  # fmt: skip
    for key, data in result.embeddings.items():
        if key != "spectral":
            embeddings[key] = Embedding(key, data, base="spectral")
    clusterings = {
        key: Clustering(key, labels, embedding="spectral", k=result.k.get(key))
        for key, labels in result.clusterings.items()
    }
    return CategoryAnalysis(
        name, index, embeddings, clusterings, dict(result.scores), attrs={"label_index": label}
    )


def _may_replace(out: Path, name: str, layout: Layout, replace: bool) -> bool:
    """Whether the writer may replace ``out``; without ``replace``, refuses to drop another
    analysis held there.

    The finished categories of ``name`` are carried over by the caller, so rewriting a file
    that holds nothing else (in either layout) loses nothing.
    """
    if not out.is_file():
        return False
    with AnalysisDatabase(out, default_analysis=name) as database:
        held, names = database.layout, database.analyses
    others = [analysis for analysis in names if analysis != name]
    if layout == "nested" and held == "nested":
        return name in names  # the nested writer keeps the other analyses
    if not others or replace:
        return True
    hint = " (or --layout nested to add to it)" if held == "nested" else ""
    raise ConfigError(
        f"{out}: holds the analysis {others[0]!r}; a file in the ViRelAy layout holds one "
        f"analysis, so choose another --out{hint}"
    )


def _finished(out: Path, name: str, config: str, replace: bool) -> list[CategoryAnalysis]:
    """The categories of analysis ``name`` already in ``out`` (same pipeline only)."""
    if not out.is_file():
        return []
    with AnalysisDatabase(out, default_analysis=name) as database:
        if name not in database.analyses:
            return []
        if database.metadata.get("pipeline") != config:
            if replace:
                return []
            raise ConfigError(
                f"{out}: the analysis {name!r} was made with another pipeline; "
                "choose another --name or another --out"
            )
        return [database.category(key, name) for key in database.categories(name)]


def _wanted(categories: list[int] | None, members: dict[int, np.ndarray]) -> list[int]:
    if categories is None:
        return sorted(members)
    for label in categories:
        if label not in members:
            known = ", ".join(map(str, sorted(members)[:12]))
            raise ConfigError(f"categories: class {label} has no attributions (classes: {known})")
    return sorted(set(categories))


def _summary(
    out: Path, name: str, skipped: dict[str, tuple[int, str]], labels: LabelMap | None
) -> AnalysisSummary:
    # Read back from the file, so that categories finished by an earlier run are ranked too.
    with AnalysisDatabase(out, default_analysis=name) as database:
        stored = [database.category(key, name) for key in database.categories(name)]
    by_name = {category.name: category for category in stored}
    taus = {category.name: category.scores.get("tau", float("nan")) for category in stored}
    ranked = [
        RankedCategory(
            key,
            by_name[key].size,
            tau,
            by_name[key].scores.get("eigengap_k", float("nan")),
        )
        for key, tau in rank_categories(taus)
    ]
    return AnalysisSummary(out, name, ranked, dict(sorted(skipped.items())), labels)
