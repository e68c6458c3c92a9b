"""SpRAy at scale: seconds and peak memory per stage for N synthetic attributions (32 x 32).

Usage (from the repository root)::

    .venv/bin/python benchmarks/spray.py --sizes 1000,5000,20000,100000 \
        [--anchors-python /path/to/anchors-venv/bin/python] [--out benchmarks/results/spray.json]

Every size runs in its own subprocess (peak memory = VmHWM above the baseline after the data
is made). The workload is the one of the anchors harness (``shared/anchors/bench_spray.py``,
corelay's SpectralClustering): sum over channels, L1 normalization, flatten, kNN affinity
(k = 10, symmetric), symmetric normalized Laplacian, 8 smallest eigenpairs, k-means for
k = 2..10 (one k-means++ start each, scikit-learn's default that corelay uses) and t-SNE of the
eigenvectors (1000 iterations, as scikit-learn's default in corelay). relscope differs in
*how*: no dense N x N distance matrix, approximate kNN above the exact-search threshold,
``eigsh`` on ``2I - L``; t-SNE is scikit-learn's (``SPRAY_TSNE=opentsne`` for openTSNE).
The same synthetic data (five blob-shaped prototype heatmaps with noise) is generated here
independently.

"analysis core" = everything except the visual embedding (t-SNE). The cache rows run the whole
pipeline with an HDF5 cache on every step: cold (empty cache) and warm (the same call again).
With ``--anchors-python`` corelay is measured in the same run for the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "SPRAY_RESULT:"
STAGE = "SPRAY_STAGE:"
K_RANGE = tuple(range(2, 11))
TSNE_BACKEND = os.environ.get("SPRAY_TSNE", "auto")
REPEATS = int(os.environ.get("SPRAY_REPEATS", "3"))
# SPRAY_CACHE=0 skips the cold/warm cache runs (at 100 000 the cold run repeats everything).
CACHE_RUNS = os.environ.get("SPRAY_CACHE", "1") != "0"


def synthetic(n: int, seed: int = 0, prototypes: int = 5, size: int = 32):
    """(n, 1, size, size) float32 attributions from ``prototypes`` blob heatmaps, and labels."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    maps = []
    for _ in range(prototypes):
        heat = np.zeros((size, size))
        for _ in range(2):
            cy, cx = rng.uniform(4, size - 4, size=2)
            sigma = rng.uniform(2, 5)
            heat += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
        maps.append(heat / heat.sum())
    labels = rng.integers(0, prototypes, size=n)
    scale = rng.uniform(0.5, 1.5, size=(n, 1, 1))
    noise = np.abs(rng.normal(0, 0.3 / (size * size), size=(n, size, size)))
    data = (np.stack(maps)[labels] * scale + noise)[:, None].astype(np.float32)
    return data, labels


def _kib(field: str) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def stages():
    """The benchmark's processors, stage by stage (name, processor)."""
    from relscope.analysis import Sequential
    from relscope.analysis.processors import (
        TSNE,
        ChannelReduce,
        Flatten,
        KMeans,
        KNNGraph,
        Normalize,
        SpectralEmbedding,
        SymmetricLaplacian,
    )

    tsne_params = {"max_iter": 1000, "seed": 0, "backend": TSNE_BACKEND}
    return [
        ("preprocess", Sequential([ChannelReduce(mode="sum"), Normalize(norm="l1"), Flatten()])),
        ("knn", KNNGraph(n_neighbors=10)),
        ("laplacian", SymmetricLaplacian()),
        ("eigsh", SpectralEmbedding(n_eigval=8)),
        ("kmeans", KMeans(n_clusters=K_RANGE, n_init=1)),
        ("tsne", TSNE(**tsne_params)),
    ]


def worker(n: int) -> dict:
    import statistics

    from relscope.analysis import HDF5Storage

    data, labels = synthetic(n)
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    baseline = _kib("VmRSS")
    runs: dict[str, list[float]] = {}
    # The analysis core runs REPEATS times (median per stage: this machine scatters single
    # runs by tens of percent); t-SNE runs once, after the first core run.
    for repeat in range(REPEATS):
        result, embedding = data, None
        for name, processor in stages():
            if name == "tsne" and repeat > 0:
                continue
            start = time.perf_counter()
            if name in ("kmeans", "tsne"):
                out = processor(embedding)
            else:
                out = processor(result)
                result = out
            if name == "eigsh":
                embedding = out
            runs.setdefault(name, []).append(time.perf_counter() - start)
            # Stage by stage, so that a run stopped at the budget still reports what finished.
            stage = {"stage": name, "repeat": repeat, "s": runs[name][-1], "mib": _kib("VmHWM")}
            print(STAGE + json.dumps(stage), flush=True)
            if name == "kmeans":
                clusters = out
    times = {name: statistics.median(values) for name, values in runs.items()}
    first_core = sum(values[0] for name, values in runs.items() if name != "tsne")
    peak = _kib("VmHWM")
    from sklearn.metrics import adjusted_rand_score

    ari = adjusted_rand_score(labels, clusters[5])
    times["analysis core"] = sum(v for k, v in times.items() if k != "tsne")
    times["total"] = sum(v for k, v in times.items() if k != "analysis core")

    cold = warm = None
    if CACHE_RUNS:
        with tempfile.TemporaryDirectory() as folder:
            storage = HDF5Storage(Path(folder) / "cache.h5")
            cached = [(name, _with_io(processor, storage)) for name, processor in stages()]
            cold = _run(cached, data)
            warm = _run(cached, data)
    return {
        "n": n,
        "repeats": REPEATS,
        "seconds": times,
        "first_core_s": first_core,
        "runs": runs,
        "cache_cold_s": cold,
        "cache_warm_s": warm,
        "peak_delta_mib": (peak - baseline) / 1024 if peak and baseline else None,
        "ari_kmeans5": float(ari),
    }


