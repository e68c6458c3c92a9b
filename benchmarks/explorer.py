"""The web Explorer: HTTP API latency and browser timings on a generated large project.

Usage (from the repository root)::

    .venv/bin/python benchmarks/explorer.py [--points 100000] [--repeats 20] \
        [--project-dir /tmp/relscope-explorer-100000] [--skip-browser] \
        [--out benchmarks/results/explorer.json]

The project (made with relscope's own writers, cached in ``--project-dir``): ``points``
images of 1 x 16 x 16 of class 0 and 500 each of classes 1 and 2, their attributions (two
shards), one analysis ``spray`` whose category ``00000000`` holds every class-0 sample (the
big category, ranked first by tau) with a 2-D ``tsne`` embedding (one Gaussian blob per
cluster), an 8-dimensional ``spectral`` embedding with eigenvalues and a clustering
``kmeans-08`` whose clusters 1 and 4 hold exactly 10 000 samples each; the two small
categories ``00000001`` and ``00000002`` have the same layout.

(a) API: ``python -m relscope serve`` in a subprocess (127.0.0.1, a free port); every
endpoint is requested 2 times untimed (the first one's time is kept as "first"), then
``--repeats`` times over one keep-alive httpx connection: median and p95 milliseconds of the
whole request (answer read), answer bytes. Per-sample endpoints rotate over random samples of
the big category; the gallery page posts 10 000 indices (one 10 000-point cluster).

(b) Browser (headless Chromium through Playwright, software WebGL via SwiftShader): the
Explorer's own performance marks. First render = ``relscope:first-render`` (set when the first
frame with all points of the category is drawn), milliseconds since navigation start, for a
cold browser context and for ``--loads`` new pages in the now warm context. Selection =
``relscope:gallery-first-image`` minus ``relscope:selection`` after a click on
``#clusters [data-cluster="<label>"]``, alternating between the two 10 000-point clusters.
Skipped, with a message, while the front end is not built
(``src/relscope/app/static/index.html``; ``bash scripts/build_frontend.sh``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
INDEX_HTML = ROOT / "src" / "relscope" / "app" / "static" / "index.html"
# The browser tests' Chromium flags (quality.md); WebGL runs on SwiftShader without them too.
sys.path.insert(0, str(ROOT / "tests"))
from support.browser import CHROMIUM, CHROMIUM_ARGS, free_port  # noqa: E402

GENERATOR = 1  # bump when the generated project changes (invalidates cached projects)
SIDE = 16  # images and attributions are 1 x SIDE x SIDE
SMALL = 500  # samples of each small category
SELECTION = 10_000  # size of the two clusters the browser selects
CLUSTERS = 8
SELECT_LABELS = (1, 4)  # the clusters of exactly SELECTION points
CLASSES = ("airplane", "bird", "cat")
ANALYSIS = "spray"
BIG = "00000000"
WARMUPS = 2
ZOOM_STEPS = 60
ZOOM_FRAMES = """async steps => {
  const target = document.querySelector('#plot .embedding-overlay');
  const box = target.getBoundingClientRect();
  const frame = () => new Promise(resolve => requestAnimationFrame(resolve));
  await frame();
  const start = performance.now();
  for (let i = 0; i < steps; i++) {
    target.dispatchEvent(new WheelEvent('wheel', {deltaY: i < steps / 2 ? -8 : 8,
      clientX: box.x + box.width / 2, clientY: box.y + box.height / 2, bubbles: true}));
    await frame();
  }
  await frame();
  return (performance.now() - start) / (steps + 1);
}"""
PAGE_LIMIT = 50


# --- the project ------------------------------------------------------------------------


def cluster_sizes(points: int) -> list[int]:
    """Sizes of the 8 clusters of a category of ``points``: two of ``SELECTION`` (or N/4)."""
    select = min(SELECTION, points // 4)
    rest = points - 2 * select
    weights = np.array([0.27, 0.22, 0.17, 0.14, 0.11, 0.09])
    others = np.floor(rest * weights).astype(int)
    others[0] += rest - others.sum()
    sizes, it = [], iter(others.tolist())
    for label in range(CLUSTERS):
        sizes.append(select if label in SELECT_LABELS else next(it))
    return sizes


def category(rng: np.random.Generator, index: np.ndarray, k: int, tau: float):
    """A SpRAy-like category over ``index``: blobs in t-SNE, clusters of ``cluster_sizes``."""
    from relscope.data.analysis_db import CategoryAnalysis, Clustering, Embedding

    n = len(index)
    labels = rng.permutation(np.repeat(np.arange(CLUSTERS), cluster_sizes(n)))
    centers = rng.uniform(-45.0, 45.0, size=(CLUSTERS, 2))
    spread = rng.uniform(2.0, 7.0, size=CLUSTERS)
    tsne = centers[labels] + rng.normal(size=(n, 2)) * spread[labels, None]
    spectral_centers = rng.normal(size=(CLUSTERS, 8)) * 0.05
    spectral = spectral_centers[labels] + rng.normal(size=(n, 8)) * 0.01
    eigenvalues = np.sort(np.concatenate([[0.0], rng.uniform(0.001, 0.05, 6), [0.4]]))
    return CategoryAnalysis(
        name=f"{k:08d}",
        index=index,
        embeddings={
            "spectral": Embedding("spectral", spectral.astype(np.float32), eigenvalue=eigenvalues),
            "tsne": Embedding("tsne", tsne.astype(np.float32), base="spectral", dims=np.arange(8)),
        },
        clusterings={
            "kmeans-08": Clustering(
                "kmeans-08", labels, embedding="spectral", k=CLUSTERS, params={"n_init": 1}
            )
        },
        scores={"eigengap": float(eigenvalues[-1] - eigenvalues[-2]), "tau": tau},
        attrs={"label_index": k},
    )


def make_project(root: Path, points: int, seed: int = 0) -> Path:
    """Write the benchmark project into ``root`` and return its project file."""
    from relscope.data.analysis_db import AnalysisWriter
    from relscope.data.attribution_db import AttributionWriter, shard_indices
    from relscope.data.dataset import write_hdf5_dataset
    from relscope.data.labels import LabelMap, save_label_map
    from relscope.data.project import (
        AnalysisSpec,
        AttributionSpec,
        DatasetSpec,
        Project,
        save_project,
    )

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    total = points + 2 * SMALL
    classes = np.empty(total, dtype=np.int64)
    classes[rng.permutation(total)] = np.repeat([0, 1, 2], [points, SMALL, SMALL])
    # Images: smooth random prototypes plus noise, 8-bit values as real images have.
    yy, xx = np.mgrid[:SIDE, :SIDE] / SIDE
    prototypes = np.stack(
        [np.sin(a * xx + b) * np.cos(c * yy + d) for a, b, c, d in rng.uniform(1, 7, (16, 4))]
    )
    kind = rng.integers(0, len(prototypes), total)
    images = 0.5 + 0.35 * prototypes[kind] + rng.normal(0, 0.08, (total, SIDE, SIDE))
    images = (np.clip(np.rint(images * 255), 0, 255) / 255).astype(np.float32)[:, None]
    dataset = write_hdf5_dataset(root / "dataset.h5", images, classes)
    label_map = save_label_map(LabelMap.from_names(CLASSES), root / "labels.json")
    relevance = (images - 0.5) * rng.uniform(0.2, 2.0, (total, 1, 1, 1)).astype(np.float32)
    prediction = rng.normal(size=(total, len(CLASSES))).astype(np.float32)
    prediction[np.arange(total), classes] += 2.0
    sources = []
    for shard in range(2):
        index = shard_indices(np.arange(total), 2, shard)
        path = root / f"attribution-{shard}.h5"
        with AttributionWriter(
            path, index, shape=(1, SIDE, SIDE), num_outputs=len(CLASSES),
            method={"name": "epsilon_plus_flat"}, model="benchmark", overwrite=True,
        ) as writer:  # fmt: skip
            writer.add(relevance[index], classes[index], prediction[index])
        sources.append(path)
    analysis = root / "analysis.h5"
    analysis.unlink(missing_ok=True)
    with AnalysisWriter(analysis, ANALYSIS) as writer:
        for k, tau in zip(range(len(CLASSES)), (0.9, 0.5, 0.3), strict=True):
            writer.write(category(rng, np.flatnonzero(classes == k), k, tau))
    project = Project(
        name=f"explorer-benchmark-{points}",
        model="benchmark:none",
        label_map=label_map,
        dataset=DatasetSpec("synthetic", "hdf5", dataset, SIDE, SIDE),
        attributions=AttributionSpec("epsilon_plus_flat", "true_label", sources),
        analyses=[AnalysisSpec(ANALYSIS, [analysis])],
    )
    return save_project(project, root / "project.yaml")


def cached_project(folder: Path, points: int) -> tuple[Path, float | None]:
    """The project in ``folder``, generated unless a complete one for ``points`` is there."""
    meta = folder / "benchmark.json"
    wanted = {"generator": GENERATOR, "points": points, "side": SIDE, "small": SMALL}
    with contextlib.suppress(OSError, json.JSONDecodeError):
        if json.loads(meta.read_text()) == wanted and (folder / "project.yaml").is_file():
            return folder / "project.yaml", None
    start = time.perf_counter()
    path = make_project(folder, points)
    seconds = time.perf_counter() - start
    meta.write_text(json.dumps(wanted))  # last: marks the project complete
    return path, seconds


# --- the server -------------------------------------------------------------------------


@contextlib.contextmanager
def server(project: Path, log: Path):
    """``relscope serve project`` on a free port; yields (base URL, seconds to healthy)."""
    import httpx

    port = free_port()
    command = [sys.executable, "-m", "relscope", "serve", str(project), "--port", str(port)]
    start = time.perf_counter()
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if process.poll() is not None:
                raise SystemExit(
                    f"relscope serve exited ({process.returncode}):\n{log.read_text()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/api/health", timeout=1.0).status_code == 200:
                    break
            if time.perf_counter() - start > 120:
                raise SystemExit(f"relscope serve did not answer in 120 s:\n{log.read_text()}")
            time.sleep(0.05)
        yield base, time.perf_counter() - start
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- (a) API latency --------------------------------------------------------------------


def endpoints(detail: dict, rng: np.random.Generator, count: int) -> list[tuple]:
    """(name, method, url(i), body(i)) per endpoint; ``i`` counts the requests 0..count-1."""
    category = f"/api/projects/0/analyses/{ANALYSIS}/categories/{BIG}"
    index = np.asarray(detail["index"])
    clusters = {c["label"]: c["size"] for c in detail["clusterings"][0]["clusters"]}
    picks = rng.choice(index, size=count, replace=False).tolist()
    selection = np.sort(rng.choice(index, size=clusters[SELECT_LABELS[0]], replace=False))
    page = {"indices": selection.tolist(), "offset": 0, "limit": PAGE_LIMIT}

    def fixed(url: str) -> Callable[[int], str]:
        return lambda i: url

    def sample(suffix: str) -> Callable[[int], str]:
        return lambda i: f"/api/projects/0/samples/{picks[i]}{suffix}"

    return [
        ("/api/projects", "GET", fixed("/api/projects"), None),
        ("labels", "GET", fixed("/api/projects/0/labels"), None),
        ("categories", "GET", fixed(f"/api/projects/0/analyses/{ANALYSIS}/categories"), None),
        ("category detail (N indices)", "GET", fixed(category), None),
        ("embedding tsne json", "GET", fixed(category + "/embeddings/tsne?dims=0,1"), None),
        ("embedding tsne binary", "GET",
         fixed(category + "/embeddings/tsne?dims=0,1&format=binary"), None),
        ("embedding spectral 3-D binary", "GET",
         fixed(category + "/embeddings/spectral?dims=1,2,3&format=binary"), None),
        ("clustering kmeans-08 json", "GET", fixed(category + "/clusterings/kmeans-08"), None),
        ("clustering kmeans-08 binary", "GET",
         fixed(category + "/clusterings/kmeans-08?format=binary"), None),
        ("samples/{i}", "GET", sample(""), None),
        ("samples/{i}/image.png", "GET", sample("/image.png"), None),
        ("samples/{i}/heatmap.png", "GET", sample("/heatmap.png"), None),
        ("samples/{i}/overlay.png", "GET", sample("/overlay.png"), None),
        (f"POST samples/page ({PAGE_LIMIT} of {len(selection)})", "POST",
         fixed("/api/projects/0/samples/page"), page),
        ("/api/colormaps", "GET", fixed("/api/colormaps"), None),
    ]  # fmt: skip


def time_api(base: str, repeats: int) -> list[dict]:
    import httpx

    rng = np.random.default_rng(1)
    with httpx.Client(base_url=base, timeout=120.0) as client:
        # The first request that reads the big category is timed as "first" below.
        detail_url = f"/api/projects/0/analyses/{ANALYSIS}/categories/{BIG}"
        start = time.perf_counter()
        detail = client.get(detail_url).raise_for_status().json()
        first_detail = (time.perf_counter() - start) * 1e3
        rows = []
        for name, method, url, body in endpoints(detail, rng, WARMUPS + repeats):
            times, size = [], None
            for i in range(WARMUPS + repeats):
                start = time.perf_counter()
                response = client.request(method, url(i), json=body)
                elapsed = (time.perf_counter() - start) * 1e3
                if response.status_code != 200:
                    raise SystemExit(f"{method} {url(i)}: {response.status_code} {response.text}")
                times.append(elapsed)
                size = len(response.content)
            timed = times[WARMUPS:]
            first = first_detail if name.startswith("category detail") else times[0]
            rows.append({
                "endpoint": name,
                "method": method,
                "url": url(0),
                "median_ms": statistics.median(timed),
                "p95_ms": float(np.percentile(timed, 95)),
                "min_ms": min(timed),
                "first_ms": first,
                "bytes": size,
            })  # fmt: skip
            print(f"  {name}: {rows[-1]['median_ms']:.2f} ms, {size} B", flush=True)
    return rows


# --- (b) browser ------------------------------------------------------------------------

FIRST_RENDER = "relscope:first-render"
SELECTED = "relscope:selection"
FIRST_IMAGE = "relscope:gallery-first-image"
CLICKED = "relscope:benchmark-click"

SELECTION_TIMES = """([selected, image, clicked]) => {
    const first = (name, after) => performance.getEntriesByName(name)
        .find((e) => e.startTime >= after);
    const s = first(selected, 0);
    const g = s && first(image, s.startTime);
    return g ? [s.startTime, g.startTime, first(clicked, 0).startTime] : null;
}"""


def first_render(context, url: str, timeout_ms: float, errors: list[str]) -> tuple:
    """(page, ms from navigation start to the first render mark) of a new page."""

    def note(text: str) -> None:
        if text not in errors and len(errors) < 20:
            errors.append(text)

    page = context.new_page()
    page.on("pageerror", lambda error: note(f"page error: {error}"))
    page.on("console", lambda message: message.type == "error" and note(message.text))
    page.on(
        "response",
        lambda r: r.status >= 400 and "favicon" not in r.url and note(f"{r.status} {r.url}"),
    )
    page.goto(url)
    page.wait_for_function(
        f"performance.getEntriesByName({FIRST_RENDER!r}).length > 0", timeout=timeout_ms
    )
    return page, page.evaluate(f"performance.getEntriesByName({FIRST_RENDER!r})[0].startTime")


def time_browser(
    base: str, path: str, loads: int, clicks: int, timeout_s: float, points: int
) -> dict:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    url = base + path
    timeout_ms = timeout_s * 1e3
    errors: list[str] = []
    out: dict = {"url": path, "errors": errors}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        out["chromium"] = browser.version
        try:
            # Cold: a fresh context (empty HTTP cache); the server has served the API already.
            # The marks are read with evaluated scripts, which the server's CSP forbids.
            context = browser.new_context(viewport={"width": 1600, "height": 1000}, bypass_csp=True)
            page, cold = first_render(context, url, timeout_ms, errors)
            rendered = page.evaluate("document.querySelector('#plot')?.dataset.rendered ?? null")
            page.close()
            out["first_render_cold_ms"] = cold
            # The points the plot reports drawn, where the front end says (a sanity check).
            out["rendered_points"] = rendered
            print(f"  first render, cold context: {cold:.0f} ms", flush=True)
            warm = out["first_render_ms"] = []
            for _ in range(loads):
                page, ms = first_render(context, url, timeout_ms, errors)
                warm.append(ms)
                print(f"  first render, new page: {ms:.0f} ms", flush=True)
                if len(warm) < loads:
                    page.close()
            out["first_render_median_ms"] = statistics.median(warm)
            # Selection: the last page stays open; alternate between the 10 000-point clusters.
            out["selection_points"] = min(SELECTION, points // 4)
            marks = out["selection_to_first_image_ms"] = []
            from_click = out["click_to_first_image_ms"] = []
            for click in range(clicks):
                label = SELECT_LABELS[click % 2]
                target = page.locator(f'#clusters [data-cluster="{label}"]')
                target.wait_for(timeout=timeout_ms)
                page.evaluate(f"performance.clearMarks(); performance.mark({CLICKED!r})")
                target.click()
                handle = page.wait_for_function(
                    SELECTION_TIMES, arg=[SELECTED, FIRST_IMAGE, CLICKED], timeout=timeout_ms
                )
                selected, image, clicked = handle.json_value()
                marks.append(image - selected)
                from_click.append(image - clicked)
                print(f"  cluster {label}: selection to first image {marks[-1]:.0f} ms", flush=True)
                page.wait_for_timeout(300)  # let the gallery settle before the next click
            out["selection_to_first_image_median_ms"] = statistics.median(marks)
            out["click_to_first_image_median_ms"] = statistics.median(from_click)
            # Smoothness: wheel-zoom steps, one per animation frame, each redrawing all points
            # (with a selection of 10 000 drawn on top); the mean interval between frames.
            frame = out["zoom_frame_ms"] = page.evaluate(ZOOM_FRAMES, ZOOM_STEPS)
            print(f"  zoom: {frame:.1f} ms per frame over {ZOOM_STEPS} frames", flush=True)
            context.close()
        except PlaywrightError as error:
            out["error"] = str(error).splitlines()[0]
            print(f"  browser: {out['error']}", flush=True)
        finally:
            browser.close()
    return out


# --- report -----------------------------------------------------------------------------


def device() -> dict:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    chromium = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        run = subprocess.run(
            [CHROMIUM, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
        chromium = run.stdout.strip() or None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "chromium": chromium,
        "python": platform.python_version(),
        "system": platform.platform(),
        "load_average_at_start": os.getloadavg()[0],
    }


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=1))
    os.replace(temporary, path)


def print_tables(result: dict) -> None:
    print("\n| endpoint | median ms | p95 ms | first ms | bytes |")
    print("|---|---|---|---|---|")
    for r in result["api"]:
        print(f"| {r['endpoint']} | {r['median_ms']:.2f} | {r['p95_ms']:.2f} | "
              f"{r['first_ms']:.1f} | {r['bytes']:,} |")  # fmt: skip
    browser = result["browser"]
    if "skipped" in browser:
        print(f"\nbrowser: {browser['skipped']}")
        return
    n = result["project"]["points"]
    rows = []
    if "first_render_cold_ms" in browser:
        rows.append(
            (f"first render of {n:,} points, cold context", [browser["first_render_cold_ms"]])
        )
    if "first_render_ms" in browser:
        rows.append((f"first render of {n:,} points, new page", browser["first_render_ms"]))
    selected = browser.get("selection_points")
    for key, what in (("selection", "selection mark"), ("click", "click (incl. Playwright)")):
        if f"{key}_to_first_image_ms" in browser:
            values = browser[f"{key}_to_first_image_ms"]
            rows.append((f"{what} to first gallery image, {selected:,} points", values))
    if "zoom_frame_ms" in browser:
        rows.append((f"wheel zoom, mean ms per frame of {n:,} points", [browser["zoom_frame_ms"]]))
    print("\n| browser figure | median ms | runs ms |")
    print("|---|---|---|")
    for what, values in rows:
        runs = ", ".join(f"{v:.0f}" for v in values)
        print(f"| {what} | {statistics.median(values):.0f} | {runs} |")
    if "error" in browser:
        print(f"\nbrowser stopped: {browser['error']}")
        for line in browser.get("errors", []):
            print(f"  page: {line}")


def main() -> None:
    import httpx

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000, help="size of the big category")
    parser.add_argument("--repeats", type=int, default=20, help="timed requests per endpoint")
    parser.add_argument("--loads", type=int, default=5, help="page loads after the cold one")
    parser.add_argument("--clicks", type=int, default=5, help="cluster selections timed")
    parser.add_argument("--project-dir", type=Path, help="project cache (default: in /tmp)")
    parser.add_argument("--path", default="/", help="Explorer URL path to load")
    parser.add_argument("--timeout", type=float, default=180.0, help="browser wait, seconds")
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/explorer.json")
    args = parser.parse_args()
    if args.points < 1000:
        parser.error("--points must be at least 1000")
    if args.loads < 1 or args.clicks < 1:
        parser.error("--loads and --clicks must be at least 1")
    folder = args.project_dir or Path(tempfile.gettempdir()) / f"relscope-explorer-{args.points}"
    facts = device()
    print(f"device: {facts['cpu']}, {facts['cores']} cores, {facts['chromium']}, "
          f"Python {facts['python']}", flush=True)  # fmt: skip
    project, generated = cached_project(folder, args.points)
    made = f"generated in {generated:.1f} s" if generated else "cached"
    print(f"project: {project} ({made})", flush=True)
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "device": facts,
        "project": {
            "points": args.points,
            "dataset_samples": args.points + 2 * SMALL,
            "image": [1, SIDE, SIDE],
            "cluster_sizes": cluster_sizes(args.points),
            "generate_s": generated,
        },
        "repeats": args.repeats,
        "warmups": WARMUPS,
    }
    with server(project, folder / "serve.log") as (base, startup):
        print(f"server: {base}, healthy after {startup:.2f} s", flush=True)
        result["server_start_s"] = startup
        result["api"] = time_api(base, args.repeats)
        if args.skip_browser:
            result["browser"] = {"skipped": "--skip-browser"}
        elif not INDEX_HTML.is_file():
            reason = (f"front end not built ({INDEX_HTML.relative_to(ROOT)} missing; "
                      "run `bash scripts/build_frontend.sh`): browser timings skipped")  # fmt: skip
            print(reason, flush=True)
            result["browser"] = {"skipped": reason}
        elif (status := httpx.get(base + args.path, timeout=30).status_code) != 200:
            reason = f"GET {args.path} answered {status}: the server does not serve the front end"
            print(reason, flush=True)
            result["browser"] = {"skipped": reason}
        else:
            result["browser"] = time_browser(
                base, args.path, args.loads, args.clicks, args.timeout, args.points
            )
    facts["load_average_at_end"] = os.getloadavg()[0]  # other work on the machine skews
    if result["browser"].get("chromium"):
        facts["chromium"] = result["browser"]["chromium"]
    write_json(args.out, result)
    print_tables(result)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
