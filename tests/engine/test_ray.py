"""The Ray backend on a real local Ray (``ray_cluster``): the same rows and analyses as the
local backend, shards written by both workers, a killed worker restarted
with nothing lost or duplicated, a rerun computing only missing shards."""

from __future__ import annotations

import itertools
import sys

import numpy as np
import pytest
import ray

from relscope.attribution.config import method_config
from relscope.data.attribution_db import AttributionDatabase, AttributionSet, AttributionWriter
from relscope.data.dataset import open_dataset
from relscope.engine import LocalBackend, analyze, attribute
from relscope.engine.engines import open_backend
from relscope.engine.ray_backend import INSTALL_HINT, RayBackend
from relscope.errors import ConfigError
from support.dying_dataset import DiesOnce
from support.engine_inputs import METHOD, REFERENCE, load_cnn

from .test_analysis import PIPELINE, assert_same


def rows(files):
    """Index and (attribution, label, prediction) of attribution databases read as one."""
    with AttributionSet(files) as database:
        return database.indices, database.read(database.indices)


def assert_same_rows(left, right):
    (index_a, columns_a), (index_b, columns_b) = rows(left), rows(right)
    np.testing.assert_array_equal(index_a, index_b)
    for a, b in zip(columns_a, columns_b, strict=True):
        np.testing.assert_array_equal(a, b)  # bitwise: same batches, one thread each


@pytest.fixture
def backend(ray_cluster):
    with RayBackend(workers=2) as started:
        yield started


def square(x: int) -> int:
    if x == 5:
        raise ValueError("five")
    return x * x


def test_tasks_give_every_item_once_and_raise_a_piece_error_as_itself(backend):
    assert sorted(backend.map(square, [1, 2, 3, 4])) == [(1, 1), (2, 4), (3, 9), (4, 16)]
    assert sum(backend.nodes.values()) == 4
    with pytest.raises(ValueError, match="five"):
        list(backend.map(square, range(8)))


@pytest.mark.parametrize("stream", [False, True], ids=["shared-files", "stream"])
def test_shards_from_both_workers_hold_the_rows_of_the_local_run(
    tmp_path, images_and_model, backend, ray_cluster, one_thread, recorder, stream
):
    data, weights, _ = images_and_model
    config = method_config(METHOD)
    with open_dataset(data) as dataset:
        local = attribute(dataset, load_cnn(weights), config, tmp_path / "local.h5",
                          batch_size=6, model_name=REFERENCE)  # fmt: skip
        run = attribute(dataset, load_cnn(weights), config, tmp_path / "ray.h5", batch_size=6,
                        shard_size=10, model_name=REFERENCE, backend=backend, stream=stream,
                        progress=recorder)  # fmt: skip
    # 40 samples in shards of 10 rounded up to whole batches of 6: 12, 12, 12, 4.
    assert [shard.samples for shard in run.shards] == [12, 12, 12, 4]
    assert [path.name for path in run.files] == [f"ray-0000{k}-of-00004.h5" for k in range(4)]
    assert not (tmp_path / "ray.h5").exists() and (run.samples, run.resumed) == (40, 0)
    assert_same_rows(local.files, run.files)
    for path in run.files:
        with AttributionDatabase(path) as shard:
            assert shard.metadata["model"] == REFERENCE
    assert run.accuracy == local.accuracy
    if not stream:  # two CPUs, one per worker: both workers wrote shards
        alive = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
        assert sum(backend.nodes.values()) == 4 and set(backend.nodes) <= alive
        assert len({shard.worker for shard in run.shards}) == 2
    assert recorder.calls[0] == ("start", "attribute", 40, 0)
    assert recorder.advanced("attribute") == 40
    assert recorder.calls[-2:] == [("finish", "attribute"), ("report", run)]


def test_a_rerun_computes_only_the_missing_shards(tmp_path, images_and_model, backend, recorder):
    data, weights, _ = images_and_model
    config = method_config(METHOD)
    with open_dataset(data) as dataset:
        first = attribute(dataset, load_cnn(weights), config, tmp_path / "a.h5", batch_size=4,
                          shard_size=16, backend=backend)  # fmt: skip
        kept = {path: path.stat().st_mtime_ns for path in first.files}
        first.files[1].unlink()
        again = attribute(dataset, load_cnn(weights), config, tmp_path / "a.h5", batch_size=4,
                          shard_size=16, backend=backend, progress=recorder)  # fmt: skip
    assert again.files == first.files and (again.samples, again.resumed) == (40, 24)
    assert [shard.worker != "" for shard in again.shards] == [False, True, False]
    for path in (first.files[0], first.files[2]):
        assert path.stat().st_mtime_ns == kept[path]
    assert recorder.of("start") == [("start", "attribute", 40, 24)]
    assert recorder.advanced("attribute") == 16
    assert "2 of 3 shards of a.h5 are complete already" in recorder.messages()[0]
    assert_same_rows([tmp_path / "a-00001-of-00003.h5"], [again.files[1]])


