"""Screenshots of the Explorer on the demo project (docs/images/explorer-*.png).

    relscope demo --no-serve            # writes relscope-demo/
    .venv/bin/python docs/explorer_screenshots.py relscope-demo/project.yaml

Serves the project on a free port, drives headless Chromium (Debian's, through Playwright)
to four views and saves a screenshot of each.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from relscope.app.links import view_fragment  # noqa: E402
from relscope.data.analysis_db import AnalysisDatabase  # noqa: E402
from relscope.data.project import load_project  # noqa: E402
from support.browser import chromium, ensure_frontend, running_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--category", default="00000003")
    args = parser.parse_args()
    ensure_frontend()
    project = load_project(args.project)
    with AnalysisDatabase(project.analyses[0].sources[0]) as database:
        found = database.category(args.category, project.analyses[0].analysis_method)
    labels = np.asarray(found.clusterings["kmeans-02"].labels)
    # In the demo the smaller cluster of the k = 2 split is the one with the planted square
    # (the demo prints which; the first screenshot shows it).
    artifact = int(np.argmin(np.bincount(labels)))
    analysis = project.analyses[0].analysis_method
    views = {
        "explorer-artifact-overlay": view_fragment(
            analysis, args.category, clustering="kmeans-02", mode="overlay",
            selection=np.flatnonzero(labels == artifact), size=len(labels),
        ),
        "explorer-clean-attribution": view_fragment(
            analysis, args.category, clustering="kmeans-02", mode="attribution",
            selection=np.flatnonzero(labels != artifact), size=len(labels),
        ),
        "explorer-spectral-input": view_fragment(
            analysis, args.category, embedding="spectral", clustering="kmeans-04",
            mode="input",
        ),
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    with running_server([args.project]) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1500, "height": 900})
        for name, fragment in views.items():
            page.goto(url + fragment)
            page.wait_for_function("document.querySelector('#plot').dataset.rendered > 0")
            page.wait_for_function("document.querySelector('#gallery').dataset.state === 'ready'")
            if name == "explorer-spectral-input":
                page.select_option("#dim-y", "2")
                page.click("#tool-lasso")
                box = page.locator("#plot").bounding_box()
                x, y, w, h = box["x"], box["y"], box["width"], box["height"]
                path = [(0.35, 0.3), (0.65, 0.3), (0.7, 0.6), (0.5, 0.75), (0.3, 0.6)]
                page.mouse.move(x + w * path[0][0], y + h * path[0][1])
                page.mouse.down()
                for fx, fy in path[1:]:
                    page.mouse.move(x + w * fx, y + h * fy, steps=5)
                page.mouse.up()
                page.wait_for_function("relscope.selection().length > 0")
                page.wait_for_function(
                    "document.querySelector('#gallery').dataset.state === 'ready'"
                )
                points = np.asarray(page.evaluate("relscope.screenPoints()")).reshape(-1, 2)
                page.mouse.move(x + points[0, 0], y + points[0, 1])
                page.wait_for_function("document.querySelector('#hover img').naturalWidth > 0")
            if name == "explorer-clean-attribution":
                page.select_option("#cmap", "coldnhot")
                page.wait_for_function("location.hash.includes('cm=coldnhot')")
            page.screenshot(path=str(args.out / f"{name}.png"))
            print(f"wrote {args.out / name}.png")


if __name__ == "__main__":
    main()
