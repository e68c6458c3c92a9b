"""Shared data-layer helpers: row reads, atomic files, part stores, one-line errors."""

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relscope._atomic import atomic_path, atomic_write_text
from relscope.data._h5 import open_h5, read_rows, reading, require_array
from relscope.data._parts import PartStore
from relscope.errors import ConfigError, FormatError


@pytest.fixture(scope="module")
def rows_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("rows") / "rows.h5"
    data = np.arange(50 * 6, dtype=np.float32).reshape(50, 2, 3)
    with h5py.File(path, "w") as handle:
        handle.create_dataset("data", data=data, chunks=(1, 2, 3), compression="gzip")
    return path, data


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.integers(0, 49), max_size=30))
def test_read_rows_returns_requested_rows_in_order(rows_file, rows):
    path, data = rows_file
    with h5py.File(path) as handle:
        out = read_rows(handle["data"], np.asarray(rows, dtype=np.int64))
    np.testing.assert_array_equal(out, data[rows] if rows else data[:0])


def test_require_array_messages(tmp_path):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as handle:
        handle["ints"] = np.zeros((2, 3), dtype=np.int32)
        handle.create_group("group")
    with open_h5(path) as handle:
        with pytest.raises(FormatError, match=r"/ints: expected a floating point dataset"):
            require_array(handle, "ints", kinds="f")
        with pytest.raises(FormatError, match=r"/ints: expected 1 dimensions"):
            require_array(handle, "ints", kinds="iu", ndim=1)
        with pytest.raises(FormatError, match=r"/ints: expected shape \(\*, 4\), found shape"):
            require_array(handle, "ints", shape=(None, 4))
        with pytest.raises(FormatError, match=r"/group: expected a dataset, found group"):
            require_array(handle, "group")
        with pytest.raises(FormatError, match=r"/missing: expected a dataset, found nothing"):
            require_array(handle, "missing")
        with pytest.raises(FormatError, match=r"/ints: expected readable data"):
            with reading(path, "/ints"):
                raise TypeError("odd dtype")
        with pytest.raises(ConfigError, match="passes through"):
            with reading(path, "/ints"):
                raise ConfigError("passes through")


def test_format_error_is_one_line():
    error = FormatError("f.h5", "/a", "one\nthing", "two\n\tthings")
    assert str(error) == "f.h5: /a: expected one thing, found two things"
    assert isinstance(error, ValueError)


def test_atomic_path_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "file.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]
    atomic_write_text(target, "new")
    assert target.read_text() == "new"


def test_part_store_keeps_complete_parts_only_and_guards_settings(tmp_path):
    target = tmp_path / "out.h5"
    store = PartStore(target, {"a": 1})
    with store.write("one/two") as handle:
        handle["x"] = np.arange(3)
    with pytest.raises(RuntimeError), store.write("broken") as handle:
        handle["x"] = np.arange(3)
        raise RuntimeError
    again = PartStore(target, {"a": 1})
    assert again.keys() == ["one/two"]
    assert again.has("one/two")
    assert not again.has("broken")
    with again.read("one/two") as handle:
        np.testing.assert_array_equal(handle["x"][()], np.arange(3))
    with pytest.raises(ConfigError, match=r"different settings \(a, b\)"):
        PartStore(target, {"a": 2, "b": 0})
    (store.directory / "manifest.json").write_text("{broken")
    with pytest.raises(FormatError, match=r"manifest\.json: /: expected a JSON manifest"):
        PartStore(target, {"a": 1})
    store.remove()
    assert not store.directory.exists()
