"""Content hashing, cache keys, both storage backends, damage recovery, concurrency."""

import multiprocessing
from collections import Counter

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from relscope.analysis import (
    MISSING,
    DirectoryStorage,
    HDF5Storage,
    Param,
    Pipeline,
    Processor,
    Sequential,
    Task,
    cache_key,
    content_hash,
    open_storage,
)
from relscope.errors import ConfigError, FormatError, RelscopeWarning

CALLS: Counter = Counter()


class Counting(Processor):
    """Adds ``offset``; counts its computations by ``name``."""

    name = Param(str, "step", "Counter name.")
    offset = Param(float, 0.0, "Added value.")

    def function(self, data):
        CALLS[self.name] += 1
        return data + self.offset


class Chain(Pipeline):
    first = Task(Counting(name="first"))
    second = Task(Counting(name="second"))
    third = Task(Counting(name="third"))


@pytest.fixture(params=["hdf5", "directory"])
def storage(request, tmp_path):
    CALLS.clear()
    if request.param == "hdf5":
        return HDF5Storage(tmp_path / "cache.h5")
    return DirectoryStorage(tmp_path / "cache")


def chain(storage, second_offset=1.0):
    return Chain(
        first=Counting(name="first", offset=1.0, io=storage),
        second=Counting(name="second", offset=second_offset, io=storage),
        third=Counting(name="third", offset=1.0, io=storage, is_output=True),
    )


# --- hashing -----------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    array=hnp.arrays(
        dtype=st.sampled_from([np.float64, np.float32, np.int16, np.uint8]),
        shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
    ),
    data=st.data(),
)
def test_hash_is_exact(array, data):
    key = content_hash(array)
    assert content_hash(array.copy()) == key
    assert content_hash(np.asfortranarray(array)) == key
    assert content_hash(array.T.copy().T) == key
    flat = array.reshape(-1).copy()
    index = data.draw(st.integers(0, flat.size - 1))
    changed = flat.copy()
    changed.view(np.uint8)[index * flat.itemsize] ^= 1  # flip one bit of one element
    assert content_hash(changed.reshape(array.shape)) != key
    assert content_hash(array.astype(np.complex128)) != key
    assert content_hash(array.reshape(-1)) != key or array.ndim == 1


def test_hash_distinguishes_structures_and_scalars():
    a = np.arange(3)
    assert content_hash((a, a)) != content_hash([a, a])
    assert content_hash((1, 2)) != content_hash(np.array([1, 2]))
    assert content_hash(1) != content_hash(1.0) != content_hash(True)
    assert content_hash({"a": a, "b": 1}) == content_hash({"b": 1, "a": a})
    assert content_hash(np.float32(1)) != content_hash(np.array(1, np.float32))
    with pytest.raises(ConfigError, match="cannot hash input of type object"):
        content_hash(object())
    with pytest.raises(ConfigError, match="object arrays"):
        content_hash(np.array([None]))


def test_hash_of_sparse_matrices_uses_their_content():
    sparse = pytest.importorskip("scipy.sparse")
    dense = np.array([[0, 1.0], [2.0, 0]])
    assert content_hash(sparse.csr_matrix(dense)) == content_hash(sparse.coo_matrix(dense))
    assert content_hash(sparse.csr_matrix(dense)) != content_hash(sparse.csr_matrix(2 * dense))


def test_key_depends_on_params_identity_and_version():
    x = np.arange(4.0)
    base = Counting(offset=1.0).cache_key(x)
    assert Counting(offset=1.0).cache_key(x) == base
    assert Counting(offset=1.0, is_output=True).cache_key(x) == base
    assert Counting(offset=2.0).cache_key(x) != base
    assert Counting(offset=1.0).cache_key(x + 0) == base
    assert Counting(offset=1.0).cache_key(x.astype(np.float32)) != base

    class Newer(Counting):
        version = 1

    assert Newer(offset=1.0).cache_key(x) != base
    assert cache_key(x, {"a": 1}) != cache_key(x, {"a": 2})


# --- caching through pipelines -----------------------------------------------------------


