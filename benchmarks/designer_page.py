"""Designer page: time from a slider change to the new heatmap painted, in Debian's headless
Chromium against a real server (uvicorn in a thread), for the demo CNN (1 x 28 x 28) and
VGG-16 (random weights, 3 x 224 x 224).

Each round moves the epsilon slider of the page's default configuration (the unified rule
on every layer, epsilon preset) to a value not used before, so nothing comes from a cache,
and measures in the page from the slider's `input` event to the frame after the new input
heatmap is decoded: the page's 150 ms debounce, the request, the server's explanation with
its boundary heatmaps and sums, the JSON and base64 PNGs, and the painting. Medians.

Usage:
  python benchmarks/designer_page.py [--rounds 9] [--models demo,vgg16] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "tests")]

from relscope.app import DesignerSource  # noqa: E402
from support.browser import chromium, ensure_frontend, running_server  # noqa: E402

TARGETS = {"demo": 0.3, "vgg16": 1.5}

MEASURE = """async ([value, before]) => {
  const slider = document.querySelector('#rule-panel input[type="range"][data-param="eps"]');
  const heatmaps = document.querySelector('#heatmaps');
  const result = document.querySelector('#result');
  const start = performance.now();
  slider.value = String(value);
  slider.dispatchEvent(new Event('input', { bubbles: true }));
  await new Promise((resolve) => {
    const check = () =>
      Number(heatmaps.dataset.renders) > before && result.dataset.state === 'ready'
        ? resolve() : requestAnimationFrame(check);
    check();
  });
  await document.querySelector('#heatmaps figure[data-boundary="input"] img').decode();
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  return performance.now() - start;
}"""


def sources(folder: Path) -> dict[str, DesignerSource]:
    rng = np.random.default_rng(0)
    for name, size, mode in (("gray", 28, "L"), ("rgb", 224, "RGB")):
        (folder / name).mkdir()
        shape = (size, size) if mode == "L" else (size, size, 3)
        for i in range(2):
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{i}.png")
    return {
        "demo": DesignerSource(
            "relscope.data.builtin:mnist_cnn", images=folder / "gray", designs=folder,
            input_size=(28, 28), mode="L", name="demo CNN",
        ),
        "vgg16": DesignerSource(
            "designer_models:vgg16", images=folder / "rgb", designs=folder,
            input_size=(224, 224), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
            name="VGG-16",
        ),
    }  # fmt: skip


def measure(url: str, browser, designer: int, rounds: int) -> list[float]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, bypass_csp=True)
    page = context.new_page()
    page.goto(f"{url}designer.html#d={designer}&s=0")
    page.wait_for_function(
        "document.querySelector('#result').dataset.state === 'ready'", timeout=120_000
    )
    times = []
    for round_ in range(rounds + 1):  # the first one warms up
        before = int(page.get_attribute("#heatmaps", "data-renders") or 0)
        value = round(0.01 + 0.013 * round_, 3)
        times.append(page.evaluate(MEASURE, [value, before]) / 1000.0)
    context.close()
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--models", default="demo,vgg16")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    ensure_frontend()
    chosen = args.models.split(",")
    with tempfile.TemporaryDirectory(prefix="relscope-page-bench-") as folder:
        served = sources(Path(folder))
        designers = [served[name] for name in chosen]
        with running_server([], designers=designers) as url, chromium() as browser:
            results = {}
            for designer, name in enumerate(chosen):
                times = measure(url, browser, designer, args.rounds)
                results[name] = {"median_s": statistics.median(times), "all_s": times}
    print(f"{'model':<8} {'median s':>9} {'target':>8}  runs")
    for name, result in results.items():
        runs = ", ".join(f"{t:.3f}" for t in result["all_s"])
        print(f"{name:<8} {result['median_s']:9.3f} {'<= ' + str(TARGETS[name]):>8}  {runs}")
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
