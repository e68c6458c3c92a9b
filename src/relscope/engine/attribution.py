"""Attribute a dataset: batches from a DataLoader through the attributor into attribution
databases, in constant memory.

Rows are written in durable blocks (:class:`~relscope.data.attribution_db.AttributionWriter`
calls them segments): an interrupted run keeps its completed blocks and the same call
continues after the last of them.

On a distributed backend (``backend.distributed``, or when ``shard_size`` is given) the
selected samples are cut into shards whose bounds fall on batch bounds, and every shard is
written as its own database (``<out stem>-00003-of-00012.h5``): the batches are then the
batches of one process, so the rows are the same. Each worker holds the model (on its GPU
when it has one) and writes whole shards, reading the dataset from its path (every node must
see it); with ``stream`` the caller reads the dataset instead, sends batches through the
backend and writes the shards itself (no shared filesystem needed). A rerun computes only
the missing shards, and a shard interrupted with its worker continues after its last
completed block.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from relscope.attribution.config import MethodConfig
from relscope.data.attribution_db import AttributionDatabase, AttributionWriter
from relscope.data.dataset import ImageDataset
from relscope.engine.backend import Backend, Report, or_local
from relscope.engine.inputs import parse_classes
from relscope.engine.progress import Progress, or_silent
from relscope.errors import ConfigError

__all__ = [
    "STRATEGIES",
    "AttributionRun",
    "ShardRun",
    "attribute",
    "attribute_dataset",
    "holds_attributions",
    "plan_shards",
    "selected_samples",
    "shard_paths",
    "stored_method",
]

STRATEGIES = ("true_label", "predicted_label")

#: The progress task of :func:`attribute` (its units are samples).
TASK = "attribute"

#: Samples per shard at most, by default: ImageNet's 1.28 M images make ~310 shards of about
#: 2.4 GB of float32 attributions each (VGG-16 inputs), few enough files, small enough
#: retries.
MAX_SHARD_SIZE = 4096
#: Samples per shard at least, by default: a shard costs a file and a merge.
MIN_SHARD_SIZE = 256


@dataclass(frozen=True)
class ShardRun:
    """One shard of a sharded run: its database, samples (kept from an earlier run), the
    seconds its worker spent on it, and the worker (``host:pid``; empty when it was kept)."""

    path: Path
    samples: int
    resumed: int
    seconds: float
    worker: str = ""


@dataclass(frozen=True)
class AttributionRun:
    """What :func:`attribute` did.

    ``path`` is the output asked for; a sharded run wrote ``shards`` instead (the files a
    project lists as its attribution sources, :attr:`files`).
    """

    path: Path
    samples: int
    resumed: int
    seconds: float
    accuracy: float | None
    shards: tuple[ShardRun, ...] = ()

    @property
    def samples_per_second(self) -> float:
        """Throughput of this run (samples attributed now / seconds)."""
        done = self.samples - self.resumed
        return done / self.seconds if self.seconds > 0 else float("nan")

    @property
    def files(self) -> list[Path]:
        """The attribution databases holding the rows: the shards, or ``path``."""
        return [shard.path for shard in self.shards] if self.shards else [self.path]


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


def plan_shards(
    index: np.ndarray, batch_size: int, shard_size: int | None = None
) -> list[np.ndarray]:
    """``index`` cut into shards of ``shard_size`` samples rounded up to whole batches.

    The default depends on the number of samples only (not on the workers), so that a rerun
    with other workers finds the same shards: a sixteenth of the samples, within
    :data:`MIN_SHARD_SIZE` .. :data:`MAX_SHARD_SIZE`.
    """
    if shard_size is None:
        shard_size = min(MAX_SHARD_SIZE, max(MIN_SHARD_SIZE, math.ceil(len(index) / 16)))
    if isinstance(shard_size, bool) or shard_size < 1:
        raise ConfigError(f"shard size must be a positive integer, got {shard_size}")
    # Shard bounds on batch bounds: every batch is a batch of the one-process run.
    size = math.ceil(shard_size / batch_size) * batch_size
    return [index[start : start + size] for start in range(0, len(index), size)]


def shard_paths(out: Path, count: int) -> list[Path]:
    """The databases of ``count`` shards of ``out``: ``<stem>-00000-of-<count><suffix>``."""
    suffix = out.suffix or ".h5"
    return [out.with_name(f"{out.stem}-{k:05d}-of-{count:05d}{suffix}") for k in range(count)]


@dataclass(frozen=True)
class _Settings:
    """Everything a worker needs besides the model and the dataset (picklable)."""

    config: MethodConfig
    strategy: str
    method: dict[str, Any]
    model_name: str
    shape: tuple[int, ...]
    num_outputs: int
    num_labels: int | None
    batch_size: int
    num_workers: int
    block_rows: int | None
    device: str


class _Worker:
    """A worker's state: the model on its device, the attributor, the dataset's labels."""

    def __init__(self, model: torch.nn.Module, dataset: ImageDataset | None, settings: _Settings):
        device = settings.device
        if device == "auto":  # a Ray worker sees exactly the GPUs it was given
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.attributor = settings.config.attributor()
        self.dataset = dataset
        self.labels = None if dataset is None else np.asarray(dataset.labels())
        self.settings = settings
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def explain(self, images: torch.Tensor, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Relevance and outputs of one batch, on the CPU."""
        target = None if self.settings.strategy == "predicted_label" else torch.as_tensor(labels)
        result = self.attributor(self.model, images.to(self.device, non_blocking=True), target)
        return (
            result.relevance.detach().float().cpu().numpy(),
            result.output.detach().float().cpu().numpy(),
        )


