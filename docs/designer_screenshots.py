"""Screenshots of the Designer on the demo project (docs/images/designer-*.png).

    relscope demo --no-serve            # writes relscope-demo/
    .venv/bin/python docs/designer_screenshots.py relscope-demo/project.yaml

Serves the project on a free port, stores two configurations in its designs/ folder (the
engine's default composite in segment form, and plain epsilon), drives headless Chromium
(Debian's, through Playwright) through three views of the first sample with the planted
square and saves a screenshot of each:

- designer-flipping.png: the sample, its heatmap, and a row after brushing the square away
  (the flipped input, its heatmap and the new prediction);
- designer-compare.png: the two configurations x the artifact sample, a clean sample of the
  same class and the artifact sample explained as the runner-up class, on one scale;
- designer-ablation.png: the channels of the last convolution by relevance, the most
  relevant ones selected, their maps, and the prediction and heatmap after ablating them.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from relscope.data.dataset import HDF5Dataset  # noqa: E402
from relscope.data.project import load_project  # noqa: E402
from support.browser import chromium, ensure_frontend, running_server  # noqa: E402

DESIGNS = {
    "eps-plus-flat": {
        "segments": [
            {"start": 0, "stop": 1, "rule": "flat"},
            {"start": 1, "stop": 6, "rule": "zplus"},
            {"start": 6, "stop": None, "rule": "epsilon", "params": {"eps": 1e-6}},
        ]
    },
    "epsilon": {
        "segments": [{"start": 0, "stop": None, "rule": "epsilon", "params": {"eps": 0.25}}]
    },
}


def call(url: str, path: str, body=None, method: str | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path, data, {"content-type": "application/json"}, method=method
    )
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)


def drag(page, canvas: str, points: list[tuple[float, float]]) -> None:
    """A mouse drag through input pixels (row, column) on a flipping canvas."""
    box = page.locator(canvas).bounding_box()
    zoom = float(page.get_attribute(canvas, "data-zoom"))
    scale = box["width"] / float(page.evaluate(f"document.querySelector('{canvas}').width"))
    at = [(box["x"] + (c + 0.5) * zoom * scale, box["y"] + (r + 0.5) * zoom * scale)
          for r, c in points]  # fmt: skip
    page.mouse.move(*at[0])
    page.mouse.down()
    for point in at[1:]:
        page.mouse.move(*point, steps=6)
    page.mouse.up()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    ensure_frontend()
    project = load_project(args.project)
    artifact = json.loads((project.root / "artifact.json").read_text())
    poisoned = set(artifact["samples"])
    sample = min(poisoned)
    labels = HDF5Dataset(project.dataset.path).labels()
    clean = next(
        i for i in range(len(labels)) if labels[i] == artifact["class"] and i not in poisoned
    )
    args.out.mkdir(parents=True, exist_ok=True)
    with running_server([args.project]) as url, chromium() as browser:
        for name, config in DESIGNS.items():
            call(url, f"api/designer/0/designs/{name}", config, method="PUT")
        # wait_for_function evaluates strings, which the server's CSP forbids to the page.
        context = browser.new_context(viewport={"width": 1500, "height": 1000}, bypass_csp=True)
        page = context.new_page()

        # Pixel flipping: brush the square away.
        page.goto(url + f"designer.html#d=0&c=eps-plus-flat&s={sample}&tab=flipping")
        page.wait_for_function("document.querySelector('#result').dataset.state === 'ready'")
        page.wait_for_function("document.querySelector('.flip-brush')?.dataset.state === 'ready'")
        page.locator("#flip-radius").fill("2")
        page.select_option("#flip-fill", "value")
        page.fill("#flip-value", "0")
        drag(page, "#flip-heatmap", [(1, 1), (1, 2)])
        page.click("#flip-run")
        page.wait_for_function("document.querySelector('#flip-rows .flip-row') !== null")
        page.wait_for_timeout(300)
        page.screenshot(path=str(args.out / "designer-flipping.png"))

        # Compare: two configurations x three columns on one scale.
        page.goto(url + f"designer.html#d=0&c=eps-plus-flat&s={sample}&tab=compare")
        page.wait_for_function("document.querySelector('#result').dataset.state === 'ready'")
        page.check('#compare-rows input[data-name="epsilon"]')
        page.click("#compare-add-current")
        page.fill("#compare-sample", str(clean))
        page.click("#compare-add-sample")
        options = page.locator("#compare-class option").evaluate_all("os => os.map(o => o.value)")
        page.select_option("#compare-class", options[1])  # the runner-up class
        page.click("#compare-add-class")
        page.wait_for_function(
            "document.querySelectorAll('#compare-grid td.cell').length === 6"
            " && document.querySelector('#compare-result').dataset.state === 'ready'"
        )
        page.wait_for_timeout(300)
        page.screenshot(path=str(args.out / "designer-compare.png"))
        ablation(page, url, sample, args.out)


def ablation(page, url: str, sample: int, out: Path) -> None:
    """The Neuron ablation tab on the last convolution: select its most relevant channels,
    see their maps, ablate them."""
    layers = call(url, "api/designer/0/layers")
    conv = max(layer["index"] for layer in layers if layer["kind"] == "convolution")
    page.goto(url + f"designer.html#d=0&c=eps-plus-flat&s={sample}&tab=neurons")
    page.wait_for_function("document.querySelector('#result').dataset.state === 'ready'")
    page.select_option("#neuron-layer", str(conv))
    page.wait_for_function(
        "document.querySelector('#neuron-scatter-card')?.dataset.state === 'ready'"
    )
    data = call(
        url, "api/designer/0/neurons",
        {"input": {"sample": sample}, "config": "eps-plus-flat", "layer": conv},
    )  # fmt: skip
    strongest = sorted(range(len(data["positive"])), key=lambda c: -data["positive"][c])[:4]
    for position, channel in enumerate(strongest):
        point = page.locator(f'#neuron-scatter circle[data-channel="{channel}"]')
        point.click(modifiers=["Shift"] if position else [])
    page.wait_for_function("document.querySelector('#neuron-maps').dataset.state === 'ready'")
    page.click("#neuron-ablate")
    page.wait_for_function("document.querySelector('#neuron-ablation')?.dataset.state === 'ready'")
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / "designer-ablation.png"))


if __name__ == "__main__":
    main()
