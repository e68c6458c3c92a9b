"""Build small but complete project folders with relscope's own writers."""

from pathlib import Path

import numpy as np

from relscope.data.analysis_db import AnalysisWriter, CategoryAnalysis, Clustering, Embedding
from relscope.data.attribution_db import AttributionWriter, shard_indices
from relscope.data.dataset import write_hdf5_dataset
from relscope.data.labels import LabelMap, save_label_map
from relscope.data.project import AnalysisSpec, AttributionSpec, DatasetSpec, Project, save_project

CLASSES = ("cat", "dog", "horse")


def make_project_folder(
    root: Path, *, n: int = 36, shards: int = 2, layout: str = "nested", seed: int = 0
) -> Path:
    """Dataset (n images 3x8x8), label map, sharded attributions, SpRAy-style analysis."""
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
                CategoryAnalysis(
                    name=f"{k:08d}",
                    index=index,
                    embeddings={
                        "spectral": Embedding(
                            "spectral", spectral, eigenvalue=np.linspace(0, 1, 4)
                        ),
                        "tsne": Embedding("tsne", spectral[:, :2], base="spectral", dims=[0, 1]),
                    },
                    clusterings={
                        "kmeans-02": Clustering(
                            "kmeans-02", np.arange(len(index)) % 2, embedding="spectral", k=2
                        )
                    },
                    scores={"eigengap": 0.5, "tau": 0.9},
                    attrs={"label_index": k},
                )
            )
    project = Project(
        name="fixture",
        model="tests.models:tiny",
        label_map=label_map,
        dataset=DatasetSpec("random", "hdf5", dataset, 8, 8),
        attributions=AttributionSpec("epsilon", "true_label", sources),
        analyses=[AnalysisSpec("spray", [analysis])],
    )
    return save_project(project, root / "project.yaml")
