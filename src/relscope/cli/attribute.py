"""``relscope attribute``: a dataset through a model and an attribution method, to disk.

The work is :func:`relscope.engine.attribute`; this command parses the options, loads the
inputs, and shows the progress and the summary.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from relscope.cli._common import (
    ConsoleProgress,
    console,
    error_console,
    parse_classes,
    user_errors,
)
from relscope.data.model import load_model
from relscope.engine.attribution import attribute_dataset
from relscope.engine.engines import open_backend
from relscope.engine.inputs import (
    load_method,
    open_input,
    parse_floats,
    parse_params,
    resolve_device,
)

#: Exit status after Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130

EXAMPLES = """
[bold]Examples[/bold]

  relscope attribute data.h5 --model mypkg.models:cnn --weights cnn.pt \\
      --method epsilon_gamma_box --param low=0 --param high=1 --out attribution.h5

  relscope attribute images/ --input-size 224 224 --down-sampling resize \\
      --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 \\
      --model torchvision.models:vgg16 --weights vgg16.pt --method designer-export.json \\
      --strategy predicted_label --classes 3,7 --batch-size 32 --device cuda --out a.h5

  relscope attribute data.h5 --model mypkg.models:cnn --weights cnn.pt --out a.h5 \\
      --engine ray --address head:6379 --workers 8 --gpus-per-worker 1

An interrupted run keeps every completed segment: the same command resumes it. With
`--engine ray` the samples are cut into shards (a-00000-of-00012.h5, ...), written by the
workers from the dataset's path (every node must see it; `--stream` sends the batches
instead); a rerun computes only the missing shards.
"""


def register(app: typer.Typer) -> None:
    """Add ``relscope attribute`` to ``app``."""

    @app.command("attribute", epilog=EXAMPLES)
    @user_errors
    def attribute(
        dataset: Path = typer.Argument(..., help="Dataset: HDF5 file or image folder."),
        model: str = typer.Option(..., help="Model factory, package.module:factory."),
        out: Path = typer.Option(..., "--out", "-o", help="Attribution database to write."),
        method: str = typer.Option(
            "epsilon_plus_flat", help="Composite or method name, or a JSON/YAML configuration."
        ),
        param: list[str] = typer.Option([], "--param", "-p", help="Method parameter name=value."),
        weights: Path | None = typer.Option(None, help="Weights file (.pt/.pth/.safetensors)."),
        model_param: list[str] = typer.Option(
            [], "--model-param", help="Keyword argument of the model factory, name=value."
        ),
        allow_pickle: bool = typer.Option(
            False, "--allow-pickle", help="Unpickle a trusted weights file (runs its code)."
        ),
        strategy: str = typer.Option("true_label", help="true_label|predicted_label"),
        classes: str = typer.Option("", help="Comma-separated class indices (default: all)."),
        batch_size: int = typer.Option(32, "--batch-size", min=1, help="Samples per batch."),
        device: str = typer.Option("auto", help="auto|cpu|cuda|cuda:N"),
        workers: int = typer.Option(
            0,
            min=0,
            help="local: DataLoader worker processes; ray: workers (0: as many as the "
            "cluster's CPUs or GPUs hold).",
        ),
        engine: str = typer.Option("local", help="local|ray: where the batches run."),
        address: str | None = typer.Option(
            None, help="Ray cluster address (default: a local Ray for this run)."
        ),
        cpus_per_worker: float = typer.Option(1.0, min=0.01, help="Ray: CPUs per worker."),
        gpus_per_worker: float = typer.Option(0.0, min=0, help="Ray: GPUs per worker."),
        shard_size: int | None = typer.Option(
            None, min=1, help="Ray: samples per shard (rounded up to whole batches)."
        ),
        stream: bool = typer.Option(
            False, "--stream", help="Ray: send batches to the workers, write shards here."
        ),
        input_size: tuple[int, int] | None = typer.Option(
            None, metavar="HEIGHT WIDTH", help="Resample image-folder images to this size."
        ),
        up_sampling: str = typer.Option("none", help="Image folders: up-sampling method."),
        down_sampling: str = typer.Option("none", help="Image folders: down-sampling method."),
        label_map: Path | None = typer.Option(None, help="Label map JSON for image folders."),
        mean: str | None = typer.Option(
            None, help="Per-channel mean to subtract, e.g. 0.5,0.5,0.5"
        ),
        std: str | None = typer.Option(None, help="Per-channel std to divide by."),
        block_rows: int | None = typer.Option(
            None, min=1, help="Rows per durable block (what an interruption can lose)."
        ),
        segment_rows: int | None = typer.Option(
            None, "--segment-rows", min=1, hidden=True, help="The old name of --block-rows."
        ),
        overwrite: bool = typer.Option(False, "--overwrite", help="Redo a complete output."),
    ) -> None:
        """Attribute every sample (or the given classes) of a dataset into an HDF5 database."""
        config = load_method(method, param)
        ray = engine == "ray"
        # On Ray the device is chosen by each worker ("auto": the GPU it was given).
        resolved = resolve_device("cpu" if ray else device)
        data = open_input(
            dataset,
            input_size=input_size,
            up_sampling=up_sampling,
            down_sampling=down_sampling,
            label_map=label_map,
            mean=parse_floats(mean, "--mean"),
            std=parse_floats(std, "--std"),
        )
        network = load_model(
            model,
            weights,
            params=parse_params(model_param, "--model-param"),
            device=resolved,
            allow_pickle=allow_pickle,
        )
        where = f"Ray ({address or 'local'})" if ray else str(resolved)
        console.print(
            f"attributing {dataset} with {config.name} ({json.dumps(config.to_dict())}) on {where}"
        )
        try:
            with (
                open_backend(
                    engine,
                    address=address,
                    workers=workers or None,
                    cpus_per_worker=cpus_per_worker,
                    gpus_per_worker=gpus_per_worker,
                ) as backend,
                ConsoleProgress() as progress,
            ):
                attribute_dataset(
                    data,
                    network,
                    config,
                    out,
                    strategy=strategy,
                    classes=parse_classes(classes, "--classes"),
                    batch_size=batch_size,
                    device=device if ray else resolved,
                    num_workers=0 if ray else workers,
                    model_name=model,
                    overwrite=overwrite,
                    block_rows=block_rows if block_rows is not None else segment_rows,
                    progress=progress,
                    backend=backend,
                    shard_size=shard_size,
                    stream=stream,
                )
        except KeyboardInterrupt:
            error_console.print(
                "relscope: interrupted; completed segments are kept, run the same command to resume"
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None
