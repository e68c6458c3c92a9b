"""Attribution databases: round trips, resumption (also after SIGKILL), shards, bad files."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relscope.data.attribution_db import (
    AttributionDatabase,
    AttributionSet,
    AttributionWriter,
    shard_indices,
    write_attribution_groups,
)
from relscope.errors import ConfigError, FormatError
from support.attribution_job import OUTPUTS, SHAPE, row
from support.h5content import h5_content

CREATED = "2026-01-01T00:00:00+00:00"


def make_rows(index, shape=(2, 5, 4), outputs=3, multi=None, seed=0):
    rng = np.random.default_rng(seed)
    n = len(index)
    attribution = rng.standard_normal((n, *shape)).astype(np.float32)
    if multi is None:
        label = rng.integers(0, outputs, n)
    else:
        label = rng.random((n, multi)) > 0.5
    prediction = rng.standard_normal((n, outputs)).astype(np.float32)
    return attribution, label, prediction


def write_all(path, index, rows, batch, **options):
    attribution, label, prediction = rows
    options.setdefault("created", CREATED)
    multi = label.ndim == 2
    with AttributionWriter(
        path,
        index,
        shape=attribution.shape[1:],
        num_outputs=prediction.shape[1],
        num_labels=label.shape[1] if multi else None,
        **options,
    ) as writer:
        order = {int(s): k for k, s in enumerate(index)}
        pending = writer.pending_index()
        for start in range(0, len(pending), batch):
            rows_ = [order[int(s)] for s in pending[start : start + batch]]
            writer.add(attribution[rows_], label[rows_], prediction[rows_])
    return path


@pytest.mark.parametrize("multi", [None, 4])
@pytest.mark.parametrize("batch", [1, 5, 8, 100])
def test_round_trip(tmp_path, multi, batch):
    index = np.arange(37)[::-1] + 10
    rows = make_rows(index, multi=multi)
    path = write_all(
        tmp_path / "a.h5", index, rows, batch, segment_rows=8, method={"rule": "eps"}, model="m"
    )
    assert not (tmp_path / "a.h5.parts").exists()
    with AttributionDatabase(path) as db:
        assert len(db) == 37
        assert db.shape == (2, 5, 4)
        assert db.multi_label == (multi is not None)
        np.testing.assert_array_equal(db.indices, index)
        np.testing.assert_array_equal(db.labels(), rows[1])
        np.testing.assert_array_equal(db.predictions(), rows[2])
        record = db.get(20)
        k = int(np.flatnonzero(index == 20)[0])
        np.testing.assert_array_equal(record.attribution, rows[0][k])
        np.testing.assert_array_equal(record.prediction, rows[2][k])
        assert record.index == 20
        some = [46, 10, 30, 11]
        ks = [int(np.flatnonzero(index == s)[0]) for s in some]
        attribution, label, prediction = db.read(some)
        np.testing.assert_array_equal(attribution, rows[0][ks])
        np.testing.assert_array_equal(label, rows[1][ks])
        np.testing.assert_array_equal(prediction, rows[2][ks])
        batches = list(db.iter_batches(10))
        assert [len(b[0]) for b in batches] == [10, 10, 10, 7]
        np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), rows[0])
        assert db.metadata["method"] == {"rule": "eps"}
        assert db.metadata["model"] == "m"
        assert db.metadata["created"] == CREATED
        assert db.metadata["format"] == "relscope-attribution"
        assert 20 in db and 9 not in db
        with pytest.raises(KeyError, match="no attribution for sample 9"):
            db.get(9)


def test_final_file_is_compressed_and_chunked(tmp_path):
    index = np.arange(64)
    rows = make_rows(index, shape=(1, 32, 32))
    rows[0][:] = 0.0  # compressible
    path = write_all(tmp_path / "a.h5", index, rows, 16)
    with h5py.File(path) as handle:
        dataset = handle["attribution"]
        assert dataset.compression == "gzip"
        assert dataset.chunks is not None and dataset.chunks[1:] == (1, 32, 32)
    assert path.stat().st_size < rows[0].nbytes / 4


def test_virelay_reader_view(tmp_path):
    """The file answers the questions ViRelAy's viewer asks of an attribution database."""
    index = np.array([5, 3, 9])
    rows = make_rows(index, shape=(3, 4, 4))
    path = write_all(tmp_path / "a.h5", index, rows, 2)
    with h5py.File(path) as handle:
        assert 9 in handle["index"]
        position = int(np.where(handle["index"][:] == 9)[0][0])
        assert np.argmin(handle["attribution"][position].shape) == 0  # channels first
        assert isinstance(handle["label"][position], np.integer)
        assert handle["prediction"][position].shape == (3,)


