"""The Designer's Neuron ablation tab (issue 16 item 8) in a real headless Chromium against
the real server: the scatter of a layer's channels, its link to the channel x position
matrix, box and click selection with the channels' maps, and ablation, each checked against
the HTTP API's answers (``neurons``, ``neurons/maps``, ``ablate``, ``explain``)."""

from __future__ import annotations

import base64
import io
import json
import re
from types import SimpleNamespace

import numpy as np
import pytest

from support.browser import call_api, ensure_frontend, page_of, running_server
from support.projects import make_project_folder

expect = pytest.importorskip("playwright.sync_api").expect

MODEL = "support.designer_models:tiny_cnn"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    ensure_frontend()
    root = tmp_path_factory.mktemp("designer-neurons")
    project = make_project_folder(root / "p", model=MODEL)
    with running_server([project]) as url:
        found = SimpleNamespace(url=url)
        # Build the model and trace an engine once, so that no test waits for it.
        api(found, "api/designer/0/explain", {"input": {"sample": 0}, "config": "epsilon"})
        yield found


@pytest.fixture
def page(browser, site):
    with page_of(browser, viewport={"width": 1400, "height": 1100}) as tab:
        yield tab


def api(site, path, body=None, method=None):
    return call_api(site.url, path, body, method)


def pixels(uri: str) -> np.ndarray:
    from PIL import Image

    assert uri.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as image:
        return np.asarray(image.convert("RGBA"))


def open_neurons(page, site, fragment="") -> None:
    page.goto(site.url + "designer.html#d=0&tab=neurons" + fragment)
    expect(page.locator("#tab-neurons")).to_be_visible()
    expect(page.locator("#neuron-scatter-card")).to_have_attribute("data-state", "ready")


def choose_layer(page, layer: int) -> None:
    page.select_option("#neuron-layer", str(layer))
    page.wait_for_function(
        "n => document.querySelector('#neuron-scatter-card').dataset.state === 'ready'"
        " && document.querySelector('#neuron-status').textContent.startsWith(`layer ${n} `)",
        arg=layer,
    )


def points(page) -> list[dict]:
    return page.locator("#neuron-scatter circle.point").evaluate_all(
        """cs => cs.map(c => ({channel: Number(c.dataset.channel), cx: Number(c.getAttribute('cx')),
        cy: Number(c.getAttribute('cy')), positive: Number(c.dataset.positive),
        negative: Number(c.dataset.negative), activation: Number(c.dataset.activation),
        fill: c.getAttribute('fill')}))"""
    )


def body(layer, sample=0, **more):
    return {"input": {"sample": sample}, "config": CONFIG, "layer": layer} | more


# The page's first configuration: one epsilon segment over every layer (as the manager
# creates it); read back from the page in the first test.
CONFIG: dict = {}


def page_config(page) -> dict:
    return page.evaluate("designer.state.configJson")


def same_order(values, positions) -> bool:
    """Whether ``positions`` order the channels as ``values`` do (ties in either agree)."""
    n = len(values)
    for i in range(n):
        for j in range(n):
            dv = values[i] - values[j]
            dp = positions[i] - positions[j]
            if abs(dv) < 1e-12:
                if abs(dp) > 1e-6:
                    return False
            elif np.sign(dv) != np.sign(dp) or abs(dp) < 1e-6:
                return False
    return True


