"""The Clever-Hans task pieces: artifact, task data, seeded training, artifact cluster."""

import numpy as np
import pytest
import torch

from relscope.data.builtin import load_mnist, mnist_cnn, plant_artifact
from relscope.engine.clever_hans import (
    ArtifactCluster,
    find_artifact_cluster,
    make_task,
    train_classifier,
)
from relscope.errors import ConfigError


def test_plant_artifact_sets_the_corner_of_the_chosen_rows_only():
    images = np.random.default_rng(0).random((4, 2, 6, 6)).astype(np.float32)
    out = plant_artifact(images, np.array([0, 2]), size=2, value=0.5)
    assert np.all(out[[0, 2], :, :2, :2] == 0.5)
    untouched = np.ones(out.shape, bool)
    untouched[[0, 2], :, :2, :2] = False
    np.testing.assert_array_equal(out[untouched], images[untouched])
    assert not np.shares_memory(out, images)
    with pytest.raises(ConfigError, match="size must be between 1 and the image side"):
        plant_artifact(images, [0], size=7)


def test_make_task_poisons_the_asked_share_of_one_class_with_real_mnist():
    task = make_task([1, 3, 7], per_class=50, poisoned_class=3, fraction=0.3, seed=4)
    assert task.images.shape == (150, 1, 28, 28) and task.images.dtype == np.float32
    assert np.bincount(task.labels, minlength=8)[[1, 3, 7]].tolist() == [50, 50, 50]
    assert task.poisoned.sum() == 15 and set(task.labels[task.poisoned]) == {3}
    assert np.all(task.images[task.poisoned, 0, :3, :3] == 1.0)
    images, labels = load_mnist(train=True)
    clean = ~task.poisoned
    np.testing.assert_array_equal(
        task.images[clean, 0], images[task.source_index[clean]] / np.float32(255)
    )
    np.testing.assert_array_equal(labels[task.source_index], task.labels)
    again = make_task([1, 3, 7], per_class=50, poisoned_class=3, fraction=0.3, seed=4)
    np.testing.assert_array_equal(again.images, task.images)  # seeded
    pair = make_task([9, 0], per_class=10, poisoned_class=0, fraction=0.5, seed=0, relabel=True)
    assert set(pair.labels[pair.poisoned]) == {1}  # classes become 0, 1 in the given order
    with pytest.raises(ConfigError, match="poisoned class 5 is not among"):
        make_task([1, 3], per_class=5, poisoned_class=5, fraction=0.1, seed=0)


def test_training_is_seeded_and_learns():
    task = make_task([0, 1], per_class=100, poisoned_class=None, fraction=0.0, seed=0)
    first = train_classifier(task.images, task.labels, num_classes=2, epochs=1, seed=5)
    second = train_classifier(task.images, task.labels, num_classes=2, epochs=1, seed=5)
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    predicted = first(torch.from_numpy(task.images)).argmax(1).numpy()
    assert (predicted == task.labels).mean() > 0.9  # 0 vs 1 is easy
    assert not first.training
    assert sum(p.numel() for p in mnist_cnn().parameters()) < 120_000


def test_find_artifact_cluster_prefers_coarse_pure_kmeans_splits():
    poisoned = np.array([True] * 9 + [False] * 11)
    clusterings = {
        "dbscan": np.zeros(20, int),  # one cluster: separates nothing, ignored
        "kmeans-03": np.array([0] * 9 + [1] * 5 + [2] * 6),
        "agglomerative-02": np.array([0] * 9 + [1] * 11),
        "kmeans-02": np.array([1] * 9 + [0] * 11),
        "hdbscan": np.array([0] * 8 + [-1] + [1] * 11),  # 8 of 9: below the share
    }
    assert find_artifact_cluster(clusterings, poisoned) == ArtifactCluster(
        "kmeans-02", 1, 9, 1.0, 1.0
    )
    mixed = {"kmeans-02": np.array([0] * 9 + [0] * 3 + [1] * 8)}
    assert find_artifact_cluster(mixed, poisoned) == ArtifactCluster("kmeans-02", 0, 12, 1.0, 0.75)
    assert find_artifact_cluster({"kmeans-02": np.arange(20) % 2}, poisoned) is None
    assert find_artifact_cluster(clusterings, np.zeros(20, bool)) is None
