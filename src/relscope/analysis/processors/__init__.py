"""Registered processors of the analysis layer (SpRAy building blocks).

Preprocessing (:mod:`.preprocessing`), affinity graphs and Laplacians (:mod:`.affinity`),
embeddings (:mod:`.embedding`), clusterings (:mod:`.clustering`) and distances
(:mod:`.distance`). Importing this package registers every processor by name.
"""

from relscope.analysis.processors.affinity import (
    DenseRBFKernel,
    GaussianKNNKernel,
    KNNGraph,
    RandomWalkLaplacian,
    SymmetricLaplacian,
)
from relscope.analysis.processors.clustering import (
    DBSCAN,
    HDBSCAN,
    Agglomerative,
    KMeans,
    SpectralClustering,
)
from relscope.analysis.processors.distance import SSIM, PairwiseDistance
from relscope.analysis.processors.embedding import (
    LLE,
    PCA,
    TSNE,
    UMAP,
    SpectralEmbedding,
)
from relscope.analysis.processors.preprocessing import (
    Absolute,
    ChannelReduce,
    Flatten,
    Histogram,
    Normalize,
    PadCrop,
    Pool,
    Resize,
)

__all__ = [
    "DBSCAN",
    "HDBSCAN",
    "LLE",
    "PCA",
    "SSIM",
    "TSNE",
    "UMAP",
    "Absolute",
    "Agglomerative",
    "ChannelReduce",
    "DenseRBFKernel",
    "Flatten",
    "GaussianKNNKernel",
    "Histogram",
    "KMeans",
    "KNNGraph",
    "Normalize",
    "PadCrop",
    "PairwiseDistance",
    "Pool",
    "RandomWalkLaplacian",
    "Resize",
    "SpectralClustering",
    "SpectralEmbedding",
    "SymmetricLaplacian",
]
