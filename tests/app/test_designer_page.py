"""The Designer page in a real headless Chromium against the real server (issue 16 items
1-5, the URL state of item 9 and the request handling of item 10): one test per feature,
driving the page as a person does and checking what it shows against the HTTP API."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from support.browser import call_api, ensure_frontend, page_of, running_server
from support.projects import make_project_folder

expect = pytest.importorskip("playwright.sync_api").expect

MODEL = "support.designer_models:tiny_cnn"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    ensure_frontend()
    root = tmp_path_factory.mktemp("designer-page")
    project = make_project_folder(root / "p", model=MODEL)
    with running_server([project]) as url:
        found = SimpleNamespace(url=url, folder=project.parent)
        # Build the model and trace an engine once, so that no test waits for it.
        api(found, "api/designer/0/explain", {"input": {"sample": 0}, "config": "epsilon"})
        yield found


@pytest.fixture
def page(browser, site):
    with page_of(browser, viewport={"width": 1400, "height": 1000}) as tab:
        yield tab


def api(site, path, body=None, method=None):
    return call_api(site.url, path, body, method)


def renders(page) -> int:
    return int(page.get_attribute("#heatmaps", "data-renders") or 0)


def open_designer(page, site, fragment="") -> None:
    page.goto(site.url + "designer.html" + fragment)
    expect(page.locator("#result")).to_have_attribute("data-state", "ready")
    expect(page.locator("#predictions li")).to_have_count(3)


def wait_rendered(page, before: int) -> None:
    page.wait_for_function(
        "n => Number(document.querySelector('#heatmaps').dataset.renders) > n"
        " && document.querySelector('#result').dataset.state === 'ready'",
        arg=before,
    )


def fragment(page) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(page.evaluate("location.hash").lstrip("#")))


def segment_labels(page) -> list[str]:
    return page.locator("#ruler .band").evaluate_all("bs => bs.map(b => b.dataset.rule)")


def bars(page, name: str) -> list[tuple[str, float]]:
    parts = page.locator(f'#configs li[data-name="{name}"] .part').evaluate_all(
        "ps => ps.map(p => [p.dataset.rule, Number(p.style.flexGrow)])"
    )
    return [(rule, float(width)) for rule, width in parts]


def test_model_manager_creates_renames_saves_duplicates_and_deletes(page, site):
    open_designer(page, site)
    page.click("#config-new")
    expect(page.locator('#configs li[aria-current="true"]')).to_have_attribute(
        "data-name", "config-2"
    )
    page.fill("#config-name", "mine")
    page.press("#config-name", "Enter")
    active = page.locator('#configs li[aria-current="true"]')
    expect(active).to_have_attribute("data-name", "mine")
    expect(active).to_have_attribute("data-flags", "unsaved")
    assert bars(page, "mine") == [("epsilon", 9.0)]
    page.click("#config-save")
    expect(active).to_have_attribute("data-flags", "saved")
    saved = api(site, "api/designer/0/designs/mine")
    assert saved["segments"] == [
        {"start": 0, "stop": None, "rule": "unified", "params": saved["segments"][0]["params"]}
    ]
    assert (site.folder / "designs" / "mine.json").is_file()
    expect(page.locator("#command code")).to_contain_text("--method designs/mine.json")
    page.click("#config-duplicate")
    expect(page.locator('#configs li[aria-current="true"]')).to_have_attribute(
        "data-name", "mine-copy"
    )
    # Split the copy on the ruler: its bar shows two parts over 3 and 6 layers.
    page.locator('#ruler .layer[data-layer="3"]').focus()
    page.keyboard.press("s")
    page.locator('#ruler .band[data-segment="0"]').click()
    page.locator('#rule-panel [data-preset="gamma"]').click()
    expect(page.locator('#configs li[data-name="mine-copy"] .part')).to_have_count(2)
    assert bars(page, "mine-copy") == [("gamma", 3.0), ("epsilon", 6.0)]
    page.click('#configs li[data-name="mine"]')
    page.click("#config-delete")
    expect(page.locator('#configs li[data-name="mine"]')).to_have_count(0)
    assert "mine" not in api(site, "api/designer/0/designs")
    # Download and upload as JSON.
    page.click('#configs li[data-name="mine-copy"]')
    with page.expect_download() as caught:
        page.click("#config-download")
    downloaded = json.loads(Path(caught.value.path()).read_text())
    assert [s["rule"] for s in downloaded["segments"]] == ["unified", "unified"]
    page.set_input_files(
        "#config-upload",
        files=[{"name": "x.json", "mimeType": "application/json",
                "buffer": json.dumps(downloaded).encode()}],
    )  # fmt: skip
    expect(page.locator('#configs li[aria-current="true"]')).to_have_attribute(
        "data-name", "mine-copy-2"
    )
    assert bars(page, "mine-copy-2") == bars(page, "mine-copy")


def test_sample_and_prediction_bars_match_predict(page, site):
    open_designer(page, site)
    page.fill("#sample-index", "7")
    page.press("#sample-index", "Enter")
    expected = api(site, "api/designer/0/predict", {"input": {"sample": 7}, "k": 10})
    names = [p["name"] for p in expected["predictions"]]
    expect(page.locator("#predictions .class-name")).to_have_text(names)
    expect(page.locator("#input-image")).to_have_attribute(
        "src", "api/designer/0/samples/7/image.png"
    )
    page.fill("#sample-index", "99")  # bounded by the sample count (36)
    page.press("#sample-index", "Enter")
    expect(page.locator("#sample-index")).to_have_value("35")
    before = renders(page)
    chosen = expected["predictions"][2]
    page.fill("#sample-index", "7")
    page.press("#sample-index", "Enter")
    page.locator(f'#predictions li[data-class="{chosen["index"]}"] button').click()
    wait_rendered(page, before)
    expect(page.locator("#explained")).to_contain_text(f"class {chosen['index']}")
    expect(page.locator(f'#predictions li[data-class="{chosen["index"]}"]')).to_have_attribute(
        "aria-selected", "true"
    )
    assert fragment(page)["t"] == "class" and fragment(page)["k"] == str(chosen["index"])


def test_ruler_drag_and_keys_split_move_and_merge(page, site):
    open_designer(page, site)
    kinds = page.locator("#ruler .layer").evaluate_all("ls => ls.map(l => l.dataset.kind)")
    assert kinds == ["conv", "relu", "conv", "relu", "pool", "flat", "dense", "relu", "dense"]
    expect(page.locator("#segment-count")).to_have_text("9 layers · 1 segment")
    # Drag from the gap before layer 2 to the one before layer 5: a split, then a move.
    track = page.locator("#ruler .layers").bounding_box()
    step = track["width"] / 9
    y = track["y"] + track["height"] / 2
    page.mouse.move(track["x"] + 2 * step, y)
    page.mouse.down()
    page.mouse.move(track["x"] + 3.6 * step, y, steps=4)
    page.mouse.move(track["x"] + 5.1 * step, y, steps=4)
    page.mouse.up()
    expect(page.locator("#segment-count")).to_have_text("9 layers · 2 segments")
    boundary = page.locator('#ruler .gap.boundary[data-boundary="0"]')
    expect(boundary).to_have_attribute("aria-valuenow", "5")
    boundary.focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect(page.locator('#ruler .gap.boundary[data-boundary="0"]')).to_have_attribute(
        "aria-valuenow", "3"
    )
    page.locator('#ruler .layer[data-layer="7"]').focus()
    page.keyboard.press("s")
    expect(page.locator("#segment-count")).to_have_text("9 layers · 3 segments")
    widths = page.locator("#ruler .band").evaluate_all("bs => bs.map(b => b.style.gridColumn)")
    assert widths == ["1 / 4", "4 / 8", "8 / 10"]
    page.locator('#ruler .gap.boundary[data-boundary="0"]').focus()
    page.keyboard.press("Delete")
    expect(page.locator("#segment-count")).to_have_text("9 layers · 2 segments")
    widths = page.locator("#ruler .band").evaluate_all("bs => bs.map(b => b.style.gridColumn)")
    assert widths == ["1 / 8", "8 / 10"]


def decode(uri: str) -> bytes:
    return base64.b64decode(uri.split(",", 1)[1])


def test_preset_and_slider_give_the_formula_and_the_api_heatmap(page, site):
    open_designer(page, site)
    before = renders(page)
    page.locator('#rule-panel [data-preset="alpha_beta"]').click()
    wait_rendered(page, before)
    formula = page.locator("#formula")
    expect(formula.locator('mn[data-param="alpha"]')).to_have_text("2")
    expect(formula.locator('mn[data-param="beta"]')).to_have_text("1")
    assert page.locator("#formula math").count() == 1
    before = renders(page)
    slider = page.locator('#rule-panel input[type="range"][data-param="alpha"]')
    slider.fill("3")
    expect(page.locator('#rule-panel input[type="number"][data-param="alpha"]')).to_have_value("3")
    expect(formula.locator('mn[data-param="alpha"]')).to_have_text("3")
    wait_rendered(page, before)
    shown = page.locator('#heatmaps figure[data-boundary="input"] img').get_attribute("src")
    presets = api(site, "api/designer/rules")["unified"]["presets"]
    config = {"name": "config", "segments": [{"start": 0, "stop": None, "rule": "unified",
              "params": presets["alpha_beta"] | {"alpha": 3.0}}]}  # fmt: skip
    answer = api(site, "api/designer/0/explain", {"input": {"sample": 0}, "config": config})
    assert decode(shown) == decode(answer["heatmap"])
    assert fragment(page).get("u")  # an unsaved configuration travels whole


def test_heatmaps_are_linked_by_a_crosshair_and_sums_have_a_point_per_layer(page, site):
    open_designer(page, site)
    page.locator('#ruler .layer[data-layer="2"]').focus()
    before = renders(page)
    page.keyboard.press("s")
    wait_rendered(page, before)
    figures = page.locator("#heatmaps figure")
    expect(figures).to_have_count(2)
    source = figures.nth(0).locator(".frame")
    box = source.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.75)
    other = figures.nth(1).locator(".frame")
    expect(other).to_have_attribute("data-cross", "0.250,0.750")
    expect(other.locator(".cross-v")).to_be_visible()
    expect(source.locator(".cross-v")).to_be_hidden()
    points = page.locator("#sums circle.point")
    expect(points).to_have_count(9)
    sums = points.evaluate_all("cs => cs.map(c => Number(c.dataset.sum))")
    answer = api(site, "api/designer/0/explain", {"input": {"sample": 0}, "config": page.evaluate(
        "designer.state.configJson")})  # fmt: skip
    assert sums == pytest.approx([s["sum"] for s in answer["sums"]])


def test_a_configuration_that_breaks_down_shows_a_warning_naming_the_layer(page, site):
    open_designer(page, site)
    before = renders(page)
    field = page.locator('#rule-panel input[type="number"][data-param="alpha"]')
    field.fill("1e15")
    field.press("Enter")
    wait_rendered(page, before)
    expect(page.locator("#warnings li")).to_have_count(1)
    expect(page.locator("#warnings li")).to_contain_text("NaN or infinite at layer '2")
    expect(page.locator("#heatmaps .no-map").first).to_be_visible()
    expect(page.locator("#sums circle.point.bad").first).to_be_attached()


def test_the_url_restores_the_view_and_back_forward_work(page, site):
    shared = {"name": "shared", "segments": [
        {"start": 0, "stop": 1, "rule": "zbox", "params": {"low": 0, "high": 1}},
        {"start": 1, "stop": None, "rule": "gamma", "params": {"gamma": 0.25}}]}  # fmt: skip
    api(site, "api/designer/0/designs/shared", shared, "PUT")
    open_designer(page, site, "#d=0&c=shared&s=4&t=class&k=2")
    expect(page.locator('#configs li[aria-current="true"]')).to_have_attribute(
        "data-name", "shared"
    )
    expect(page.locator("#sample-index")).to_have_value("4")
    expect(page.locator("#explained")).to_contain_text("class 2")
    assert segment_labels(page) == ["zbox", "gamma"]
    expect(page.locator("#command code")).to_contain_text("--method designs/shared.json")
    page.fill("#sample-index", "9")
    page.press("#sample-index", "Enter")
    page.wait_for_function("location.hash.includes('s=9')")
    page.click("#tab-button-compare")
    expect(page.locator("#tab-compare")).to_be_visible()
    page.go_back()
    expect(page.locator("#tab-design")).to_be_visible()
    page.go_back()
    expect(page.locator("#sample-index")).to_have_value("4")
    page.go_forward()
    expect(page.locator("#sample-index")).to_have_value("9")
    # An edited configuration travels whole in the URL and comes back on reload.
    before = renders(page)
    page.locator('#ruler .band[data-segment="1"]').click()
    page.locator('#rule-panel [data-preset="flat"]').click()
    wait_rendered(page, before)
    page.wait_for_function("location.hash.includes('u=')")
    page.reload()
    expect(page.locator("#result")).to_have_attribute("data-state", "ready")
    assert segment_labels(page) == ["zbox", "flat"]
    expect(page.locator('#configs li[aria-current="true"]')).to_have_attribute(
        "data-flags", "modified"
    )


def test_superseded_requests_are_cancelled_and_repeats_come_from_the_cache(page, site):
    open_designer(page, site)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.url.endswith("/explain") else None)
    heads = []
    page.on("request", lambda r: heads.append(r.headers.get("x-designer-session")))
    slider = page.locator('#rule-panel input[type="range"][data-param="eps"]')
    before = renders(page)
    for value in ("0.1", "0.2", "0.3", "0.4"):
        slider.fill(value)  # within the 150 ms debounce: one request
    wait_rendered(page, before)
    assert len(posts) == 1 and heads[0]
    before = renders(page)
    slider.fill("0.1")
    wait_rendered(page, before)
    before = renders(page)
    slider.fill("0.4")  # asked before: from the cache
    wait_rendered(page, before)
    assert len(posts) == 2
    expect(page.locator("#message")).to_be_hidden()
