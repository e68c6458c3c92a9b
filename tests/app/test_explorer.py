"""The Explorer in a real headless Chromium against the real server: one test per feature.

Every test drives the page as a user does (clicks, drags, the wheel, modifier keys, file
pickers, the history buttons) and checks what the page shows against values computed here
from the project files: counts, labels, pixels of the gallery and the canvas, the URL.
"""

from __future__ import annotations

import io
import json
import urllib.request
from types import SimpleNamespace
from urllib.parse import parse_qsl

import numpy as np
import pytest
from matplotlib.path import Path as PolygonPath
from PIL import Image

from relscope.analysis.scores import eigengap
from relscope.app.links import selection_code, view_fragment
from relscope.data.analysis_db import AnalysisDatabase
from relscope.data.attribution_db import AttributionSet
from relscope.data.dataset import HDF5Dataset
from relscope.render.colormaps import get_colormap
from support.browser import ensure_frontend, page_of, running_server
from support.projects import CLASSES, make_explorer_project
from support.virelay_project import make_virelay_project

expect = pytest.importorskip("playwright.sync_api").expect


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    ensure_frontend()
    root = tmp_path_factory.mktemp("explorer")
    main = make_explorer_project(root / "main")
    virelay = make_virelay_project(root / "virelay")
    with running_server([main, virelay]) as url:
        yield SimpleNamespace(url=url, root=root / "main", tmp=root)


@pytest.fixture
def page(browser, site):
    # The tests evaluate their own scripts in the page, which the server's Content-Security-
    # Policy forbids; test_the_page_keeps_to_the_content_security_policy runs without this.
    with page_of(
        browser, viewport={"width": 1400, "height": 900}, accept_downloads=True, bypass_csp=True
    ) as tab:
        yield tab


def open_view(page, site, fragment: str = "") -> None:
    page.goto(site.url + fragment)
    expect(page.locator("#plot")).not_to_have_attribute("data-rendered", "0")
    page.wait_for_function("document.querySelector('#plot').dataset.rendered > 0")
    expect(page.locator("#gallery")).to_have_attribute("data-state", "ready")


def url_shows(page, **wanted: str) -> None:
    """Wait until the URL fragment holds ``wanted`` (it is written once the view is shown,
    after the selection code is deflated, so it may trail what the page already shows)."""
    page.wait_for_function(
        "wanted => { const p = new URLSearchParams(location.hash.slice(1));"
        " return Object.entries(wanted)"
        ".every(([k, v]) => v === '*' ? p.has(k) : p.get(k) === v); }",
        arg=wanted,
    )


def paints(page) -> int:
    return int(page.get_attribute("#gallery", "data-paints") or 0)


def wait_painted(page, before: int) -> None:
    page.wait_for_function(
        "n => { const g = document.querySelector('#gallery');"
        " return Number(g.dataset.paints) > n && g.dataset.state === 'ready'; }",
        arg=before,
    )


def selection(page) -> list[int]:
    return page.evaluate("relscope.selection()")


def screen_points(page) -> np.ndarray:
    """Where every point is drawn, in page coordinates."""
    box = page.locator("#plot").bounding_box()
    flat = np.asarray(page.evaluate("relscope.screenPoints()"), dtype=np.float64)
    return flat.reshape(-1, 2) + np.array([box["x"], box["y"]])


def category(site, name: str, analysis: str = "spray-b"):
    path = site.root / ("analysis-b.h5" if analysis == "spray-b" else "analysis.h5")
    with AnalysisDatabase(path) as database:
        return database.category(name, analysis)


def choose(page, selector: str, value: str) -> None:
    page.select_option(selector, value)


def canvas_pixels(page, locator) -> np.ndarray:
    data = locator.evaluate(
        "c => ({w: c.width, h: c.height,"
        " d: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)})"
    )
    return np.asarray(data["d"], dtype=np.uint8).reshape(data["h"], data["w"], 4)


def fetch_png(site, path: str) -> np.ndarray:
    with urllib.request.urlopen(site.url + path) as answer:
        return np.asarray(Image.open(io.BytesIO(answer.read())).convert("RGB"))


