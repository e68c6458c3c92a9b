"""Build small but complete project folders with relscope's own writers."""

from pathlib import Path

import numpy as np

from relscope.data.analysis_db import AnalysisWriter, CategoryAnalysis, Clustering, Embedding
from relscope.data.attribution_db import AttributionWriter, shard_indices
from relscope.data.dataset import write_hdf5_dataset
from relscope.data.labels import LabelMap, save_label_map
from relscope.data.project import AnalysisSpec, AttributionSpec, DatasetSpec, Project, save_project

CLASSES = ("cat", "dog", "horse")


def spray_category(
    k: int,
    index: np.ndarray,
    spectral: np.ndarray,
    tsne: np.ndarray,
    eigenvalues: np.ndarray,
    clusters: np.ndarray,
    *,
    tau: float,
    eigengap: float,
) -> CategoryAnalysis:
    """Class ``k``'s category as SpRAy writes it: spectral + t-SNE, one k-means clustering."""
    name = f"kmeans-{int(clusters.max()) + 1:02d}"
    return CategoryAnalysis(
        name=f"{k:08d}",
        index=index,
        embeddings={
            "spectral": Embedding("spectral", spectral, eigenvalue=eigenvalues),
            "tsne": Embedding("tsne", tsne, base="spectral", dims=[0, 1]),
        },
        clusterings={
            name: Clustering(name, clusters, embedding="spectral", k=int(clusters.max()) + 1)
        },
        scores={"eigengap": eigengap, "tau": tau},
        attrs={"label_index": k},
    )


def make_project_folder(
    root: Path,
    *,
    n: int = 36,
    shards: int = 2,
    layout: str = "virelay",
    seed: int = 0,
    model: str = "tests.models:tiny",
) -> Path:
    """Dataset (n images 3x8x8), label map, sharded attributions, SpRAy-style analysis;
    ``model`` is the project's model reference (the default names no importable module)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    images = rng.random((n, 3, 8, 8)).astype(np.float32)
    labels = np.arange(n) % len(CLASSES)
    dataset = write_hdf5_dataset(root / "dataset.h5", images, labels)
    label_map = save_label_map(LabelMap.from_names(CLASSES), root / "labels.json")
    sources = []
    for shard in range(shards):
        index = shard_indices(np.arange(n), shards, shard)
        path = root / f"attribution-{shard}.h5"
        with AttributionWriter(
            path, index, shape=(3, 8, 8), num_outputs=len(CLASSES), method={"name": "epsilon"}
        ) as writer:
            writer.add(images[index] - 0.5, labels[index], rng.random((len(index), 3)))
        sources.append(path)
    analysis = root / "analysis.h5"
    with AnalysisWriter(analysis, "spray", layout=layout) as writer:
        for k in range(len(CLASSES)):
            index = np.flatnonzero(labels == k)
            spectral = rng.random((len(index), 4))
            writer.write(
                spray_category(
                    k,
                    index,
                    spectral,
                    spectral[:, :2],
                    np.linspace(0, 1, 4),
                    np.arange(len(index)) % 2,
                    tau=0.9,
                    eigengap=0.5,
                )
            )
    project = Project(
        name="fixture",
        model=model,
        label_map=label_map,
        dataset=DatasetSpec("random", "hdf5", dataset, 8, 8),
        attributions=AttributionSpec("epsilon", "true_label", sources),
        analyses=[AnalysisSpec("spray", [analysis])],
    )
    return save_project(project, root / "project.yaml")


def make_explorer_project(root: Path, *, n: int = 150, seed: int = 1) -> Path:
    """A project with two analyses for the Explorer's browser tests.

    ``spray`` is :func:`make_project_folder`'s; ``spray-b`` has three clusters drawn as
    separate blobs, eigenvalues with a gap after the third, and a different tau per class.
    """
    from relscope.data.project import load_project

    path = make_project_folder(root, n=n, seed=seed)
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(CLASSES)
    second = root / "analysis-b.h5"
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [3.0, 5.0]])
    with AnalysisWriter(second, "spray-b") as writer:
        for k in range(len(CLASSES)):
            index = np.flatnonzero(labels == k)
            clusters = np.arange(len(index)) % 3
            tsne = centres[clusters] + rng.normal(0.0, 0.8, (len(index), 2))
            spectral = np.concatenate([tsne, rng.random((len(index), 3))], axis=1)
            writer.write(
                spray_category(
                    k,
                    index,
                    spectral,
                    tsne,
                    np.array([0.0, 0.01, 0.02, 0.6, 0.7]),
                    clusters,
                    tau=(0.2, 1.5, 0.7)[k],
                    eigengap=0.58,
                )
            )
    project = load_project(path)
    project.name = "explorer"
    project.analyses.append(AnalysisSpec("spray-b", [second]))
    return save_project(project, path)
