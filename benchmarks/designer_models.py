"""Models the Designer page benchmark serves by reference (``designer_models:vgg16``)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def vgg16():
    """torchvision's VGG-16 with random weights (seed 0)."""
    import torch

    sys.path.insert(0, str(ROOT / "tests"))
    from support.zoo import import_torchvision

    torch.manual_seed(0)
    return import_torchvision().models.vgg16(weights=None)
