"""Samples as PyTorch tensors: the one module of the dataset readers that imports torch.

:class:`~relscope.data.dataset.base.ImageDataset` imports it on the first ``dataset[i]``
(what a :class:`torch.utils.data.DataLoader` does), so reading datasets as NumPy, as the web
app does, never loads PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def as_tensors(
    image: np.ndarray,
    label: int | np.ndarray,
    multi_label: bool,
    transform: Callable[[torch.Tensor], torch.Tensor] | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(image, label)`` of one sample: the float32 image (sharing memory with ``image``,
    then passed through ``transform``) and an int64 scalar class index or a bool vector."""
    tensor = torch.from_numpy(np.ascontiguousarray(image))
    if transform is not None:
        tensor = transform(tensor)
    if multi_label:
        target = torch.from_numpy(np.asarray(label, dtype=bool).copy())
    else:
        target = torch.tensor(int(label), dtype=torch.int64)
    return tensor, target