def test_layers_and_scatter_match_the_neurons_answer(page, site):
    open_neurons(page, site)
    CONFIG.update(page_config(page))
    options = page.locator("#neuron-layer option").evaluate_all(
        "os => os.map(o => [o.value, o.textContent])"
    )
    layers = api(site, "api/designer/0/layers")
    # Every layer with channels, not the flatten; each with its name, kind and shape.
    assert [int(v) for v, _ in options] == [0, 1, 2, 3, 4, 6, 7, 8]
    for value, text in options:
        layer = layers[int(value)]
        assert layer["kind"] in text and "×".join(map(str, layer["shape"])) in text
    choose_layer(page, 2)
    answer = api(site, "api/designer/0/neurons", body(2))
    shown = points(page)
    assert len(shown) == answer["channels"] == 6
    assert [p["channel"] for p in shown] == list(range(6))
    assert [p["positive"] for p in shown] == pytest.approx(answer["positive"])
    assert [p["negative"] for p in shown] == pytest.approx(answer["negative"])
    assert [p["activation"] for p in shown] == pytest.approx(answer["activation"])
    # x: positive relevance to the right; y: |negative| upwards (SVG y grows downwards).
    assert same_order(answer["positive"], [p["cx"] for p in shown])
    assert same_order([-abs(v) for v in answer["negative"]], [p["cy"] for p in shown])
    rightmost = max(shown, key=lambda p: p["cx"])["channel"]
    assert rightmost == int(np.argmax(answer["positive"]))
    # Colour: the highest mean activation gets the legend's top colour, the lowest its bottom.
    by_activation = sorted(shown, key=lambda p: p["activation"])
    assert by_activation[0]["fill"] == "rgb(68,1,84)"
    assert by_activation[-1]["fill"] == "rgb(253,231,37)"
    expect(page.locator("#neuron-legend")).to_contain_text("mean activation")
    expect(page.locator("#neuron-scatter .label")).to_have_text(
        ["positive relevance R⁺", "negative relevance |R⁻|"]
    )
    # The matrix: one row per channel, a column per position of the 8 x 8 grid.
    frame = page.locator("#neuron-matrix-frame")
    expect(frame).to_have_attribute("data-rows", "6")
    size = page.evaluate("(c => [c.width, c.height])(document.querySelector('#neuron-matrix'))")
    assert size == [64, 6]
    limit = max(abs(v) for row in answer["matrix"] for v in row)
    assert float(frame.get_attribute("data-limit")) == pytest.approx(limit)
    # The dense layer 6: 16 channels at one position.
    choose_layer(page, 6)
    expect(page.locator("#neuron-scatter circle.point")).to_have_count(16)


def test_box_and_click_select_channels_and_show_their_maps(page, site):
    open_neurons(page, site)
    CONFIG.update(page_config(page))
    choose_layer(page, 2)
    answer = api(site, "api/designer/0/neurons", body(2))
    shown = {p["channel"]: p for p in points(page)}
    # A box from above the plot over every point right of the middle of the x range.
    strong = [c for c, v in enumerate(answer["positive"]) if v > max(answer["positive"]) / 2]
    weak = [c for c in range(6) if c not in strong]
    assert len(strong) >= 2 and weak
    plot = page.locator("#neuron-scatter").bounding_box()
    scale = plot["width"] / 420
    split = (max(shown[c]["cx"] for c in weak) + min(shown[c]["cx"] for c in strong)) / 2
    page.mouse.move(plot["x"] + split * scale, plot["y"] + 2)
    page.mouse.down()
    page.mouse.move(plot["x"] + plot["width"] - 2, plot["y"] + plot["height"] / 2, steps=5)
    page.mouse.move(plot["x"] + plot["width"] - 2, plot["y"] + plot["height"] - 2, steps=5)
    page.mouse.up()
    count = page.locator("#neuron-count")
    expect(count).to_have_attribute("data-count", str(len(strong)))
    expect(count).to_have_text(f"{len(strong)} channels selected")
    selected = page.locator("#neuron-scatter circle.point.selected").evaluate_all(
        "cs => cs.map(c => Number(c.dataset.channel))"
    )
    assert sorted(selected) == strong

    def check_maps(channels):
        maps = page.locator("#neuron-maps")
        expect(maps).to_have_attribute("data-channels", ",".join(map(str, channels)))
        expect(maps).to_have_attribute("data-state", "ready")
        expected = api(site, "api/designer/0/neurons/maps", body(2, channels=channels))
        figures = maps.locator("figure.channel-map")
        expect(figures).to_have_count(len(channels))
        for i, channel in enumerate(channels):
            figure = figures.nth(i)
            assert figure.get_attribute("data-channel") == str(channel)
            expect(figure.locator("figcaption")).to_have_text(f"ch {channel}")
            relevance = figure.locator("img.relevance").get_attribute("src")
            activation = figure.locator("img.activation").get_attribute("src")
            assert np.array_equal(pixels(relevance), pixels(expected["relevance"][i]))
            assert np.array_equal(pixels(activation), pixels(expected["activation"][i]))

    check_maps(strong)
    # Shift-click toggles one point off and on again; a plain click selects only it.
    point = page.locator(f'#neuron-scatter circle.point[data-channel="{strong[0]}"]')
    point.click(modifiers=["Shift"])
    expect(count).to_have_attribute("data-count", str(len(strong) - 1))
    check_maps(strong[1:])
    point.click(modifiers=["Shift"])
    expect(count).to_have_attribute("data-count", str(len(strong)))
    point.click()
    expect(count).to_have_attribute("data-count", "1")
    check_maps([strong[0]])
    page.click("#neuron-clear")
    expect(count).to_have_attribute("data-count", "0")
    expect(page.locator("#neuron-maps figure")).to_have_count(0)
    expect(page.locator("#neuron-ablate")).to_be_disabled()


