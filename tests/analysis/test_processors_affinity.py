"""kNN graphs, Gaussian kernels and Laplacians against explicit dense formulas."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse import csgraph
from scipy.spatial.distance import cdist

from relscope.analysis.processors import (
    DenseRBFKernel,
    GaussianKNNKernel,
    KNNGraph,
    RandomWalkLaplacian,
    SymmetricLaplacian,
)
from relscope.errors import ConfigError

RNG = np.random.default_rng(1)
POINTS = RNG.random((40, 3))


def _directed_knn(points, k):
    distances = cdist(points, points)
    np.fill_diagonal(distances, np.inf)
    directed = np.zeros_like(distances)
    for i, row in enumerate(distances):
        neighbours = np.argsort(row, kind="stable")[:k]
        directed[i, neighbours] = row[neighbours]
    return directed


def test_knn_defaults():
    knn = KNNGraph()
    assert (knn.n_neighbors, knn.mode, knn.symmetrize, knn.approximate) == (
        10,
        "connectivity",
        "max",
        "auto",
    )
    assert (knn.exact_max, knn.n_candidates, knn.seed) == (20_000, 30, 0)


def test_knn_connectivity_max_and_mean_against_brute_force():
    directed = _directed_knn(POINTS, 5) > 0
    graph = KNNGraph(n_neighbors=5)(POINTS)
    assert sp.issparse(graph) and graph.format == "csr"
    np.testing.assert_array_equal(graph.toarray(), (directed | directed.T).astype(float))
    mean = KNNGraph(n_neighbors=5, symmetrize="mean")(POINTS)
    assert sp.issparse(mean) and mean.format == "csr"
    np.testing.assert_allclose(mean.toarray(), (directed + directed.T.astype(float)) / 2)
    assert graph.diagonal().sum() == 0
    assert (np.asarray((graph > 0).sum(axis=1)).ravel() >= 5).all()


@pytest.mark.parametrize("how", ["max", "mean"])
def test_knn_distance_graph_holds_the_distances_of_the_union(how):
    directed = _directed_knn(POINTS, 4)
    union = np.maximum(directed, directed.T)
    graph = KNNGraph(n_neighbors=4, mode="distance", symmetrize=how)(POINTS)
    assert sp.issparse(graph)
    np.testing.assert_allclose(graph.toarray(), union)
    np.testing.assert_allclose((graph - graph.T).toarray(), 0.0)


def test_knn_keeps_edges_between_duplicates():
    points = np.array([[0.0], [0.0], [5.0], [5.1]])
    graph = KNNGraph(n_neighbors=1, mode="distance")(points)
    assert graph[0, 1] > 0 and graph[1, 0] > 0
    kernel = GaussianKNNKernel(sigma=1.0)(graph)
    assert kernel[0, 1] == 1.0


def test_knn_refuses_bad_arguments():
    with pytest.raises(ConfigError, match="approximate must be True, False or 'auto'"):
        KNNGraph(approximate="yes")(POINTS)
    with pytest.raises(ConfigError, match="n_neighbors must be between 1 and N - 1 = 39"):
        KNNGraph(n_neighbors=40)(POINTS)
    with pytest.raises(ConfigError, match="'symmetrize' must be one of max, mean"):
        KNNGraph(symmetrize="min")(POINTS)
    with pytest.raises(ConfigError, match="at least 2 samples"):
        KNNGraph()(np.zeros(3))


def test_gaussian_knn_kernel_with_sigma_and_median_heuristic():
    graph = KNNGraph(n_neighbors=6, mode="distance")(POINTS)
    dense = graph.toarray()
    mask = dense > 0
    kernel = GaussianKNNKernel(sigma=0.3)(graph)
    assert sp.issparse(kernel)
    np.testing.assert_allclose(kernel.toarray()[mask], np.exp(-(dense[mask] ** 2) / (2 * 0.09)))
    assert (kernel.toarray()[~mask] == 0).all()
    sigma = np.median(graph.data)
    median = GaussianKNNKernel()(graph)
    np.testing.assert_allclose(median.toarray()[mask], np.exp(-(dense[mask] ** 2) / (2 * sigma**2)))
    # The input graph is not modified.
    np.testing.assert_array_equal(graph.toarray(), dense)
    with pytest.raises(ConfigError, match="sigma must be positive"):
        GaussianKNNKernel(sigma=0.0)(graph)


def test_dense_rbf_kernel_and_its_size_limit():
    distances = cdist(POINTS, POINTS)
    kernel = DenseRBFKernel(sigma=0.5)(POINTS)
    np.testing.assert_allclose(kernel, np.exp(-(distances**2) / 0.5))
    sigma = np.median(distances[np.triu_indices(40, 1)])
    np.testing.assert_allclose(DenseRBFKernel()(POINTS), np.exp(-(distances**2) / (2 * sigma**2)))
    assert DenseRBFKernel().max_dense == 4096
    with pytest.raises(ConfigError, match="40 samples exceed max_dense=39"):
        DenseRBFKernel(max_dense=39)(POINTS)


def _affinity_with_isolated_node():
    weights = np.abs(RNG.standard_normal((6, 6)))
    weights = np.triu(weights, 1)
    weights = weights + weights.T
    weights[3, :] = weights[:, 3] = 0.0  # node 3 is isolated
    return weights


def test_symmetric_laplacian_against_formula_and_csgraph():
    weights = _affinity_with_isolated_node()
    laplacian = SymmetricLaplacian()(sp.csr_matrix(weights))
    assert sp.issparse(laplacian) and laplacian.format == "csr"
    dense = laplacian.toarray()
    assert np.isfinite(dense).all()
    degree = weights.sum(axis=1)
    inv_sqrt = np.where(degree > 0, 1 / np.sqrt(np.where(degree > 0, degree, 1)), 0.0)
    expected = np.diag((degree > 0).astype(float)) - inv_sqrt[:, None] * weights * inv_sqrt
    np.testing.assert_allclose(dense, expected, atol=1e-12)
    np.testing.assert_allclose(dense, csgraph.laplacian(weights, normed=True), atol=1e-12)
    np.testing.assert_array_equal(dense[3], 0.0)
    # Dense input is accepted too.
    np.testing.assert_allclose(SymmetricLaplacian()(weights).toarray(), dense)


def test_random_walk_laplacian_against_formula():
    weights = _affinity_with_isolated_node()
    laplacian = RandomWalkLaplacian()(sp.csr_matrix(weights))
    assert sp.issparse(laplacian) and laplacian.format == "csr"
    degree = weights.sum(axis=1)
    inverse = np.where(degree > 0, 1 / np.where(degree > 0, degree, 1), 0.0)
    expected = np.diag((degree > 0).astype(float)) - inverse[:, None] * weights
    np.testing.assert_allclose(laplacian.toarray(), expected, atol=1e-12)
    # Rows of a random-walk Laplacian sum to zero.
    np.testing.assert_allclose(laplacian.toarray().sum(axis=1), 0.0, atol=1e-12)


def test_laplacians_refuse_bad_affinities():
    with pytest.raises(ConfigError, match="square affinity matrix"):
        SymmetricLaplacian()(sp.csr_matrix(np.ones((2, 3))))
    with pytest.raises(ConfigError, match="non-negative"):
        RandomWalkLaplacian()(sp.csr_matrix(-np.ones((2, 2))))


def _clustered_points(n, seed):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 5, (10, 16))
    return centers[rng.integers(0, 10, n)] + rng.normal(0, 1, (n, 16))


def test_knn_auto_searches_exactly_up_to_exact_max():
    exact = KNNGraph(n_neighbors=5, approximate=False)(POINTS)
    auto = KNNGraph(n_neighbors=5)(POINTS)  # 40 samples <= exact_max
    assert (auto != exact).nnz == 0


@pytest.mark.slow  # pynndescent JIT-compiles NN-descent on first use: about a minute
@pytest.mark.parametrize("how", ["max", "mean"])
def test_approximate_knn_recalls_the_exact_graph_in_the_same_format(how):
    points = _clustered_points(3000, 8)
    for mode in ["connectivity", "distance"]:
        exact = KNNGraph(n_neighbors=10, mode=mode, symmetrize=how, approximate=False)(points)
        approx = KNNGraph(n_neighbors=10, mode=mode, symmetrize=how, approximate=True)(points)
        assert sp.issparse(approx) and approx.format == "csr" and approx.shape == exact.shape
        assert approx.diagonal().sum() == 0
        np.testing.assert_allclose((approx - approx.T).toarray(), 0.0)
        # Recall: share of the exact edges found by the approximate search (0.9999 measured).
        found = exact.multiply(approx != 0).nnz
        assert found / exact.nnz >= 0.95
        # Edges found by both carry the same values (distances agree to float32 precision).
        common = approx.multiply(exact != 0)
        np.testing.assert_allclose(common.data, exact.multiply(approx != 0).data, rtol=1e-5)
    again = KNNGraph(n_neighbors=10, mode=mode, symmetrize=how, approximate=True)(points)
    assert (again != approx).nnz == 0
    # 'auto' switches to the approximate search above exact_max.
    auto = KNNGraph(n_neighbors=10, mode=mode, symmetrize=how, exact_max=2999)(points)
    assert (auto != approx).nnz == 0


@pytest.mark.slow  # shares the NN-descent compilation with the test above
def test_approximate_knn_drops_self_among_duplicates():
    points = np.repeat(_clustered_points(100, 9), 2, axis=0)
    graph = KNNGraph(n_neighbors=3, mode="distance", approximate=True)(points)
    assert graph.diagonal().sum() == 0
    assert (np.asarray((graph > 0).sum(axis=1)).ravel() >= 3).all()
    assert graph[0, 1] > 0  # the duplicate is a neighbour at (tiny, kept) distance 0
