"""Clever-Hans tasks on MNIST: plant an artifact, train a small model, find the artifact again.

Shared by the demo (:mod:`relscope.engine.mnist_demo`) and
``experiments/clever_hans_benchmark.py``. Training is seeded (weights, shuffling) so that
one command gives the same numbers on one machine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from relscope.data.builtin import load_mnist, mnist_cnn, plant_artifact
from relscope.errors import ConfigError

__all__ = [
    "ArtifactCluster",
    "CleverHansData",
    "accuracy",
    "find_artifact_cluster",
    "make_task",
    "seeded",
    "train_classifier",
]


@dataclass(frozen=True)
class CleverHansData:
    """Images ``(N, 1, 28, 28)`` in [0, 1], labels, and which rows carry the artifact."""

    images: np.ndarray
    labels: np.ndarray
    poisoned: np.ndarray  # bool (N,)
    source_index: np.ndarray  # row of each sample in the MNIST split it came from


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[torch.Generator]:
    """Seed torch's global generator for the block and yield a generator for shuffling."""
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        yield torch.Generator().manual_seed(seed)
    finally:
        torch.random.set_rng_state(state)


def make_task(
    classes: list[int],
    *,
    per_class: int | None,
    poisoned_class: int | None,
    fraction: float,
    seed: int,
    train: bool = True,
    artifact_size: int = 3,
    artifact_value: float = 1.0,
    relabel: bool = False,
) -> CleverHansData:
    """MNIST images of ``classes`` (``per_class`` each, seeded; None: all) with the artifact
    in ``fraction`` of the ``poisoned_class`` images (None: no artifact).

    ``relabel`` maps the classes to ``0 .. len(classes) - 1`` in the given order.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"fraction must be between 0 and 1, got {fraction}")
    if poisoned_class is not None and poisoned_class not in classes:
        raise ConfigError(f"the poisoned class {poisoned_class} is not among {classes}")
    images, labels = load_mnist(train=train)
    rng = np.random.default_rng(seed)
    rows = []
    for label in classes:
        members = np.flatnonzero(labels == label)
        if per_class is not None:
            if per_class > len(members):
                raise ConfigError(f"class {label} has {len(members)} images, asked for {per_class}")
            members = np.sort(rng.choice(members, per_class, replace=False))
        rows.append(members)
    chosen = np.concatenate(rows)
    data = images[chosen, None].astype(np.float32) / 255.0
    poisoned = np.zeros(len(chosen), dtype=bool)
    if poisoned_class is not None and fraction > 0:
        members = np.flatnonzero(labels[chosen] == poisoned_class)
        count = round(fraction * len(members))
        poisoned[np.sort(rng.choice(members, count, replace=False))] = True
        data = plant_artifact(
            data, np.flatnonzero(poisoned), size=artifact_size, value=artifact_value
        )
    task_labels = labels[chosen]
    if relabel:
        task_labels = np.array([classes.index(int(v)) for v in task_labels])
    return CleverHansData(data, task_labels.astype(np.int64), poisoned, chosen)


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    num_classes: int,
    epochs: int = 3,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    factory: Callable[[int], nn.Module] = mnist_cnn,
) -> nn.Module:
    """Train ``factory(num_classes)`` (default :func:`~relscope.data.builtin.mnist_cnn`) with
    Adam; seeded, returned in eval mode."""
    if epochs < 1:
        raise ConfigError(f"epochs must be at least 1, got {epochs}")
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    with seeded(seed) as generator:
        model = factory(num_classes)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x), batch_size):
                batch = order[start : start + batch_size]
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
                loss.backward()
                optimizer.step()
    return model.eval()


def accuracy(
    model: nn.Module, images: np.ndarray, labels: np.ndarray, batch_size: int = 1000
) -> float:
    """Share of ``images`` whose predicted class is their label."""
    correct = 0
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size]))
            predicted = model(batch).argmax(1).numpy()
            correct += int((predicted == labels[start : start + batch_size]).sum())
    return correct / len(images)


#: Order among clusterings that are otherwise equal (by name before the "-k" suffix).
_PREFERENCE = {"kmeans": 0, "agglomerative": 1, "hdbscan": 2, "dbscan": 3}


@dataclass(frozen=True)
class ArtifactCluster:
    """The cluster of one clustering that holds most samples with the artifact."""

    clustering: str
    cluster: int
    size: int
    share: float  # of all artifact samples of the category, in this cluster
    purity: float  # of this cluster's samples, with the artifact


def find_artifact_cluster(
    clusterings: Mapping[str, np.ndarray], poisoned: np.ndarray, *, share: float = 0.9
) -> ArtifactCluster | None:
    """The coarsest clustering (two clusters or more) with a cluster holding at least
    ``share`` of the poisoned samples; among equals the purest. ``None`` if there is none.

    Clusterings are tried by number of clusters, then purity, then kind (k-means, the
    clustering SpRAy ranks by, first), so a k = 2 split that isolates the artifact is
    preferred to a fine clustering that happens to as well.
    """
    poisoned = np.asarray(poisoned, dtype=bool)
    if not poisoned.any():
        return None
    found = []
    for name, labels in clusterings.items():
        labels = np.asarray(labels)
        k = len(np.unique(labels[labels >= 0]))
        if k < 2:
            continue  # one cluster holds everything: it separates nothing
        for cluster in np.unique(labels[poisoned]):
            if cluster < 0:
                continue  # noise of density clusterings
            members = labels == cluster
            held = float((members & poisoned).sum() / poisoned.sum())
            if held >= share:
                purity = float((members & poisoned).sum() / members.sum())
                rank = (k, -purity, _PREFERENCE.get(name.split("-")[0], len(_PREFERENCE)), name)
                found.append((rank, name, int(cluster), int(members.sum()), held, purity))
    if not found:
        return None
    _, name, cluster, size, held, purity = min(found)
    return ArtifactCluster(name, cluster, size, held, purity)