def test_second_run_computes_nothing(storage):
    x = np.arange(5.0)
    first = chain(storage)(x)
    assert CALLS == {"first": 1, "second": 1, "third": 1}
    second = chain(storage)(x)
    assert CALLS == {"first": 1, "second": 1, "third": 1}
    np.testing.assert_array_equal(first["third"], x + 3)
    np.testing.assert_array_equal(second["third"], x + 3)
    assert second["third"].dtype == x.dtype
    assert len(storage) == 3


def test_changed_param_recomputes_that_step_and_the_following(storage):
    x = np.arange(5.0)
    chain(storage)(x)
    result = chain(storage, second_offset=5.0)(x)
    assert CALLS == {"first": 1, "second": 2, "third": 2}
    np.testing.assert_array_equal(result["third"], x + 7)


def test_different_input_recomputes(storage):
    chain(storage)(np.arange(5.0))
    chain(storage)(np.arange(5.0).astype(np.float32))
    chain(storage)(np.arange(6.0))
    assert CALLS == {"first": 3, "second": 3, "third": 3}


def test_whole_pipeline_cache_depends_on_tasks(storage):
    x = np.arange(3.0)

    def whole(offset):
        return Chain(io=storage, second=Counting(name="second", offset=offset))

    whole(1.0)(x)
    whole(1.0)(x)
    assert CALLS == {"first": 1, "second": 1, "third": 1}
    whole(2.0)(x)
    assert CALLS == {"first": 2, "second": 2, "third": 2}


VALUES = [
    np.arange(6, dtype=">i4").reshape(2, 3),
    (np.zeros((0, 3)), [np.array(True), 1.5, None, "s"], {"a": np.float32(2.5), 3: 7}),
    np.array([1 + 2j]),
    {"nested": ({"deep": [np.uint8(3)]},)},
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_supported_values_round_trip_exactly(storage, value):
    storage.store("k", value)
    assert_same(storage.load("k"), value)


def assert_same(got, expected):
    assert type(got) is type(expected)
    if isinstance(expected, np.ndarray | np.generic):
        assert got.dtype == expected.dtype.newbyteorder("=")
        assert got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)
    elif isinstance(expected, tuple | list):
        assert len(got) == len(expected)
        for a, b in zip(got, expected, strict=True):
            assert_same(a, b)
    elif isinstance(expected, dict):
        assert list(got) == list(expected)
        for key in expected:
            assert_same(got[key], expected[key])
    else:
        assert got == expected


def test_sparse_matrices_round_trip_as_csr(storage):
    sparse = pytest.importorskip("scipy.sparse")
    matrix = sparse.random(40, 30, density=0.1, format="coo", random_state=0)
    storage.store("graph", {"graph": matrix, "degrees": np.arange(3)})
    loaded = storage.load("graph")["graph"]
    assert sparse.issparse(loaded)
    assert loaded.format == "csr"
    assert loaded.shape == (40, 30)
    assert (loaded != matrix.tocsr()).nnz == 0
    assert content_hash(loaded) == content_hash(matrix)


def test_unsupported_values_are_refused_before_writing(storage):
    with pytest.raises(FormatError, match=r"\[1\]: expected numpy arrays .* found object"):
        storage.store("k", (1, object()))
    with pytest.raises(FormatError, match="found array of dtype <U1"):
        storage.store("k", np.array(["a"]))
    assert storage.load("k") is MISSING
    assert len(storage) == 0


def test_missing_and_discard(storage):
    assert storage.load("nope") is MISSING
    storage.store("k", np.ones(2))
    assert "k" in storage
    storage.discard("k")
    assert storage.load("k") is MISSING


# --- damage ------------------------------------------------------------------------------


def overwrite_array_bytes(storage, key):
    if isinstance(storage, HDF5Storage):
        with h5py.File(storage.path, "r") as handle:
            offset = handle[f"entries/{key}/a0"].id.get_offset()
    else:
        offset = storage.file_of(key).stat().st_size // 2
    path = storage.path if isinstance(storage, HDF5Storage) else storage.file_of(key)
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(b"\xff" * 16)


