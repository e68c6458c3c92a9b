"""``relscope project`` (write a project file) and ``relscope validate`` (check one)."""

from __future__ import annotations

import warnings
from pathlib import Path

import typer
from rich.table import Table

from relscope.cli._common import console, fail, user_errors
from relscope.data.analysis_db import AnalysisDatabase
from relscope.data.attribution_db import AttributionDatabase
from relscope.data.check import ProjectReport, check_loaded_project, check_project
from relscope.data.project import (
    DOWN_SAMPLING_METHODS,
    UP_SAMPLING_METHODS,
    AnalysisSpec,
    AttributionSpec,
    DatasetSpec,
    Project,
    resolve_inside,
    save_project,
)
from relscope.errors import ConfigError, RelscopeWarning

EXIT_INVALID = 1

PROJECT_EXAMPLES = """
[bold]Examples[/bold]

  relscope project --out demo/project.yaml --name demo --model mypkg.models:cnn \\
      --label-map demo/labels.json --dataset demo/dataset.h5 \\
      --attribution demo/attribution.h5 --attribution-method epsilon_plus_flat \\
      --analysis demo/analysis.h5

  relscope project --out p/project.yaml --name imgs --model m:f --label-map p/labels.json \\
      --dataset p/images --input-size 224 224 --down-sampling center_crop
"""

VALIDATE_EXAMPLES = """
[bold]Examples[/bold]

  relscope validate demo/project.yaml
  relscope validate shared/project.yaml --allow-root /data/imagenet

Exit status: 0 valid (warnings allowed), 1 problems found, 2 unusable input.
"""


def _analysis_specs(files: list[Path], method: str | None) -> list[AnalysisSpec]:
    grouped: dict[str, list[Path]] = {}
    for file in files:
        if method is not None:
            grouped.setdefault(method, []).append(file)
            continue
        with AnalysisDatabase(file) as database:
            for name in database.analyses:
                grouped.setdefault(name, []).append(file)
    return [AnalysisSpec(name, sources) for name, sources in grouped.items()]


def _attribution_method(files: list[Path], given: str | None) -> str:
    if given:
        return given
    with AttributionDatabase(files[0]) as database:
        method = database.metadata.get("method") or {}
    name = method.get("name") if isinstance(method, dict) else None
    if not isinstance(name, str) or not name:
        raise ConfigError(
            f"{files[0]}: the file does not name its attribution method; "
            "pass --attribution-method NAME"
        )
    return name


def print_report(report: ProjectReport) -> None:
    """Print a project report as two tables."""
    facts = Table(title=f"Project {report.project.name!r}", show_header=False, box=None)
    for key, value in report.facts:
        facts.add_row(f"[bold]{key}[/bold]", value)
    console.print(facts)
    if report.findings:
        table = Table("level", "where", "finding", title="Findings")
        for finding in report.findings:
            colour = "red" if finding.level == "error" else "yellow"
            table.add_row(f"[{colour}]{finding.level}[/{colour}]", finding.where, finding.message)
        console.print(table)
    verdict = "[green]valid[/green]" if report.ok else "[red]invalid[/red]"
    console.print(
        f"{report.project.path}: {verdict} "
        f"({len(report.errors)} errors, {len(report.warnings)} warnings)"
    )


def write_project(
    out: Path,
    *,
    name: str,
    model: str,
    label_map: Path,
    dataset: Path,
    dataset_name: str | None = None,
    input_size: tuple[int, int] | None = None,
    up_sampling: str = "none",
    down_sampling: str = "none",
    attributions: list[Path] = (),
    attribution_method: str | None = None,
    attribution_strategy: str = "true_label",
    analyses: list[Path] = (),
    analysis_method: str | None = None,
    model_weights: Path | None = None,
    allow_root: list[Path] = (),
) -> ProjectReport:
    """Cross-check the files and write the project file ``out`` (replacing it).

    Raises a one-line error naming the first problem, and writes nothing, if the files do
    not agree with each other.
    """
    out = out.absolute()
    base = out.parent.resolve()
    roots = [base, *(root.resolve() for root in allow_root)]
    is_folder = dataset.is_dir()

    def inside(path: Path, *, directory: bool = False) -> Path:
        return resolve_inside(path.absolute(), base, roots, directory=directory)

    spec = DatasetSpec(
        name=dataset_name or dataset.stem,
        type="image_directory" if is_folder else "hdf5",
        path=inside(dataset, directory=is_folder),
        input_width=input_size[1] if input_size else None,
        input_height=input_size[0] if input_size else None,
        up_sampling_method=up_sampling,
        down_sampling_method=down_sampling,
    )
    for option, value, allowed in (
        ("--up-sampling", up_sampling, UP_SAMPLING_METHODS),
        ("--down-sampling", down_sampling, DOWN_SAMPLING_METHODS),
        ("--attribution-strategy", attribution_strategy, ("true_label", "predicted_label")),
    ):
        if value not in allowed:
            raise ConfigError(f"{option} must be one of {', '.join(allowed)}, got {value!r}")
    attribution_spec = None
    if attributions:
        sources = [inside(path) for path in attributions]
        attribution_spec = AttributionSpec(
            _attribution_method(sources, attribution_method), attribution_strategy, sources
        )
    project = Project(
        name=name,
        model=model,
        label_map=inside(label_map),
        dataset=spec,
        attributions=attribution_spec,
        analyses=_analysis_specs([inside(path) for path in analyses], analysis_method),
        path=out,
        model_weights=None if model_weights is None else inside(model_weights),
    )
    report = check_loaded_project(project)
    if not report.ok:
        first = report.errors[0]
        more = f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
        raise fail(f"{first.where}: {first.message}{more}; nothing was written")
    save_project(project, out, allowed_roots=allow_root)
    return report