class _Setup:
    """Builds a :class:`_Worker` in the worker (shipped once to every worker)."""

    def __init__(self, model: torch.nn.Module, dataset: ImageDataset | None, settings: _Settings):
        self.model, self.dataset, self.settings = model, dataset, settings

    def __call__(self) -> _Worker:
        return _Worker(self.model, self.dataset, self.settings)


def _writer(path: Path, rows: np.ndarray, settings: _Settings) -> AttributionWriter:
    return AttributionWriter(
        path,
        rows,
        shape=settings.shape,
        num_outputs=settings.num_outputs,
        num_labels=settings.num_labels,
        method=settings.method,
        model=settings.model_name,
        segment_rows=settings.block_rows,
    )


def _write(
    worker: _Worker, writer: AttributionWriter, advance: Callable[[int], None]
) -> tuple[int, int]:
    """Attribute the pending rows of ``writer`` and close it: ``(rows done, correct)``."""
    assert worker.dataset is not None
    assert worker.labels is not None
    settings, labels = worker.settings, worker.labels
    pending = writer.pending_index()
    loader = DataLoader(
        Subset(worker.dataset, pending.tolist()),
        batch_size=settings.batch_size,
        num_workers=settings.num_workers,
        shuffle=False,
        pin_memory=worker.device.type == "cuda",
    )
    correct = done = 0
    for images, _ in loader:
        batch_labels = labels[pending[done : done + len(images)]]
        relevance, output = worker.explain(images, batch_labels)
        if labels.ndim == 1:
            correct += int((output.argmax(1) == batch_labels).sum())
        writer.add(relevance, batch_labels, output)
        done += len(images)
        advance(len(images))
    writer.close()
    return done, correct


def _shard(worker: _Worker, shard: tuple[Path, np.ndarray], report: Report) -> tuple[ShardRun, int]:
    """One shard in a worker: its database written from its rows. ``(run, correct)``."""
    path, rows = shard
    start = time.perf_counter()
    writer = _writer(path, rows, worker.settings)
    resumed = len(rows) - len(writer.pending_index())
    total = [resumed]
    report(resumed)

    def advance(n: int) -> None:
        total[0] += n
        report(total[0])

    _, correct = _write(worker, writer, advance)
    seconds = time.perf_counter() - start
    return ShardRun(path, len(rows), resumed, seconds, worker.name), correct


def _batch(
    worker: _Worker, item: tuple[int, torch.Tensor, np.ndarray], report: Report
) -> tuple[np.ndarray, np.ndarray]:
    """One streamed batch in a worker: ``(relevance, output)``."""
    return worker.explain(item[1], item[2])