def test_resume_after_exception_matches_uninterrupted_run(tmp_path):
    index = np.arange(50) * 2
    rows = make_rows(index)
    clean = write_all(tmp_path / "clean.h5", index, rows, 7, segment_rows=8)

    path = tmp_path / "resumed.h5"
    with (
        pytest.raises(RuntimeError, match="boom"),
        AttributionWriter(
            path, index, shape=(2, 5, 4), num_outputs=3, segment_rows=8, created=CREATED
        ) as writer,
    ):
        writer.add(rows[0][:21], rows[1][:21], rows[2][:21])
        raise RuntimeError("boom")
    assert not path.exists()
    writer = AttributionWriter(
        path, index, shape=(2, 5, 4), num_outputs=3, segment_rows=8, created="ignored"
    )
    assert writer.rows_complete == 16  # two full segments survived, the partial one did not
    np.testing.assert_array_equal(writer.pending_index(), index[16:])
    writer.add(rows[0][16:], rows[1][16:], rows[2][16:])
    writer.close()
    assert h5_content(path) == h5_content(clean)
    assert path.read_bytes() == clean.read_bytes()


def test_resume_with_other_settings_is_refused(tmp_path):
    index = np.arange(20)
    rows = make_rows(index)
    writer = AttributionWriter(
        tmp_path / "a.h5", index, shape=(2, 5, 4), num_outputs=3, segment_rows=4
    )
    writer.add(rows[0][:8], rows[1][:8], rows[2][:8])
    with pytest.raises(ConfigError, match="different settings \\(method\\)"):
        AttributionWriter(
            tmp_path / "a.h5",
            index,
            shape=(2, 5, 4),
            num_outputs=3,
            segment_rows=4,
            method={"other": 1},
        )
    with pytest.raises(ConfigError, match="index_sha256"):
        AttributionWriter(
            tmp_path / "a.h5", index[::-1], shape=(2, 5, 4), num_outputs=3, segment_rows=4
        )


def test_writer_rejects_bad_rows_without_writing(tmp_path):
    index = np.arange(6)
    path = tmp_path / "a.h5"
    writer = AttributionWriter(path, index, shape=(2, 5, 4), num_outputs=3, segment_rows=2)
    attribution, label, prediction = make_rows(index)
    with pytest.raises(ConfigError, match=r"shape \(B, 2, 5, 4\)"):
        writer.add(attribution[:, :1], label, prediction)
    with pytest.raises(ConfigError, match="prediction must have shape"):
        writer.add(attribution, label, prediction[:, :2])
    with pytest.raises(ConfigError, match="label must be 6 integers"):
        writer.add(attribution, label.astype(float), prediction)
    bad = attribution.copy()
    bad[3, 0, 0, 0] = np.nan
    with pytest.raises(ConfigError, match="NaN or inf in 1 of 6 rows"):
        writer.add(bad, label, prediction)
    with pytest.raises(ConfigError, match="7 rows given, only 6 pending"):
        writer.add(*make_rows(np.arange(7)))
    assert writer.rows_complete == 0
    with pytest.raises(ConfigError, match="6 of 6 rows are missing"):
        writer.close()
    assert not path.exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"index": []}, "non-empty"),
        ({"index": [1, 1]}, "duplicate"),
        ({"index": [-1]}, "non-negative"),
        ({"index": [0.5]}, "integers"),
        ({"shape": (0, 3)}, "positive"),
        ({"num_outputs": 0}, "num_outputs"),
        ({"compression": "zstd"}, "compression"),
        ({"method": {"f": object()}}, "JSON-serializable"),
    ],
)
def test_writer_rejects_bad_settings(tmp_path, kwargs, message):
    settings_ = {"index": [0, 1], "shape": (1, 2, 2), "num_outputs": 2} | kwargs
    with pytest.raises(ConfigError, match=message):
        AttributionWriter(tmp_path / "a.h5", **settings_)
    assert not (tmp_path / "a.h5.parts").exists()


