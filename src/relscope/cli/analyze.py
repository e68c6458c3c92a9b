"""``relscope analyze``: SpRAy over the categories of an attribution database."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from relscope.analysis import (
    CategoryResult,
    HDF5Storage,
    SpRAy,
    analyze_category,
    load_spray_config,
    rank_categories,
    spray_config,
)
from relscope.cli._common import console, parse_classes, user_errors
from relscope.data.analysis_db import (
    LAYOUTS,
    AnalysisDatabase,
    AnalysisWriter,
    CategoryAnalysis,
    Clustering,
    Embedding,
    Layout,
)
from relscope.data.attribution_db import AttributionDatabase
from relscope.data.labels import LabelMap, describe_category, load_label_map
from relscope.errors import ConfigError, PathError

EXAMPLES = """
[bold]Examples[/bold]

  relscope analyze demo/attribution.h5 --out demo/analysis.h5 --label-map demo/labels.json
  relscope analyze a.h5 --out analysis.h5 --categories 0,3 --jobs 2
  relscope analyze a.h5 --out analysis-pca.h5 --pipeline my-spray.yaml --name spray_pca

A category is a class: the samples labelled with it (any of the labels, for multi-label
data). Completed categories are kept when a run is interrupted; the same command resumes.
Each analysis gets its own file, laid out as ViRelAy reads it; `--layout nested` keeps
several analyses in one file, which relscope reads but ViRelAy cannot open.
"""


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


def _run(path: str, rows: np.ndarray, config: str, cache: str | None) -> CategoryResult:
    """One category, in a worker process: read its attributions and run the pipeline."""
    with AttributionDatabase(path) as database:
        attributions = database.read(database.indices[rows])[0]
    storage = None if cache is None else HDF5Storage(cache)
    return analyze_category(np.asarray(attributions), load_spray_config(config), io=storage)


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


def register(app: typer.Typer) -> None:
    """Add ``relscope analyze`` to ``app``."""

    @app.command("analyze", epilog=EXAMPLES)
    @user_errors
    def analyze(
        attribution: Path = typer.Argument(..., help="Attribution database (HDF5)."),
        out: Path = typer.Option(..., "--out", help="Analysis database to write or extend."),
        categories: str = typer.Option(
            "", "--categories", help="Comma-separated class indices (default: every class)."
        ),
        pipeline: str = typer.Option(
            "spray", "--pipeline", help="'spray' (defaults) or a YAML pipeline configuration."
        ),
        name: str = typer.Option(
            "spray", "--name", help="Name of the analysis (the project file's analysis_method)."
        ),
        jobs: int = typer.Option(1, "--jobs", min=1, help="Categories analysed in parallel."),
        cache: Path | None = typer.Option(
            None, help="HDF5 file caching every step (a rerun recomputes only what changed)."
        ),
        label_map: Path | None = typer.Option(
            None, "--label-map", help="Label map JSON: class names beside the categories."
        ),
        layout: str = typer.Option(
            "virelay",
            "--layout",
            help="virelay: one analysis per file, as ViRelAy reads it; nested: several analyses "
            "in one file (relscope only).",
        ),
    ) -> None:
        """Run SpRAy per category and rank the categories by their tau score."""
        if layout not in LAYOUTS:
            raise ConfigError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        analyze_attributions(
            attribution,
            out,
            categories=parse_classes(categories, "--categories"),
            config=pipeline_text(pipeline),
            name=name,
            jobs=jobs,
            cache=cache,
            labels=None if label_map is None else load_label_map(label_map),
            layout=layout,  # type: ignore[arg-type]
        )


def analyze_attributions(
    attribution: Path,
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
) -> list[tuple[str, float]]:
    """Run the pipeline ``config`` (YAML; default SpRAy) per category into ``out``.

    Finished categories of the same analysis and pipeline are kept (an interrupted run
    resumes, new categories extend it). ``layout`` is the analysis database's
    (:class:`~relscope.data.analysis_db.AnalysisWriter`): ``"virelay"`` holds this analysis
    only, ``"nested"`` keeps the other analyses of ``out``. ``replace`` rewrites an analysis
    made with another pipeline, and a file holding another analysis the layout cannot keep,
    instead of refusing. ``cache`` is an HDF5 file caching every pipeline step, so that a
    changed parameter recomputes only the steps after it. Prints the categories ranked by tau
    (with their class names from ``labels``) and returns them.
    """
    config = spray_config(SpRAy()) if config is None else config
    load_spray_config(config)  # refuse a broken configuration before any work
    with AttributionDatabase(attribution) as database:
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
        with _progress() as progress:
            task = progress.add_task("SpRAy", total=len(todo))
            for label, outcome in _outcomes(
                str(attribution), todo, members, config, jobs, cache_path
            ):
                key = category_name(label)
                rows = members[label]
                if isinstance(outcome, CategoryResult):
                    writer.write(_record(key, indices[rows], label, outcome))
                else:
                    skipped[key] = (len(rows), outcome)
                progress.advance(task)
    return _summary(out, name, skipped, labels)


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


def _outcomes(path, todo, members, config, jobs, cache):
    """``(label, CategoryResult or the reason it was skipped)`` as categories finish."""
    if jobs == 1 or len(todo) < 2:
        for label in todo:
            yield label, _guarded(path, members[label], config, cache)
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {
            pool.submit(_guarded, path, members[label], config, cache): label for label in todo
        }
        for future in as_completed(futures):
            yield futures[future], future.result()


def _guarded(path: str, rows: np.ndarray, config: str, cache: str | None) -> CategoryResult | str:
    # A category too small for the pipeline (k-NN, t-SNE perplexity) is skipped, not fatal.
    try:
        return _run(path, rows, config, cache)
    except ConfigError as error:
        return f"skipped: {error}"


def _progress() -> Progress:
    return Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console, transient=True,
    )  # fmt: skip


def _summary(
    out: Path, name: str, skipped: dict[str, tuple[int, str]], labels: LabelMap | None
) -> list[tuple[str, float]]:
    # Read back from the file, so that categories finished by an earlier run are ranked too.
    with AnalysisDatabase(out, default_analysis=name) as database:
        stored = [database.category(key, name) for key in database.categories(name)]
    taus = {c.name: c.scores.get("tau", float("nan")) for c in stored}
    by_name = {c.name: c for c in stored}
    table = Table(title=f"{name}: categories ranked by tau (linear separability of k=2)")
    for column in ("rank", "category", "samples", "tau", "eigengap k", "note"):
        table.add_column(column)
    ranked = rank_categories(taus)
    for rank, (key, tau) in enumerate(ranked, start=1):
        category = by_name[key]
        k = category.scores.get("eigengap_k", float("nan"))
        shown = describe_category(key, labels)
        table.add_row(str(rank), shown, str(category.size), f"{tau:.3g}", f"{k:.0f}", "")
    for key, (size, reason) in sorted(skipped.items()):
        table.add_row("-", describe_category(key, labels), str(size), "", "", reason)
    console.print(table)
    console.print(f"wrote {out}")
    return ranked