def attribute(
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
    block_rows: int | None = None,
    progress: Progress | None = None,
    backend: Backend | None = None,
    shard_size: int | None = None,
    stream: bool = False,
) -> AttributionRun:
    """Attribute the selected samples of ``dataset`` and write the attribution database(s).

    ``strategy`` explains the true label or the predicted class; ``classes`` keeps the
    samples with these labels (default: all). If ``out`` already exists complete it is kept
    (``overwrite`` redoes it); if an earlier run was interrupted, its completed blocks of
    ``block_rows`` rows (default: about 32 MiB of attributions) are kept and only the rest
    is computed. ``progress`` hears the task ``"attribute"`` in samples, and the run as a
    report.

    Without a distributed ``backend`` and without ``shard_size`` everything runs in this
    process into the one file ``out``. Otherwise the samples are written as shards of
    ``shard_size`` samples (default: :func:`plan_shards`) by the backend's workers, each
    on ``device`` (``"auto"``: the worker's GPU if it has one); ``stream`` reads the
    dataset here and sends the batches to the workers, for clusters without a shared
    filesystem.
    """
    progress = or_silent(progress)
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError(f"batch size must be a positive integer, got {batch_size}")
    if strategy == "true_label" and dataset.multi_label:
        raise ConfigError(
            "strategy true_label needs single-label data; use predicted_label for multi-label"
        )
    out = Path(out)
    index = selected_samples(dataset, parse_classes(list(classes)) if classes is not None else None)
    method = stored_method(config, strategy)
    sharded = shard_size is not None or stream or bool(getattr(backend, "distributed", False))
    if not sharded:
        return _one_file(
            dataset, model, config, out, index, method, strategy, batch_size,
            torch.device(device), num_workers, model_name, overwrite, block_rows, progress,
        )  # fmt: skip
    return _sharded(
        dataset, model, out, index, plan_shards(index, batch_size, shard_size), overwrite,
        progress, or_local(backend), stream,
        _settings(dataset, model, config, strategy, method, model_name, batch_size,
                  num_workers, block_rows, str(device), index),
    )  # fmt: skip


def _probe(
    dataset: ImageDataset, model: torch.nn.Module, index: np.ndarray, device: torch.device
) -> tuple[tuple[int, ...], int]:
    """Shape of one input and number of outputs, from one sample through the model."""
    first = dataset[int(index[0])][0]
    with torch.no_grad():
        outputs = model(first[None].to(device))
    if outputs.ndim != 2:
        raise ConfigError(
            f"the model must return (batch, classes) outputs, got {tuple(outputs.shape)}"
        )
    return tuple(first.shape), int(outputs.shape[1])


def _settings(
    dataset: ImageDataset,
    model: torch.nn.Module,
    config: MethodConfig,
    strategy: str,
    method: dict[str, Any],
    model_name: str,
    batch_size: int,
    num_workers: int,
    block_rows: int | None,
    device: str,
    index: np.ndarray,
) -> _Settings:
    model.eval()
    probe_device = next((p.device for p in model.parameters()), torch.device("cpu"))
    shape, num_outputs = _probe(dataset, model, index, probe_device)
    labels = np.asarray(dataset.labels())
    return _Settings(
        config, strategy, method, model_name, shape, num_outputs,
        labels.shape[1] if labels.ndim == 2 else None, batch_size, num_workers, block_rows,
        device,
    )  # fmt: skip


def _one_file(
    dataset: ImageDataset,
    model: torch.nn.Module,
    config: MethodConfig,
    out: Path,
    index: np.ndarray,
    method: dict[str, Any],
    strategy: str,
    batch_size: int,
    device: torch.device,
    num_workers: int,
    model_name: str,
    overwrite: bool,
    block_rows: int | None,
    progress: Progress,
) -> AttributionRun:
    """The reference: every sample in this process, into ``out``."""
    if out.is_file() and not overwrite:
        if not holds_attributions(out, method, index):
            raise ConfigError(
                f"{out} holds attributions of other settings (method, strategy or samples); "
                "pass --overwrite to replace it"
            )
        progress.message(f"{out} is complete already: kept (overwrite to redo it)")
        run = AttributionRun(out, len(index), len(index), 0.0, None)
        progress.report(run)
        return run
    if overwrite and out.is_file():
        out.unlink()
    model = model.to(device).eval()
    shape, num_outputs = _probe(dataset, model, index, device)
    labels = np.asarray(dataset.labels())
    settings = _Settings(
        config, strategy, method, model_name, shape, num_outputs,
        labels.shape[1] if labels.ndim == 2 else None, batch_size, num_workers, block_rows,
        str(device),
    )  # fmt: skip
    worker = _Worker(model, dataset, settings)
    writer = _writer(out, index, settings)
    resumed = len(index) - len(writer.pending_index())
    start = time.perf_counter()
    progress.start(TASK, len(index), resumed)
    try:
        done, correct = _write(worker, writer, lambda n: progress.advance(TASK, n))
    finally:
        progress.finish(TASK)
    seconds = time.perf_counter() - start
    accuracy = correct / done if done and labels.ndim == 1 else None
    run = AttributionRun(out, len(index), resumed, seconds, accuracy)
    progress.report(run)
    return run