def test_existing_file_is_not_replaced_without_overwrite(tmp_path):
    index = np.arange(4)
    path = write_all(tmp_path / "a.h5", index, make_rows(index), 4)
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="exists"):
        AttributionWriter(path, index, shape=(2, 5, 4), num_outputs=3)
    write_all(path, index, make_rows(index, seed=1), 4, overwrite=True)
    assert path.read_bytes() != before


def test_sigkill_and_resume_reproduce_the_uninterrupted_file(tmp_path):
    job = Path(__file__).parents[1] / "support" / "attribution_job.py"
    n, segment_rows = 60, 6

    def run(out, log, delay, kill_after_parts=None):
        command = [
            sys.executable,
            str(job),
            str(out),
            str(n),
            str(segment_rows),
            "4",
            str(delay),
            str(log),
        ]
        process = subprocess.Popen(command)
        if kill_after_parts is None:
            assert process.wait(timeout=120) == 0
            return
        parts = Path(str(out) + ".parts")
        deadline = time.monotonic() + 60
        while len(list(parts.glob("0*.h5"))) < kill_after_parts:
            assert process.poll() is None, "the job finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL

    clean = tmp_path / "clean.h5"
    run(clean, tmp_path / "clean.log", 0.0)

    resumed = tmp_path / "resumed.h5"
    log = tmp_path / "resumed.log"
    run(resumed, log, 0.05, kill_after_parts=3)
    assert not resumed.exists()
    survived = len(list(Path(str(resumed) + ".parts").glob("0*.h5")))
    assert 3 <= survived < n // segment_rows
    computed_before = log.read_text().split()
    log.write_text("")
    run(resumed, log, 0.0)
    computed_after = [int(s) for s in log.read_text().split()]

    # The resumed run computed exactly the rows that were not durable, each once.
    index = (np.arange(n)[::-1] * 3).tolist()
    assert computed_after == index[survived * segment_rows :]
    assert len(computed_before) >= survived * segment_rows
    assert h5_content(resumed) == h5_content(clean)
    assert resumed.read_bytes() == clean.read_bytes()
    with AttributionDatabase(resumed) as db:
        attribution, label, _prediction = row(27)
        record = db.get(27)
        np.testing.assert_array_equal(record.attribution, attribution)
        assert record.label == label
        assert db.shape == SHAPE and db.predictions().shape == (n, OUTPUTS)


def test_shards_read_as_one_set(tmp_path):
    index = np.arange(100, 130)
    rows = make_rows(index)
    paths = []
    for shard in range(3):
        part = shard_indices(index, 3, shard)
        ks = part - 100
        paths.append(
            write_all(
                tmp_path / f"s{shard}.h5", part, tuple(r[ks] for r in rows), 4, segment_rows=3
            )
        )
    np.testing.assert_array_equal(
        np.concatenate([shard_indices(index, 3, s) for s in range(3)]), index
    )
    with AttributionSet(paths) as attributions:
        assert len(attributions) == 30
        query = [129, 100, 115, 101]
        attribution, label, prediction = attributions.read(query)
        ks = np.asarray(query) - 100
        np.testing.assert_array_equal(attribution, rows[0][ks])
        np.testing.assert_array_equal(label, rows[1][ks])
        np.testing.assert_array_equal(prediction, rows[2][ks])
        np.testing.assert_array_equal(attributions.get(121).attribution, rows[0][21])
        # The scores alone, as the gallery asks for them, without the attribution.
        np.testing.assert_array_equal(attributions.scores(121), rows[2][21])
        np.testing.assert_array_equal(attributions.labels(), rows[1])
        with pytest.raises(KeyError, match="sample 99"):
            attributions.read([100, 99])
        with pytest.raises(KeyError, match="sample 99"):
            attributions.scores(99)
    with pytest.raises(ConfigError, match="shard"):
        shard_indices(index, 3, 3)


def test_shards_must_not_overlap_or_disagree(tmp_path):
    a = write_all(tmp_path / "a.h5", np.arange(4), make_rows(np.arange(4)), 4)
    b = write_all(tmp_path / "b.h5", np.arange(3, 6), make_rows(np.arange(3)), 4)
    with pytest.raises(FormatError, match="sample 3 also in"):
        AttributionSet([a, b])
    c = write_all(tmp_path / "c.h5", np.arange(8, 10), make_rows(np.arange(2), shape=(1, 5, 4)), 4)
    with pytest.raises(FormatError, match="attribution shape"):
        AttributionSet([a, c])


