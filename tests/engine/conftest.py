"""Small inputs of the engine tests, and a Progress that records what it hears."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from relscope.data.attribution_db import AttributionWriter
from relscope.data.builtin import mnist_cnn
from relscope.engine.designer import DesignSession
from support.engine_inputs import random_inputs

SIZE = 12


class Recorder:
    """A :class:`~relscope.engine.progress.Progress` keeping every call, in order."""

    def __init__(self):
        self.calls = []

    def start(self, task, total, done=0):
        self.calls.append(("start", task, total, done))

    def advance(self, task, n=1):
        self.calls.append(("advance", task, n))

    def finish(self, task):
        self.calls.append(("finish", task))

    def message(self, text):
        self.calls.append(("message", text))

    def report(self, result):
        self.calls.append(("report", result))

    def of(self, kind, task=None):
        return [c for c in self.calls if c[0] == kind and (task is None or c[1] == task)]

    def advanced(self, task):
        return sum(call[2] for call in self.of("advance", task))

    def reports(self, kind):
        return [call[1] for call in self.of("report") if isinstance(call[1], kind)]

    def messages(self):
        return [call[1] for call in self.of("message")]


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def images_and_model(tmp_path):
    """40 random 1 x 28 x 28 images of classes 0..3 in an HDF5 dataset, and saved weights."""
    data, weights, _, labels = random_inputs(tmp_path, 40, seed=0, weight_seed=1, classes=4)
    return data, weights, labels


def blob(cy: float, cx: float, sigma: float) -> np.ndarray:
    yy, xx = np.mgrid[:SIZE, :SIZE]
    return np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))


@pytest.fixture
def attribution_file(tmp_path):
    """An attribution database of three categories of 30 heatmaps (class 1: a corner patch
    in one of five) and one of 4, too small for SpRAy's k-NN graph."""
    rng = np.random.default_rng(3)
    maps, labels = [], []
    for label, count in ((0, 30), (1, 30), (2, 30), (3, 4)):
        for i in range(count):
            base = blob(2, 2, 1.2) if label == 1 and i % 5 == 0 else blob(6, 6, 2.5)
            maps.append(base * rng.uniform(0.5, 1.5) + rng.uniform(0, 0.05, (SIZE, SIZE)))
            labels.append(label)
    maps = np.stack(maps)[:, None].astype(np.float32)
    labels = np.asarray(labels)
    order = rng.permutation(len(labels))
    path = tmp_path / "attribution.h5"
    with AttributionWriter(path, np.arange(len(labels)), shape=(1, SIZE, SIZE), num_outputs=4) as w:
        w.add(maps[order], labels[order], np.zeros((len(labels), 4), np.float32))
    return path


@pytest.fixture(scope="module")
def session():
    """A design session on the demo CNN (float64, seeded weights)."""
    torch.manual_seed(0)
    return DesignSession(mnist_cnn().double(), input_shape=(1, 28, 28))


@pytest.fixture(scope="module")
def x():
    """One random 28 x 28 input for the design session."""
    return torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(1)).double()
