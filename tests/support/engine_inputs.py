"""The model and method the engine tests attribute with (shared by tests/engine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from relscope.data.builtin import mnist_cnn
from relscope.data.dataset import write_hdf5_dataset
from relscope.data.model import save_weights

REFERENCE = "relscope.data.builtin:mnist_cnn"
METHOD = {"method": "epsilon_gamma_box", "params": {"low": 0.0, "high": 1.0}}


def load_cnn(weights):
    """The MNIST CNN with the saved ``weights``, in eval mode."""
    model = mnist_cnn()
    model.load_state_dict(torch.load(weights, weights_only=True))
    return model.eval()


def random_inputs(folder: Path, n: int, *, seed: int, weight_seed: int, classes: int = 3):
    """``n`` random 1 x 28 x 28 images (labels ``i % classes``) as ``folder/data.h5`` and an
    untrained CNN as ``folder/cnn.pt``: ``(data, weights, images, labels)``."""
    images = np.random.default_rng(seed).random((n, 1, 28, 28)).astype(np.float32)
    labels = np.arange(n) % classes
    data = write_hdf5_dataset(folder / "data.h5", images, labels)
    torch.manual_seed(weight_seed)
    weights = save_weights(mnist_cnn(), folder / "cnn.pt")
    return data, weights, images, labels
