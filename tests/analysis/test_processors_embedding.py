"""Spectral embedding against a dense eigendecomposition; PCA, t-SNE and LLE against
sklearn/SVD."""

import numpy as np
import openTSNE
import pytest
import scipy.sparse as sp
from sklearn import manifold
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from relscope.analysis import DirectoryStorage
from relscope.analysis.processors import (
    LLE,
    PCA,
    TSNE,
    UMAP,
    KMeans,
    KNNGraph,
    SpectralEmbedding,
    SymmetricLaplacian,
)
from relscope.errors import ConfigError


def random_geometric_laplacian(n, radius, seed):
    """Symmetric normalized Laplacian of a random geometric graph, sparse and dense."""
    points = np.random.default_rng(seed).random((n, 2))
    distances = np.linalg.norm(points[:, None] - points[None], axis=-1)
    weights = ((distances < radius) & ~np.eye(n, dtype=bool)).astype(float)
    degree = weights.sum(axis=1)
    inv_sqrt = np.where(degree > 0, 1 / np.sqrt(np.maximum(degree, 1)), 0.0)
    dense = np.diag((degree > 0).astype(float)) - inv_sqrt[:, None] * weights * inv_sqrt
    return sp.csr_matrix(dense), dense


def test_defaults():
    assert SpectralEmbedding().n_eigval == 32
    assert (PCA().n_components, TSNE().seed, TSNE().perplexity) == (2, 0, 30.0)
    assert (TSNE().backend, TSNE().fft_min, TSNE().max_intervals) == ("auto", 10_000, 100)
    umap = UMAP()
    assert (umap.n_components, umap.n_neighbors, umap.min_dist, umap.seed) == (2, 15, 0.1, 0)
    lle = LLE()
    assert (lle.n_components, lle.n_neighbors, lle.method, lle.reg) == (2, 5, "standard", 1e-3)
    assert (lle.eigen_solver, lle.tol, lle.max_iter, lle.seed) == ("auto", 1e-6, 100, 0)
    assert lle.max_dense == 4096


@pytest.mark.parametrize(("n", "radius", "seed"), [(300, 0.2, 0), (250, 0.25, 1)])
@pytest.mark.parametrize("dense_max", [0, 10_000])
def test_spectral_eigenpairs_match_dense_eigh(n, radius, seed, dense_max):
    laplacian, dense = random_geometric_laplacian(n, radius, seed)
    result = SpectralEmbedding(n_eigval=12, dense_max=dense_max)(laplacian)
    values, vectors = result["eigenvalues"], result["eigenvectors"]
    assert values.shape == (12,) and vectors.shape == (n, 12)
    expected = np.linalg.eigh(dense)[0][:12]
    np.testing.assert_allclose(values, expected, atol=1e-7)
    assert (np.diff(values) >= 0).all()
    # Eigenpairs of L: small residuals and orthonormal vectors.
    np.testing.assert_allclose(dense @ vectors, vectors * values, atol=1e-5)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(12), atol=1e-6)
    # Signs are fixed: the largest-magnitude entry of every vector is positive.
    assert (vectors[np.abs(vectors).argmax(axis=0), np.arange(12)] > 0).all()


def test_spectral_defaults_on_a_knn_graph_with_two_components():
    rng = np.random.default_rng(2)
    points = np.concatenate([rng.normal(0, 0.1, (60, 2)), rng.normal(10, 0.1, (60, 2))])
    laplacian = SymmetricLaplacian()(KNNGraph()(points))
    result = SpectralEmbedding(dense_max=0)(laplacian)
    values = result["eigenvalues"]
    assert values.shape == (32,)
    np.testing.assert_allclose(values[:2], 0.0, atol=1e-8)
    assert values[2] > 1e-3
    np.testing.assert_allclose(values, np.linalg.eigh(laplacian.toarray())[0][:32], atol=1e-7)


def test_spectral_handles_isolated_nodes_and_small_graphs():
    laplacian, dense = random_geometric_laplacian(20, 0.05, 3)
    result = SpectralEmbedding()(laplacian)  # fewer nodes than pairs: all 20 pairs
    assert result["eigenvalues"].shape == (20,)
    assert np.isfinite(result["eigenvectors"]).all()
    np.testing.assert_allclose(result["eigenvalues"], np.linalg.eigh(dense)[0], atol=1e-10)
    with pytest.raises(ConfigError, match="square Laplacian"):
        SpectralEmbedding()(sp.csr_matrix(np.ones((2, 3))))
    with pytest.raises(ConfigError, match="n_eigval must be positive"):
        SpectralEmbedding(n_eigval=0)(laplacian)


