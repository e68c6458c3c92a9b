"""The comparison grid: every cell is what its method and model say, scores are the AOPC."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from relscope.attribution import LRP
from relscope.errors import ConfigError
from relscope.evaluation import compare, perturbation_curve
from relscope.render import heatmap


def net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)
    ).eval()


@pytest.fixture
def data():
    torch.manual_seed(0)
    return torch.rand(2, 3, 8, 8)


def test_attributions_predictions_and_scores(data):
    models = {"a": net(1), "b": net(2)}
    result = compare(models, data, ["gradient", "lrp", "occlusion"], patch=2, steps=4)
    assert result.methods == ["gradient", "lrp", "occlusion"]
    for name, model in models.items():
        output = model(data).detach()
        torch.testing.assert_close(result.outputs[name], output)
        assert torch.equal(result.targets[name], output.argmax(1))
        expected = torch.softmax(output.double(), 1).gather(1, output.argmax(1)[:, None])[:, 0]
        torch.testing.assert_close(result.probability(name), expected)
        lrp = result.attributions[name]["lrp"]
        with LRP(model, "epsilon") as engine:
            torch.testing.assert_close(lrp, engine(data, output.argmax(1)).relevance)
        curve = perturbation_curve(
            model, data, lrp, output.argmax(1), patch=2, steps=4, fill="mean"
        )
        torch.testing.assert_close(result.scores[name]["lrp"], curve.aopc())
        occlusion = result.attributions[name]["occlusion"]
        assert occlusion.shape == (2, 1, 8, 8)
        assert result.scores[name]["occlusion"].shape == (2,)


def test_render_places_every_cell(data):
    model = net(1)
    images = (data.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    result = compare(model, data, {"LRP": "lrp"}, images=images, labels=[0, 2],
                     class_names=["cat", "dog", "cow"], faithfulness=False)  # fmt: skip
    picture = result.render(scale=2)
    assert picture.dtype == np.uint8
    assert picture.ndim == 3
    expected = heatmap(result.attributions["model"]["LRP"].double().numpy(), images)
    # Find the cells: the grid is pad 4, a title line, cells of 16 x 16 (scale 2).
    found_input = found_heatmap = 0
    for sample in range(2):
        tile = expected[sample].repeat(2, 0).repeat(2, 1)
        source = images[sample].repeat(2, 0).repeat(2, 1)
        for top in range(picture.shape[0] - 15):
            for left in range(picture.shape[1] - 15):
                window = picture[top : top + 16, left : left + 16]
                found_heatmap += np.array_equal(window, tile)
                found_input += np.array_equal(window, source)
    assert found_heatmap >= 2 and found_input >= 2
    assert result.scores["model"]["LRP"] is None


def test_save_writes_the_rendered_png(data, tmp_path):
    result = compare(net(1), data, ["gradient"], faithfulness=False)
    path = result.save(tmp_path / "grid.png", style="overlay")
    with Image.open(path) as image:
        assert np.array_equal(np.asarray(image.convert("RGB")), result.render(style="overlay"))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"methods": []}, "at least one method"),
        ({"methods": ["nope"]}, "unknown attributor 'nope'"),
        ({"methods": {"x": 3}}, "not an attributor"),
        ({"target": 7}, "class indices in 0..2"),
        ({"images": np.zeros((1, 8, 8, 3), np.uint8)}, "1 images for 2 inputs"),
    ],
)
def test_bad_arguments(data, arguments, message):
    options = {"methods": ["gradient"], **arguments}
    with pytest.raises(ConfigError, match=message):
        compare(net(1), data, options.pop("methods"), **options)
