"""The model and method the engine tests attribute with (shared by tests/engine)."""

from __future__ import annotations

import torch

from relscope.data.builtin import mnist_cnn

REFERENCE = "relscope.data.builtin:mnist_cnn"
METHOD = {"method": "epsilon_gamma_box", "params": {"low": 0.0, "high": 1.0}}


def load_cnn(weights):
    """The MNIST CNN with the saved ``weights``, in eval mode."""
    model = mnist_cnn()
    model.load_state_dict(torch.load(weights, weights_only=True))
    return model.eval()
