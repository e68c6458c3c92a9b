"""``relscope demo``: the main job end to end on shipped data, with nothing from the user.

The work is :func:`relscope.engine.demo` (a Clever-Hans task on MNIST digits: a planted
square, a small CNN or vision transformer trained on it, LRP, SpRAy, a complete project
folder). This command
shows its steps, reports the classes ranked by tau and the cluster holding the artifact,
and serves the project in the web application when relscope has one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from relscope.app.links import view_fragment
from relscope.cli._common import (
    ConsoleProgress,
    console,
    parse_classes,
    user_errors,
    warn_if_not_built,
)
from relscope.engine.mnist_demo import MODELS, DemoResult, demo
from relscope.errors import ConfigError

DEMO_EXAMPLES = """
[bold]Examples[/bold]

  relscope demo                                   # writes ./relscope-demo
  relscope demo --out /tmp/demo --per-class 200 --classes 1,3,7 --no-umap --force
  relscope demo --model vit --out vit-demo        # a small ViT explained with AttnLRP
"""


def explorer_link(result: DemoResult) -> str:
    """The Explorer URL fragment of the poisoned class, its artifact cluster selected."""
    found = result.artifact
    return view_fragment(
        "spray", result.poisoned_category, clustering=found.clustering if found else None,
        selection=result.cluster_members, size=result.category_size, mode="overlay",
    )  # fmt: skip


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

    project = result.project
    link = explorer_link(result)
    if not serve:
        console.print(
            f"The project is complete: {project}. Explore it with `relscope serve {project}`; "
            f"the view of the artifact cluster is the printed address followed by {link}"
        )
        return

    def announce(url: str) -> None:
        warn_if_not_built(url)
        console.print(
            f"[bold]Explorer:[/bold] {url}{link}\n(opens the class with the planted "
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
        model: str = typer.Option(
            "cnn", help=f"Model to train and explain: {'|'.join(MODELS)} (vit: AttnLRP)."
        ),
        epochs: int | None = typer.Option(
            None, min=1, help="Training epochs (default: 3 for the CNN, 8 for the ViT)."
        ),
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
        if model not in MODELS:
            raise ConfigError(f"--model must be one of {', '.join(MODELS)}, got {model!r}")
        if out.exists() and any(out.iterdir()):
            if not force:
                raise ConfigError(f"{out} exists and is not empty; pass --force to replace it")
            shutil.rmtree(out)
        chosen = parse_classes(classes, "--classes")
        with ConsoleProgress(stamp=True) as progress:
            result = demo(
                out,
                per_class=per_class,
                classes=chosen,
                poisoned_class=poisoned_class,
                fraction=fraction,
                epochs=epochs,
                seed=seed,
                model=model,
                jobs=jobs,
                umap=umap,
                tsne=tsne,
                progress=progress,
            )
        _report(result, poisoned_class, len(result.ranking))
        _serve_or_explain(result, serve, host, port)
