"""Tests of HDF5 dataset databases, image folders and the shared dataset interface."""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from torch.utils.data import DataLoader, Subset

from relscope.data.dataset import (
    DOWN_SAMPLING_METHODS,
    UP_SAMPLING_METHODS,
    Batch,
    HDF5Dataset,
    ImageDataset,
    ImageFolderDataset,
    Sample,
    open_dataset,
    write_hdf5_dataset,
)
from relscope.data.labels import Label, LabelMap
from relscope.errors import ConfigError, FormatError

RNG = np.random.default_rng(0)


def _save_image(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(path)
    return path


def _folder_with(tmp_path: Path, pixels: np.ndarray) -> Path:
    _save_image(tmp_path / "images" / "cls" / "x.png", pixels)
    return tmp_path / "images"


# --------------------------------------------------------------------------- HDF5 round trips


def test_equal_size_single_label_round_trip(tmp_path: Path) -> None:
    data = RNG.normal(size=(7, 3, 4, 5)).astype(np.float32)
    labels = np.array([0, 2, 1, 2, 9, 0, 3])
    path = write_hdf5_dataset(tmp_path / "d.h5", data, labels, chunk_rows=2)
    with h5py.File(path) as h5:
        assert h5["data"].dtype == np.float32
        assert h5["data"].chunks == (2, 3, 4, 5)
    with HDF5Dataset(path) as dataset:
        assert isinstance(dataset, ImageDataset)
        assert len(dataset) == 7
        assert not dataset.multi_label
        assert dataset.num_classes is None
        assert dataset.ids() == [str(i) for i in range(7)]
        np.testing.assert_array_equal(dataset.labels(), labels)
        assert dataset.labels().dtype == np.int64
        for i in range(7):
            sample = dataset.sample(i)
            assert isinstance(sample, Sample)
            assert sample.index == i
            assert sample.data.dtype == np.float32
            np.testing.assert_array_equal(sample.data, data[i])
            assert sample.label == labels[i]
            assert type(sample.label) is int
            image, label = dataset[i]
            assert image.dtype == torch.float32
            assert label.dtype == torch.int64
            assert label.shape == ()
            assert int(label) == labels[i]
            np.testing.assert_array_equal(image.numpy(), data[i])


def test_multi_label_round_trip(tmp_path: Path) -> None:
    data = RNG.random((5, 1, 3, 3))
    labels = RNG.random((5, 4)) > 0.5
    path = write_hdf5_dataset(tmp_path / "m.h5", data, labels, compression="lzf")
    with HDF5Dataset(path) as dataset:
        assert dataset.multi_label
        assert dataset.num_classes == 4
        np.testing.assert_array_equal(dataset.labels(), labels)
        assert dataset.labels().dtype == bool
        for i in range(5):
            np.testing.assert_array_equal(dataset.sample(i).label, labels[i])
            np.testing.assert_array_equal(dataset.sample(i).data, data[i].astype(np.float32))
            label = dataset[i][1]
            assert label.dtype == torch.bool
            np.testing.assert_array_equal(label.numpy(), labels[i])


def test_integer_data_is_read_as_stored_without_rescaling(tmp_path: Path) -> None:
    data = np.arange(2 * 1 * 2 * 2, dtype=np.uint8).reshape(2, 1, 2, 2) * 100
    with h5py.File(tmp_path / "u8.h5", "w") as h5:
        h5["data"] = data
        h5["label"] = np.array([1, 0], dtype=np.uint8)
    with HDF5Dataset(tmp_path / "u8.h5") as dataset:
        np.testing.assert_array_equal(dataset.sample(1).data, data[1].astype(np.float32))
        np.testing.assert_array_equal(dataset.labels(), [1, 0])


def test_per_id_groups_without_index_use_hdf5_key_order(tmp_path: Path) -> None:
    images = {
        "b": RNG.random((3, 2, 4)),
        "a": RNG.random((3, 5, 1)),
        "c10": RNG.random((3, 3, 3)),
        "c2": RNG.random((3, 1, 2)),
    }
    labels = {"b": 1, "a": 0, "c10": 4, "c2": np.uint16(2)}
    path = write_hdf5_dataset(tmp_path / "g.h5", images, labels)
    with HDF5Dataset(path) as dataset:
        # h5py iterates group members by name, which ViRelAy relies on as the order.
        assert dataset.ids() == ["a", "b", "c10", "c2"]
        np.testing.assert_array_equal(dataset.labels(), [0, 1, 4, 2])
        for i, key in enumerate(dataset.ids()):
            sample = dataset.sample(i)
            np.testing.assert_array_equal(sample.data, images[key].astype(np.float32))
            assert sample.label == labels[key]


def test_per_id_groups_with_index(tmp_path: Path) -> None:
    images = {key: np.full((1, 2, 2), value) for value, key in enumerate("wxyz")}
    labels = {key: value for value, key in enumerate("wxyz")}
    index = {"w": 2, "x": 0, "y": 3, "z": 1}
    path = write_hdf5_dataset(tmp_path / "gi.h5", images, labels, index=index)
    with HDF5Dataset(path) as dataset:
        assert dataset.ids() == ["x", "z", "w", "y"]
        np.testing.assert_array_equal(dataset.labels(), [1, 3, 0, 2])
        assert [float(dataset.sample(i).data[0, 0, 0]) for i in range(4)] == [1, 3, 0, 2]


def test_per_id_multi_label_groups(tmp_path: Path) -> None:
    images = {"p": np.zeros((3, 2, 2)), "q": np.ones((3, 2, 2))}
    labels = {"p": np.array([True, False, True]), "q": np.array([False, False, True])}
    path = write_hdf5_dataset(tmp_path / "gm.h5", images, labels)
    with HDF5Dataset(path) as dataset:
        assert dataset.multi_label
        assert dataset.num_classes == 3
        np.testing.assert_array_equal(dataset.labels(), [labels["p"], labels["q"]])
        batch = next(dataset.batches(2, [1, 0]))
        np.testing.assert_array_equal(batch.label, [labels["q"], labels["p"]])
        np.testing.assert_array_equal(batch.data[:, 0, 0, 0], [1.0, 0.0])


def test_virelay_style_uint16_scalar_labels(tmp_path: Path) -> None:
    path = tmp_path / "virelay.h5"
    stored = {}
    with h5py.File(path, "w") as h5:
        for i, key in enumerate(["img_10", "img_2", "img_1"]):
            stored[key] = RNG.random((3, 4 + i, 5)).astype(np.float32)
            h5.create_dataset(f"data/{key}", data=stored[key])
            h5.create_dataset(f"label/{key}", data=np.uint16(i + 7))
        keys = list(h5["data"].keys())
    with HDF5Dataset(path) as dataset:
        assert dataset.ids() == keys == ["img_1", "img_10", "img_2"]
        np.testing.assert_array_equal(dataset.labels(), [9, 7, 8])
        assert dataset.labels().dtype == np.int64
        assert dataset.sample(0).label == 9
        np.testing.assert_array_equal(dataset.sample(2).data, stored["img_2"])
        assert dataset[1][0].shape == (3, 4, 5)


# --------------------------------------------------------------------------- interface


@pytest.fixture
def equal_size(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    data = RNG.normal(size=(60, 2, 3, 3)).astype(np.float32)
    labels = np.arange(60) % 7
    return write_hdf5_dataset(tmp_path / "e.h5", data, labels, chunk_rows=8), data, labels


@pytest.mark.parametrize(
    "indices",
    [None, [5, 0, 3, 3, 6, 1], [59, 0], [10, 11, 12, 13, 14], [40, 2, 58, 2, 30], []],
)
def test_batches_match_samples_in_requested_order(
    equal_size: tuple[Path, np.ndarray, np.ndarray], indices: list[int] | None
) -> None:
    path, data, labels = equal_size
    expected = list(range(60)) if indices is None else indices
    with HDF5Dataset(path) as dataset:
        batches = list(dataset.batches(4, indices))
        assert all(isinstance(batch, Batch) for batch in batches)
        assert [len(batch.index) for batch in batches] == [
            min(4, len(expected) - start) for start in range(0, len(expected), 4)
        ]
        if not expected:
            return
        index = np.concatenate([batch.index for batch in batches])
        stacked = np.concatenate([batch.data for batch in batches])
        label = np.concatenate([batch.label for batch in batches])
        assert index.dtype == np.int64
        assert label.dtype == np.int64
        assert stacked.dtype == np.float32
        np.testing.assert_array_equal(index, expected)
        np.testing.assert_array_equal(stacked, data[expected])
        np.testing.assert_array_equal(label, labels[expected])
        for position, i in enumerate(expected):
            np.testing.assert_array_equal(stacked[position], dataset.sample(i).data)


def test_batch_and_index_errors(equal_size: tuple[Path, np.ndarray, np.ndarray]) -> None:
    path, data, _ = equal_size
    with HDF5Dataset(path) as dataset:
        with pytest.raises(IndexError, match="60"):
            dataset[60]
        with pytest.raises(IndexError):
            dataset.sample(-1)
        with pytest.raises(TypeError):
            dataset["1"]  # type: ignore[index]
        with pytest.raises(IndexError):
            dataset.batches(2, [0, 60])
        with pytest.raises(ConfigError):
            dataset.batches(0)
        # Integer-like indices are accepted.
        np.testing.assert_array_equal(dataset.sample(np.int64(3)).data, data[3])
        np.testing.assert_array_equal(dataset[torch.tensor(4)][0].numpy(), data[4])
        # The legacy iteration protocol stops at the IndexError.
        assert len(list(iter(dataset))) == 60


def test_transform_applies_to_getitem_only(
    equal_size: tuple[Path, np.ndarray, np.ndarray],
) -> None:
    path, data, _ = equal_size
    with HDF5Dataset(path, transform=lambda image: image * 2) as dataset:
        np.testing.assert_allclose(dataset[2][0].numpy(), 2 * data[2])
        np.testing.assert_array_equal(dataset.sample(2).data, data[2])
        np.testing.assert_array_equal(next(dataset.batches(1, [2])).data[0], data[2])


def test_dataloader_with_workers_matches_direct_indexing(
    equal_size: tuple[Path, np.ndarray, np.ndarray],
) -> None:
    path, _, _ = equal_size
    dataset = HDF5Dataset(path)
    dataset.sample(0)  # the parent holds an open handle the workers must not use
    images, labels = [], []
    for image, label in DataLoader(dataset, batch_size=7, num_workers=2):
        images.append(image)
        labels.append(label)
    assert torch.equal(torch.cat(images), torch.stack([dataset[i][0] for i in range(60)]))
    assert torch.equal(torch.cat(labels), torch.stack([dataset[i][1] for i in range(60)]))
    dataset.close()


def test_getitems_reads_a_batch_once_and_equals_getitem(
    equal_size: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path, monkeypatch
) -> None:
    path, _, _ = equal_size
    order = [40, 2, 58, 2, 30]
    with HDF5Dataset(path, transform=lambda image: image * 2) as dataset:
        expected = [dataset[i] for i in order]
        reads = []
        single = dataset._read_data
        monkeypatch.setattr(dataset, "_read_data", lambda i: reads.append(i) or single(i))
        items = dataset.__getitems__(order)
        assert reads == []  # one selection for the whole batch, no per-sample reads
        for (image, label), (want_image, want_label) in zip(items, expected, strict=True):
            assert torch.equal(image, want_image) and torch.equal(label, want_label)
        assert dataset.__getitems__([]) == []
        with pytest.raises(IndexError):
            dataset.__getitems__([0, 60])
    # A Subset in a DataLoader fetches through it too (per-id groups and multi-label alike).
    multi = write_hdf5_dataset(
        tmp_path / "m.h5",
        {f"s{i}": np.full((1, 2, 2), i, np.float32) for i in range(6)},
        {f"s{i}": np.eye(6, 3, k=-i % 3, dtype=bool)[i] for i in range(6)},
    )
    with HDF5Dataset(multi) as dataset:
        (images, labels) = next(iter(DataLoader(Subset(dataset, [4, 1, 3]), batch_size=3)))
        assert images[:, 0, 0, 0].tolist() == [4.0, 1.0, 3.0]
        assert torch.equal(labels, torch.stack([dataset[i][1] for i in (4, 1, 3)]))


def test_pickle_drops_the_open_handle(equal_size: tuple[Path, np.ndarray, np.ndarray]) -> None:
    path, data, _ = equal_size
    with HDF5Dataset(path) as dataset:
        dataset.labels()
        clone = pickle.loads(pickle.dumps(dataset))
        assert clone._file is None
        np.testing.assert_array_equal(clone.sample(5).data, data[5])
        assert dataset._file is not None
        clone.close()
    # A closed dataset opens its file again when read.
    np.testing.assert_array_equal(dataset.sample(1).data, data[1])
    dataset.close()


def test_grouped_batches_need_equal_sizes(tmp_path: Path) -> None:
    images = {"a": np.zeros((1, 2, 2)), "b": np.zeros((1, 3, 2)), "c": np.ones((1, 2, 2))}
    path = write_hdf5_dataset(tmp_path / "v.h5", images, {"a": 0, "b": 1, "c": 2})
    with HDF5Dataset(path) as dataset:
        with pytest.raises(ConfigError, match="different sizes"):
            list(dataset.batches(3))
        batch = next(dataset.batches(2, [2, 0]))
        np.testing.assert_array_equal(batch.data[:, 0, 0, 0], [1.0, 0.0])
        np.testing.assert_array_equal(batch.label, [2, 0])


def test_open_dataset_dispatch(tmp_path: Path) -> None:
    h5_path = write_hdf5_dataset(tmp_path / "x.h5", np.zeros((1, 1, 1, 1)), [0])
    folder = _folder_with(tmp_path, np.zeros((2, 2, 3)))
    with open_dataset(h5_path) as dataset:
        assert isinstance(dataset, HDF5Dataset)
    with open_dataset(folder, size=(4, 4), up_sampling="fill_zeros") as dataset:
        assert isinstance(dataset, ImageFolderDataset)
        assert dataset.sample(0).data.shape == (3, 4, 4)
    with open_dataset(h5_path, kind="hdf5") as dataset:
        assert len(dataset) == 1
    with pytest.raises(ConfigError, match="hdf5"):
        open_dataset(h5_path, kind="zip")
    with pytest.raises(ConfigError, match="size"):
        open_dataset(h5_path, size=(2, 2))
    with pytest.raises(FormatError, match="no such path"):
        open_dataset(tmp_path / "missing")
    with pytest.raises(FormatError):
        open_dataset(folder, kind="hdf5")


# --------------------------------------------------------------------------- malformed HDF5


def _write(path: Path, entries: dict[str, object]) -> Path:
    with h5py.File(path, "w") as h5:
        for key, value in entries.items():
            if isinstance(value, str):
                h5.create_group(key)
            else:
                h5.create_dataset(key, data=value)
    return path


GOOD_DATA = np.zeros((3, 1, 2, 2), dtype=np.float32)
MALFORMED = {
    "data 3-D": ({"data": np.zeros((3, 2, 2)), "label": [0, 1, 2]}, "/data", "4 dimensions"),
    "string data": ({"data": np.zeros((3, 1, 2, 2), "S2"), "label": [0, 1, 2]}, "/data", "S2"),
    "no data": ({"label": [0, 1, 2]}, "/data", "nothing"),
    "no label": ({"data": GOOD_DATA}, "/label", "nothing"),
    "short label": ({"data": GOOD_DATA, "label": [0, 1]}, "/label", "shape"),
    "float label": ({"data": GOOD_DATA, "label": [0.0, 1.0, 2.0]}, "/label", "float"),
    "int 2-D label": ({"data": GOOD_DATA, "label": np.zeros((3, 2), int)}, "/label", "bool"),
    "bool 1-D label": ({"data": GOOD_DATA, "label": [True, False, True]}, "/label", "2"),
    "label group": ({"data": GOOD_DATA, "label": "group"}, "/label", "group"),
    "negative label": ({"data": GOOD_DATA, "label": [0, -1, 2]}, "/label", "-1"),
    "empty data": ({"data": np.zeros((0, 1, 2, 2)), "label": np.zeros(0, int)}, "/data", "0"),
    "grouped label dataset": ({"data/a": np.zeros((1, 2, 2)), "label": [0]}, "/label", "group"),
    "grouped missing label": (
        {"data/a": np.zeros((1, 2, 2)), "data/b": np.zeros((1, 2, 2)), "label/a": 0},
        "/label/b",
        "nothing",
    ),
    "grouped extra label": (
        {"data/a": np.zeros((1, 2, 2)), "label/a": 0, "label/z": 1},
        "/label/z",
        "extra",
    ),
    "grouped 2-D image": ({"data/a": np.zeros((2, 2)), "label/a": 0}, "/data/a", "3 dimensions"),
    "grouped bad later image": (
        {"data/a": np.zeros((1, 2, 2)), "data/b": np.zeros(4), "label/a": 0, "label/b": 1},
        "/data/b",
        "3 dimensions",
    ),
    "grouped bad later label": (
        {
            "data/a": np.zeros((1, 2, 2)),
            "data/b": np.zeros((1, 1, 1)),
            "label/a": 0,
            "label/b": 1.5,
        },
        "/label/b",
        "float",
    ),
    "empty data group": ({"data": "group", "label": "group"}, "/data", "empty"),
    "index duplicate": (
        {
            "data/a": np.zeros((1, 2, 2)),
            "data/b": np.zeros((1, 2, 2)),
            "label/a": 0,
            "label/b": 0,
            "index/a": 1,
            "index/b": 1,
        },
        "/index/b",
        "twice",
    ),
    "index out of range": (
        {"data/a": np.zeros((1, 2, 2)), "label/a": 0, "index/a": 1},
        "/index/a",
        "0..0",
    ),
    "index missing id": (
        {"data/a": np.zeros((1, 2, 2)), "data/b": np.zeros((1, 2, 2))}
        | {"label/a": 0, "label/b": 0, "index/a": 0},
        "/index/b",
        "no entry",
    ),
}


@pytest.mark.parametrize(("entries", "key", "found"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_files_raise_format_error(
    tmp_path: Path, entries: dict[str, object], key: str, found: str
) -> None:
    path = _write(tmp_path / "bad.h5", entries)
    with pytest.raises(FormatError) as info:
        with HDF5Dataset(path) as dataset:
            dataset.labels()
            for i in range(len(dataset)):
                dataset.sample(i)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: expected")
    assert found in message
    assert "\n" not in message


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_hdf5_file(tmp_path: Path, fraction: float) -> None:
    data = RNG.random((20, 3, 8, 8))
    path = write_hdf5_dataset(tmp_path / "t.h5", data, np.arange(20), compression=None)
    content = path.read_bytes()
    path.write_bytes(content[: int(len(content) * fraction)])
    with pytest.raises(FormatError, match=str(path)):
        with HDF5Dataset(path) as dataset:
            dataset.labels()
            for i in range(len(dataset)):
                dataset.sample(i)


def test_foreign_and_missing_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.h5"
    text.write_text("just some text\n")
    with pytest.raises(FormatError, match="HDF5"):
        HDF5Dataset(text)
    with pytest.raises(FormatError, match="no such file"):
        HDF5Dataset(tmp_path / "absent.h5")


# Random layouts: a valid layout with up to two random mutations (deleted, reshaped, retyped,
# replaced or added entries) either opens and reads back what was stored, or raises FormatError.
NUMERIC = ["float32", "float16", "uint8", "int16"]
DTYPES = [*NUMERIC, "uint16", "int64", "bool", "complex64", "S3"]
IDS = ["a", "b", "c10", "c2"]
dims = st.integers(1, 3)
shapes = st.lists(st.integers(0, 3), min_size=0, max_size=5).map(tuple)


def _values(seed: int, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-1, 4, size=shape).astype(dtype)


def _labels(seed: int, shape: tuple[int, ...], multi: bool, dtype: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random(shape) > 0.5 if multi else rng.integers(0, 5, shape).astype(dtype)


@st.composite
def layouts(draw: st.DrawFn) -> dict[str, object]:
    seed = draw(st.integers(0, 2**16))
    multi = draw(st.booleans())
    k = draw(dims)
    label_dtype = draw(st.sampled_from(["uint8", "int16", "uint16", "int64"]))
    entries: dict[str, object] = {}
    if draw(st.booleans()):
        n = draw(dims)
        shape = (n, draw(dims), draw(dims), draw(dims))
        entries["data"] = _values(seed, shape, draw(st.sampled_from(NUMERIC)))
        entries["label"] = _labels(seed, (n, k) if multi else (n,), multi, label_dtype)
    else:
        ids = draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=4, unique=True))
        for number, key in enumerate(ids):
            shape = (draw(dims), draw(dims), draw(dims))
            entries[f"data/{key}"] = _values(seed + number, shape, draw(st.sampled_from(NUMERIC)))
            entries[f"label/{key}"] = _labels(seed + number, (k,) if multi else (), multi, "uint16")
        if draw(st.booleans()):
            for key, position in zip(ids, draw(st.permutations(range(len(ids)))), strict=True):
                entries[f"index/{key}"] = np.int64(position)
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from(sorted(entries)))
        value = entries[key]
        action = draw(st.sampled_from(["delete", "reshape", "retype", "group", "add"]))
        if action == "delete":
            del entries[key]
        elif action == "reshape" and isinstance(value, np.ndarray):
            entries[key] = _values(seed, draw(shapes), str(value.dtype))
        elif action == "retype" and isinstance(value, np.ndarray):
            entries[key] = value.astype(draw(st.sampled_from(DTYPES)))
        elif action == "group":
            entries[key] = "group"
        elif action == "add":
            where = draw(st.sampled_from(["data", "label", "index"]))
            if isinstance(entries.get(where), np.ndarray):
                continue  # a dataset cannot have members
            entries[f"{where}/zz"] = _values(seed, draw(shapes), draw(st.sampled_from(DTYPES)))
    return entries


def _expected(entries: dict[str, object]) -> tuple[list[np.ndarray], list[object]]:
    """Images and labels in dataset order, assuming the layout is valid."""
    if isinstance(entries.get("data"), np.ndarray):
        data, labels = entries["data"], entries["label"]
        return list(data.astype(np.float32)), list(labels)
    ids = sorted(key.split("/")[1] for key in entries if key.startswith("data/"))
    if any(key.startswith("index/") for key in entries):
        ids.sort(key=lambda key: int(entries[f"index/{key}"]))
    images = [entries[f"data/{key}"].astype(np.float32) for key in ids]
    return images, [entries[f"label/{key}"] for key in ids]


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(layouts())
def test_random_layouts_read_consistently_or_raise_format_error(
    entries: dict[str, object],
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "random.h5"
        with h5py.File(path, "w") as h5:
            for key, value in entries.items():
                if isinstance(value, str):
                    h5.create_group(key)
                else:
                    h5.create_dataset(key, data=value)
        try:
            with HDF5Dataset(path) as dataset:
                labels = dataset.labels()
                samples = [dataset.sample(i) for i in range(len(dataset))]
                shapes_read = {sample.data.shape for sample in samples}
                batches = list(dataset.batches(2)) if len(shapes_read) == 1 else []
        except FormatError:
            return
    images, stored_labels = _expected(entries)
    assert len(samples) == len(images) > 0
    for i, (sample, image, label) in enumerate(zip(samples, images, stored_labels, strict=True)):
        assert sample.index == i
        assert sample.data.dtype == np.float32
        np.testing.assert_array_equal(sample.data, image)
        np.testing.assert_array_equal(sample.label, label)
        np.testing.assert_array_equal(labels[i], label)
    if batches:
        np.testing.assert_array_equal(np.concatenate([b.data for b in batches]), np.stack(images))
        np.testing.assert_array_equal(np.concatenate([b.label for b in batches]), labels)


# --------------------------------------------------------------------------- writer


BAD_WRITES = {
    "3-D data": (np.zeros((2, 2, 2)), [0, 1], {}),
    "string data": (np.zeros((2, 1, 1, 1), "S1"), [0, 1], {}),
    "bool data": (np.zeros((2, 1, 1, 1), bool), [0, 1], {}),
    "empty data": (np.zeros((0, 1, 1, 1)), np.zeros(0, int), {}),
    "label count": (np.zeros((2, 1, 1, 1)), [0, 1, 2], {}),
    "float labels": (np.zeros((2, 1, 1, 1)), [0.0, 1.0], {}),
    "negative label": (np.zeros((2, 1, 1, 1)), [0, -1], {}),
    "bool 1-D labels": (np.zeros((2, 1, 1, 1)), [True, False], {}),
    "int 2-D labels": (np.zeros((2, 1, 1, 1)), np.zeros((2, 3), int), {}),
    "multi-label rows": (np.zeros((2, 1, 1, 1)), np.zeros((3, 3), bool), {}),
    "mapping labels for array": (np.zeros((1, 1, 1, 1)), {"0": 0}, {}),
    "index for array": (np.zeros((1, 1, 1, 1)), [0], {"index": {"0": 0}}),
    "chunk rows": (np.zeros((1, 1, 1, 1)), [0], {"chunk_rows": 0}),
    "compression": (np.zeros((1, 1, 1, 1)), [0], {"compression": "zip"}),
    "empty mapping": ({}, {}, {}),
    "bad id": ({"a/b": np.zeros((1, 1, 1))}, {"a/b": 0}, {}),
    "2-D image": ({"a": np.zeros((1, 1))}, {"a": 0}, {}),
    "missing label id": ({"a": np.zeros((1, 1, 1)), "b": np.zeros((1, 1, 1))}, {"a": 0}, {}),
    "extra label id": ({"a": np.zeros((1, 1, 1))}, {"a": 0, "b": 1}, {}),
    "array labels for mapping": ({"a": np.zeros((1, 1, 1))}, [0], {}),
    "mixed label kinds": (
        {"a": np.zeros((1, 1, 1)), "b": np.zeros((1, 1, 1))},
        {"a": 0, "b": np.array([True])},
        {},
    ),
    "bool scalar label": ({"a": np.zeros((1, 1, 1))}, {"a": True}, {}),
    "index not a permutation": (
        {"a": np.zeros((1, 1, 1)), "b": np.zeros((1, 1, 1))},
        {"a": 0, "b": 1},
        {"index": {"a": 1, "b": 1}},
    ),
    "index ids": ({"a": np.zeros((1, 1, 1))}, {"a": 0}, {"index": {"b": 0}}),
    "chunk rows with mapping": ({"a": np.zeros((1, 1, 1))}, {"a": 0}, {"chunk_rows": 1}),
}


@pytest.mark.parametrize(("data", "labels", "options"), BAD_WRITES.values(), ids=BAD_WRITES.keys())
def test_writer_rejects_bad_inputs_without_writing(
    tmp_path: Path, data: object, labels: object, options: dict[str, object]
) -> None:
    target = tmp_path / "out" / "w.h5"
    with pytest.raises(ConfigError):
        write_hdf5_dataset(target, data, labels, **options)
    assert not target.parent.exists()


def test_failed_write_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = write_hdf5_dataset(tmp_path / "keep.h5", np.ones((2, 1, 1, 1)), [3, 4])
    before = target.read_bytes()
    original = h5py.Group.create_dataset

    def failing(self: h5py.Group, name: str, *args: object, **kwargs: object) -> h5py.Dataset:
        if name == "label":
            raise RuntimeError("disk full")
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        write_hdf5_dataset(target, np.zeros((5, 1, 1, 1)), [0] * 5)
    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["keep.h5"]


# --------------------------------------------------------------------------- image folders

# A 2 x 3 gray image with pixel values 40 * [[1, 2, 3], [4, 5, 6]].
SMALL = np.array([[1, 2, 3], [4, 5, 6]])
BORDER = -1  # marks cells filled with 1.0 by fill_ones

PADDED = {
    # Padded to 5 x 7: rows 1 before and 2 after, columns 2 before and 2 after.
    "fill_zeros": [
        [0, 0, 0, 0, 0, 0, 0],
        [0, 0, 1, 2, 3, 0, 0],
        [0, 0, 4, 5, 6, 0, 0],
        [0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0],
    ],
    "fill_ones": [
        [-1, -1, -1, -1, -1, -1, -1],
        [-1, -1, 1, 2, 3, -1, -1],
        [-1, -1, 4, 5, 6, -1, -1],
        [-1, -1, -1, -1, -1, -1, -1],
        [-1, -1, -1, -1, -1, -1, -1],
    ],
    "edge_repeat": [
        [1, 1, 1, 2, 3, 3, 3],
        [1, 1, 1, 2, 3, 3, 3],
        [4, 4, 4, 5, 6, 6, 6],
        [4, 4, 4, 5, 6, 6, 6],
        [4, 4, 4, 5, 6, 6, 6],
    ],
    "mirror_edge": [
        [2, 1, 1, 2, 3, 3, 2],
        [2, 1, 1, 2, 3, 3, 2],
        [5, 4, 4, 5, 6, 6, 5],
        [5, 4, 4, 5, 6, 6, 5],
        [2, 1, 1, 2, 3, 3, 2],
    ],
    "wrap_around": [
        [5, 6, 4, 5, 6, 4, 5],
        [2, 3, 1, 2, 3, 1, 2],
        [5, 6, 4, 5, 6, 4, 5],
        [2, 3, 1, 2, 3, 1, 2],
        [5, 6, 4, 5, 6, 4, 5],
    ],
}


def _as_float(grid: list[list[int]]) -> np.ndarray:
    grid = np.asarray(grid)
    return np.where(grid == BORDER, 1.0, grid * 40 / 255).astype(np.float32)


@pytest.mark.parametrize("method", sorted(PADDED))
def test_up_sampling_padding(tmp_path: Path, method: str) -> None:
    folder = _folder_with(tmp_path, SMALL * 40)
    dataset = ImageFolderDataset(folder, size=(5, 7), up_sampling=method, mode="L")
    data = dataset.sample(0).data
    assert data.shape == (1, 5, 7)
    np.testing.assert_allclose(data[0], _as_float(PADDED[method]), atol=1e-6)


def test_padding_of_one_pixel_goes_after(tmp_path: Path) -> None:
    folder = _folder_with(tmp_path, SMALL * 40)
    dataset = ImageFolderDataset(folder, size=(3, 4), up_sampling="fill_zeros", mode="L")
    expected = [[1, 2, 3, 0], [4, 5, 6, 0], [0, 0, 0, 0]]
    np.testing.assert_allclose(dataset.sample(0).data[0], _as_float(expected), atol=1e-6)


def test_center_crop_and_mixed_dimensions(tmp_path: Path) -> None:
    tall = np.arange(24).reshape(4, 6) * 10
    folder = _folder_with(tmp_path, tall)
    cropped = ImageFolderDataset(folder, size=(2, 3), down_sampling="center_crop", mode="L")
    np.testing.assert_allclose(
        cropped.sample(0).data[0], np.array([[70, 80, 90], [130, 140, 150]]) / 255, atol=1e-6
    )
    # Rows are padded (smaller than 6) while columns are cropped (larger than 3).
    mixed = ImageFolderDataset(
        folder, size=(6, 3), up_sampling="fill_zeros", down_sampling="center_crop", mode="L"
    )
    expected = np.zeros((6, 3))
    expected[1:5] = tall[:, 1:4] / 255
    np.testing.assert_allclose(mixed.sample(0).data[0], expected, atol=1e-6)


def test_resize_methods_use_bilinear_pil_resize(tmp_path: Path) -> None:
    pixels = RNG.integers(0, 256, size=(4, 6, 3)).astype(np.uint8)
    folder = _folder_with(tmp_path, pixels)
    for size, options in [
        ((2, 3), {"down_sampling": "resize"}),
        ((6, 9), {"up_sampling": "resize"}),
    ]:
        dataset = ImageFolderDataset(folder, size=size, **options)
        reference = Image.fromarray(pixels).resize((size[1], size[0]), Image.Resampling.BILINEAR)
        expected = np.asarray(reference, dtype=np.float32).transpose(2, 0, 1) / 255
        np.testing.assert_allclose(dataset.sample(0).data, expected, atol=1e-6)
    # Resizing only the dimension that is too large keeps the other one.
    one_axis = ImageFolderDataset(folder, size=(2, 10), down_sampling="resize")
    assert one_axis.sample(0).data.shape == (3, 2, 6)
    constant = _folder_with(tmp_path / "c", np.full((3, 5), 120))
    grown = ImageFolderDataset(constant, size=(7, 8), up_sampling="resize", mode="L")
    np.testing.assert_allclose(grown.sample(0).data, np.full((1, 7, 8), 120 / 255), atol=1e-6)


def test_none_methods_keep_native_size_and_rgb_layout(tmp_path: Path) -> None:
    pixels = np.zeros((2, 3, 3), dtype=np.uint8)
    pixels[0, 1] = [255, 51, 0]
    folder = _folder_with(tmp_path, pixels)
    for size in [None, (5, 1)]:
        data = ImageFolderDataset(folder, size=size).sample(0).data
        assert data.shape == (3, 2, 3)
        assert data.dtype == np.float32
        np.testing.assert_allclose(data[:, 0, 1], [1.0, 0.2, 0.0], atol=1e-6)
        assert data.sum() == pytest.approx(1.2)


def test_invalid_image_folder_options(tmp_path: Path) -> None:
    folder = _folder_with(tmp_path, SMALL)
    with pytest.raises(ConfigError) as info:
        ImageFolderDataset(folder, size=(2, 2), up_sampling="reflect")
    assert all(method in str(info.value) for method in UP_SAMPLING_METHODS)
    with pytest.raises(ConfigError) as info:
        ImageFolderDataset(folder, size=(2, 2), down_sampling="crop")
    assert all(method in str(info.value) for method in DOWN_SAMPLING_METHODS)
    for options in [
        {"mode": "CMYK"},
        {"size": (0, 2)},
        {"size": (2,)},
        {"label_index_regex": "(a", "label_word_net_id_regex": None},
        {"label_index_regex": "no group"},
        {"label_index_regex": "(.)", "label_word_net_id_regex": "(.)"},
        {"label_word_net_id_regex": "(n\\d+)"},
    ]:
        with pytest.raises(ConfigError):
            ImageFolderDataset(folder, **options)


def _make_tree(root: Path, names: list[str]) -> None:
    for name in names:
        _save_image(root / name, np.full((2, 2), len(name)))


def test_image_folder_without_label_map(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    _make_tree(
        root,
        ["dog/b.png", "dog/a.png", "cat/extra/z.png", "cat/y.bmp", "bird/x.gif", "cat/.x.png"],
    )
    _save_image(root / "dog" / "C.JPG", np.zeros((2, 2, 3)))
    _save_image(root / ".hidden" / "h.png", np.zeros((2, 2)))
    (root / "cat" / "readme.txt").write_text("not an image")
    with ImageFolderDataset(root) as dataset:
        assert dataset.ids() == [
            "bird/x.gif",
            "cat/extra/z.png",
            "cat/y.bmp",
            "dog/C.JPG",
            "dog/a.png",
            "dog/b.png",
        ]
        assert dataset.classes == ["bird", "cat", "dog"]
        assert dataset.num_classes == 3
        assert not dataset.multi_label
        np.testing.assert_array_equal(dataset.labels(), [0, 1, 1, 2, 2, 2])
        assert dataset.labels().dtype == np.int64
        assert dataset.sample(3).label == 2
        assert int(dataset[1][1]) == 1
        np.testing.assert_allclose(dataset.sample(4).data, np.full((3, 2, 2), 9 / 255))


def test_image_folder_with_label_map(tmp_path: Path) -> None:
    label_map = LabelMap(
        [Label(0, "cat", "n02121808"), Label(5, "dog", "n02084071"), Label(7, "bird", "n01503061")]
    )
    root = tmp_path / "tree"
    _make_tree(root, ["n02084071/a.png", "00000007/b.png", "cat/c.png"])
    dataset = ImageFolderDataset(root, label_map=label_map)
    assert dataset.ids() == ["00000007/b.png", "cat/c.png", "n02084071/a.png"]
    np.testing.assert_array_equal(dataset.labels(), [7, 0, 5])
    assert dataset.num_classes == 8
    _make_tree(root, ["fish/d.png"])
    with pytest.raises(FormatError, match="'fish'"):
        ImageFolderDataset(root, label_map=label_map)


def test_image_folder_label_regexes(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    _make_tree(root, ["img_3.png", "sub/img_1.png", "n02084071_0001.png"])
    with pytest.raises(FormatError, match="sub-folder per class"):
        ImageFolderDataset(root)
    with pytest.raises(FormatError, match=r"n02084071_0001\.png"):
        ImageFolderDataset(root, label_index_regex=r".*img_(\d+)\.png")
    (root / "n02084071_0001.png").unlink()
    by_index = ImageFolderDataset(root, label_index_regex=r".*img_(\d+)\.png")
    assert by_index.ids() == ["img_3.png", "sub/img_1.png"]
    np.testing.assert_array_equal(by_index.labels(), [3, 1])
    assert by_index.num_classes is None
    label_map = LabelMap.from_names(["a", "b"])
    with pytest.raises(FormatError, match=r"img_3\.png"):
        ImageFolderDataset(root, label_map=label_map, label_index_regex=r".*img_(\d+)\.png")

    wnid_root = tmp_path / "wnid"
    _make_tree(wnid_root, ["n02084071_1.png", "x/n01503061_2.png"])
    label_map = LabelMap([Label(5, "dog", "n02084071"), Label(7, "bird", "n01503061")])
    by_wnid = ImageFolderDataset(
        wnid_root, label_map=label_map, label_word_net_id_regex=r"(?:.*/)?(n\d{8})_"
    )
    np.testing.assert_array_equal(by_wnid.labels(), [5, 7])
    _make_tree(wnid_root, ["n09999999_3.png"])
    with pytest.raises(FormatError, match="n09999999"):
        ImageFolderDataset(
            wnid_root, label_map=label_map, label_word_net_id_regex=r"(?:.*/)?(n\d{8})_"
        )


def test_image_folder_regex_falls_back_to_the_full_path_like_virelay(tmp_path: Path) -> None:
    # ViRelAy matches against <project folder>/<dataset path>/<file>, so its regexes start
    # with a prefix such as ".*/" that needs a folder before the class folder.
    root = tmp_path / "images"
    _make_tree(root, ["n02084071/a.png", "n01503061/b.png", "00000003/c.png"])
    label_map = LabelMap(
        [Label(5, "dog", "n02084071"), Label(7, "bird", "n01503061"), Label(3, "cat")]
    )
    wnid_regex = r".*/(n\d{8})/[^/]+$"
    with pytest.raises(FormatError, match=r"00000003/c\.png"):
        ImageFolderDataset(root, label_map=label_map, label_word_net_id_regex=wnid_regex)
    (root / "00000003" / "c.png").unlink()
    by_wnid = ImageFolderDataset(root, label_map=label_map, label_word_net_id_regex=wnid_regex)
    np.testing.assert_array_equal(by_wnid.labels(), [7, 5])
    by_index = ImageFolderDataset(tmp_path, label_index_regex=r".*/images/n\d{5}(\d{3})/")
    np.testing.assert_array_equal(by_index.labels(), [61, 71])
    # A match on the relative path wins (the full path has digits in pytest's folders).
    relative = ImageFolderDataset(root, label_index_regex=r".*?(\d+)/")
    np.testing.assert_array_equal(relative.labels(), [1503061, 2084071])


def test_broken_images_raise_format_error(tmp_path: Path) -> None:
    root = tmp_path / "broken"
    good = _save_image(root / "a" / "good.png", RNG.integers(0, 256, (32, 32, 3)))
    truncated = root / "a" / "truncated.png"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    (root / "a" / "text.jpg").write_text("this is not a jpeg")
    dataset = ImageFolderDataset(root)
    assert dataset.ids() == ["a/good.png", "a/text.jpg", "a/truncated.png"]
    assert dataset.sample(0).data.shape == (3, 32, 32)
    for i, name in [(1, "text.jpg"), (2, "truncated.png")]:
        with pytest.raises(FormatError, match=re.escape(name)):
            dataset.sample(i)


def test_image_folder_batches_need_a_size(tmp_path: Path) -> None:
    root = tmp_path / "sizes"
    _save_image(root / "a" / "1.png", np.full((2, 3), 10))
    _save_image(root / "b" / "2.png", np.full((4, 4), 20))
    with pytest.raises(ConfigError, match="size="):
        list(ImageFolderDataset(root).batches(2))
    dataset = ImageFolderDataset(
        root, size=(3, 3), up_sampling="edge_repeat", down_sampling="center_crop", mode="L"
    )
    batch = next(dataset.batches(2, [1, 0]))
    assert batch.data.shape == (2, 1, 3, 3)
    np.testing.assert_allclose(batch.data[0], np.full((1, 3, 3), 20 / 255), atol=1e-6)
    np.testing.assert_allclose(batch.data[1], np.full((1, 3, 3), 10 / 255), atol=1e-6)
    np.testing.assert_array_equal(batch.label, [1, 0])
    np.testing.assert_array_equal(batch.index, [1, 0])


def test_missing_and_empty_image_folders(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="no such folder"):
        ImageFolderDataset(tmp_path / "absent")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(FormatError, match="none"):
        ImageFolderDataset(tmp_path / "empty")


def test_single_sample_reads_keep_the_image_array_and_its_chunk_cache(tmp_path: Path) -> None:
    """Per-sample reads (gallery images) reuse one open array; reopening it per read
    dropped HDF5's chunk cache, so every read decompressed a whole chunk again."""
    from relscope.data._h5 import CHUNK_CACHE_BYTES

    images = np.random.default_rng(0).random((40, 1, 4, 4)).astype(np.float32)
    path = write_hdf5_dataset(tmp_path / "d.h5", images, np.zeros(40, dtype=np.int64))
    dataset = HDF5Dataset(path)
    first = dataset._image_array()
    np.testing.assert_array_equal(dataset.sample(7).data, images[7])
    assert dataset._image_array() is first
    assert first.id.get_access_plist().get_chunk_cache()[1] == CHUNK_CACHE_BYTES
    dataset.close()
    np.testing.assert_array_equal(dataset.sample(8).data, images[8])  # reopened on demand
    assert dataset._image_array() is not first
    # The kept array does not travel with a pickled dataset (a DataLoader worker's copy).
    copy = pickle.loads(pickle.dumps(dataset))
    np.testing.assert_array_equal(copy.sample(9).data, images[9])
    copy.close()
    dataset.close()
