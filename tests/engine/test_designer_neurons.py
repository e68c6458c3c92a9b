"""Designer neurons: per-channel relevance and activation of one layer, channel maps, and
explanations with channels ablated (checked against a plain forward pass with the channels
zeroed, relscope.evaluation.ablate)."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from relscope.attribution import LRP
from relscope.engine.designer import ChannelMaps, NeuronData
from relscope.errors import ConfigError
from relscope.evaluation import ablate

CONFIG = {"method": "epsilon_plus"}


def _reference(session, x, layer, target):
    """The layer's relevance (from a separate engine) and its forward-hook output."""
    seen = {}
    module = session.model.get_submodule(layer)
    handle = module.register_forward_hook(lambda _m, _i, out: seen.setdefault("out", out))
    try:
        with torch.no_grad():
            session.model(x)  # hooks do not fire inside LRP's rewritten graph
    finally:
        handle.remove()
    with LRP(session.model, "epsilon_plus") as lrp:
        relevance = lrp(x, target, record=[layer]).layers[layer]
    return relevance[0], seen["out"][0].detach()


@pytest.mark.parametrize("layer", ["1", "3"])
def test_channel_sums_follow_their_formulas(session, x, layer):
    data = session.neurons(x, CONFIG, layer)
    assert isinstance(data, NeuronData)
    target = session.predict(x, 1)[0].index
    relevance, activation = _reference(session, x, layer, target)
    assert data.layer == layer and data.target == target and data.channels == len(relevance)
    np.testing.assert_allclose(data.positive, relevance.clamp(min=0).sum((1, 2)).numpy())
    np.testing.assert_allclose(data.negative, relevance.clamp(max=0).sum((1, 2)).numpy())
    np.testing.assert_allclose(data.activation, activation.mean((1, 2)).numpy())
    assert (data.positive >= 0).all() and (data.negative <= 0).all()
    assert data.positive.sum() > 0
    explanation = session.explain(x, CONFIG)
    total = explanation.sums[layer]  # the layer's relevance sum from the diagnostics
    assert data.positive.sum() + data.negative.sum() == pytest.approx(total, rel=1e-9)
    # small enough: the matrix is the relevance itself, one column per position
    assert data.grid == tuple(relevance.shape[1:])
    np.testing.assert_allclose(data.matrix, relevance.reshape(len(relevance), -1).numpy())


@pytest.mark.parametrize("limit", [1, 7, 50, 195])
def test_pooled_matrix_keeps_every_channels_sum(session, x, limit):
    data = session.neurons(x, CONFIG, 0, max_positions=limit)
    h, w = data.grid
    assert h * w <= limit and data.matrix.shape == (16, h * w)
    assert h * w >= limit // 2  # not pooled further than needed
    np.testing.assert_allclose(data.matrix.sum(1), data.positive + data.negative, atol=1e-12)
    full = session.neurons(x, CONFIG, 0)
    assert full.grid == (28, 28)
    # each pooled cell sums one block of contiguous rows and columns of the full map
    rows, columns = np.arange(28) * h // 28, np.arange(28) * w // 28
    expected = np.zeros((16, h, w))
    np.add.at(
        expected, (slice(None), rows[:, None], columns[None, :]), full.matrix.reshape(16, 28, 28)
    )
    np.testing.assert_allclose(data.matrix, expected.reshape(16, -1), atol=1e-12)


def test_a_dense_layer_has_one_position(session, x):
    data = session.neurons(x, CONFIG, "8")
    assert data.grid == (1,) and data.matrix.shape == (64, 1)
    np.testing.assert_allclose(data.matrix[:, 0], data.positive + data.negative)
    maps = session.channel_maps(x, CONFIG, "8", [3])
    assert maps.relevance.shape == (1, 1, 1) == maps.activation.shape