def register(app: typer.Typer) -> None:
    """Add the commands of this module to ``app``."""

    @app.command("project", epilog=PROJECT_EXAMPLES)
    @user_errors
    def project_command(
        out: Path = typer.Option(..., "--out", "-o", help="Project file to write (YAML)."),
        name: str = typer.Option(..., help="Project name."),
        model: str = typer.Option(..., help="Model reference, e.g. package.module:factory."),
        label_map: Path = typer.Option(..., "--label-map", help="Label map JSON file."),
        dataset: Path = typer.Option(..., help="Dataset HDF5 file or image folder."),
        dataset_name: str | None = typer.Option(None, help="Dataset name [default: file name]."),
        input_size: tuple[int, int] | None = typer.Option(
            None, metavar="HEIGHT WIDTH", help="Model input size (image folders are resampled)."
        ),
        up_sampling: str = typer.Option("none", help="|".join(UP_SAMPLING_METHODS)),
        down_sampling: str = typer.Option("none", help="|".join(DOWN_SAMPLING_METHODS)),
        attribution: list[Path] = typer.Option(
            [], "--attribution", "-a", help="Attribution database (repeat for shards)."
        ),
        attribution_method: str | None = typer.Option(
            None, help="Attribution method name [default: from the attribution file]."
        ),
        attribution_strategy: str = typer.Option("true_label", help="true_label|predicted_label"),
        analysis: list[Path] = typer.Option(
            [], "--analysis", help="Analysis database (repeatable)."
        ),
        analysis_method: str | None = typer.Option(
            None, help="Analysis name for all --analysis files [default: read from the files]."
        ),
        allow_root: list[Path] = typer.Option(
            [], help="Folder outside the project folder that files may come from."
        ),
        model_weights: Path | None = typer.Option(
            None, help="Weights file of the model (relscope extra, for the designer)."
        ),
        force: bool = typer.Option(False, "--force", help="Replace an existing project file."),
    ) -> None:
        """Write a project file tying dataset, label map, attributions and analyses together.

        Every file is opened and cross-checked first; on any error nothing is written.
        """
        out = out.absolute()
        if out.exists() and not force:
            raise ConfigError(f"{out} exists; pass --force to replace it")
        report = write_project(
            out,
            name=name,
            model=model,
            label_map=label_map,
            dataset=dataset,
            dataset_name=dataset_name,
            input_size=input_size,
            up_sampling=up_sampling,
            down_sampling=down_sampling,
            attributions=attribution,
            attribution_method=attribution_method,
            attribution_strategy=attribution_strategy,
            analyses=analysis,
            analysis_method=analysis_method,
            model_weights=model_weights,
            allow_root=allow_root,
        )
        print_report(report)
        console.print(f"wrote {out}")

    @app.command("validate", epilog=VALIDATE_EXAMPLES)
    @user_errors
    def validate_command(
        project_file: Path = typer.Argument(..., metavar="PROJECT", help="Project YAML file."),
        allow_root: list[Path] = typer.Option(
            [], help="Folder outside the project folder that files may come from."
        ),
    ) -> None:
        """Check a project folder: every file opens and the files agree with each other."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RelscopeWarning)
            report = check_project(project_file, allowed_roots=allow_root)
        print_report(report)
        if not report.ok:
            raise typer.Exit(EXIT_INVALID)