def _with_io(processor, storage):
    from relscope.analysis import Sequential

    if isinstance(processor, Sequential):
        # Containers take no storage; their last child caches the preprocessed data.
        children = list(processor.children)
        children[-1] = children[-1].__class__(**{**children[-1].get_params(), "io": storage})
        return Sequential(children)
    return processor.__class__(**{**processor.get_params(), "io": storage})


def _run(steps, data) -> float:
    start = time.perf_counter()
    result, embedding = data, None
    for name, processor in steps:
        if name in ("kmeans", "tsne"):
            processor(embedding)
        else:
            result = processor(result)
            if name == "eigsh":
                embedding = result
    return time.perf_counter() - start


def run_size(n: int, budget: int) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(n)]
    env = dict(os.environ, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2", NUMBA_NUM_THREADS="2")
    try:
        process = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=budget, check=False
        )
    except subprocess.TimeoutExpired as stopped:
        output = stopped.stdout.decode() if isinstance(stopped.stdout, bytes) else stopped.stdout
        finished = [
            json.loads(line[len(STAGE) :])
            for line in (output or "").splitlines()
            if line.startswith(STAGE)
        ]
        return {"n": n, "error": f"over the budget of {budget} s", "finished": finished}
    for line in process.stdout.splitlines():
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER) :])
    return {"n": n, "error": process.stderr[-2000:]}


def run_anchors(python: str, sizes: list[int], out: Path) -> dict:
    harness = ROOT.parent / "shared" / "anchors" / "bench_spray.py"
    target = out.with_name("anchors-spray.json")
    command = [python, str(harness), "--sizes", ",".join(map(str, sizes)), "--out", str(target)]
    subprocess.run(command, check=False, capture_output=True, text=True)
    try:
        return json.loads(target.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def run_corelay_core(python: str, n: int, budget: int) -> dict:
    """corelay's analysis core and t-SNE at ``n`` (``benchmarks/corelay_core.py``)."""
    command = [python, str(ROOT / "benchmarks" / "corelay_core.py"), str(n), "--tsne"]
    env = dict(os.environ, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")
    try:
        process = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=budget, check=False
        )
    except subprocess.TimeoutExpired:
        return {"n": n, "error": f"over the budget of {budget} s"}
    lines = process.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {"n": n, "error": process.stderr[-2000:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", type=int)
    parser.add_argument("--sizes", default="1000,5000,20000,100000")
    parser.add_argument("--budget", type=int, default=900, help="seconds per size")
    parser.add_argument("--anchors-python")
    parser.add_argument("--anchors-sizes", default="1000,5000", help="corelay's full runs")
    parser.add_argument("--corelay-core-sizes", default="20000", help="corelay's stages one by one")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "spray.json"))
    args = parser.parse_args()
    if args.worker:
        print(MARKER + json.dumps(worker(args.worker)), flush=True)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    for n in sizes:
        result = run_size(n, args.budget)
        print(json.dumps(result), flush=True)
        results.append(result)
    anchors, corelay_core = {}, []
    if args.anchors_python:
        anchor_sizes = [int(s) for s in args.anchors_sizes.split(",") if s]
        anchors = run_anchors(args.anchors_python, anchor_sizes, Path(args.out))
        for n in [int(s) for s in args.corelay_core_sizes.split(",") if s]:
            corelay_core.append(run_corelay_core(args.anchors_python, n, args.budget))
            print(json.dumps(corelay_core[-1]), flush=True)
    out = {
        "date": time.strftime("%Y-%m-%d"),
        "results": results,
        "anchors": anchors,
        "corelay_core": corelay_core,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    header = "N preprocess kNN Laplacian eigsh k-means t-SNE core total cold warm peak-MiB"
    print("| " + " | ".join(header.split()) + " |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['n']} | error: {r['error'][:60]} |")
            continue
        s = r["seconds"]
        cells = [s["preprocess"], s["knn"], s["laplacian"], s["eigsh"], s["kmeans"], s["tsne"]]
        cells += [s["analysis core"], s["total"], r["cache_cold_s"], r["cache_warm_s"]]
        print(f"| {r['n']} | " + " | ".join("-" if c is None else f"{c:.2f}" for c in cells)
              + f" | {r['peak_delta_mib']:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
