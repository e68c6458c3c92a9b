"""Per-category scores that rank categories for inspection: eigengap and separability (tau).

Definitions
-----------
Eigengap
    For the eigenvalues ``0 <= l_1 <= ... <= l_m`` of a normalized graph Laplacian (ascending),
    the gaps are ``g_i = l_{i+1} - l_i`` for ``i = 1 .. m - 1``. The suggested number of
    clusters is ``k* = argmax_i g_i`` (the first maximum) over ``i = 1 .. min(m, max_k + 1) - 1``,
    i.e. ``k*`` clusters explain the spectrum below the largest jump: a graph made of ``c``
    disconnected components has ``l_1 = ... = l_c = 0 < l_{c+1}``, hence ``k* = c``. The
    eigengap score is ``g_{k*}``.
Separability ("tau")
    The Fisher criterion of the two-class linear discriminant separating two groups ``A`` and
    ``B`` of feature vectors (the clusters of a two-cluster labelling; negative labels, i.e.
    noise, are ignored)::

        d   = m_A - m_B                       (difference of the group means)
        S   = C_A + C_B + r I                 (sum of the group covariances, 1/n_g normalized;
                                               ridge r = ridge * trace(C_A + C_B) / D)
        w   = S^-1 d                          (Fisher direction)
        y   = X w                             (projections)
        tau = (mu_A - mu_B)^2 / (s_A^2 + s_B^2)

    where ``mu_g`` and ``s_g^2`` are the mean and (``1/n_g``) variance of the projections of
    group ``g``; with ``ridge`` 0 it equals ``d^T (C_A + C_B)^-1 d``. Variances rather than
    scatters make it independent of the group sizes, and it is invariant under invertible linear
    maps of the features (so the scale of a spectral embedding does not matter). It is chosen
    over a cross-validated classification accuracy because accuracy saturates at 1 for every
    clearly split category and then no longer ranks them, while the Fisher criterion keeps
    growing with the margin.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from relscope.errors import ConfigError

__all__ = ["eigengap", "rank_categories", "separability"]


def eigengap(eigenvalues: np.ndarray, max_k: int | None = None) -> tuple[np.ndarray, int]:
    """Gaps between successive eigenvalues and the suggested number of clusters.

    Parameters
    ----------
    eigenvalues:
        1-D eigenvalues of a normalized Laplacian; sorted ascending here.
    max_k:
        Largest number of clusters that may be suggested; ``None``: ``len(eigenvalues) - 1``.

    Returns
    -------
    gaps, k:
        ``gaps[i] = l[i + 1] - l[i]`` (length ``m - 1``) and ``k = argmax gaps[:max_k] + 1``
        (first maximum); see the module documentation.

    Examples
    --------
    >>> gaps, k = eigengap(np.array([0.0, 0.0, 0.0, 0.5, 0.75]))
    >>> gaps.tolist(), k
    ([0.0, 0.0, 0.5, 0.25], 3)
    """
    values = np.sort(np.asarray(eigenvalues, dtype=np.float64).ravel())
    if values.size < 2:
        raise ConfigError(f"eigengap: expected at least 2 eigenvalues, found {values.size}")
    if not np.isfinite(values).all():
        raise ConfigError("eigengap: eigenvalues contain NaN or infinite values")
    gaps = np.diff(values)
    limit = gaps.size if max_k is None else max_k
    if limit < 1:
        raise ConfigError(f"eigengap: max_k must be positive, found {max_k}")
    return gaps, int(np.argmax(gaps[:limit])) + 1


def separability(features: np.ndarray, labels: np.ndarray, ridge: float = 1e-6) -> float:
    """Fisher criterion ("tau") of the linear discriminant separating two clusters.

    Parameters
    ----------
    features:
        Array ``(N, D)`` (more axes are flattened), e.g. a spectral embedding.
    labels:
        Integer labels ``(N,)`` with exactly two distinct non-negative values; negative
        labels (noise) are left out.
    ridge:
        Relative ridge added to the summed covariance, for rank-deficient groups.

    Returns
    -------
    float
        ``tau`` as defined in the module documentation: 0 when the means coincide, ``inf``
        when both groups are single points (no spread at all) at different places.

    Examples
    --------
    >>> x = np.array([[0.0], [2.0], [10.0], [12.0]])
    >>> round(separability(x, np.array([0, 0, 1, 1]), ridge=0.0), 6)  # 10^2 / (1 + 1)
    50.0
    """
    x = np.asarray(features, dtype=np.float64)
    x = x.reshape(x.shape[0], -1) if x.ndim else x.reshape(1, 1)
    y = np.asarray(labels).ravel()
    if y.shape[0] != x.shape[0]:
        raise ConfigError(
            f"separability: {y.shape[0]} labels for {x.shape[0]} samples; expected one each"
        )
    if y.dtype.kind not in "iu":
        raise ConfigError(f"separability: labels must be integers, found dtype {y.dtype}")
    if ridge < 0:
        raise ConfigError(f"separability: ridge must be non-negative, found {ridge}")
    groups = np.unique(y[y >= 0])
    if groups.size != 2:
        raise ConfigError(
            f"separability: expected exactly 2 clusters (labels >= 0), found {groups.size}"
        )
    a, b = x[y == groups[0]], x[y == groups[1]]
    difference = a.mean(axis=0) - b.mean(axis=0)
    covariance = np.cov(a, rowvar=False, bias=True).reshape(x.shape[1], x.shape[1])
    covariance = covariance + np.cov(b, rowvar=False, bias=True).reshape(covariance.shape)
    scale = np.trace(covariance) / x.shape[1]
    if scale <= 0:
        return float("inf") if np.any(difference != 0) else 0.0
    system = covariance + ridge * scale * np.eye(x.shape[1])
    # lstsq rather than solve: with ridge 0 the covariance may be singular.
    direction = np.linalg.lstsq(system, difference, rcond=None)[0]
    pa, pb = a @ direction, b @ direction
    spread = pa.var() + pb.var()
    between = (pa.mean() - pb.mean()) ** 2
    if spread <= 0:
        return float("inf") if between > 0 else 0.0
    return float(between / spread)


def rank_categories(scores: Mapping[str, float]) -> list[tuple[str, float]]:
    """Categories by descending score, ties (and NaN, placed last) in name order.

    Examples
    --------
    >>> rank_categories({"b": 1.0, "a": 1.0, "c": 3.0})
    [('c', 3.0), ('a', 1.0), ('b', 1.0)]
    """
    items = [(str(name), float(value)) for name, value in scores.items()]
    return sorted(items, key=lambda item: (np.isnan(item[1]), -np.nan_to_num(item[1]), item[0]))
