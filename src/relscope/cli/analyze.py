"""``relscope analyze``: SpRAy over the categories of an attribution database.

The work is :func:`relscope.engine.analyze`; this command parses the options and shows the
progress and the ranked categories.
"""

from __future__ import annotations

from pathlib import Path

import typer

from relscope.cli._common import ConsoleProgress, parse_classes, user_errors
from relscope.data.analysis_db import LAYOUTS
from relscope.data.labels import load_label_map
from relscope.engine.analysis import analyze as analyze_attributions
from relscope.engine.analysis import pipeline_text
from relscope.engine.engines import open_backend
from relscope.errors import ConfigError

EXAMPLES = """
[bold]Examples[/bold]

  relscope analyze demo/attribution.h5 --out demo/analysis.h5 --label-map demo/labels.json
  relscope analyze a.h5 --out analysis.h5 --categories 0,3 --jobs 2
  relscope analyze a.h5 --out analysis-pca.h5 --pipeline my-spray.yaml --name spray_pca
  relscope analyze a-*-of-00012.h5 --out analysis.h5 --engine ray --address head:6379

A category is a class: the samples labelled with it (any of the labels, for multi-label
data). Completed categories are kept when a run is interrupted; the same command resumes.
Each analysis gets its own file, laid out as ViRelAy reads it; `--layout nested` keeps
several analyses in one file, which relscope reads but ViRelAy cannot open.
"""


def register(app: typer.Typer) -> None:
    """Add ``relscope analyze`` to ``app``."""

    @app.command("analyze", epilog=EXAMPLES)
    @user_errors
    def analyze(
        attribution: list[Path] = typer.Argument(
            ..., help="Attribution database (HDF5), or the shards of a sharded run."
        ),
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
        engine: str = typer.Option("local", help="local|ray: where the categories run."),
        address: str | None = typer.Option(
            None, help="Ray cluster address (default: a local Ray for this run)."
        ),
        workers: int = typer.Option(
            0, min=0, help="Ray: categories at once (0: as many as the cluster holds)."
        ),
        cpus_per_worker: float = typer.Option(1.0, min=0.01, help="Ray: CPUs per category."),
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
        with (
            open_backend(
                engine,
                jobs=jobs,
                address=address,
                workers=workers or None,
                cpus_per_worker=cpus_per_worker,
            ) as backend,
            ConsoleProgress() as progress,
        ):
            analyze_attributions(
                attribution if len(attribution) > 1 else attribution[0],
                out,
                categories=parse_classes(categories, "--categories"),
                config=pipeline_text(pipeline),
                name=name,
                cache=cache,
                labels=None if label_map is None else load_label_map(label_map),
                layout=layout,  # type: ignore[arg-type]
                progress=progress,
                backend=backend,
            )