def truncate(storage, key):
    path = storage.path if isinstance(storage, HDF5Storage) else storage.file_of(key)
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.truncate(size // 3)


def drop_marker(storage, key):
    if isinstance(storage, HDF5Storage):
        with h5py.File(storage.path, "a") as handle:
            del handle[f"entries/{key}"].attrs["complete"]
    else:
        # The marker of a directory entry is its header: an entry without one is partial.
        import zipfile

        path = storage.file_of(key)
        with zipfile.ZipFile(path) as archive:
            kept = {n: archive.read(n) for n in archive.namelist() if n != "header.npy"}
        with zipfile.ZipFile(path, "w") as archive:
            for name, payload in kept.items():
                archive.writestr(name, payload)


@pytest.mark.parametrize("damage", [overwrite_array_bytes, truncate, drop_marker])
def test_damaged_entry_is_discarded_and_recomputed_with_a_warning(storage, damage):
    x = np.arange(64.0)
    step = Counting(name="step", offset=1.0, io=storage)
    step(x)
    key = step.cache_key(x)
    damage(storage, key)
    with pytest.warns(RelscopeWarning, match="is damaged .*; recomputing it"):
        result = step(x)
    np.testing.assert_array_equal(result, x + 1)
    assert CALLS["step"] == 2
    np.testing.assert_array_equal(step(x), x + 1)  # repaired: no warning, no computation
    assert CALLS["step"] == 2


def test_damaged_hdf5_file_is_replaced_on_store(tmp_path):
    storage = HDF5Storage(tmp_path / "cache.h5")
    storage.path.write_bytes(b"not an hdf5 file")
    with pytest.warns(RelscopeWarning, match="unreadable file"):
        storage.store("k", np.ones(2))
    np.testing.assert_array_equal(storage.load("k"), np.ones(2))


def test_interrupted_write_leaves_no_valid_entry(tmp_path, monkeypatch):
    for storage in (HDF5Storage(tmp_path / "c.h5"), DirectoryStorage(tmp_path / "d")):
        storage.store("old", np.zeros(1))

        def crash(*args, **kwargs):
            raise KeyboardInterrupt

        target = h5py.Group if isinstance(storage, HDF5Storage) else np
        name = "create_dataset" if isinstance(storage, HDF5Storage) else "savez"
        with monkeypatch.context() as patch:
            patch.setattr(target, name, crash)
            with pytest.raises(KeyboardInterrupt):
                storage.store("new", np.ones(1))
        assert "new" not in storage
        assert storage.load("new") is MISSING
        assert storage.keys() == ["old"]


def test_open_storage_picks_the_backend(tmp_path):
    assert isinstance(open_storage(tmp_path / "c.h5"), HDF5Storage)
    assert isinstance(open_storage(tmp_path), DirectoryStorage)


def test_sequential_refuses_io_but_children_cache(storage):
    x = np.arange(2.0)
    run = Sequential([Counting(name="a", io=storage), Counting(name="b", io=storage)])
    run(x)
    run(x)
    assert CALLS == {"a": 1, "b": 1}


# --- concurrency -------------------------------------------------------------------------


def _writer(kind, path, worker, rounds):
    storage = HDF5Storage(path) if kind == "hdf5" else DirectoryStorage(path)
    for i in range(rounds):
        storage.store(f"shared{i % 4}", np.full(50, i % 4, dtype=np.int64))
        storage.store(f"own{worker}-{i}", np.full(50, worker * 1000 + i, dtype=np.int64))
        value = storage.load(f"shared{(i + 1) % 4}")
        if value is not MISSING:
            assert (value == (i + 1) % 4).all()


@pytest.mark.parametrize("kind", ["hdf5", "directory"])
def test_two_processes_share_a_cache(tmp_path, kind):
    path = tmp_path / ("cache.h5" if kind == "hdf5" else "cache")
    context = multiprocessing.get_context("fork")
    rounds = 25
    workers = [context.Process(target=_writer, args=(kind, path, w, rounds)) for w in (1, 2)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    storage = HDF5Storage(path) if kind == "hdf5" else DirectoryStorage(path)
    assert len(storage) == 4 + 2 * rounds
    for i in range(4):
        np.testing.assert_array_equal(storage.load(f"shared{i}"), np.full(50, i))
    for worker in (1, 2):
        for i in range(rounds):
            expected = np.full(50, worker * 1000 + i)
            np.testing.assert_array_equal(storage.load(f"own{worker}-{i}"), expected)
