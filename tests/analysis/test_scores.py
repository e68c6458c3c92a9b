"""Eigengap, Fisher separability (tau) and category ranking against explicit formulas."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans

from relscope.analysis.scores import eigengap, rank_categories, separability
from relscope.errors import ConfigError


def test_eigengap_gaps_and_suggestion() -> None:
    values = np.array([0.9, 0.0, 0.01, 0.02, 0.5])  # unsorted on purpose
    gaps, k = eigengap(values)
    np.testing.assert_allclose(gaps, [0.01, 0.01, 0.48, 0.4])
    assert k == 3
    # max_k restricts the candidate gaps to the first max_k
    assert eigengap(values, max_k=2)[1] == 1


def test_eigengap_components() -> None:
    # c disconnected components: c zero eigenvalues, then a jump
    assert eigengap(np.array([0.0, 0.0, 0.0, 0.0, 0.6, 0.7]))[1] == 4


def test_eigengap_rejects_too_few() -> None:
    with pytest.raises(ConfigError, match="at least 2 eigenvalues"):
        eigengap(np.array([0.0]))


def _reference_tau(x: np.ndarray, labels: np.ndarray) -> float:
    a, b = x[labels == 0], x[labels == 1]
    ca = (a - a.mean(0)).T @ (a - a.mean(0)) / len(a)
    cb = (b - b.mean(0)).T @ (b - b.mean(0)) / len(b)
    d = a.mean(0) - b.mean(0)
    return float(d @ np.linalg.inv(ca + cb) @ d)


def test_separability_matches_fisher_formula() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3))
    labels = (rng.random(40) < 0.4).astype(int)
    x[labels == 1] += [1.0, -0.5, 0.2]
    # closed form d^T (C_A + C_B)^-1 d of the projections' Fisher ratio
    assert separability(x, labels, ridge=0.0) == pytest.approx(_reference_tau(x, labels))
    # the tiny default ridge barely changes it
    assert separability(x, labels) == pytest.approx(_reference_tau(x, labels), rel=1e-4)


def test_separability_one_dimension_by_hand() -> None:
    x = np.array([[0.0], [2.0], [10.0], [12.0]])
    # means 1 and 11, variances 1 and 1: 100 / 2
    assert separability(x, np.array([0, 0, 1, 1]), ridge=0.0) == pytest.approx(50.0)


def test_separability_invariant_under_linear_maps_and_ignores_noise() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((30, 2))
    labels = np.repeat([0, 1], 15)
    x[15:] += 2.0
    mapped = x @ np.array([[3.0, 1.0], [0.0, 0.01]])
    assert separability(mapped, labels, ridge=0.0) == pytest.approx(
        separability(x, labels, ridge=0.0)
    )
    with_noise = np.concatenate([labels, [-1, -1]])
    extra = np.concatenate([x, [[100.0, 100.0], [-50.0, 3.0]]])
    assert separability(extra, with_noise, ridge=0.0) == pytest.approx(
        separability(x, labels, ridge=0.0)
    )


def test_separability_degenerate() -> None:
    x = np.array([[0.0, 0.0], [1.0, 1.0]])
    assert separability(x, np.array([0, 1])) == float("inf")
    assert separability(np.zeros((2, 2)), np.array([0, 1])) == 0.0
    with pytest.raises(ConfigError, match="exactly 2 clusters"):
        separability(x, np.array([0, 0]))
    with pytest.raises(ConfigError, match="3 labels for 2 samples"):
        separability(x, np.array([0, 1, 1]))


def test_planted_blobs_score_far_above_a_split_blob() -> None:
    rng = np.random.default_rng(2)
    blob = rng.standard_normal((200, 5))
    split = KMeans(n_clusters=2, n_init=4, random_state=0).fit_predict(blob)
    two = np.concatenate([rng.standard_normal((100, 5)), rng.standard_normal((100, 5)) + 8.0])
    planted = KMeans(n_clusters=2, n_init=4, random_state=0).fit_predict(two)
    assert separability(two, planted) > 10 * separability(blob, split)


def test_rank_categories() -> None:
    ranked = rank_categories({"b": 1.0, "a": 1.0, "c": 3.0, "d": float("nan"), "e": np.inf})
    assert ranked[:4] == [("e", np.inf), ("c", 3.0), ("a", 1.0), ("b", 1.0)]
    assert ranked[4][0] == "d"