def test_other_settings_in_a_shard_are_refused(tmp_path, images_and_model, backend):
    data, weights, _ = images_and_model
    with open_dataset(data) as dataset:
        attribute(dataset, load_cnn(weights), method_config(METHOD), tmp_path / "a.h5",
                  batch_size=8, shard_size=20, backend=backend)  # fmt: skip
        other = method_config({"method": "epsilon_plus_flat"})
        with pytest.raises(ConfigError, match=r"other settings.*--overwrite"):
            attribute(dataset, load_cnn(weights), other, tmp_path / "a.h5", batch_size=8,
                      shard_size=20, backend=backend)  # fmt: skip


def test_a_killed_worker_is_restarted_and_its_shard_retried(
    tmp_path, images_and_model, backend, one_thread, recorder
):
    data, weights, _ = images_and_model
    config = method_config(METHOD)
    marker = tmp_path / "killed"
    with open_dataset(data) as dataset:
        local = attribute(dataset, load_cnn(weights), config, tmp_path / "local.h5",
                          batch_size=6)  # fmt: skip
        # The worker reading sample 8 dies: in the second batch of shard 0, after the
        # shard's first block of 6 rows became durable.
        dying = DiesOnce(dataset, str(marker), at=8)
        run = attribute(dying, load_cnn(weights), config, tmp_path / "ray.h5", batch_size=6,
                        shard_size=12, block_rows=6, backend=backend,
                        progress=recorder)  # fmt: skip
    assert marker.is_file()  # a worker was killed
    assert sum(shard.resumed for shard in run.shards) == 6  # its shard kept its first block
    index, _ = rows(run.files)
    assert len(index) == 40 and len(set(index.tolist())) == 40
    assert_same_rows(local.files, run.files)
    assert recorder.advanced("attribute") == 40  # the retried rows are counted once


def shards_of(source, folder, bounds):
    """The rows of ``source`` cut at ``bounds`` into shard databases, as a sharded run."""
    with AttributionDatabase(source) as database:
        index = database.indices
        attribution, label, prediction = database.read(index)
    paths = []
    for k, (start, stop) in enumerate(itertools.pairwise(bounds)):
        path = folder / f"shard-{k}.h5"
        with AttributionWriter(path, index[start:stop], shape=attribution.shape[1:],
                               num_outputs=prediction.shape[1]) as writer:  # fmt: skip
            writer.add(attribution[start:stop], label[start:stop], prediction[start:stop])
        paths.append(path)
    return paths


def test_categories_as_ray_tasks_over_shards_equal_the_local_analysis(
    tmp_path, attribution_file, backend, recorder
):
    local = analyze(attribution_file, tmp_path / "local.h5", config=PIPELINE,
                    backend=LocalBackend())  # fmt: skip
    shards = shards_of(attribution_file, tmp_path, [0, 40, 41, 94])
    cache = tmp_path / "cache.h5"
    run = analyze(shards, tmp_path / "ray.h5", config=PIPELINE, backend=backend, cache=cache,
                  progress=recorder)  # fmt: skip
    assert_same(tmp_path / "local.h5", tmp_path / "ray.h5")
    assert run.ranking == local.ranking and run.skipped == local.skipped
    assert recorder.advanced("analyze") == 4 and cache.is_file()
    # Resumable per category, as on one machine: a rerun has nothing left to do.
    again = type(recorder)()
    analyze(shards, tmp_path / "ray.h5", config=PIPELINE, backend=backend, cache=cache,
            progress=again)  # fmt: skip
    assert again.of("start") == [("start", "analyze", 1, 0)]  # the skipped category only


def test_workers_beyond_the_cluster_are_capped_and_impossible_ones_refused(ray_cluster):
    with RayBackend(workers=5) as backend:
        assert backend.worker_count() == 2  # two CPUs
    with RayBackend(gpus_per_worker=1) as backend, pytest.raises(ConfigError, match="no worker"):
        backend.worker_count()
    with pytest.raises(ConfigError, match="not started"):
        RayBackend().worker_count()
    for bad in ({"workers": 0}, {"cpus_per_worker": 0}, {"gpus_per_worker": -1}):
        with pytest.raises(ConfigError):
            RayBackend(**bad)


def test_without_ray_the_engine_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ConfigError) as error, open_backend("ray"):
        pass
    assert str(error.value) == INSTALL_HINT and "pip install 'relscope[ray]'" in INSTALL_HINT
    with pytest.raises(ConfigError, match="engine must be one of local, ray"), open_backend("x"):
        pass