def test_per_id_groups_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    attributions = {"img-a": rng.random((3, 4, 5)), "img-b": rng.random((3, 6, 2))}
    labels = {"img-a": 2, "img-b": 0}
    predictions = {k: rng.random(4) for k in attributions}
    index = {"img-a": 7, "img-b": 1}
    path = write_attribution_groups(
        tmp_path / "g.h5", attributions, labels, predictions, index, method={"m": 1}
    )
    with AttributionDatabase(path) as db:
        assert db.shape is None
        np.testing.assert_array_equal(db.indices, [7, 1])
        record = db.get(1)
        np.testing.assert_allclose(record.attribution, attributions["img-b"], rtol=1e-6)
        assert record.label == 0
        np.testing.assert_array_equal(db.labels(), [2, 0])
        attribution, label, _ = db.read([1, 7])
        assert isinstance(attribution, list) and attribution[0].shape == (3, 6, 2)
        np.testing.assert_array_equal(label, [0, 2])
    with pytest.raises(ConfigError, match="ids of attributions"):
        write_attribution_groups(tmp_path / "x.h5", attributions, {"img-a": 1}, predictions, index)
    assert not (tmp_path / "x.h5").exists()


def test_truncated_and_foreign_files_give_format_errors(tmp_path):
    index = np.arange(200)
    rows = make_rows(index, shape=(1, 16, 16))
    path = write_all(tmp_path / "a.h5", index, rows, 50, compression=None)
    data = path.read_bytes()
    for fraction in (0.02, 0.5, 0.9):
        broken = tmp_path / f"cut{fraction}.h5"
        broken.write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(FormatError, match=str(broken.name)):
            with AttributionDatabase(broken) as db:
                for batch in db.iter_batches(64):
                    assert batch[1].shape[1:] == (1, 16, 16)
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(FormatError, match="without an HDF5 signature"):
        AttributionDatabase(text)
    with pytest.raises(FormatError, match="no such file"):
        AttributionDatabase(tmp_path / "missing.h5")


def _build(path, layout):
    with h5py.File(path, "w") as handle:
        for key, (kind, shape) in layout.items():
            if kind == "group":
                group = handle.create_group(key)
                for i in range(shape[0]):
                    group.create_dataset(f"{i}", data=np.zeros(shape[1:], dtype=np.float32))
            else:
                handle.create_dataset(key, data=np.zeros(shape, dtype=kind))


_kinds = st.sampled_from(["float32", "int64", "uint8", "bool", "S3", "group"])
_shapes = st.lists(st.integers(0, 4), min_size=0, max_size=4).map(tuple)
_layouts = st.dictionaries(
    st.sampled_from(["attribution", "label", "prediction", "index"]),
    st.tuples(_kinds, _shapes),
    max_size=4,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(layout=_layouts)
def test_any_malformed_layout_gives_format_error_or_consistent_reads(tmp_path, layout):
    path = tmp_path / "random.h5"
    layout = {k: v for k, v in layout.items() if not (v[0] == "group" and len(v[1]) == 0)}
    _build(path, layout)
    try:
        with AttributionDatabase(path) as db:
            n = len(db)
            for sample in db.indices:
                record = db.get(int(sample))
                assert record.prediction.ndim == 1
            if n:
                _attribution, label, prediction = db.read(db.indices)
                assert len(label) == len(prediction) == n
    except FormatError as error:
        message = str(error)
        assert "\n" not in message and message.startswith(str(path))


def test_metadata_must_be_json(tmp_path):
    index = np.arange(3)
    path = write_all(tmp_path / "a.h5", index, make_rows(index), 3)
    with h5py.File(path, "a") as handle:
        handle.attrs["method"] = "{broken"
    with pytest.raises(FormatError, match="@method: expected a JSON string"):
        AttributionDatabase(path)
    with h5py.File(path, "a") as handle:
        handle.attrs["method"] = json.dumps({})
        handle.attrs["rows_complete"] = 2
    with pytest.raises(FormatError, match="rows_complete"):
        AttributionDatabase(path)
