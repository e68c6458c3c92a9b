"""Attribute a dataset: batches from a DataLoader through the attributor into an attribution
database, in constant memory.

Rows are written in durable blocks (:class:`~relscope.data.attribution_db.AttributionWriter`
calls them segments): an interrupted run keeps its completed blocks and the same call
continues after the last of them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from relscope.attribution.config import MethodConfig
from relscope.data.attribution_db import AttributionDatabase, AttributionWriter
from relscope.data.dataset import ImageDataset
from relscope.engine.backend import Backend
from relscope.engine.inputs import parse_classes
from relscope.engine.progress import Progress, or_silent
from relscope.errors import ConfigError

__all__ = [
    "STRATEGIES",
    "AttributionRun",
    "attribute",
    "attribute_dataset",
    "holds_attributions",
    "selected_samples",
    "stored_method",
]

STRATEGIES = ("true_label", "predicted_label")

#: The progress task of :func:`attribute` (its units are samples).
TASK = "attribute"


@dataclass(frozen=True)
class AttributionRun:
    """What :func:`attribute` did."""

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
) -> AttributionRun:
    """Attribute the selected samples of ``dataset`` and write the attribution database.

    ``strategy`` explains the true label or the predicted class; ``classes`` keeps the
    samples with these labels (default: all). If ``out`` already exists complete it is kept
    (``overwrite`` redoes it); if an earlier run was interrupted, its completed blocks of
    ``block_rows`` rows (default: about 32 MiB of attributions) are kept and only the rest
    is computed. ``progress`` hears the task ``"attribute"`` in samples, and the run as a
    report. Every backend attributes in this process for now (``backend`` is accepted so
    that callers need not change when attribution is sharded).
    """
    del backend  # one process until sharded attribution arrives
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
    device = torch.device(device)
    index = selected_samples(dataset, parse_classes(list(classes)) if classes is not None else None)
    method = stored_method(config, strategy)
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
        segment_rows=block_rows,
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
    done = 0
    start = time.perf_counter()
    progress.start(TASK, len(index), resumed)
    try:
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
            progress.advance(TASK, len(images))
    finally:
        progress.finish(TASK)
    writer.close()
    seconds = time.perf_counter() - start
    accuracy = correct / done if done and labels.ndim == 1 else None
    run = AttributionRun(out, len(index), resumed, seconds, accuracy)
    progress.report(run)
    return run


#: The name this function had in ``relscope.cli.attribute`` (used by tests and benchmarks).
attribute_dataset = attribute