def test_matrix_rows_and_scatter_points_highlight_each_other(page, site):
    open_neurons(page, site)
    choose_layer(page, 2)
    frame = page.locator("#neuron-matrix-frame")
    box = frame.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] * 4.5 / 6)
    hovered = page.locator("#neuron-scatter circle.point.hover")
    expect(hovered).to_have_count(1)
    expect(hovered).to_have_attribute("data-channel", "4")
    expect(page.locator("#neuron-hover")).to_contain_text("channel 4")
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] * 1.5 / 6)
    expect(hovered).to_have_attribute("data-channel", "1")
    # The other way: hovering a point marks its matrix row.
    point = page.locator('#neuron-scatter circle.point[data-channel="5"]')
    point.hover()
    expect(frame).to_have_attribute("data-hover", "5")
    mark = frame.locator(".row-mark.hover")
    expect(mark).to_be_visible()
    row = mark.bounding_box()
    assert row["y"] == pytest.approx(box["y"] + box["height"] * 5 / 6, abs=2.5)
    # Clicking a row selects its channel (marked beside the row and on the scatter).
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.5 / 6)
    expect(page.locator("#neuron-count")).to_have_attribute("data-count", "1")
    expect(page.locator('#neuron-scatter circle.point[data-channel="0"]')).to_have_class(
        re.compile(r"\bselected\b")
    )
    expect(frame.locator('.row-mark.selected[data-channel="0"]')).to_be_attached()


def test_ablation_shows_the_new_top_classes_and_heatmap_of_the_api(page, site):
    open_neurons(page, site, "&s=3")
    CONFIG.update(page_config(page))
    choose_layer(page, 2)
    answer = api(site, "api/designer/0/neurons", body(2, sample=3))
    chosen = sorted(int(c) for c in np.argsort(answer["positive"])[-2:])
    for i, channel in enumerate(chosen):
        page.locator(f'#neuron-scatter circle.point[data-channel="{channel}"]').click(
            modifiers=["Shift"] if i else []
        )
    expect(page.locator("#neuron-count")).to_have_attribute("data-count", "2")
    page.click("#neuron-ablate")
    ablation = page.locator("#neuron-ablation")
    expect(ablation).to_have_attribute("data-state", "ready")
    expected = api(site, "api/designer/0/ablate", body(2, sample=3, channels=chosen, k=10))
    intact = api(site, "api/designer/0/explain", {"input": {"sample": 3}, "config": CONFIG})
    rows = page.locator("#ablation-predictions li")
    expect(rows).to_have_count(len(expected["predictions"]))
    shown = rows.evaluate_all(
        "ls => ls.map(l => [Number(l.dataset.class), l.querySelector('.class-name').textContent,"
        " Number(l.dataset.score)])"
    )
    top = expected["predictions"]
    assert [(c, n) for c, n, _ in shown] == [(p["index"], p["name"]) for p in top]
    assert [s for _, _, s in shown] == pytest.approx([p["score"] for p in top])
    summary = page.locator("#ablation-summary")
    assert summary.get_attribute("data-channels") == ",".join(map(str, chosen))
    assert float(summary.get_attribute("data-before")) == pytest.approx(intact["score"])
    assert float(summary.get_attribute("data-after")) == pytest.approx(expected["score"])
    assert float(summary.get_attribute("data-delta")) == pytest.approx(
        expected["score"] - intact["score"]
    )
    assert expected["score"] != pytest.approx(intact["score"])  # the ablation changed it
    expect(summary).to_contain_text(expected["target_name"])
    explained = page.locator("#ablation-predictions li.explained")
    expect(explained).to_have_attribute("data-class", str(expected["target"]))
    expect(explained.locator(".delta")).to_contain_text("Δ")
    heatmaps = {
        which: page.locator(f'#neuron-ablation figure[data-which="{which}"] img').get_attribute(
            "src"
        )
        for which in ("intact", "ablated")
    }
    assert np.array_equal(pixels(heatmaps["ablated"]), pixels(expected["heatmap"]))
    assert np.array_equal(pixels(heatmaps["intact"]), pixels(intact["heatmap"]))
    assert not np.array_equal(pixels(heatmaps["ablated"]), pixels(heatmaps["intact"]))