def test_pca_against_svd():
    rng = np.random.default_rng(4)
    data = rng.standard_normal((50, 6)) @ rng.standard_normal((6, 6))
    out = PCA(n_components=3)(data)
    centered = data - data.mean(axis=0)
    u, s, _ = np.linalg.svd(centered, full_matrices=False)
    expected = u[:, :3] * s[:3]
    np.testing.assert_allclose(np.abs(out), np.abs(expected), atol=1e-8)
    # A spectral embedding dict is accepted and its eigenvectors are used.
    np.testing.assert_allclose(PCA(n_components=3)({"eigenvectors": data}), out)
    with pytest.raises(ConfigError, match="n_components must be between 1 and"):
        PCA(n_components=7)(data)


def test_tsne_equals_a_direct_seeded_sklearn_call():
    rng = np.random.default_rng(5)
    data = rng.standard_normal((40, 5))
    out = TSNE(backend="sklearn", perplexity=10.0, max_iter=250, seed=3)(data)
    expected = manifold.TSNE(
        n_components=2, perplexity=10.0, max_iter=250, init="pca", random_state=3
    ).fit_transform(data)
    np.testing.assert_allclose(out, expected)
    again = TSNE(backend="sklearn", perplexity=10.0, max_iter=250, seed=3)(data)
    np.testing.assert_array_equal(out, again)
    with pytest.raises(ConfigError, match="perplexity must be positive and below N = 20"):
        TSNE()(np.zeros((20, 2)))
    with pytest.raises(ConfigError, match="'backend' must be one of auto, sklearn, opentsne"):
        TSNE(backend="cuda")(data)
    with pytest.raises(ConfigError, match="'init' must be one of pca, random"):
        TSNE(init="spectral")(data)
    with pytest.raises(ConfigError, match="max_intervals must be positive or None, found 0"):
        TSNE(max_intervals=0)(data)


def test_spectral_embedding_and_kmeans_results_are_cacheable(tmp_path):
    laplacian, _ = random_geometric_laplacian(60, 0.3, 6)
    storage = DirectoryStorage(tmp_path)
    first = SpectralEmbedding(n_eigval=4, io=storage)(laplacian)
    again = SpectralEmbedding(n_eigval=4, io=storage)(laplacian)
    assert len(storage) == 1
    np.testing.assert_array_equal(again["eigenvalues"], first["eigenvalues"])
    np.testing.assert_array_equal(again["eigenvectors"], first["eigenvectors"])
    labels = KMeans(n_clusters=(2, 3), io=storage)(first)
    cached = KMeans(n_clusters=(2, 3), io=storage)(first)
    assert sorted(cached) == [2, 3]
    np.testing.assert_array_equal(cached[3], labels[3])


def planted_blobs(n_per_blob=100, seed=7):
    """Three well-separated Gaussian blobs in 10 dimensions and their labels."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 10, (3, 10))
    labels = np.repeat(np.arange(3), n_per_blob)
    return centers[labels] + rng.normal(0, 1, (labels.size, 10)), labels


def blob_recovery(embedding, labels):
    """Cross-validated accuracy of a 5-NN classifier of the blob labels on the embedding."""
    return cross_val_score(KNeighborsClassifier(5), embedding, labels, cv=5).mean()


@pytest.mark.parametrize("backend", ["opentsne", "sklearn"])
def test_tsne_backends_are_seeded_and_keep_blobs_apart(backend):
    data, labels = planted_blobs(50)
    tsne = TSNE(backend=backend, perplexity=15.0, max_iter=300, seed=2)
    out = tsne(data)
    assert out.shape == (150, 2) and out.dtype == np.float64
    np.testing.assert_array_equal(out, tsne(data))
    assert blob_recovery(out, labels) >= 0.95
    # A spectral embedding dict is accepted and its eigenvectors are used.
    np.testing.assert_array_equal(tsne({"eigenvectors": data}), out)


def test_opentsne_backend_without_a_grid_cap_equals_a_direct_seeded_opentsne_call():
    data, _ = planted_blobs(50)
    out = TSNE(backend="opentsne", perplexity=15.0, max_iter=300, seed=2, max_intervals=None)(data)
    expected = openTSNE.TSNE(
        n_components=2,
        perplexity=15.0,
        early_exaggeration_iter=250,
        n_iter=50,
        initialization="pca",
        negative_gradient_method="fft",
        neighbors="exact",
        random_state=2,
        n_jobs=1,
    ).fit(data)
    np.testing.assert_allclose(out, np.asarray(expected))


def test_opentsne_grid_cap_changes_the_grid_only_when_the_embedding_outgrows_it():
    data, labels = planted_blobs(50)
    params = {"backend": "opentsne", "perplexity": 15.0, "max_iter": 300, "seed": 2}
    # With a cap, openTSNE optimizes in chunks of 50 iterations. A cap above the embedding's
    # extent leaves openTSNE's one interval per unit, so this equals direct chunked calls.
    embedding = openTSNE.TSNE(
        perplexity=15.0,
        neighbors="exact",
        negative_gradient_method="fft",
        random_state=2,
    ).prepare_initial(data)
    for exaggeration in (12, 12, 12, 12, 12, None):
        embedding.optimize(50, exaggeration=exaggeration, inplace=True)
    uncapped = TSNE(**params, max_intervals=10_000)(data)
    np.testing.assert_allclose(uncapped, np.asarray(embedding))
    coarse = TSNE(**params, max_intervals=3)(data)
    assert not np.allclose(coarse, uncapped)
    assert blob_recovery(coarse, labels) >= 0.95


def test_auto_backend_switches_to_opentsne_from_fft_min_samples():
    data, _ = planted_blobs(50)
    params = {"perplexity": 15.0, "max_iter": 300, "seed": 2}
    np.testing.assert_array_equal(
        TSNE(**params, fft_min=151)(data), TSNE(**params, backend="sklearn")(data)
    )
    np.testing.assert_array_equal(
        TSNE(**params, fft_min=150)(data), TSNE(**params, backend="opentsne")(data)
    )


def test_umap_is_seeded_and_keeps_blobs_apart():
    data, labels = planted_blobs(100)
    umap = UMAP(seed=4)
    out = umap(data)
    assert out.shape == (300, 2) and out.dtype == np.float64
    np.testing.assert_array_equal(out, umap(data))
    assert blob_recovery(out, labels) >= 0.95
    np.testing.assert_array_equal(umap({"eigenvectors": data}), out)
    assert UMAP(n_components=3, seed=4)(data).shape == (300, 3)
    with pytest.raises(ConfigError, match="n_neighbors must be between 2 and N - 1 = 299"):
        UMAP(n_neighbors=300)(data)


def largest_entry_positive(vectors):
    """Columns flipped so that each one's largest-magnitude entry is positive."""
    rows = np.abs(vectors).argmax(axis=0)
    return vectors * np.where(vectors[rows, np.arange(vectors.shape[1])] < 0, -1.0, 1.0)


