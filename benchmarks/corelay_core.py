"""corelay's SpRAy analysis core (no t-SNE) at one N, stage by stage: run with the anchors' Python.

The stages and settings are those of ``shared/anchors/bench_spray.py`` (corelay's
SpectralClustering as in its example), called one by one so that the core can be timed at
sizes where the harness's full runs (three pipeline calls with t-SNE each) exceed a session:
preprocess, dense pairwise distances (SciPyPDist), SparseKNN (k = 10, symmetric), symmetric
normalized Laplacian, EigenDecomposition (8), KMeans k = 2..10. Prints one JSON line.

With ``--tsne`` it also times corelay's TSNEEmbedding (scikit-learn, 1000 iterations) of
the eigenvectors, as the harness's pipeline does, for the whole-pipeline figure.

Usage: ``/path/to/anchors-venv/bin/python benchmarks/corelay_core.py N [--tsne]``
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared" / "anchors"))

from bench_spray import K_RANGE, make_synthetic_attributions


def main() -> None:
    from corelay.processor.affinity import SparseKNN
    from corelay.processor.clustering import KMeans
    from corelay.processor.distance import SciPyPDist
    from corelay.processor.embedding import EigenDecomposition
    from corelay.processor.laplacian import SymmetricNormalLaplacian

    n = int(sys.argv[1])
    data, _ = make_synthetic_attributions(n)
    seconds = {}
    start = time.perf_counter()
    maps = data.sum(axis=1)
    features = (maps / maps.sum(axis=(1, 2), keepdims=True)).reshape(n, -1)
    seconds["preprocess"] = time.perf_counter() - start
    steps = [
        ("pairwise distances", SciPyPDist(metric="euclidean")),
        ("knn", SparseKNN(n_neighbors=10, symmetric=True)),
        ("laplacian", SymmetricNormalLaplacian()),
        ("eigsh", EigenDecomposition(n_eigval=8)),
    ]
    result = features
    for name, processor in steps:
        start = time.perf_counter()
        result = processor(result)
        seconds[name] = time.perf_counter() - start
    vectors = result[1]
    start = time.perf_counter()
    for k in K_RANGE:
        KMeans(n_clusters=k)(vectors)
    seconds["kmeans"] = time.perf_counter() - start
    seconds["analysis core"] = sum(seconds.values())
    if "--tsne" in sys.argv[2:]:
        from corelay.processor.embedding import TSNEEmbedding

        start = time.perf_counter()
        TSNEEmbedding()(vectors)
        seconds["tsne"] = time.perf_counter() - start
        seconds["total"] = seconds["analysis core"] + seconds["tsne"]
    print(json.dumps({"n": n, "seconds": seconds}), flush=True)


if __name__ == "__main__":
    main()
