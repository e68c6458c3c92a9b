"""Data-layer I/O figures: attribution database writing and reading.

Measures, in one run and on one machine, the resumable AttributionWriter (segment parts
plus the final atomic merge) against a plain one-shot h5py write of the same array with the
same compression, and the per-sample read latency the web application will rely on.

Usage: python benchmarks/data_io.py [--rows N] [--size S] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from relscope.data.attribution_db import AttributionDatabase, AttributionWriter


def _timed(function, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64, help="attributions are 3 x S x S")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    shape = (3, args.size, args.size)
    # Attribution-like data: mostly small values around zero, so compression does real work.
    attribution = (rng.standard_normal((args.rows, *shape)) ** 3).astype(np.float32)
    labels = rng.integers(0, 10, args.rows)
    prediction = rng.standard_normal((args.rows, 10)).astype(np.float32)
    index = np.arange(args.rows)
    megabytes = attribution.nbytes / 2**20

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)

        def plain_write() -> None:
            with h5py.File(folder / "plain.h5", "w") as handle:
                handle.create_dataset(
                    "attribution", data=attribution, chunks=(1, *shape), compression="gzip",
                    compression_opts=1, shuffle=True,
                )  # fmt: skip
                handle["label"] = labels
                handle["prediction"] = prediction

        def streamed_write() -> None:
            path = folder / "streamed.h5"
            with AttributionWriter(
                path, index, shape=shape, num_outputs=10, overwrite=True
            ) as writer:
                for start in range(0, args.rows, args.batch):
                    stop = start + args.batch
                    writer.add(attribution[start:stop], labels[start:stop], prediction[start:stop])

        streamed = _timed(streamed_write)
        with h5py.File(folder / "streamed.h5") as handle:
            chunks = handle["attribution"].chunks
        plain = _timed(plain_write)
        size = (folder / "streamed.h5").stat().st_size / 2**20

        with AttributionDatabase(folder / "streamed.h5") as database:
            picks = rng.choice(args.rows, 200, replace=False)
            start = time.perf_counter()
            for sample in picks:
                database.get(int(sample))
            single = (time.perf_counter() - start) / len(picks)
            batch = _timed(lambda: database.read(picks[:64]))

    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.processor() or platform.machine()}, {platform.python_version()}",
        "rows": args.rows,
        "shape": list(shape),
        "chunk_rows": chunks[0],
        "data_MiB": round(megabytes, 1),
        "file_MiB": round(size, 1),
        "plain_h5py_write_s": round(plain, 3),
        "attribution_writer_s": round(streamed, 3),
        "writer_over_plain": round(streamed / plain, 2),
        "writer_MiB_per_s": round(megabytes / streamed, 1),
        "read_one_sample_ms": round(single * 1000, 3),
        "read_64_random_samples_ms": round(batch * 1000, 2),
    }
    for key, value in results.items():
        print(f"{key:>28}: {value}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
