"""A stand-alone attribution writer job used by the kill-and-resume test.

Usage: python attribution_job.py OUT.h5 N SEGMENT_ROWS BATCH DELAY LOG

Rows are a deterministic function of the sample index, so an interrupted and resumed run
must produce the same file as an uninterrupted one. Every sample index the job computes is
appended to LOG, which shows that a resumed run only computes what was missing.
"""

import sys
import time

import numpy as np

from relscope.data.attribution_db import AttributionWriter

SHAPE = (3, 8, 6)
OUTPUTS = 5


def row(sample: int) -> tuple[np.ndarray, int, np.ndarray]:
    rng = np.random.default_rng(sample)
    attribution = rng.standard_normal(SHAPE).astype(np.float32)
    return attribution, sample % OUTPUTS, rng.standard_normal(OUTPUTS).astype(np.float32)


def main() -> None:
    out, n, segment_rows, batch, delay, log = sys.argv[1:7]
    index = np.arange(int(n), dtype=np.int64)[::-1] * 3  # any order, any values
    writer = AttributionWriter(
        out,
        index,
        shape=SHAPE,
        num_outputs=OUTPUTS,
        method={"composite": "epsilon_plus"},
        model="job",
        segment_rows=int(segment_rows),
        created="2026-01-01T00:00:00+00:00",
    )
    pending = writer.pending_index()
    with writer, open(log, "a") as log_file:
        for start in range(0, len(pending), int(batch)):
            samples = pending[start : start + int(batch)]
            rows = [row(int(s)) for s in samples]
            log_file.write("".join(f"{int(s)}\n" for s in samples))
            log_file.flush()
            writer.add(
                np.stack([r[0] for r in rows]),
                np.array([r[1] for r in rows]),
                np.stack([r[2] for r in rows]),
            )
            time.sleep(float(delay))


if __name__ == "__main__":
    main()
