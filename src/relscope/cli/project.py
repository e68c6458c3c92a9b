"""``relscope project`` (write a project file) and ``relscope validate`` (check one)."""

from __future__ import annotations

import warnings
from pathlib import Path

import typer

from relscope.cli._common import console, print_report, user_errors
from relscope.data.check import check_project
from relscope.data.project import DOWN_SAMPLING_METHODS, UP_SAMPLING_METHODS
from relscope.engine.project import write_project
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
