"""``relscope attribute``: a dataset through a model and an attribution method, to disk.

:func:`attribute_dataset` is the engine (also used by ``relscope run`` and the demo): it
streams batches from a DataLoader through the attributor and into an
:class:`~relscope.data.attribution_db.AttributionWriter`, so memory does not grow with the
dataset, and an interrupted run continues where its last durable segment ended.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import typer
import yaml
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text
from torch.utils.data import DataLoader, Subset

from relscope.attribution.config import MethodConfig, method_config
from relscope.attribution.parameters import ParameterError
from relscope.cli._common import (
    console,
    error_console,
    parse_classes,
    read_yaml_file,
    user_errors,
)
from relscope.data.attribution_db import AttributionDatabase, AttributionWriter
from relscope.data.dataset import ImageDataset, open_dataset
from relscope.data.labels import load_label_map
from relscope.data.model import load_model
from relscope.errors import ConfigError

__all__ = [
    "STRATEGIES",
    "AttributionRun",
    "attribute_dataset",
    "holds_attributions",
    "load_method",
    "resolve_device",
    "selected_samples",
    "stored_method",
]

STRATEGIES = ("true_label", "predicted_label")

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

An interrupted run keeps every completed segment: the same command resumes it.
"""


@dataclass(frozen=True)
class AttributionRun:
    """What :func:`attribute_dataset` did."""

    path: Path
    samples: int
    resumed: int
    seconds: float
    accuracy: float | None

    @property
    def samples_per_second(self) -> float:
        """Throughput of this run (samples attributed now / seconds)."""
        done = self.samples - self.resumed
        return done / self.seconds if self.seconds > 0 else float("nan")


def resolve_device(device: str) -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available on this machine")
    return resolved


def load_method(method: str, params: Sequence[str] = ()) -> MethodConfig:
    """A method by name with ``key=value`` params, or a JSON/YAML configuration file.

    A parameter the method does not take, or a value of the wrong type, is refused in one
    line naming the ``-p`` item, the parameter and the type expected.
    """
    path = Path(method)
    if path.suffix.lower() in (".json", ".yaml", ".yml"):
        if params:
            raise ConfigError("--param applies to a method name, not to a configuration file")
        return method_config(read_yaml_file(path, "attribution configuration file", "JSON/YAML"))
    values = parse_params(params, "-p")
    try:
        return method_config({"method": method, "params": values})
    except ParameterError as error:
        # The last item of a repeated name is the one that counts, as in parse_params.
        items = {item.partition("=")[0].strip(): item for item in params}
        if error.name not in items:
            raise
        raise ConfigError(error.at(f"-p {items[error.name]}")) from None


def parse_params(items: Sequence[str], option: str) -> dict[str, Any]:
    """``name=value`` items into a dict; values are read as YAML scalars or lists."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{option} {item}: expected name=value")
        try:
            # Numbers, booleans, null and lists ("[1, 2]") as a user would type them.
            values[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            raise ConfigError(f"{option} {item!r}: the value is not valid YAML") from None
    return values


def stored_method(config: MethodConfig, strategy: str) -> dict[str, Any]:
    """The ``method`` metadata an attribution database of these settings holds."""
    return {**config.to_dict(), "strategy": strategy}


def holds_attributions(
    path: Path, method: dict[str, Any], index: np.ndarray, model: str | None = None
) -> bool:
    """Whether the database ``path`` holds the rows ``index`` made with ``method`` (and, if
    given, the model reference ``model``)."""
    with AttributionDatabase(path) as existing:
        metadata = existing.metadata
        same = metadata.get("method") == method and np.array_equal(existing.indices, index)
        return same and (model is None or metadata.get("model") == model)


def selected_samples(dataset: ImageDataset, classes: Sequence[int] | None) -> np.ndarray:
    """Dataset positions of the samples labelled with one of ``classes`` (None: all)."""
    labels = np.asarray(dataset.labels())
    if classes is None:
        return np.arange(len(dataset), dtype=np.int64)
    classes = list(classes)
    if labels.ndim == 2:
        wanted = [c for c in classes if c < labels.shape[1]]
        keep = labels[:, wanted].any(axis=1) if wanted else np.zeros(len(labels), bool)
    else:
        keep = np.isin(labels, classes)
    if not keep.any():
        raise ConfigError(f"classes {classes}: no sample of the dataset has these labels")
    return np.flatnonzero(keep).astype(np.int64)


class _Rate(ProgressColumn):
    """Samples per second of the running task."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(
            f"{speed:,.1f} samples/s" if speed else "- samples/s", style="progress.data.speed"
        )