def _sharded(
    dataset: ImageDataset,
    model: torch.nn.Module,
    out: Path,
    index: np.ndarray,
    shards: list[np.ndarray],
    overwrite: bool,
    progress: Progress,
    backend: Backend,
    stream: bool,
    settings: _Settings,
) -> AttributionRun:
    """The shards of ``index``: the missing ones written by the backend's workers."""
    paths = shard_paths(out, len(shards))
    kept: dict[Path, ShardRun] = {}
    todo: list[tuple[Path, np.ndarray]] = []
    for path, rows in zip(paths, shards, strict=True):
        if path.is_file() and not overwrite:
            if not holds_attributions(path, settings.method, rows):
                raise ConfigError(
                    f"{path} holds attributions of other settings (method, strategy, samples "
                    "or shard size); pass --overwrite to replace it"
                )
            kept[path] = ShardRun(path, len(rows), len(rows), 0.0)
            continue
        if path.is_file():
            path.unlink()
        todo.append((path, rows))
    if kept:
        progress.message(
            f"{len(kept)} of {len(paths)} shards of {out.name} are complete already: kept"
        )
    done_before = sum(run.samples for run in kept.values())
    start = time.perf_counter()
    progress.start(TASK, len(index), done_before)
    try:
        if stream:
            written, correct = _stream(dataset, model, todo, backend, progress, settings)
        else:
            setup = _Setup(model, dataset, settings)
            written, correct = {}, 0
            pieces = backend.map_workers(
                setup, _shard, todo, progress=lambda n: progress.advance(TASK, n)
            )
            for _, (run, right) in pieces:
                written[run.path] = run
                correct += right
    finally:
        progress.finish(TASK)
    seconds = time.perf_counter() - start
    runs = tuple(kept.get(path) or written[path] for path in paths)
    resumed = sum(run.resumed for run in runs)
    done = len(index) - resumed
    single_label = settings.num_labels is None
    accuracy = correct / done if done and single_label else None
    run = AttributionRun(out, len(index), resumed, seconds, accuracy, runs)
    progress.report(run)
    return run


def _stream(
    dataset: ImageDataset,
    model: torch.nn.Module,
    todo: list[tuple[Path, np.ndarray]],
    backend: Backend,
    progress: Progress,
    settings: _Settings,
) -> tuple[dict[Path, ShardRun], int]:
    """Batches read here, explained by the workers, written here in order, shard by shard."""
    labels = np.asarray(dataset.labels())
    open_shards: dict[int, tuple[AttributionWriter, list[int]]] = {}  # shard: writer, [left]
    written: dict[Path, ShardRun] = {}
    order: list[tuple[int, np.ndarray]] = []  # per batch sequence number: shard, label rows
    start = time.perf_counter()

    def finish(shard: int) -> None:
        writer, _ = open_shards.pop(shard)
        writer.close()
        rows = len(writer.index)
        resumed = rows - writer_pending[shard]
        written[writer.path] = ShardRun(
            writer.path, rows, resumed, time.perf_counter() - start, "stream"
        )

    writer_pending: dict[int, int] = {}

    def batches() -> Iterator[tuple[int, torch.Tensor, np.ndarray]]:
        for number, (path, rows) in enumerate(todo):
            writer = _writer(path, rows, settings)
            pending = writer.pending_index()
            writer_pending[number] = len(pending)
            open_shards[number] = (writer, [len(pending)])
            progress.advance(TASK, len(rows) - len(pending))
            if not len(pending):
                finish(number)
                continue
            loader = DataLoader(
                Subset(dataset, pending.tolist()),
                batch_size=settings.batch_size,
                num_workers=settings.num_workers,
                shuffle=False,
            )
            done = 0
            for images, _ in loader:
                batch_labels = labels[pending[done : done + len(images)]]
                done += len(images)
                order.append((number, batch_labels))
                yield len(order) - 1, images, batch_labels

    results: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    next_batch = 0
    correct = 0
    for item, result in backend.map_workers(_Setup(model, None, settings), _batch, batches()):
        results[item[0]] = result
        # Rows go into a shard's writer in order, whatever order the workers finish in.
        while next_batch in results:
            relevance, output = results.pop(next_batch)
            number, batch_labels = order[next_batch]
            writer, left = open_shards[number]
            if labels.ndim == 1:
                correct += int((output.argmax(1) == batch_labels).sum())
            writer.add(relevance, batch_labels, output)
            left[0] -= len(batch_labels)
            progress.advance(TASK, len(batch_labels))
            if not left[0]:
                finish(number)
            next_batch += 1
    return written, correct


#: The name this function had in ``relscope.cli.attribute`` (used by tests and benchmarks).
attribute_dataset = attribute
