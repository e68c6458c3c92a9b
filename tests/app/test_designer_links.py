"""Links between the Explorer and the Designer (issue 16 item 9), in a real Chromium: "Design"
on every gallery tile and the D key over a hovered point open the sample in the Designer;
the Designer's Explorer link opens the Explorer view of the sample's class; projects
without a buildable model get no such links."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from relscope.data.analysis_db import AnalysisDatabase
from support.browser import ensure_frontend, page_of, running_server
from support.projects import CLASSES, make_project_folder

expect = pytest.importorskip("playwright.sync_api").expect

MODEL = "support.designer_models:tiny_cnn"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    ensure_frontend()
    root = tmp_path_factory.mktemp("designer-links")
    with_model = make_project_folder(root / "p", model=MODEL)
    without = make_project_folder(root / "q")  # its model names no importable module
    with running_server([with_model, without]) as url:
        yield SimpleNamespace(url=url, analysis=with_model.parent / "analysis.h5")


@pytest.fixture
def page(browser, site):
    with page_of(browser, viewport={"width": 1400, "height": 900}, bypass_csp=True) as tab:
        yield tab


def category_index(site, name: str) -> np.ndarray:
    with AnalysisDatabase(site.analysis) as database:
        return np.asarray(database.category(name, "spray").index)


def open_explorer(page, site, fragment: str) -> None:
    page.goto(site.url + fragment)
    page.wait_for_function("document.querySelector('#plot').dataset.rendered > 0")


def point_inside(page) -> tuple[int, np.ndarray]:
    """A point drawn well inside the plot: its category position and page coordinates."""
    box = page.locator("#plot").bounding_box()
    flat = np.asarray(page.evaluate("relscope.screenPoints()"), dtype=np.float64)
    points = flat.reshape(-1, 2) + np.array([box["x"], box["y"]])
    inside = np.flatnonzero(
        (points[:, 0] > box["x"] + 15) & (points[:, 0] < box["x"] + box["width"] - 15)
        & (points[:, 1] > box["y"] + 15) & (points[:, 1] < box["y"] + box["height"] - 15)
    )  # fmt: skip
    return int(inside[0]), points[int(inside[0])]


def designer_shows_sample(page, sample: int) -> None:
    expect(page.locator("#sample-index")).to_have_value(str(sample))
    expect(page.locator("#predictions")).to_have_attribute("data-state", "ready")


def test_gallery_tiles_open_their_sample_in_the_designer(page, site):
    open_explorer(page, site, "#p=0&a=spray&c=00000002")
    page.click('#clusters li[data-cluster="1"]')
    expect(page.locator("#gallery")).to_have_attribute("data-state", "ready")
    tiles = page.locator("#gallery figure")
    expect(tiles.first).to_be_visible()
    count = tiles.count()
    assert count > 0
    for i in range(count):
        index = tiles.nth(i).get_attribute("data-index")
        link = tiles.nth(i).locator("a.open-designer")
        assert link.get_attribute("href") == f"designer.html#d=0&s={index}"
    chosen = int(tiles.nth(count - 1).get_attribute("data-index"))
    assert chosen in category_index(site, "00000002")
    tiles.nth(count - 1).locator("a.open-designer").click()
    designer_shows_sample(page, chosen)


def test_the_d_key_over_a_point_opens_its_sample(page, site):
    open_explorer(page, site, "#p=0&a=spray&c=00000001")
    position, where = point_inside(page)
    page.mouse.move(*where)
    hover = page.locator("#hover")
    expect(hover).to_be_visible()
    sample = int(category_index(site, "00000001")[position])
    expect(hover).to_have_attribute("data-sample", str(sample))
    expect(hover.locator(".designer-hint")).to_be_visible()
    page.keyboard.press("d")
    page.wait_for_url(f"**/designer.html#d=0&s={sample}*")
    designer_shows_sample(page, sample)


def test_the_designer_links_back_to_the_explorer_view_of_the_samples_class(page, site):
    sample = 7  # class 7 % 3 = 1
    page.goto(site.url + f"designer.html#d=0&s={sample}")
    designer_shows_sample(page, sample)
    link = page.locator("#explorer-link")
    expect(link).to_have_text(f"Explorer: {CLASSES[1]}")
    assert link.get_attribute("href") == "./#p=0&a=spray&c=00000001"
    link.click()
    page.wait_for_function("document.querySelector('#plot').dataset.rendered > 0")
    expect(page.locator("#category")).to_have_value("00000001")


def test_a_project_without_a_buildable_model_gets_no_designer_links(page, site):
    open_explorer(page, site, "#p=1&a=spray&c=00000000")
    page.click('#clusters li[data-cluster="0"]')
    expect(page.locator("#gallery")).to_have_attribute("data-state", "ready")
    expect(page.locator("#gallery figure").first).to_be_visible()
    assert page.locator("#gallery a.open-designer").count() == 0
    page.mouse.move(*point_inside(page)[1])
    expect(page.locator("#hover")).to_be_visible()
    expect(page.locator("#hover .designer-hint")).to_be_hidden()
    page.keyboard.press("d")
    assert "designer.html" not in page.url


def test_the_designer_keeps_to_the_content_security_policy(browser, site):
    """Without the CSP bypass: the Designer loads, explains, and every tab draws, with no
    script, style or image refused (only locator checks, which evaluate nothing)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: refused.append(str(error)))
    page.goto(site.url + "designer.html#d=0&s=2")
    expect(page.locator("#result")).to_have_attribute("data-state", "ready")
    expect(page.locator("#formula math")).to_have_count(1)
    page.click("#tab-button-compare")
    page.click("#compare-add-current")
    expect(page.locator("#compare-grid td.cell img")).to_have_count(1)
    page.click("#tab-button-flipping")
    expect(page.locator(".flip-brush")).to_have_attribute("data-state", "ready")
    page.click("#tab-button-neurons")
    expect(page.locator("#neuron-scatter-card")).to_have_attribute("data-state", "ready")
    expect(page.locator("#neuron-scatter circle.point").first).to_be_visible()
    context.close()
    assert not refused, refused