def test_the_page_keeps_to_the_content_security_policy(browser, site):
    """Without the tests' CSP bypass: the Explorer loads, selects and paints overlays with
    no script, style or image refused (only locator checks, which evaluate nothing)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: refused.append(str(error)))
    page.goto(site.url)
    expect(page.locator("#plot")).to_have_attribute("data-rendered", "50")
    page.click('#clusters li[data-cluster="1"]')
    expect(page.locator("#gallery figure")).to_have_count(25)
    page.check('input[name="mode"][value="overlay"]')
    expect(page.locator("#gallery figure").first).to_have_attribute("data-mode", "overlay")
    page.locator("#gallery figure").first.hover()
    context.close()
    assert not refused, refused


# 1. Project tabs ---------------------------------------------------------------------------


def test_project_tabs_switch_and_keep_each_projects_state(page, site):
    open_view(page, site)
    tabs = page.locator("#tabs button")
    expect(tabs).to_have_text(["explorer", "Test Project"])
    expect(tabs.nth(0)).to_have_attribute("aria-selected", "true")
    page.click('#clusters li[data-cluster="1"]')
    expect(page.locator("#selection-count")).to_have_text("25")

    tabs.nth(1).click()
    expect(tabs.nth(1)).to_have_attribute("aria-selected", "true")
    expect(page.locator("#selection-count")).to_have_text("0")
    # The ViRelAy project's categories are WordNet ids, shown with their class names.
    expect(page.locator("#category option")).to_have_count(3)
    shown = page.locator("#category option").all_inner_texts()
    assert {text.split(" ")[0] for text in shown} == set(CLASSES)
    url_shows(page, p="1")

    tabs.nth(0).click()
    expect(page.locator("#selection-count")).to_have_text("25")
    url_shows(page, p="0", sel="*")


# 2. Analysis setup ---------------------------------------------------------------------------


def test_analysis_setup_lists_names_and_resets_dependent_choices(page, site):
    open_view(page, site)
    expect(page.locator("#analysis option")).to_have_text(["spray", "spray-b"])
    expect(page.locator("#category option")).to_have_text(
        [f"{name} ({k:08d})" for k, name in enumerate(CLASSES)]
    )
    page.click('#clusters li[data-cluster="0"]')
    expect(page.locator("#selection-count")).to_have_text("25")

    choose(page, "#analysis", "spray-b")
    # The best-ranked category (highest tau: dog) is chosen and the selection is reset.
    expect(page.locator("#category")).to_have_value("00000001")
    expect(page.locator("#selection-count")).to_have_text("0")
    expect(page.locator("#clustering")).to_have_value("kmeans-03")
    expect(page.locator("#dims")).to_be_hidden()

    choose(page, "#embedding", "spectral")
    expect(page.locator("#dims")).to_be_visible()
    expect(page.locator("#dim-y option")).to_have_count(5)
    choose(page, "#dim-y", "3")
    url_shows(page, d="0,3")
    found = category(site, "00000001")
    spectral = np.asarray(found.embeddings["spectral"].data)
    points = screen_points(page)
    # x follows dimension 0 and y (upwards) dimension 3, both linearly.
    assert np.corrcoef(points[:, 0], spectral[:, 0])[0, 1] > 0.99999
    assert np.corrcoef(points[:, 1], spectral[:, 3])[0, 1] < -0.99999


# 3. Category ranking -------------------------------------------------------------------------


def test_category_ranking_orders_by_tau_and_selects_on_click(page, site):
    open_view(page, site, "#a=spray-b")
    rows = page.locator("#ranking tbody tr")
    expect(rows).to_have_count(3)
    assert [rows.nth(i).get_attribute("data-category") for i in range(3)] == [
        "00000001",
        "00000002",
        "00000000",
    ]
    expect(rows.locator("td:nth-child(4)")).to_have_text(["1.500", "0.700", "0.200"])
    expect(rows.nth(0)).to_have_attribute("aria-selected", "true")
    rows.nth(2).click()
    expect(page.locator("#category")).to_have_value("00000000")
    expect(rows.nth(2)).to_have_attribute("aria-selected", "true")
    url_shows(page, c="00000000")


# 4. Embedding canvas -------------------------------------------------------------------------


def test_canvas_is_webgl_and_zooms_pans_and_previews_on_hover(page, site):
    open_view(page, site, "#a=spray-b")
    assert page.evaluate("!!document.querySelector('#embedding-canvas').getContext('webgl2')")
    assert page.evaluate("performance.getEntriesByName('relscope:first-render').length") == 1
    before = screen_points(page)
    box = page.locator("#plot").bounding_box()
    centre = np.array([box["x"] + box["width"] / 2 + 30, box["y"] + box["height"] / 2 - 20])
    page.mouse.move(*centre)
    page.mouse.wheel(0, -300)
    page.wait_for_function(
        "x => relscope.screenPoints()[0] !== x", arg=float(before[0, 0] - box["x"])
    )
    zoomed = screen_points(page)
    # Zooming scales every point's offset from the cursor by one factor above 1.
    factors = np.linalg.norm(zoomed - centre, axis=1) / np.linalg.norm(before - centre, axis=1)
    factor = float(np.median(factors))
    assert factor > 1.2
    np.testing.assert_allclose(zoomed, centre + factor * (before - centre), atol=0.5)

    page.mouse.move(*centre)
    page.mouse.down()
    page.mouse.move(centre[0] + 40, centre[1] + 25, steps=5)
    page.mouse.up()
    panned = screen_points(page)
    np.testing.assert_allclose(panned, zoomed + np.array([40, 25]), atol=0.5)
    assert selection(page) == []  # dragging with the pan tool selects nothing

    visible = np.flatnonzero(
        (panned[:, 0] > box["x"] + 20)
        & (panned[:, 0] < box["x"] + box["width"] - 20)
        & (panned[:, 1] > box["y"] + 20)
        & (panned[:, 1] < box["y"] + box["height"] - 20)
    )
    target = int(visible[0])
    page.mouse.move(*panned[target])
    hover = page.locator("#hover")
    expect(hover).to_be_visible()
    sample = int(category(site, "00000001").index[target])
    expect(hover).to_have_attribute("data-sample", str(sample))
    image = hover.locator("img")
    assert image.get_attribute("src").endswith(f"/samples/{sample}/image.png")
    page.wait_for_function("document.querySelector('#hover img').naturalWidth === 8")
    # The caption names the sample's true and predicted class and its cluster.
    attributions = AttributionSet(sorted(site.root.glob("attribution-*.h5")))
    predicted = CLASSES[int(np.argmax(attributions.get(sample).prediction))]
    attributions.close()
    cluster = int(category(site, "00000001").clusterings["kmeans-03"].labels[target])
    expect(hover.locator(".caption")).to_have_text(
        f"#{sample} {CLASSES[sample % 3]} → {predicted} · cluster {cluster}"
    )


def _far_from_edges(points: np.ndarray, polygon: np.ndarray, distance: float) -> np.ndarray:
    """Points further than ``distance`` from every edge of the closed polygon."""
    near = np.zeros(len(points), dtype=bool)
    for a, b in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
        edge = b - a
        t = np.clip(((points - a) @ edge) / max(edge @ edge, 1e-12), 0.0, 1.0)
        near |= np.linalg.norm(points - (a + t[:, None] * edge), axis=1) < distance
    return ~near


def test_box_and_lasso_select_with_add_and_remove_modifiers(page, site):
    open_view(page, site, "#a=spray-b")
    points = screen_points(page)
    box = page.locator("#plot").bounding_box()
    x0, y0 = box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.15
    x1, y1 = box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.7

    def drag(path, modifier=None):
        if modifier:
            page.keyboard.down(modifier)
        page.mouse.move(*path[0])
        page.mouse.down()
        for x, y in path[1:]:
            page.mouse.move(x, y, steps=4)
        page.mouse.up()
        if modifier:
            page.keyboard.up(modifier)

    def inside_box(a, b, c, d):
        x, y = points[:, 0], points[:, 1]
        return set(np.flatnonzero((x >= a) & (x <= c) & (y >= b) & (y <= d)).tolist())

    page.click("#tool-box")
    expect(page.locator("#tool-box")).to_have_attribute("aria-pressed", "true")
    drag([(x0, y0), (x1, y1)])
    first = inside_box(x0, y0, x1, y1)
    assert 0 < len(first) < 50
    expect(page.locator("#selection-count")).to_have_text(str(len(first)))
    assert selection(page) == sorted(first)

    x2 = box["x"] + box["width"] * 0.95
    drag([(x1, y0), (x2, y1)], "Shift")
    union = first | inside_box(x1, y0, x2, y1)
    expect(page.locator("#selection-count")).to_have_text(str(len(union)))
    assert selection(page) == sorted(union)

    drag([(x0, y0), (x1, y1)], "Alt")
    remaining = union - first
    expect(page.locator("#selection-count")).to_have_text(str(len(remaining)))
    assert selection(page) == sorted(remaining)

    page.click("#tool-lasso")
    polygon = np.array(
        [
            [box["x"] + box["width"] * f, box["y"] + box["height"] * g]
            for f, g in [(0.1, 0.1), (0.9, 0.2), (0.5, 0.45), (0.85, 0.9), (0.15, 0.8)]
        ]
    )
    drag([tuple(p) for p in polygon])
    selected = set(selection(page))
    expected = set(np.flatnonzero(PolygonPath(polygon).contains_points(points)).tolist())
    # Points on the lasso's edge may fall either way (the mouse path is in whole pixels).
    clear = set(np.flatnonzero(_far_from_edges(points, polygon, 1.5)).tolist())
    assert selected & clear == expected & clear
    assert 5 < len(selected) < 50
    expect(page.locator("#selection-count")).to_have_text(str(len(selected)))


def test_selected_points_are_drawn_saturated_and_the_rest_faded(page, site):
    open_view(page, site, "#a=spray-b")
    page.click('#clusters li[data-cluster="1"]')
    expect(page.locator("#selection-count")).to_have_text("17")
    labels = np.asarray(category(site, "00000001").clusterings["kmeans-03"].labels)
    points = screen_points(page)
    distances = np.linalg.norm(points[:, None] - points[None], axis=2) + np.eye(len(points)) * 1e9
    isolated = distances.min(axis=1) > 12
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB"), dtype=np.int64)

    def pixel(i):
        x, y = np.round(points[i]).astype(int)
        return shot[y, x]

    orange = np.array([0xFF, 0x7F, 0x0E])  # cluster 1's colour
    blue = np.array([0x1F, 0x77, 0xB4])  # cluster 0's colour, faded when not selected
    gray = blue @ [0.299, 0.587, 0.114]
    faded = 0.35 * (0.75 * gray + 0.25 * blue) + 0.65 * 255
    chosen = [i for i in np.flatnonzero(isolated & (labels == 1))]
    others = [i for i in np.flatnonzero(isolated & (labels == 0))]
    assert chosen and others
    for i in chosen:
        assert np.abs(pixel(i) - orange).max() <= 3, pixel(i)
    for i in others:
        assert np.abs(pixel(i) - faded).max() <= 6, (pixel(i), faded)


# 5. Eigenvalue plot --------------------------------------------------------------------------


@pytest.mark.parametrize(("analysis", "name"), [("spray-b", "00000001"), ("spray", "00000000")])
def test_eigenvalue_plot_marks_the_eigengap(page, site, analysis, name):
    open_view(page, site, f"#a={analysis}&c={name}")
    values = category(site, name, analysis).embeddings["spectral"].eigenvalue
    _, k = eigengap(np.asarray(values))
    plot = page.locator("#eigen")
    expect(plot).to_have_attribute("data-eigengap", str(k))
    expect(plot.locator("circle")).to_have_count(len(values))
    expect(plot.locator("line.eigengap")).to_have_count(1)
    expect(plot).to_contain_text(f"eigengap: k = {k}")


# 6. Cluster list -----------------------------------------------------------------------------


def test_cluster_list_shows_sizes_and_selects_clusters(page, site):
    open_view(page, site, "#a=spray-b")
    labels = np.asarray(category(site, "00000001").clusterings["kmeans-03"].labels)
    values, counts = np.unique(labels, return_counts=True)
    items = page.locator("#clusters li")
    expect(items).to_have_count(len(values))
    expect(items.locator(".size")).to_have_text([str(c) for c in counts])
    assert items.nth(1).locator(".swatch").evaluate("s => getComputedStyle(s).backgroundColor") == (
        "rgb(255, 127, 14)"
    )
    items.nth(2).click()
    expect(page.locator("#selection-count")).to_have_text(str(counts[2]))
    assert selection(page) == np.flatnonzero(labels == 2).tolist()
    items.nth(0).click(modifiers=["Shift"])
    assert selection(page) == np.flatnonzero(labels != 1).tolist()
    items.nth(2).click(modifiers=["Alt"])
    expect(page.locator("#selection-count")).to_have_text(str(counts[0]))
    assert selection(page) == np.flatnonzero(labels == 0).tolist()


# 7. Gallery ----------------------------------------------------------------------------------


def _select_whole_category(page):
    page.click('#clusters li[data-cluster="0"]')
    page.click('#clusters li[data-cluster="1"]', modifiers=["Shift"])
    expect(page.locator("#selection-count")).to_have_text("50")
    expect(page.locator("#gallery-status")).to_have_text("Samples 1–48 of 50")
    expect(page.locator("#gallery")).to_have_attribute("data-state", "ready")


def test_gallery_pages_and_shows_true_and_predicted_labels(page, site):
    open_view(page, site)
    _select_whole_category(page)
    tiles = page.locator("#gallery figure")
    expect(tiles).to_have_count(48)
    expect(page.locator("#page-info")).to_have_text("1 / 2")
    found = category(site, "00000000", "spray")
    order = np.asarray(found.index)  # selection order is category position order
    shown = [int(i) for i in tiles.evaluate_all("fs => fs.map(f => f.dataset.index)")]
    assert shown == order[:48].tolist()
    attributions = AttributionSet(sorted(site.root.glob("attribution-*.h5")))
    for position in (0, 7, 47):
        index = shown[position]
        tile = tiles.nth(position)
        expect(tile.locator(".true-label")).to_have_text(CLASSES[index % 3])
        predicted = int(np.argmax(attributions.get(index).prediction))
        expect(tile.locator(".predicted-label")).to_have_text(f"→ {CLASSES[predicted]}")
        wrong = "wrong" in (tile.locator(".predicted-label").get_attribute("class") or "")
        assert wrong == (predicted != index % 3)
    attributions.close()
    page.click("#next")
    expect(page.locator("#gallery-status")).to_have_text("Samples 49–50 of 50")
    expect(tiles).to_have_count(2)
    expect(page.locator("#page-info")).to_have_text("2 / 2")
    url_shows(page, pg="1")
    choose(page, "#page-size", "96")
    expect(page.locator("#gallery-status")).to_have_text("Samples 1–50 of 50")
    expect(tiles).to_have_count(50)


def test_gallery_modes_colour_maps_and_sampling_show_the_right_pixels(page, site):
    open_view(page, site)
    _select_whole_category(page)
    tile = page.locator("#gallery figure").nth(3)
    index = int(tile.get_attribute("data-index"))
    base = f"api/projects/0/samples/{index}"

    dataset = HDF5Dataset(site.root / "dataset.h5")
    expected_input = np.rint(np.moveaxis(np.asarray(dataset.sample(index).data), 0, -1) * 255)
    dataset.close()
    shown = canvas_pixels(page, tile.locator("canvas"))[..., :3]
    np.testing.assert_array_equal(shown, expected_input)
    expect(tile).to_have_attribute("data-sampling", "pixelated")  # 8 x 8 shown at ~100 px

    heatmap_requests: list[str] = []
    page.on("request", lambda r: heatmap_requests.append(r.url) if "heatmap" in r.url else None)
    before = paints(page)
    page.check('input[name="mode"][value="attribution"]')
    wait_painted(page, before)
    expect(tile).to_have_attribute("data-mode", "attribution")
    pixels = canvas_pixels(page, tile.locator("canvas"))[..., :3]
    np.testing.assert_array_equal(pixels, fetch_png(site, f"{base}/heatmap.png?cmap=bwr"))
    fetched = len(heatmap_requests)
    assert fetched == 48  # once per tile

    before = paints(page)
    choose(page, "#cmap", "coldnhot")
    wait_painted(page, before)
    pixels = canvas_pixels(page, tile.locator("canvas"))[..., :3]
    np.testing.assert_array_equal(pixels, fetch_png(site, f"{base}/heatmap.png?cmap=coldnhot"))
    bar = canvas_pixels(page, page.locator("#colourbar"))[0, :, :3]
    np.testing.assert_array_equal(bar, get_colormap("coldnhot").palette)
    url_shows(page, cm="coldnhot")

    before = paints(page)
    page.check('input[name="mode"][value="overlay"]')
    wait_painted(page, before)
    pixels = canvas_pixels(page, tile.locator("canvas"))[..., :3].astype(np.int64)
    server = fetch_png(site, f"{base}/overlay.png?cmap=coldnhot").astype(np.int64)
    assert np.abs(pixels - server).max() <= 3
    # Recolouring and overlays reuse the heatmaps fetched once (the test's own fetches are
    # outside the browser).
    assert len(heatmap_requests) == fetched

    samplings = [("smooth", "smooth"), ("pixelated", "pixelated"), ("auto", "pixelated")]
    for sampling, shown in samplings:
        before = paints(page)
        choose(page, "#sampling", sampling)
        wait_painted(page, before)
        expect(tile).to_have_attribute("data-sampling", shown)
        rendering = tile.locator("canvas").evaluate("c => getComputedStyle(c).imageRendering")
        assert rendering == ("pixelated" if shown == "pixelated" else "auto")


# 8. State: export/import, share URL, history ------------------------------------------------


def _set_up_view(page):
    choose(page, "#analysis", "spray-b")
    expect(page.locator("#category")).to_have_value("00000001")
    page.click('#clusters li[data-cluster="2"]')
    expect(page.locator("#selection-count")).to_have_text("16")
    before = paints(page)
    page.check('input[name="mode"][value="overlay"]')
    wait_painted(page, before)
    choose(page, "#cmap", "france")
    url_shows(page, cm="france")


def test_export_and_import_restore_the_whole_view(page, browser, site):
    open_view(page, site)
    _set_up_view(page)
    url = page.url
    with page.expect_download() as download:
        page.click("#export")
    path = download.value.path()
    view = json.loads(path.read_text())
    labels = np.asarray(category(site, "00000001").clusterings["kmeans-03"].labels)
    positions = np.flatnonzero(labels == 2)
    assert view["relscope_view"] == 1
    assert view["project"] == {"id": 0, "name": "explorer"}
    assert (view["analysis"], view["category"], view["embedding"], view["clustering"]) == (
        "spray-b",
        "00000001",
        "tsne",
        "kmeans-03",
    )
    assert (view["mode"], view["cmap"], view["dims"]) == ("overlay", "france", [0, 1])
    assert view["selection"]["positions"] == positions.tolist()
    index = np.asarray(category(site, "00000001").index)
    assert view["selection"]["samples"] == index[positions].tolist()

    fresh = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True).new_page()
    open_view(fresh, site)
    assert fresh.locator("#selection-count").inner_text() == "0"
    fresh.set_input_files("#import", path)
    expect(fresh.locator("#selection-count")).to_have_text("16")
    fresh.wait_for_function("u => location.href === u", arg=url)
    expect(fresh.locator("#category")).to_have_value("00000001")
    expect(fresh.locator("#cmap")).to_have_value("france")
    assert fresh.is_checked('input[name="mode"][value="overlay"]')

    bad = site.tmp / "bad.json"
    bad.write_text(json.dumps({"hello": 1}))
    fresh.set_input_files("#import", str(bad))
    expect(fresh.locator("#message")).to_contain_text("not a relscope view file")
    expect(fresh.locator("#selection-count")).to_have_text("16")
    fresh.context.close()


def test_share_url_restores_the_view_in_a_new_browser(page, browser, site):
    open_view(page, site)
    _set_up_view(page)
    page.click("#share")
    expect(page.locator("#share-url")).not_to_have_value("")
    link = page.locator("#share-url").input_value()
    assert link.startswith(site.url) and "sel=" in link
    wanted = selection(page)

    other = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True).new_page()
    open_view(other, site, link[len(site.url) :])
    expect(other.locator("#selection-count")).to_have_text("16")
    assert selection(other) == wanted
    expect(other.locator("#analysis")).to_have_value("spray-b")
    expect(other.locator("#cmap")).to_have_value("france")
    assert other.is_checked('input[name="mode"][value="overlay"]')
    expect(other.locator("#gallery figure")).to_have_count(16)
    other.context.close()


def test_share_url_of_a_whole_category_stays_compact(page, site):
    open_view(page, site)
    _select_whole_category(page)
    page.click("#share")
    expect(page.locator("#share-url")).not_to_have_value("")
    link = page.locator("#share-url").input_value()
    code = dict(parse_qsl(link.split("#", 1)[1]))["sel"]
    assert len(code) < 20, code


def test_bad_link_falls_back_to_the_default_view_with_a_message(page, site):
    open_view(page, site, "#m=bogus")
    expect(page.locator("#message")).to_contain_text("mode must be one of")
    expect(page.locator("#category")).to_have_value("00000000")
    open_view(page, site, "#a=nope")
    expect(page.locator("#message")).to_contain_text("no analysis nope")
    expect(page.locator("#analysis")).to_have_value("spray")


def test_back_and_forward_walk_through_the_views(page, site):
    open_view(page, site)
    page.locator("#ranking tbody tr").nth(2).click()
    # The history entry is written once the view is shown (the selection code is deflated
    # asynchronously), so each step waits for its URL.
    url_shows(page, c="00000002")
    page.click('#clusters li[data-cluster="1"]')
    url_shows(page, sel="*")
    expect(page.locator("#selection-count")).to_have_text("25")

    page.go_back()
    expect(page.locator("#selection-count")).to_have_text("0")
    expect(page.locator("#category")).to_have_value("00000002")
    page.go_back()
    expect(page.locator("#category")).to_have_value("00000000")
    page.go_forward()
    expect(page.locator("#category")).to_have_value("00000002")
    page.go_forward()
    expect(page.locator("#selection-count")).to_have_text("25")
    expect(page.locator("#gallery figure")).to_have_count(25)


# ViRelAy-format project ----------------------------------------------------------------------


def test_virelay_project_is_explored_like_a_relscope_one(page, site):
    open_view(page, site, "#p=1")
    expect(page.locator("#tabs button").nth(1)).to_have_attribute("aria-selected", "true")
    names = page.locator("#ranking tbody td:nth-child(2)").all_inner_texts()
    assert {name.split(" ")[0] for name in names} == set(CLASSES)
    page.locator("#clusters li").first.click()
    count = int(page.locator("#clusters li .size").first.inner_text())
    expect(page.locator("#selection-count")).to_have_text(str(count))
    expect(page.locator("#gallery figure")).to_have_count(min(count, 48))
    label = page.locator("#gallery .true-label").first.inner_text()
    assert label in CLASSES


@pytest.mark.parametrize("dense", [False, True])
def test_a_link_written_in_python_opens_its_view_and_selection(page, site, dense):
    labels = np.asarray(category(site, "00000001").clusterings["kmeans-03"].labels)
    positions = np.flatnonzero(labels != 1 if dense else labels == 1)
    link = view_fragment(
        "spray-b", "00000001", clustering="kmeans-03", selection=positions, size=len(labels),
        mode="attribution",
    )  # fmt: skip
    # Both encodings are read by the page.
    code = selection_code(positions, len(labels), kind="b" if dense else "d")
    link = link.replace(dict(parse_qsl(link[1:]))["sel"], code)
    open_view(page, site, link)
    expect(page.locator("#selection-count")).to_have_text(str(len(positions)))
    assert selection(page) == positions.tolist()
    assert page.is_checked('input[name="mode"][value="attribution"]')


def _large_project(root, n: int):
    """One category of ``n`` points (tiny images, no attributions)."""
    from relscope.data.analysis_db import AnalysisWriter, CategoryAnalysis, Clustering, Embedding
    from relscope.data.dataset import write_hdf5_dataset
    from relscope.data.labels import LabelMap, save_label_map
    from relscope.data.project import AnalysisSpec, DatasetSpec, Project, save_project

    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    dataset = write_hdf5_dataset(
        root / "d.h5", rng.random((n, 1, 2, 2), dtype=np.float32), np.zeros(n, np.int64)
    )
    labels = save_label_map(LabelMap.from_names(["only"]), root / "labels.json")
    with AnalysisWriter(root / "a.h5", "spray") as writer:
        writer.write(
            CategoryAnalysis(
                name="00000000",
                index=np.arange(n),
                embeddings={"tsne": Embedding("tsne", rng.normal(size=(n, 2)))},
                clusterings={"kmeans-02": Clustering("kmeans-02", np.arange(n) % 2, k=2)},
                scores={"tau": 1.0},
                attrs={"label_index": 0},
            )
        )
    project = Project(
        name="large", model="m", label_map=labels,
        dataset=DatasetSpec("tiny", "hdf5", dataset, 2, 2), attributions=None,
        analyses=[AnalysisSpec("spray", [root / "a.h5"])],
    )  # fmt: skip
    return save_project(project, root / "project.yaml")


def test_a_slow_renderer_draws_a_subset_while_zooming_then_every_point(browser, site):
    """Software WebGL needs ~0.1 s per frame of 60 000 points: during a gesture a fixed
    random subset is drawn, and all points again once the gesture ends."""
    project = _large_project(site.tmp / "large", 60000)
    with running_server([project]) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
        page = context.new_page()
        page.goto(url)
        page.wait_for_function("document.querySelector('#plot').dataset.rendered === '60000'")
        plot = page.locator("#plot")
        expect(plot).to_have_attribute("data-subset", "false")
        seen = page.evaluate(
            """async () => {
              const target = document.querySelector('#plot .embedding-overlay');
              const box = target.getBoundingClientRect();
              const seen = [];
              for (let i = 0; i < 30; i++) {
                target.dispatchEvent(new WheelEvent('wheel', {deltaY: -5, bubbles: true,
                  clientX: box.x + box.width / 2, clientY: box.y + box.height / 2}));
                await new Promise(r => requestAnimationFrame(r));
                seen.push(document.querySelector('#plot').dataset.subset);
              }
              return seen;
            }"""
        )
        assert seen[0] == "false" and "true" in seen, seen
        expect(plot).to_have_attribute("data-subset", "false")  # after the gesture
        page.context.close()


def test_keys_pick_tools_fit_and_clear_the_selection(page, site):
    open_view(page, site, "#a=spray-b")
    fitted = screen_points(page)
    page.keyboard.press("l")
    expect(page.locator("#tool-lasso")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#tool-pan")).to_have_attribute("aria-pressed", "false")
    page.keyboard.press("b")
    expect(page.locator("#tool-box")).to_have_attribute("aria-pressed", "true")
    box = page.locator("#plot").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -400)
    page.wait_for_function(
        "x => relscope.screenPoints()[0] !== x", arg=float(fitted[0, 0] - box["x"])
    )
    page.keyboard.press("f")
    page.wait_for_function(
        "x => relscope.screenPoints()[0] === x", arg=float(fitted[0, 0] - box["x"])
    )
    page.click('#clusters li[data-cluster="0"]')
    expect(page.locator("#selection-count")).to_have_text("17")
    page.keyboard.press("Escape")
    expect(page.locator("#selection-count")).to_have_text("0")
    # Keys typed into a field are left to the field.
    page.focus("#analysis")
    page.keyboard.press("l")
    expect(page.locator("#tool-box")).to_have_attribute("aria-pressed", "true")
