"""Low-dimensional embeddings: spectral (eigenpairs of a Laplacian), PCA, t-SNE, UMAP and LLE.

:class:`SpectralEmbedding` returns ``{"eigenvalues": (k,), "eigenvectors": (N, k)}``; the
other embeddings, and the clusterings, accept either an array ``(N, D)`` or such a dict
(they then use its eigenvectors).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import ArpackNoConvergence, eigsh
from sklearn import decomposition, manifold

from relscope.analysis.params import Param
from relscope.analysis.pipeline import Processor, register_processor
from relscope.analysis.processors._checks import below_samples, choice
from relscope.errors import ConfigError

__all__ = ["LLE", "PCA", "TSNE", "UMAP", "SpectralEmbedding", "embedding_features"]


def embedding_features(processor: Processor, data: Any) -> np.ndarray:
    """Features ``(N, D)`` of ``data``: an array, or the eigenvectors of a spectral embedding."""
    if isinstance(data, Mapping):
        if "eigenvectors" not in data:
            raise ConfigError(
                f"{type(processor).__name__}: expected an array or a spectral embedding with "
                f"'eigenvectors', found keys {sorted(map(str, data))}"
            )
        data = data["eigenvectors"]
    array = np.asarray(data, dtype=np.float64)
    if array.ndim < 2:
        raise ConfigError(
            f"{type(processor).__name__}: expected features (N, D), found shape {array.shape}"
        )
    return array.reshape(array.shape[0], -1)


def _fix_signs(vectors: np.ndarray) -> np.ndarray:
    # Eigenvectors are defined up to sign; make the largest-magnitude entry positive so
    # that results are reproducible across solvers and runs.
    picks = np.abs(vectors).argmax(axis=0)
    signs = np.sign(vectors[picks, np.arange(vectors.shape[1])])
    signs[signs == 0] = 1.0
    return vectors * signs


@register_processor("spectral-embedding")
class SpectralEmbedding(Processor):
    """The smallest ``n_eigval`` eigenpairs of a symmetric normalized Laplacian ``L``.

    The input is the (sparse) output of ``laplacian-sym``; eigenvalues come in ascending
    order, eigenvectors as columns, both in the returned dict. At most ``N`` pairs exist.

    Notes
    -----
    The eigenvalues of ``L`` lie in ``[0, 2]``, so the smallest pairs of ``L`` are the
    largest algebraic ones of ``2 I - L`` (eigenvalues in ``[0, 2]`` too). Lanczos
    (``eigsh(..., which='LA')``) finds those with matrix-vector products only, unlike
    shift-invert at ``sigma=0``, which must factorize the (singular) ``L`` and fills in at
    large ``N``, and converges far better than ``which='SM'``. Graphs with at most
    ``dense_max`` nodes, or asking for nearly all pairs, use a dense ``eigh`` instead.
    """

    version: ClassVar[int] = 1

    n_eigval = Param(int, 32, "Number of eigenpairs (smallest eigenvalues) to compute.")
    dense_max = Param(int, 512, "Largest N solved with a dense eigendecomposition.")
    tol = Param(float, 1e-8, "Relative accuracy of the iterative solver (0: machine precision).")
    max_iter = Param((int, type(None)), None, "Iteration limit of eigsh; None: its default.")
    seed = Param(int, 0, "Seed of the solver's starting vector.")

    def function(self, data: Any) -> dict[str, np.ndarray]:
        if self.n_eigval < 1:
            raise ConfigError(
                f"SpectralEmbedding: n_eigval must be positive, found {self.n_eigval}"
            )
        laplacian = sp.csr_matrix(data, dtype=np.float64)
        n = laplacian.shape[0]
        if n != laplacian.shape[1] or n == 0:
            raise ConfigError(
                f"SpectralEmbedding: expected a square Laplacian, found shape {laplacian.shape}"
            )
        k = min(self.n_eigval, n)
        # eigsh needs k < N; near-complete spectra are cheaper densely anyway.
        if n <= self.dense_max or k >= n - 1:
            values, vectors = np.linalg.eigh(laplacian.toarray())
            values, vectors = values[:k], vectors[:, :k]
        else:
            shifted = 2.0 * sp.identity(n, format="csr") - laplacian
            start = np.random.default_rng(self.seed).standard_normal(n)
            try:
                values, vectors = eigsh(
                    shifted, k=k, which="LA", tol=self.tol, maxiter=self.max_iter, v0=start
                )
            except ArpackNoConvergence as error:
                raise ConfigError(
                    f"SpectralEmbedding: eigsh did not converge for {k} pairs of {n} nodes "
                    f"({len(error.eigenvalues)} converged); raise max_iter or tol"
                ) from None
            values = 2.0 - values
            order = np.argsort(values, kind="stable")
            values, vectors = values[order], vectors[:, order]
        # Round-off may put the zero eigenvalues slightly below 0; L is positive semidefinite.
        values = np.clip(values, 0.0, 2.0)
        return {"eigenvalues": values, "eigenvectors": _fix_signs(vectors)}


@register_processor("pca")
class PCA(Processor):
    """Principal component analysis (scikit-learn): ``(N, D) -> (N, n_components)``."""

    version: ClassVar[int] = 1

    n_components = Param(int, 2, "Number of principal components.")
    whiten = Param(bool, False, "Scale the components to unit variance.")
    seed = Param(int, 0, "Seed of the randomized solver (used for large inputs).")

    def function(self, data: Any) -> np.ndarray:
        features = embedding_features(self, data)
        if not 1 <= self.n_components <= min(features.shape):
            raise ConfigError(
                f"PCA: n_components must be between 1 and min(N, D) = {min(features.shape)}, "
                f"found {self.n_components}"
            )
        model = decomposition.PCA(
            n_components=self.n_components, whiten=self.whiten, random_state=self.seed
        )
        return _fix_signs(model.fit_transform(features))


@register_processor("tsne")
class TSNE(Processor):
    """t-SNE ``(N, D) -> (N, n_components)``, seeded: scikit-learn or openTSNE, by ``N`` by default.

    Notes
    -----
    ``backend='sklearn'`` is Barnes-Hut with exact neighbours, ``O(N log N)`` per iteration.
    ``backend='opentsne'`` computes the repulsion by FFT-accelerated interpolation on a grid
    (Linderman et al., 2019; Barnes-Hut for 3 dimensions), linear in ``N``, with exact
    neighbours up to ``exact_max`` samples and NN-descent above. ``'auto'`` (the default)
    takes scikit-learn below ``fft_min`` samples and openTSNE from there on.

    The FFT grid has one interval per embedding unit (openTSNE's default), so its cost grows
    with the square of the embedding's extent, which is large for the well-separated clusters
    of spectral embeddings: at N = 20 000 the uncapped grid took longer than scikit-learn. At
    most ``max_intervals`` intervals per dimension (re-chosen every 50 iterations from the
    current extent) keep every iteration's cost bounded; measured on 2 cores
    (``benchmarks/README.md``): N = 5 000 about 30 s either way, N = 20 000 67 s against
    scikit-learn's 224 s, with trustworthiness (10 neighbours) 0.997 capped and uncapped.
    ``max_intervals=None`` leaves openTSNE's grid as it is (at least 50 intervals, one per
    unit of extent above that).

    Parameters map to openTSNE as: ``perplexity`` -> ``perplexity``; ``max_iter`` counts
    all iterations like scikit-learn's, the first ``min(250, max_iter)`` with early
    exaggeration 12 and the rest without (openTSNE's other defaults: momentum 0.8, learning
    rate ``N / exaggeration``); ``init`` ->
    ``initialization``; ``seed`` -> ``random_state``; ``n_jobs`` -> ``n_jobs`` (``None``:
    one job). The backends give similar but not equal embeddings.
    """

    version: ClassVar[int] = 3

    backend = Param(str, "auto", "Implementation: 'auto', 'sklearn' or 'opentsne' (FFT).")
    n_components = Param(int, 2, "Embedding dimension (at most 3).")
    perplexity = Param(float, 30.0, "Effective number of neighbours; must be below N.")
    max_iter = Param(int, 1000, "Number of optimization iterations, early exaggeration included.")
    init = Param(str, "pca", "Initialization: 'pca' or 'random'.")
    seed = Param(int, 0, "Random seed.")
    n_jobs = Param((int, type(None)), None, "Parallel jobs; None: one.")
    fft_min = Param(int, 10_000, "Smallest N that backend='auto' gives to openTSNE.")
    max_intervals = Param(
        (int, type(None)), 100, "Most FFT grid intervals per dimension (openTSNE); None: no cap."
    )
    exact_max = Param(int, 20_000, "Largest N whose neighbours openTSNE finds exactly.")

    #: Iterations between two choices of the FFT grid.
    chunk: ClassVar[int] = 50

    def function(self, data: Any) -> np.ndarray:
        backend = choice(self, "backend", ("auto", "sklearn", "opentsne"))
        features = embedding_features(self, data)
        n = features.shape[0]
        if not 0 < self.perplexity < n:
            raise ConfigError(
                f"TSNE: perplexity must be positive and below N = {n}, found {self.perplexity}"
            )
        choice(self, "init", ("pca", "random"))
        if not 1 <= self.n_components <= 3:
            raise ConfigError(
                f"TSNE: n_components must be between 1 and 3, found {self.n_components}"
            )
        if self.max_intervals is not None and self.max_intervals < 1:
            raise ConfigError(
                f"TSNE: max_intervals must be positive or None, found {self.max_intervals}"
            )
        if backend == "auto":
            backend = "opentsne" if n >= self.fft_min else "sklearn"
        if backend == "sklearn":
            model = manifold.TSNE(
                n_components=self.n_components,
                perplexity=self.perplexity,
                max_iter=self.max_iter,
                init=self.init,
                random_state=self.seed,
                n_jobs=self.n_jobs,
            )
            return np.asarray(model.fit_transform(features), dtype=np.float64)
        return self._opentsne(features)

    def _opentsne(self, features: np.ndarray) -> np.ndarray:
        import openTSNE

        fft = self.n_components <= 2
        # openTSNE's own set-up (affinities, initialization, optimizer defaults); only the
        # optimization loop below is relscope's, to re-choose the FFT grid as it goes.
        embedding = openTSNE.TSNE(
            n_components=self.n_components,
            perplexity=self.perplexity,
            initialization=self.init,
            neighbors="exact" if features.shape[0] <= self.exact_max else "pynndescent",
            negative_gradient_method="fft" if fft else "bh",
            random_state=self.seed,
            n_jobs=1 if self.n_jobs is None else self.n_jobs,
        ).prepare_initial(features)
        early = min(250, self.max_iter)
        phases = ((early, 12.0), (self.max_iter - early, None))
        for iterations, exaggeration in phases:
            done = 0
            while done < iterations:
                steps = iterations - done
                grid: dict[str, float] = {}
                if fft and self.max_intervals is not None:
                    steps = min(steps, self.chunk)
                    extent = float(np.ptp(np.asarray(embedding), axis=0).max())
                    grid["ints_in_interval"] = max(1.0, extent / self.max_intervals)
                    grid["min_num_intervals"] = min(50, self.max_intervals)
                embedding = embedding.optimize(
                    n_iter=steps,
                    exaggeration=exaggeration,
                    inplace=True,
                    **grid,
                )
                done += steps
        return np.asarray(embedding, dtype=np.float64)


@register_processor("umap")
class UMAP(Processor):
    """UMAP (umap-learn) ``(N, D) -> (N, n_components)``, seeded and single-threaded.

    umap-learn is imported on first use: the import JIT-compiles with numba. A fixed seed
    makes umap-learn run on one thread (its parallel optimization is not reproducible).
    """

    version: ClassVar[int] = 1

    n_components = Param(int, 2, "Embedding dimension.")
    n_neighbors = Param(int, 15, "Size of the local neighbourhood; must be below N.")
    min_dist = Param(float, 0.1, "Smallest distance between embedded points.")
    metric = Param(str, "euclidean", "Distance metric of the input features (umap-learn name).")
    seed = Param(int, 0, "Random seed.")

    def function(self, data: Any) -> np.ndarray:
        features = embedding_features(self, data)
        n = features.shape[0]
        below_samples(self, "n_neighbors", n, low=2)
        below_samples(self, "n_components", n)
        import numba

        with warnings.catch_warnings():
            # umap-learn announces on import that its optional TensorFlow-based ParametricUMAP
            # is unavailable; it is not used here.
            warnings.filterwarnings("ignore", "Tensorflow not installed", ImportWarning)
            import umap

        model = umap.UMAP(
            n_components=self.n_components,
            n_neighbors=self.n_neighbors,
            min_dist=self.min_dist,
            metric=self.metric,
            random_state=self.seed,
            n_jobs=1,
        )
        # umap-learn sets numba's global thread count to n_jobs; give the others theirs back.
        threads = numba.get_num_threads()
        try:
            return np.asarray(model.fit_transform(features), dtype=np.float64)
        except ValueError as error:
            raise ConfigError(f"UMAP: {error}") from None
        finally:
            numba.set_num_threads(threads)


@register_processor("lle")
class LLE(Processor):
    """Locally linear embedding (scikit-learn) ``(N, D) -> (N, n_components)``, seeded.

    Every sample is reconstructed from its ``n_neighbors`` nearest neighbours with weights
    summing to one; the embedding keeps these weights (Roweis and Saul, 2000). ``method``
    selects the variant (standard, modified, Hessian, local tangent space alignment). The
    defaults are scikit-learn's, except the fixed seed. Columns are eigenvectors, defined up
    to sign; the largest-magnitude entry of each is made positive (as for PCA). Above
    ``max_dense`` samples the sparse arpack solver is used ('auto') or required.
    """

    version: ClassVar[int] = 1

    n_components = Param(int, 2, "Embedding dimension.")
    n_neighbors = Param(int, 5, "Neighbours reconstructing each sample; must be below N.")
    method = Param(str, "standard", "Variant: 'standard', 'modified', 'hessian' or 'ltsa'.")
    reg = Param(float, 1e-3, "Regularization of the local reconstruction weights.")
    eigen_solver = Param(str, "auto", "Eigensolver: 'auto', 'arpack' or 'dense'.")
    tol = Param(float, 1e-6, "Tolerance of the arpack eigensolver.")
    max_iter = Param(int, 100, "Iteration limit of the arpack eigensolver.")
    seed = Param(int, 0, "Seed of arpack's starting vector.")
    max_dense = Param(int, 4096, "Largest N for which the dense solver may build N x N.")

    def function(self, data: Any) -> np.ndarray:
        method = choice(self, "method", ("standard", "modified", "hessian", "ltsa"))
        solver = choice(self, "eigen_solver", ("auto", "arpack", "dense"))
        features = embedding_features(self, data)
        n = features.shape[0]
        below_samples(self, "n_neighbors", n)
        below_samples(self, "n_components", n)
        if n > self.max_dense:
            if solver == "dense":
                raise ConfigError(
                    f"LLE: eigen_solver='dense' builds an N x N matrix and N = {n} exceeds "
                    f"max_dense={self.max_dense}; use 'arpack' or 'auto'"
                )
            # scikit-learn's 'auto' goes dense at any N for n_components >= 9.
            solver = "arpack"
        model = manifold.LocallyLinearEmbedding(
            n_neighbors=self.n_neighbors,
            n_components=self.n_components,
            reg=self.reg,
            eigen_solver=solver,
            tol=self.tol,
            max_iter=self.max_iter,
            method=method,
            random_state=self.seed,
        )
        try:
            embedding = model.fit_transform(features)
        except ValueError as error:
            # The variants' own limits (hessian: enough neighbours for the dimension) and
            # arpack's failures on singular problems, in scikit-learn's words.
            raise ConfigError(f"LLE: {' '.join(str(error).split())}") from None
        return _fix_signs(np.asarray(embedding, dtype=np.float64))