def test_a_new_input_refreshes_the_scatter_and_clears_the_ablation(page, site):
    open_neurons(page, site)
    CONFIG.update(page_config(page))
    choose_layer(page, 2)
    page.locator('#neuron-scatter circle.point[data-channel="0"]').click()
    page.click("#neuron-ablate")
    expect(page.locator("#neuron-ablation")).to_have_attribute("data-state", "ready")
    before = [p["positive"] for p in points(page)]
    page.fill("#sample-index", "5")
    page.press("#sample-index", "Enter")
    expected = api(site, "api/designer/0/neurons", body(2, sample=5))
    assert expected["positive"] != pytest.approx(before)
    page.wait_for_function(
        "want => [...document.querySelectorAll('#neuron-scatter circle.point')]"
        ".every((c, i) => Math.abs(Number(c.dataset.positive) - want[i]) < 1e-9)",
        arg=expected["positive"],
    )
    expect(page.locator("#neuron-ablation")).to_be_hidden()
    # The selection stays (same layer), and its maps are the new input's.
    expect(page.locator("#neuron-count")).to_have_attribute("data-count", "1")
    maps = api(site, "api/designer/0/neurons/maps", body(2, sample=5, channels=[0]))
    page.wait_for_function(
        "src => document.querySelector('#neuron-maps img.relevance')?.getAttribute('src') === src",
        arg=maps["relevance"][0],
    )


def test_only_the_latest_layer_is_shown_and_each_is_asked_once(page, site):
    open_neurons(page, site)
    asked: list[int] = []
    page.on(
        "request",
        lambda r: (
            asked.append(json.loads(r.post_data)["layer"]) if r.url.endswith("/neurons") else None
        ),
    )
    for layer in ("6", "8", "2"):  # within the debounce: only the last is asked
        page.select_option("#neuron-layer", layer)
    choose_layer(page, 2)
    expect(page.locator("#neuron-scatter circle.point")).to_have_count(6)
    assert asked == [2]
    page.select_option("#neuron-layer", "8")
    expect(page.locator("#neuron-scatter circle.point")).to_have_count(3)
    page.select_option("#neuron-layer", "2")  # asked before: from the cache
    expect(page.locator("#neuron-scatter circle.point")).to_have_count(6)
    assert asked == [2, 8]
    expect(page.locator("#neuron-error")).to_be_hidden()


def test_points_are_reachable_by_keyboard(page, site):
    open_neurons(page, site)
    choose_layer(page, 2)
    point = page.locator('#neuron-scatter circle.point[data-channel="3"]')
    point.focus()
    expect(page.locator("#neuron-matrix-frame")).to_have_attribute("data-hover", "3")
    page.keyboard.press("Enter")
    expect(page.locator("#neuron-count")).to_have_attribute("data-count", "1")
    expect(page.locator("#neuron-maps")).to_have_attribute("data-channels", "3")
    page.keyboard.press("Shift+Enter")
    expect(page.locator("#neuron-count")).to_have_attribute("data-count", "0")