def attribute_dataset(
    dataset: ImageDataset,
    model: torch.nn.Module,
    config: MethodConfig,
    out: str | Path,
    *,
    strategy: str = "true_label",
    classes: Sequence[int] | None = None,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    num_workers: int = 0,
    model_name: str = "",
    overwrite: bool = False,
    segment_rows: int | None = None,
    progress: bool = True,
    on_batch: Callable[[int], None] | None = None,
) -> AttributionRun:
    """Attribute the selected samples of ``dataset`` and write the attribution database.

    ``strategy`` explains the true label or the predicted class; ``classes`` keeps the
    samples with these labels (default: all). If ``out`` already exists complete it is kept
    (``overwrite`` redoes it); if an earlier run was interrupted, its completed segments are
    kept and only the rest is computed. ``on_batch`` is called with the number of samples
    done after every batch.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError(f"batch size must be a positive integer, got {batch_size}")
    if strategy == "true_label" and dataset.multi_label:
        raise ConfigError(
            "strategy true_label needs single-label data; use predicted_label for multi-label"
        )
    out = Path(out)
    device = torch.device(device)
    index = selected_samples(dataset, parse_classes(list(classes)) if classes is not None else None)
    method = stored_method(config, strategy)
    if out.is_file() and not overwrite:
        if not holds_attributions(out, method, index):
            raise ConfigError(
                f"{out} holds attributions of other settings (method, strategy or samples); "
                "pass --overwrite to replace it"
            )
        console.print(f"{out} is complete already: kept (overwrite to redo it)")
        return AttributionRun(out, len(index), len(index), 0.0, None)
    if overwrite and out.is_file():
        out.unlink()
    model = model.to(device).eval()
    first = dataset[int(index[0])][0]
    with torch.no_grad():
        outputs = model(first[None].to(device))
    if outputs.ndim != 2:
        raise ConfigError(
            f"the model must return (batch, classes) outputs, got {tuple(outputs.shape)}"
        )
    attributor = config.attributor()
    labels = np.asarray(dataset.labels())
    writer = AttributionWriter(
        out,
        index,
        shape=tuple(first.shape),
        num_outputs=int(outputs.shape[1]),
        num_labels=labels.shape[1] if labels.ndim == 2 else None,
        method=method,
        model=model_name,
        segment_rows=segment_rows,
    )
    pending = writer.pending_index()
    resumed = len(index) - len(pending)
    loader = DataLoader(
        Subset(dataset, pending.tolist()),
        batch_size=batch_size,
        num_workers=num_workers,
        shuffle=False,
        pin_memory=device.type == "cuda",
    )
    correct = 0
    start = time.perf_counter()
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
               _Rate(), TimeElapsedColumn(), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=True, disable=not progress) as bar:
        task = bar.add_task("attribute", total=len(index), completed=resumed)
        done = 0
        for images, _ in loader:
            rows = pending[done : done + len(images)]
            batch_labels = labels[rows]
            target = None if strategy == "predicted_label" else torch.as_tensor(batch_labels)
            result = attributor(model, images.to(device, non_blocking=True), target)
            output = result.output.detach().float().cpu().numpy()
            relevance = result.relevance.detach().float().cpu().numpy()
            if labels.ndim == 1:
                correct += int((output.argmax(1) == batch_labels).sum())
            writer.add(relevance, batch_labels, output)
            done += len(images)
            bar.advance(task, len(images))
            if on_batch is not None:
                on_batch(done)
    writer.close()
    seconds = time.perf_counter() - start
    accuracy = correct / done if done and labels.ndim == 1 else None
    return AttributionRun(out, len(index), resumed, seconds, accuracy)


def open_input(
    path: Path,
    *,
    input_size: tuple[int, int] | None = None,
    up_sampling: str = "none",
    down_sampling: str = "none",
    label_map: Path | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> ImageDataset:
    """The dataset at ``path`` (HDF5 or image folder), normalized with ``mean``/``std``."""
    transform = _normalization(mean, std)
    if path.is_dir():
        options: dict[str, Any] = {"up_sampling": up_sampling, "down_sampling": down_sampling}
        if input_size is not None:
            options["size"] = tuple(input_size)
        if label_map is not None:
            options["label_map"] = load_label_map(label_map)
        return open_dataset(path, kind="image_directory", transform=transform, **options)
    if input_size is not None or up_sampling != "none" or down_sampling != "none":
        raise ConfigError("--input-size and the sampling methods apply to image folders only")
    return open_dataset(path, kind="hdf5", transform=transform)


class _Normalize:
    """``(x - mean) / std`` per channel (a picklable transform for DataLoader workers)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = torch.tensor(list(mean), dtype=torch.float32)[:, None, None]
        self.std = torch.tensor(list(std), dtype=torch.float32)[:, None, None]

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if image.shape[0] != self.mean.shape[0]:
            raise ConfigError(
                f"--mean/--std give {self.mean.shape[0]} channels, the image has {image.shape[0]}"
            )
        return (image - self.mean) / self.std


