"""Small models and a project for the designer tests."""

from __future__ import annotations

import torch
from torch import nn

from relscope.data.labels import LabelMap, save_label_map
from relscope.data.project import DatasetSpec, Project, save_project
from support.engine_inputs import REFERENCE, random_inputs

NAMES = [f"digit {i}" for i in range(10)]


class Block(nn.Module):
    """conv -> batch norm -> relu -> conv, plus the input (a residual sum)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(self.relu(self.norm(self.conv1(x))))


class TinyResNet(nn.Module):
    """A residual model for 3 x 16 x 16 inputs and 12 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.ReLU()
        self.block = Block(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(8, 12)

    def forward(self, x):
        x = self.block(self.act(self.stem(x)))
        return self.head(torch.flatten(self.pool(x), 1))


def tiny_resnet() -> nn.Module:
    torch.manual_seed(3)
    model = TinyResNet()
    with torch.no_grad():  # non-trivial running statistics, so merging changes something
        model.block.norm.running_mean.uniform_(-0.5, 0.5)
        model.block.norm.running_var.uniform_(0.5, 2.0)
    return model.eval()


def make_project(folder, n: int = 12):
    """An HDF5 project of ``n`` random 1 x 28 x 28 images with the demo CNN and saved
    weights: ``(project file, images, labels)``."""
    data, weights, images, labels = random_inputs(folder, n, seed=5, weight_seed=7, classes=10)
    label_map = save_label_map(LabelMap.from_names(NAMES), folder / "labels.json")
    project = Project(
        name="designer",
        model=REFERENCE,
        model_weights=weights,
        label_map=label_map,
        dataset=DatasetSpec("random", "hdf5", data),
    )
    return save_project(project, folder / "project.yaml"), images, labels
