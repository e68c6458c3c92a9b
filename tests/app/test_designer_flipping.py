"""The Designer's Pixel flipping tab (issue 16 item 7) in a real headless Chromium against
the real server: brushing with the mouse on the heatmap shows the strokes on the input too,
Flip adds rows whose top classes and score changes are the HTTP API's answers for the same
strokes, and the curves' AUC values are the API's."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from relscope.data.dataset.writer import write_hdf5_dataset
from relscope.data.labels import LabelMap, save_label_map
from relscope.data.project import DatasetSpec, Project, save_project
from relscope.engine.designer import Stroke
from relscope.engine.designer.flipping import stroke_mask
from support.browser import call_api, ensure_frontend, page_of, running_server

expect = pytest.importorskip("playwright.sync_api").expect

MODEL = "support.designer_models:small_cnn"
SIZE = 24
#: The colour flipping.ts draws stroke paths in (PATH_COLOUR).
PATH = [0, 230, 90]


def make_project(root):
    """Eight smooth 3 x 24 x 24 images of three classes, and the small model."""
    rng = np.random.default_rng(3)
    root.mkdir(parents=True)
    grid = np.linspace(0, 1, SIZE, dtype=np.float32)
    images = np.stack(
        [
            np.stack([np.outer(grid ** (1 + c + i % 3), grid[::-1]) for c in range(3)])
            + 0.2 * rng.random((3, SIZE, SIZE), dtype=np.float32)
            for i in range(8)
        ]
    ).astype(np.float32)
    dataset = write_hdf5_dataset(root / "dataset.h5", images, np.arange(8) % 3)
    labels = save_label_map(LabelMap.from_names(("cat", "dog", "horse")), root / "labels.json")
    project = Project(
        name="flipping",
        model=MODEL,
        label_map=labels,
        dataset=DatasetSpec("smooth", "hdf5", dataset, SIZE, SIZE),
    )
    return save_project(project, root / "project.yaml")


def api(site, path, body=None, method=None):
    return call_api(site.url, path, body, method)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    ensure_frontend()
    project = make_project(tmp_path_factory.mktemp("designer-flipping") / "p")
    with running_server([project]) as url:
        found = SimpleNamespace(url=url)
        api(found, "api/designer/0/designs/eps", {"segments": [{"start": 0, "rule": "epsilon"}]},
            method="PUT")  # fmt: skip
        api(found, "api/designer/0/designs/gam", {"segments": [{"start": 0, "rule": "gamma"}]},
            method="PUT")  # fmt: skip
        api(found, "api/designer/0/explain", {"input": {"sample": 0}, "config": "eps"})
        yield found


@pytest.fixture
def page(browser, site):
    with page_of(browser, viewport={"width": 1400, "height": 1000}) as tab:
        yield tab


def open_flipping(page, site) -> None:
    page.goto(site.url + "designer.html#d=0&c=eps&s=0")
    expect(page.locator("#result")).to_have_attribute("data-state", "ready")
    page.click("#tab-button-flipping")
    expect(page.locator(".flip-brush")).to_have_attribute("data-state", "ready")


def pixel(page, canvas: str, row: float, col: float) -> list[int]:
    """The colour of a canvas at the centre of input pixel (row, col)."""
    return page.evaluate(
        """([selector, row, col]) => {
            const canvas = document.querySelector(selector);
            const z = Number(canvas.dataset.zoom);
            const x = Math.floor((col + 0.5) * z), y = Math.floor((row + 0.5) * z);
            return [...canvas.getContext("2d").getImageData(x, y, 1, 1).data.slice(0, 3)];
        }""",
        [canvas, row, col],
    )


def drag(page, canvas: str, points: list[tuple[float, float]]) -> None:
    """A mouse drag through input pixels (row, col) on a canvas, as a person paints."""
    box = page.locator(canvas).bounding_box()
    zoom = float(page.get_attribute(canvas, "data-zoom"))
    scale = box["width"] / float(page.evaluate(f"document.querySelector('{canvas}').width"))

    def at(point):
        x, y = (point[1] + 0.5) * zoom * scale, (point[0] + 0.5) * zoom * scale
        return box["x"] + x, box["y"] + y

    page.mouse.move(*at(points[0]))
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*at(point), steps=6)
    page.mouse.up()


def row_classes(page, row) -> list[tuple[int, str, float]]:
    return row.locator(".flip-top li").evaluate_all(
        "ls => ls.map(l => [Number(l.dataset.class), l.querySelector('.class-name').textContent,"
        " Number(l.dataset.score)])"
    )


def expected_classes(answer) -> list[tuple[int, str, float]]:
    return [[p["index"], p["name"], p["score"]] for p in answer["predictions"]]


def test_brushing_shows_strokes_on_both_canvases_and_flip_rows_match_predict(page, site):
    open_flipping(page, site)
    empty = {c: pixel(page, c, 4, 9) for c in ("#flip-image", "#flip-heatmap")}
    assert all(colour != PATH for colour in empty.values())
    tinted_before = pixel(page, "#flip-image", 5, 9)
    # Two strokes on the heatmap: a horizontal one along row 4, a vertical one along column 18.
    drag(page, "#flip-heatmap", [(4, 3), (4, 15)])
    drag(page, "#flip-heatmap", [(10, 18), (20, 18)])
    status = page.locator("#flip-status")
    expect(status).to_have_attribute("data-strokes", "2")
    for canvas in ("#flip-image", "#flip-heatmap"):
        assert pixel(page, canvas, 4, 9) == PATH, canvas  # on the first path
        assert pixel(page, canvas, 15, 18) == PATH, canvas  # on the second
        assert pixel(page, canvas, 20, 3) != PATH, canvas  # far from both
    assert pixel(page, "#flip-image", 5, 9) != tinted_before  # covered: tinted

    page.click("#flip-run")
    rows = page.locator("#flip-rows .flip-row")
    expect(rows).to_have_count(1)
    first = page.locator('#flip-rows .flip-row[data-row="1"]')
    flip = json.loads(first.get_attribute("data-flip"))
    assert flip["fill"] == "mean"
    # The strokes are the mouse paths in input pixels, with the brush's radius.
    one, two = flip["strokes"]
    assert one["radius"] == two["radius"] == float(page.input_value("#flip-radius"))
    assert all(abs(r - 4) < 0.06 for r, _ in one["points"])
    assert one["points"][0][1] == pytest.approx(3, abs=0.06)
    assert one["points"][-1][1] == pytest.approx(15, abs=0.06)
    assert all(abs(c - 18) < 0.06 for _, c in two["points"])
    strokes = [Stroke(s["points"], s["radius"]) for s in flip["strokes"]]
    covered = int(stroke_mask(strokes, SIZE, SIZE).sum())
    assert int(status.get_attribute("data-covered")) == covered

    before = api(site, "api/designer/0/predict", {"input": {"sample": 0}, "k": 3})
    after = api(site, "api/designer/0/predict", {"input": {"sample": 0, "flip": flip}, "k": 10})
    assert row_classes(page, first) == expected_classes(after)
    assert first.locator(".flip-result").get_attribute("src") == after["image"]
    target = before["predictions"][0]["index"]
    assert int(first.get_attribute("data-target")) == target
    assert float(first.get_attribute("data-before")) == before["predictions"][0]["score"]
    flipped_score = next(p["score"] for p in after["predictions"] if p["index"] == target)
    assert float(first.get_attribute("data-after")) == flipped_score
    expect(first.locator(".flip-change")).to_contain_text(f"class {target}")
    # The row also shows the explanation of the flipped input, for the same class.
    config = page.evaluate("JSON.stringify(designer.state.configJson)")
    explained = api(
        site, "api/designer/0/explain",
        {"input": {"sample": 0, "flip": flip}, "config": json.loads(config), "target": "class",
         "index": target},
    )  # fmt: skip
    assert first.locator(".flip-after-heatmap").get_attribute("src") == explained["heatmap"]

    # Undo both strokes, a larger brush, a value fill, zoomed in: one new stroke.
    page.click("#flip-undo")
    expect(status).to_have_attribute("data-strokes", "1")
    page.click("#flip-undo")
    expect(status).to_have_attribute("data-strokes", "0")
    assert pixel(page, "#flip-image", 4, 9) != PATH
    page.locator("#flip-radius").fill("4")
    page.select_option("#flip-fill", "value")
    page.fill("#flip-value", "0.9")
    page.locator("#flip-zoom").fill("16")
    expect(page.locator("#flip-image")).to_have_attribute("data-zoom", "16")
    assert page.evaluate("document.querySelector('#flip-image').width") == SIZE * 16
    drag(page, "#flip-image", [(12, 6), (12, 14)])
    assert pixel(page, "#flip-heatmap", 12, 9) == PATH
    page.click("#flip-run")
    expect(rows).to_have_count(2)
    second = rows.nth(0)  # the newest on top
    expect(second).to_have_attribute("data-row", "2")
    flip2 = json.loads(second.get_attribute("data-flip"))
    assert flip2["fill"] == 0.9
    assert [s["radius"] for s in flip2["strokes"]] == [4]
    assert all(abs(r - 12) < 0.06 for r, _ in flip2["strokes"][0]["points"])
    after2 = api(site, "api/designer/0/predict", {"input": {"sample": 0, "flip": flip2}, "k": 10})
    assert row_classes(page, second) == expected_classes(after2)
    assert float(second.get_attribute("data-after")) == next(
        p["score"] for p in after2["predictions"] if p["index"] == target
    )
    assert second.get_attribute("data-after") != first.get_attribute("data-after")
    assert second.locator(".flip-result").get_attribute("src") != after["image"]
    # The wheel zooms out; a row is removed, the other stays.
    page.locator("#flip-heatmap").hover()
    page.mouse.wheel(0, 120)
    expect(page.locator("#flip-heatmap")).to_have_attribute("data-zoom", "14")
    page.click('#flip-rows .flip-row[data-row="1"] .flip-remove')
    expect(rows).to_have_count(1)
    expect(rows.nth(0)).to_have_attribute("data-row", "2")


def test_curves_of_two_configurations_match_the_api(page, site):
    open_flipping(page, site)
    configs = page.locator("#curve-configs label")
    expect(configs).to_have_count(2)
    page.locator('#curve-configs label[data-name="eps"] input').set_checked(True)
    page.locator('#curve-configs label[data-name="gam"] input').set_checked(True)
    page.fill("#curve-steps", "8")
    page.click("#curve-run")
    expect(page.locator("#curves")).to_have_attribute("data-state", "ready")
    answer = api(site, "api/designer/0/curves",
                 {"input": {"sample": 0}, "configs": ["eps", "gam"], "steps": 8})  # fmt: skip
    assert [c["name"] for c in answer] == ["eps", "gam"]
    table = page.locator("#curve-table tbody tr")
    expect(table).to_have_count(2)
    for position, curve in enumerate(answer):
        values = "cs => cs.map(c => c.dataset.value === '' ? null : Number(c.dataset.value))"
        cells = table.nth(position).locator("td").evaluate_all(values)
        assert table.nth(position).get_attribute("data-name") == curve["name"]
        assert cells == [*curve["auc"], *curve["aopc"]]
        figure = page.locator(f'#curves .curve-figure[data-name="{curve["name"]}"]')
        for order in ("most", "least"):
            path = figure.locator(f'path[data-order="{order}"]').get_attribute("d")
            assert path.count("M") + path.count("L") == 8 + 1
    assert answer[0]["auc"] != answer[1]["auc"]  # two different configurations