def _normalization(mean: Sequence[float] | None, std: Sequence[float] | None) -> _Normalize | None:
    if mean is None and std is None:
        return None
    if mean is None or std is None or len(mean) != len(std):
        raise ConfigError("--mean and --std go together, with one value per channel each")
    if any(s <= 0 for s in std):
        raise ConfigError(f"--std values must be positive, got {list(std)}")
    return _Normalize(mean, std)


def _floats(text: str | None, option: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"{option} must be comma-separated numbers, got {text!r}") from None


def print_run(run: AttributionRun) -> None:
    """One summary line of an attribution run."""
    parts = [f"{run.samples} samples"]
    if run.resumed:
        parts.append(f"{run.resumed} kept from an earlier run")
    if run.samples > run.resumed:
        parts.append(f"{run.seconds:.1f} s, {run.samples_per_second:.1f} samples/s")
    if run.accuracy is not None:
        parts.append(f"accuracy {run.accuracy:.1%}")
    console.print(f"wrote {run.path}: " + ", ".join(parts))


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
        workers: int = typer.Option(0, min=0, help="DataLoader worker processes."),
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
        segment_rows: int | None = typer.Option(
            None, min=1, help="Rows per durable segment (what an interruption can lose)."
        ),
        overwrite: bool = typer.Option(False, "--overwrite", help="Redo a complete output."),
    ) -> None:
        """Attribute every sample (or the given classes) of a dataset into an HDF5 database."""
        config = load_method(method, param)
        resolved = resolve_device(device)
        data = open_input(
            dataset,
            input_size=input_size,
            up_sampling=up_sampling,
            down_sampling=down_sampling,
            label_map=label_map,
            mean=_floats(mean, "--mean"),
            std=_floats(std, "--std"),
        )
        network = load_model(
            model,
            weights,
            params=parse_params(model_param, "--model-param"),
            device=resolved,
            allow_pickle=allow_pickle,
        )
        console.print(
            f"attributing {dataset} with {config.name} ({json.dumps(config.to_dict())}) "
            f"on {resolved}"
        )
        try:
            run = attribute_dataset(
                data,
                network,
                config,
                out,
                strategy=strategy,
                classes=parse_classes(classes, "--classes"),
                batch_size=batch_size,
                device=resolved,
                num_workers=workers,
                model_name=model,
                overwrite=overwrite,
                segment_rows=segment_rows,
            )
        except KeyboardInterrupt:
            error_console.print(
                "relscope: interrupted; completed segments are kept, run the same command to resume"
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None
        print_run(run)
