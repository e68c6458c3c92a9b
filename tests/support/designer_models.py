"""Small models that project files name by reference, for the Designer's HTTP tests."""

from __future__ import annotations

import torch
from torch import nn


def tiny_cnn() -> nn.Module:
    """3 x 8 x 8 images to 3 classes; the same weights on every call (seeded)."""
    with torch.random.fork_rng():  # the caller's random state is left as it was
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(4, 6, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(6 * 4 * 4, 16),
            nn.ReLU(),
            nn.Linear(16, 3),
        )


def small_cnn() -> nn.Module:
    """3 x 24 x 24 images to 3 classes (larger inputs, for brushing in the Pixel flipping
    tab); the same weights on every call (seeded)."""
    with torch.random.fork_rng():  # the caller's random state is left as it was
        torch.manual_seed(1)
        return nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(8 * 6 * 6, 16),
            nn.ReLU(),
            nn.Linear(16, 3),
        )
