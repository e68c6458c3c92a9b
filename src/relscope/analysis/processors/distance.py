"""Distances between samples and the structural similarity (SSIM) of attribution maps.

:class:`PairwiseDistance` builds a dense ``N x N`` matrix and so refuses ``N`` above
``max_dense``; use the sparse ``knn`` graph for large data sets.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy import ndimage
from scipy.spatial.distance import cdist

from relscope.analysis.params import Param
from relscope.analysis.pipeline import Processor, register_processor
from relscope.errors import ConfigError

__all__ = ["SSIM", "PairwiseDistance"]


def _unit_rows(features: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.where(norms > 0, norms, 1.0)


@register_processor("pairwise-distance")
class PairwiseDistance(Processor):
    """Dense pairwise distances ``(N, N)`` of flattened samples.

    ``'cosine'`` is ``1 - cos`` and ``'correlation'`` is ``1 - Pearson correlation``; a zero
    (respectively constant) sample is at distance 1 from every other sample and 0 from
    itself, instead of NaN.
    """

    version: ClassVar[int] = 1

    metric = Param(str, "euclidean", "'euclidean', 'cosine' or 'correlation'.")
    max_dense = Param(int, 4096, "Largest N for which an N x N matrix may be built.")

    def function(self, data: Any) -> np.ndarray:
        if self.metric not in ("euclidean", "cosine", "correlation"):
            raise ConfigError(
                f"PairwiseDistance: metric must be 'euclidean', 'cosine' or 'correlation', "
                f"found {self.metric!r}"
            )
        array = np.asarray(data, dtype=np.float64)
        if array.ndim < 2:
            raise ConfigError(
                f"PairwiseDistance: expected samples (N, ...), found shape {array.shape}"
            )
        features = array.reshape(array.shape[0], -1)
        n = features.shape[0]
        if n > self.max_dense:
            raise ConfigError(
                f"PairwiseDistance: {n} samples exceed max_dense={self.max_dense}; "
                f"use the sparse 'knn' processor"
            )
        if self.metric == "euclidean":
            return cdist(features, features)
        if self.metric == "correlation":
            features = features - features.mean(axis=1, keepdims=True)
        unit = _unit_rows(features)
        distances = np.clip(1.0 - unit @ unit.T, 0.0, 2.0)
        np.fill_diagonal(distances, 0.0)
        return distances


@register_processor("ssim")
class SSIM(Processor):
    """Mean structural similarity of pairs of maps, ``data = (a, b)``.

    ``a`` and ``b`` are single maps ``(H, W)`` (a float is returned) or batches
    ``(N, H, W)`` (an array ``(N,)``). The formula of Wang et al. (2004) with uniform
    ``win_size`` windows, sample covariances, and the mean over windows that lie fully
    inside the map. ``data_range=None`` uses ``max - min`` over both maps of each pair
    (two equal constant maps then have similarity 1).
    """

    version: ClassVar[int] = 1

    win_size = Param(int, 7, "Odd side of the square sliding window.")
    data_range = Param((float, type(None)), None, "Value range; None: range of each pair.")
    k1 = Param(float, 0.01, "Luminance stabilizer constant.")
    k2 = Param(float, 0.03, "Contrast stabilizer constant.")

    def function(self, data: Any) -> float | np.ndarray:
        if not isinstance(data, tuple | list) or len(data) != 2:
            raise ConfigError("SSIM: expected a pair (a, b) of maps")
        a, b = (np.asarray(x, dtype=np.float64) for x in data)
        if a.shape != b.shape or a.ndim not in (2, 3):
            raise ConfigError(
                f"SSIM: expected two maps of equal shape (H, W) or (N, H, W), "
                f"found {a.shape} and {b.shape}"
            )
        win = self.win_size
        if win < 3 or win % 2 == 0 or win > min(a.shape[-2:]):
            raise ConfigError(
                f"SSIM: win_size must be odd, at least 3 and at most the map size "
                f"{a.shape[-2:]}, found {win}"
            )
        single = a.ndim == 2
        a, b = a.reshape((-1, *a.shape[-2:])), b.reshape((-1, *b.shape[-2:]))
        if self.data_range is None:
            high = np.maximum(a.max(axis=(1, 2)), b.max(axis=(1, 2)))
            low = np.minimum(a.min(axis=(1, 2)), b.min(axis=(1, 2)))
            value_range = (high - low)[:, None, None]
        else:
            if not self.data_range > 0:
                raise ConfigError(f"SSIM: data_range must be positive, found {self.data_range}")
            value_range = np.full((a.shape[0], 1, 1), self.data_range)

        def mean(x: np.ndarray) -> np.ndarray:
            return ndimage.uniform_filter(x, size=(1, win, win))

        cov_norm = win * win / (win * win - 1.0)  # unbiased (sample) covariance
        mean_a, mean_b = mean(a), mean(b)
        var_a = cov_norm * (mean(a * a) - mean_a * mean_a)
        var_b = cov_norm * (mean(b * b) - mean_b * mean_b)
        cov = cov_norm * (mean(a * b) - mean_a * mean_b)
        c1 = (self.k1 * value_range) ** 2
        c2 = (self.k2 * value_range) ** 2
        numerator = (2 * mean_a * mean_b + c1) * (2 * cov + c2)
        denominator = (mean_a**2 + mean_b**2 + c1) * (var_a + var_b + c2)
        # Zero range means both maps are the same constant: identical structure.
        safe = denominator > 0
        ratio = np.where(safe, numerator / np.where(safe, denominator, 1.0), 1.0)
        pad = (win - 1) // 2
        result = ratio[:, pad : ratio.shape[1] - pad, pad : ratio.shape[2] - pad].mean(axis=(1, 2))
        return float(result[0]) if single else result
