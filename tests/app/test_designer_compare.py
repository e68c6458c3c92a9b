"""The Designer's Compare tab (issue 16 item 6) in a real headless Chromium against the real
server: configurations x samples/classes as a grid on one colour scale, driven as a person
does and checked against the HTTP API's compare answer for the same request."""

from __future__ import annotations

import base64
import io
import json
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from support.browser import call_api, ensure_frontend, page_of, running_server
from support.projects import CLASSES, make_project_folder

expect = pytest.importorskip("playwright.sync_api").expect

MODEL = "support.designer_models:tiny_cnn"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    ensure_frontend()
    root = tmp_path_factory.mktemp("designer-compare")
    project = make_project_folder(root / "p", model=MODEL)
    with running_server([project]) as url:
        found = SimpleNamespace(url=url)
        # Build the model and trace an engine once, so that no test waits for it.
        api(found, "api/designer/0/explain", {"input": {"sample": 0}, "config": "epsilon"})
        found.presets = api(found, "api/designer/rules")["unified"]["presets"]
        yield found


@pytest.fixture
def page(browser, site):
    with page_of(browser, viewport={"width": 1400, "height": 1000}) as tab:
        yield tab


def api(site, path, body=None, method=None):
    return call_api(site.url, path, body, method)


def pixels(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as image:
        return np.asarray(image.convert("RGB"))


def unified(name: str, params: dict) -> dict:
    return {"name": name, "segments": [
        {"start": 0, "stop": None, "rule": "unified", "params": params}]}  # fmt: skip


def open_compare(page, site) -> None:
    page.goto(site.url + "designer.html")
    expect(page.locator("#result")).to_have_attribute("data-state", "ready")
    expect(page.locator("#predictions li")).to_have_count(3)


def grid_ready(page, cells: int) -> None:
    expect(page.locator("#compare-grid td.cell")).to_have_count(cells)
    expect(page.locator("#compare-result")).to_have_attribute("data-state", "ready")


def test_two_configurations_by_a_sample_and_a_class_match_the_api(page, site):
    open_compare(page, site)
    page.click("#config-new")  # config-2, active: the gamma preset
    page.locator('#rule-panel [data-preset="gamma"]').click()
    page.click("#tab-button-compare")
    rows = page.locator("#compare-rows input[type=checkbox]")
    expect(rows).to_have_count(2)
    expect(page.locator('#compare-rows input[data-name="config-2"]')).to_be_checked()
    expect(page.locator('#compare-rows input[data-name="config"]')).not_to_be_checked()
    expect(page.locator("#compare-status")).to_have_text("add a column")
    page.check('#compare-rows input[data-name="config"]')
    page.fill("#compare-sample", "3")
    page.click("#compare-add-sample")
    options = page.locator("#compare-class option")
    expect(options).to_have_count(3)  # the current input's classes (sample 0)
    page.select_option("#compare-class", "2")
    page.click("#compare-add-class")
    grid_ready(page, 4)

    body = {
        "configs": [unified("config", site.presets["epsilon"]),
                    unified("config-2", site.presets["gamma"])],
        "columns": [{"input": {"sample": 3}, "target": "predicted", "index": None},
                    {"input": {"sample": 0}, "target": "class", "index": 2}],
        "cmap": "bwr",
    }  # fmt: skip
    answer = api(site, "api/designer/0/compare", body)
    for r in range(2):
        for c in range(2):
            cell = page.locator(f'#compare-grid td.cell[data-row="{r}"][data-column="{c}"]')
            shown = pixels(cell.locator("img.cell-map").get_attribute("src"))
            expected = pixels(answer["cells"][r][c]["heatmap"])
            assert shown.shape == (8, 8, 3)
            np.testing.assert_array_equal(shown, expected)
    assert not np.array_equal(  # the two rows differ: the grid is not one picture four times
        pixels(answer["cells"][0][0]["heatmap"]), pixels(answer["cells"][1][0]["heatmap"])
    )
    names = [answer["cells"][0][c]["target_name"] for c in range(2)]
    assert names[1] == CLASSES[2]
    expect(page.locator("#compare-grid .column-head .target-name")).to_have_text(names)
    expect(page.locator("#compare-grid .column-head .input-title")).to_have_text(
        ["sample 3", "sample 0"]
    )
    inputs = page.locator("#compare-grid .column-input").evaluate_all(
        "imgs => imgs.map(i => i.getAttribute('src'))"
    )
    assert inputs == [f"api/designer/0/samples/{i}/image.png" for i in (3, 0)]
    expect(page.locator("#compare-grid .row-name")).to_have_text(answer["names"])
    assert answer["names"] == ["config", "config-2"]
    expect(page.locator('#compare-grid tr[data-name="config-2"] .part')).to_have_attribute(
        "data-rule", "gamma"
    )
    # One colour bar for the grid, with the API's shared scale.
    bar = page.locator("#compare-colourbar")
    assert float(bar.get_attribute("data-scale")) == answer["scale"]
    assert float(bar.locator(".hi").inner_text()) == pytest.approx(answer["scale"], rel=1e-3)
    assert float(bar.locator(".lo").inner_text()) == pytest.approx(-answer["scale"], rel=1e-3)
    assert (
        page.locator("#compare-grid img.cell-map").first.evaluate(
            "i => getComputedStyle(i).imageRendering"
        )
        == "pixelated"
    )

    # Removing the sample column leaves the class column's two cells.
    page.click('#compare-grid th[data-column="0"] .remove-column')
    grid_ready(page, 2)
    expect(page.locator("#compare-grid .column-head .target-name")).to_have_text([CLASSES[2]])

    # config gets alpha = 1e15: its relevance breaks down, its cell says so.
    page.click('#configs li[data-name="config"]')
    page.click("#tab-button-design")
    field = page.locator('#rule-panel input[type="number"][data-param="alpha"]')
    field.fill("1e15")
    field.press("Enter")
    page.click("#tab-button-compare")
    broken = page.locator('#compare-grid td.cell[data-row="0"]')
    expect(broken.locator(".cell-warnings li")).to_have_count(1)
    expect(broken.locator(".cell-warnings li")).to_contain_text("NaN or infinite at layer '2")
    expect(broken.locator(".no-map")).to_be_visible()
    body = {
        "configs": [unified("config", site.presets["epsilon"] | {"alpha": 1e15}),
                    unified("config-2", site.presets["gamma"])],
        "columns": [{"input": {"sample": 0}, "target": "class", "index": 2}],
    }  # fmt: skip
    answer = api(site, "api/designer/0/compare", body)
    assert answer["cells"][0][0]["heatmap"] is None
    warnings = broken.locator(".cell-warnings li").all_inner_texts()
    assert warnings == answer["cells"][0][0]["warnings"]
    whole = page.locator('#compare-grid td.cell[data-row="1"] img.cell-map').get_attribute("src")
    np.testing.assert_array_equal(pixels(whole), pixels(answer["cells"][1][0]["heatmap"]))
    assert float(bar.get_attribute("data-scale")) == answer["scale"]


def test_top_classes_current_input_repeats_and_latest_only_requests(page, site):
    open_compare(page, site)
    page.fill("#sample-index", "5")
    page.press("#sample-index", "Enter")
    expect(page.locator("#input-image")).to_have_attribute(
        "src", "api/designer/0/samples/5/image.png"
    )
    page.click("#tab-button-compare")
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.post_data) if r.url.endswith("/compare") else None)
    expect(page.locator("#compare-add-current")).to_contain_text("sample 5 · predicted")
    expect(page.locator("#compare-class option")).to_have_count(3)
    page.click("#compare-add-top")
    page.click("#compare-add-current")  # within the debounce: one request for both
    grid_ready(page, 4)
    assert len(posts) == 1
    sent = json.loads(posts[0])
    top = api(site, "api/designer/0/predict", {"input": {"sample": 5}, "k": 3})["predictions"]
    assert sent["columns"] == [
        {"input": {"sample": 5}, "target": "class", "index": p["index"]} for p in top
    ] + [{"input": {"sample": 5}, "target": "predicted", "index": None}]
    assert [c["name"] for c in sent["configs"]] == ["config"]  # the active one, inline
    assert sent["configs"][0]["segments"][0]["rule"] == "unified"
    expect(page.locator("#compare-grid .column-head .target-name")).to_have_text(
        [p["name"] for p in top] + [top[0]["name"]]
    )
    page.click("#compare-add-current")  # a repeat: no new column, a note why
    expect(page.locator("#compare-note")).to_have_text("sample 5 · predicted: already a column")
    page.uncheck('#compare-rows input[data-name="config"]')
    expect(page.locator("#compare-status")).to_have_text("choose at least one configuration")
    expect(page.locator("#compare-grid td.cell")).to_have_count(0)