def test_channel_maps_are_the_layers_relevance_and_activation(session, x):
    maps = session.channel_maps(x, CONFIG, 3, [7, 2, 7])
    assert isinstance(maps, ChannelMaps)
    assert maps.layer == "3" and maps.channels == (2, 7)
    relevance, activation = _reference(session, x, "3", maps.target)
    np.testing.assert_allclose(maps.relevance, relevance[[2, 7]].numpy())
    np.testing.assert_allclose(maps.activation, activation[[2, 7]].numpy())
    for png in (maps.relevance_png(0), maps.activation_png(1)):
        with Image.open(io.BytesIO(png)) as image:
            assert image.size == (14, 14) and image.mode == "P"


@pytest.mark.parametrize(("layer", "channels"), [("0", [1, 4]), ("1", [0, 3, 15]), ("4", [31])])
def test_an_ablations_scores_equal_a_forward_pass_with_the_channels_zeroed(
    session, x, layer, channels
):
    explanation, top = session.ablate(x, CONFIG, layer, channels, k=10)
    reference = ablate(session.model, x, layer, channels).output
    torch.testing.assert_close(explanation.output, reference, atol=1e-5, rtol=0)
    best = torch.topk(reference[0], 10)
    assert [p.index for p in top] == best.indices.tolist()
    np.testing.assert_allclose([p.score for p in top], best.values.numpy(), atol=1e-5)
    plain = session.explain(x, CONFIG)
    assert explanation.target == plain.target  # resolved on the intact model
    assert not torch.allclose(explanation.relevance, plain.relevance)
    assert explanation.heatmap_png() != plain.heatmap_png()
    assert explanation.sums[layer] != pytest.approx(plain.sums[layer])


def test_ablating_no_channels_gives_the_plain_explanation(session, x):
    explanation, top = session.ablate(x, CONFIG, "3", [], target="class", index=4)
    plain = session.explain(x, CONFIG, target="class", index=4)
    assert torch.equal(explanation.relevance, plain.relevance)
    assert torch.equal(explanation.output, plain.output)
    assert top == session.predict(x)


def test_ablating_every_channel_gives_finite_results(session, x):
    explanation, top = session.ablate(x, CONFIG, "4", list(range(32)))
    assert torch.isfinite(explanation.output).all()
    assert torch.isfinite(explanation.relevance).all()
    assert len(top) == 10 and not explanation.warnings()


def test_layers_by_index_are_the_session_layers(session, x):
    layers = session.layers()
    by_index, _ = session.ablate(x, CONFIG, 3, [2])
    by_name, _ = session.ablate(x, CONFIG, layers[3].name, [2])
    assert torch.equal(by_index.relevance, by_name.relevance)
    assert session.neurons(x, CONFIG, 4).layer == layers[4].name


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s, x: s.neurons(x, CONFIG, "features.9"), r"unknown layer 'features.9' \(the"),
        (lambda s, x: s.neurons(x, CONFIG, 10), "layer index 10 out of range"),
        (lambda s, x: s.neurons(x, CONFIG, True), "a layer is a name or an index"),
        (lambda s, x: s.neurons(x, CONFIG, 0, max_positions=0), "max_positions must be"),
        (lambda s, x: s.ablate(x, CONFIG, "3", [32]), r"channel 32 out of range .* 32 channels"),
        (lambda s, x: s.ablate(x, CONFIG, "3", [-2]), "non-negative integers"),
        (lambda s, x: s.ablate(x, CONFIG, "3", [True]), "non-negative integers"),
        (lambda s, x: s.ablate(x, CONFIG, "3", "1"), "a list of channel indices"),
        (lambda s, x: s.channel_maps(x, CONFIG, "1", [16]), "channel 16 out of range"),
        (lambda s, x: s.ablate(x, {"method": "gradient"}, "3", [1]), "needs an LRP config"),
        (lambda s, x: s.neurons(x, {"method": "gradient"}, "3"), "needs an LRP config"),
        (lambda s, x: s.ablate(x, CONFIG, "3", [1], target="class", index=10), "target class"),
    ],
)
def test_bad_requests_are_one_line_config_errors(session, x, call, message):
    with pytest.raises(ConfigError, match=message) as caught:
        call(session, x)
    assert "\n" not in str(caught.value)