@pytest.mark.parametrize(
    "params",
    [
        {"n_neighbors": 12, "eigen_solver": "arpack", "seed": 3, "reg": 1e-2},
        {"n_neighbors": 10, "method": "modified", "eigen_solver": "dense", "n_components": 3},
        {"n_neighbors": 15, "method": "hessian", "eigen_solver": "dense"},
    ],
)
def test_lle_equals_a_direct_seeded_sklearn_call(params):
    data, _ = planted_blobs(70)
    out = LLE(**params)(data)
    options = {"n_components": 2, "method": "standard", "eigen_solver": "auto", "seed": 0}
    options.update(params)
    expected = manifold.LocallyLinearEmbedding(
        n_neighbors=options["n_neighbors"],
        n_components=options["n_components"],
        method=options["method"],
        reg=options.get("reg", 1e-3),
        eigen_solver=options["eigen_solver"],
        random_state=options["seed"],
    ).fit_transform(data)
    assert out.shape == (210, options["n_components"]) and out.dtype == np.float64
    np.testing.assert_allclose(out, largest_entry_positive(expected), rtol=1e-7, atol=1e-10)
    np.testing.assert_array_equal(LLE(**params)({"eigenvectors": data}), out)


def test_lle_auto_solver_stays_sparse_above_max_dense():
    data, _ = planted_blobs(70)
    # scikit-learn's 'auto' would build a dense 210 x 210 matrix for 9 components.
    out = LLE(n_components=9, n_neighbors=12, max_dense=100)(data)
    expected = LLE(n_components=9, n_neighbors=12, eigen_solver="arpack")(data)
    np.testing.assert_array_equal(out, expected)
    dense = LLE(n_components=9, n_neighbors=12, eigen_solver="dense")(data)
    assert not np.array_equal(out, dense)


def test_lle_parameter_errors():
    data, _ = planted_blobs(10)
    with pytest.raises(ConfigError, match="'method' must be one of standard, modified, hessian"):
        LLE(method="isomap")(data)
    with pytest.raises(ConfigError, match="'eigen_solver' must be one of auto, arpack, dense"):
        LLE(eigen_solver="lobpcg")(data)
    with pytest.raises(ConfigError, match="n_neighbors must be between 1 and N - 1 = 29"):
        LLE(n_neighbors=30)(data)
    with pytest.raises(ConfigError, match="n_components must be between 1 and N - 1 = 29"):
        LLE(n_components=0)(data)
    with pytest.raises(ConfigError, match="n_neighbors"):
        LLE(n_neighbors="5")
    with pytest.raises(ConfigError, match="N = 30 exceeds max_dense=20; use 'arpack' or 'auto'"):
        LLE(eigen_solver="dense", max_dense=20)(data)
    # Hessian LLE needs n_neighbors > n_components (n_components + 3) / 2: sklearn's check.
    with pytest.raises(ConfigError, match=r"LLE: .*n_neighbors"):
        LLE(method="hessian", n_neighbors=4, n_components=2)(data)
