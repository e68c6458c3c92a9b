"""A small model with larger inputs than designer_models.tiny_cnn, for brushing in the
Designer's Pixel flipping tab (tests/app/test_designer_flipping.py)."""

from __future__ import annotations

import torch
from torch import nn


def small_cnn() -> nn.Module:
    """3 x 24 x 24 images to 3 classes; the same weights on every call (seeded)."""
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
