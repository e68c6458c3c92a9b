"""Design sessions explain one input: the relevance equals the library attributor's for the
same configuration, boundaries equal what LRP records at those layers, the PNG equals the
library heatmap, and targets and errors are checked."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from torch import nn

from relscope.attribution import LRP, get_rule, segments
from relscope.attribution.config import method_config
from relscope.attribution.methods.gradients import Gradient
from relscope.engine.designer import Column, DesignSession, Explainer, Explanation
from relscope.errors import ConfigError
from relscope.render import heatmap_png
from relscope.render.maps import to_map

SEGMENTS = {
    "name": "three parts",
    "segments": [
        {"start": 0, "stop": 3, "rule": "zbox", "params": {"low": 0.0, "high": 1.0}},
        {"start": 3, "stop": 7, "rule": "gamma", "params": {"gamma": 0.25}},
        {"start": 7, "stop": None, "rule": "epsilon", "params": {"eps": 0.01}},
    ],
}


def composite_of(config):
    parts = config["segments"]
    return segments((p["start"], p["stop"], get_rule(p["rule"], **p["params"])) for p in parts)


def test_relevance_and_boundaries_equal_the_library(session, x):
    explanation = session.explain(x, SEGMENTS, target="class", index=3)
    reference = method_config(SEGMENTS).attributor()(session.model, x, 3)
    torch.testing.assert_close(explanation.relevance, reference.relevance)
    torch.testing.assert_close(explanation.output, reference.output)
    assert explanation.target == 3
    names = [layer.name for layer in session.layers()]
    assert [(b.index, b.after) for b in explanation.boundaries] == [(3, names[2]), (7, names[6])]
    with LRP(session.model, composite_of(SEGMENTS)) as lrp:
        recorded = lrp(x, 3, record=[names[2], names[6]]).layers
    for boundary in explanation.boundaries:
        torch.testing.assert_close(boundary.relevance, recorded[boundary.after])
        assert boundary.total == pytest.approx(float(recorded[boundary.after].sum()))
    assert list(explanation.sums) == names  # every layer's relevance sum, in order
    assert explanation.input_sum == pytest.approx(float(reference.relevance.sum()))
    logit = float(reference.output[0, 3])
    assert explanation.output_sum == pytest.approx(logit)
    assert explanation.warnings() == [] and explanation.first_nonfinite is None


def test_boundaries_conserve_relevance_on_a_bias_free_network():
    torch.manual_seed(2)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 3, bias=False),
    ).double()
    x = torch.rand(1, 1, 6, 6, dtype=torch.float64)
    parts = [{"start": s, "stop": e, "rule": "epsilon", "params": {"eps": 1e-12}}
             for s, e in ((0, 2), (2, 4), (4, None))]  # fmt: skip
    explanation = DesignSession(model, input_shape=(1, 6, 6)).explain(x, {"segments": parts})
    logit = float(model(x).detach()[0, explanation.target])
    assert [b.index for b in explanation.boundaries] == [2, 4]
    for boundary in explanation.boundaries:
        assert boundary.total == pytest.approx(logit, rel=1e-9)
    assert explanation.input_sum == pytest.approx(logit, rel=1e-9)


def test_pngs_are_the_library_heatmaps(session, x):
    explanation = session.explain(x, SEGMENTS)
    expected = heatmap_png(to_map(explanation.relevance.numpy())[0], cmap="coldnhot")
    assert explanation.heatmap_png("coldnhot") == expected
    first = explanation.boundaries[0].relevance.numpy()
    assert explanation.boundary_png(0) == heatmap_png(to_map(first)[0], cmap="bwr")
    assert explanation.boundary_png(1) is None  # after the flatten: no picture


def test_targets(session, x):
    output = session.model(x)
    predicted = int(output.argmax(1))
    assert session.explain(x, "epsilon_plus").target == predicted
    contrastive = session.explain(x, "epsilon_plus", target="contrastive")
    with LRP(session.model, "epsilon_plus") as lrp:
        reference = lrp(x, predicted, contrastive=True)
    torch.testing.assert_close(contrastive.relevance, reference.relevance)
    for bad, message in (
        ({"target": "class"}, "target class must be an integer in 0..9"),
        ({"target": "class", "index": 10}, "target class must be an integer in 0..9"),
        ({"target": "class", "index": True}, "target class must be an integer"),
        ({"target": "worst"}, "target must be 'class', 'predicted' or 'contrastive'"),
    ):
        with pytest.raises(ConfigError, match=message):
            session.explain(x, "epsilon_plus", **bad)
    with pytest.raises(ConfigError, match="batch of one"):
        Explainer(session.model).explain(torch.cat([x, x]), "epsilon_plus")
    with pytest.raises(ConfigError, match="unknown rule"):
        session.explain(x, {"segments": [{"start": 0, "stop": None, "rule": "nope"}]})


def test_other_attributors_give_the_input_relevance_only(session, x):
    explanation = session.explain(x, {"method": "gradient"}, target="class", index=1)
    torch.testing.assert_close(explanation.relevance, Gradient()(session.model, x, 1).relevance)
    assert explanation.boundaries == [] and explanation.sums == {}
    with pytest.raises(ConfigError, match="contrastive targets need an LRP configuration"):
        session.explain(x, {"method": "gradient"}, target="contrastive")


def test_engines_are_built_once_per_configuration(session, x):
    explainer = Explainer(session.model)
    first = explainer.explain(x, SEGMENTS)
    renamed = explainer.explain(x, dict(SEGMENTS, name="a copy"))
    torch.testing.assert_close(first.relevance, renamed.relevance)
    explainer.explain(x, "epsilon_plus")
    assert len(explainer._engines) == 2


def test_warnings_name_the_layer():
    explanation = Explanation(
        target=0,
        output=torch.zeros(1, 2),
        relevance=torch.zeros(1, 1, 2, 2),
        first_nonfinite="conv2",
        exploding=[("fc", 123.0, 4.0)],
    )
    assert explanation.warnings() == [
        "relevance became NaN or infinite at layer 'conv2'",
        "layer 'fc' multiplied the relevance by 123 (its rule allows at most 4)",
    ]
    nan = Explanation(0, torch.zeros(1, 2), torch.full((1, 1, 2, 2), np.nan))
    assert nan.heatmap_png() is None


def test_threads_share_a_session(session, x):
    inputs = [torch.rand(1, 1, 28, 28, dtype=torch.float64) for _ in range(4)]
    serial = [session.explain(i, SEGMENTS).relevance for i in inputs]
    results: dict[int, torch.Tensor] = {}

    def work(position: int) -> None:
        results[position] = session.explain(inputs[position], SEGMENTS).relevance

    threads = [threading.Thread(target=work, args=(p,)) for p in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for position, expected in enumerate(serial):
        torch.testing.assert_close(results[position], expected)


def test_compare_grid_shares_one_colour_scale(session, x):
    other = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(5)).double()
    configs = [SEGMENTS, "epsilon_plus"]
    columns = [Column(x, "class", 3), Column(other[0])]  # a 3-D input is a batch of one
    grid = session.compare(configs, columns)
    assert grid.names == ["three parts", "epsilon_plus"]
    assert len(grid.cells) == 2 and all(len(row) == 2 for row in grid.cells)
    for row, config in enumerate(configs):
        for column, (inputs, target) in enumerate(((x, 3), (other, None))):
            if target is None:
                expected = session.explain(inputs, config)
            else:
                expected = session.explain(inputs, config, target="class", index=target)
            torch.testing.assert_close(grid.cells[row][column].relevance, expected.relevance)
    maps = np.stack([to_map(c.relevance.numpy())[0] for row in grid.cells for c in row])
    assert grid.scale == pytest.approx(float(np.abs(maps).max()))
    # One scale: each cell's PNG is its map divided by the grid's largest |R|, not its own.
    for position in range(4):
        row, column = divmod(position, 2)
        shared = 0.5 + 0.5 * maps[position] / grid.scale
        assert grid.png(row, column) == heatmap_png(shared, mode=None)
    quiet = int(np.argmin(np.abs(maps).reshape(4, -1).max(1)))
    row, column = divmod(quiet, 2)
    own = heatmap_png(to_map(grid.cells[row][column].relevance.numpy())[0])
    assert grid.png(row, column) != own  # a quieter cell is not stretched to full colour


def test_compare_refuses_empty_oversized_and_mixed_grids(session, x):
    with pytest.raises(ConfigError, match="at least one configuration and one column"):
        session.compare([], [Column(x)])
    with pytest.raises(ConfigError, match="at most 64 per grid"):
        session.compare(["epsilon_plus"] * 9, [Column(x)] * 8)
    small = DesignSession(
        nn.Sequential(nn.Flatten(), nn.Linear(4, 2)).double(), input_shape=(1, 2, 2)
    )
    with pytest.raises(ConfigError, match="differ in size"):
        compare_columns = [
            Column(torch.rand(1, 1, 2, 2).double()),
            Column(torch.rand(1, 1, 1, 4).double()),
        ]
        small.compare(["epsilon"], compare_columns)
