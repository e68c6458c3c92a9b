"""Grad-CAM against the formula computed by hand on a split network (float64)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from relscope.attribution.attributors import get_attributor
from relscope.attribution.methods.cam import GradCAM
from relscope.errors import ConfigError


def cnn(inplace: bool = False) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 5, 3, padding=1),
        nn.ReLU(inplace=inplace),
        nn.MaxPool2d(2),
        nn.Conv2d(5, 6, 3, padding=1),
        nn.ReLU(inplace=inplace),
        nn.Conv2d(6, 4, 3, padding=1),
        nn.ReLU(inplace=inplace),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 3),
    ).double()


def reference(model: nn.Sequential, x, split: int, classes, relu=True, size=None):
    """The head's gradient at the output of ``model[:split]``, weighted sum, by hand."""
    with torch.no_grad():
        activation = model[:split](x)
    activation = activation.requires_grad_(True)
    scores = model[split:](activation.clone())  # the head may rectify in place
    score = scores.gather(1, classes.reshape(-1, 1)).sum()
    (grad,) = torch.autograd.grad(score, activation)
    alpha = grad.mean(dim=(2, 3))  # (B, K)
    cam = torch.einsum("bk,bkhw->bhw", alpha, activation.detach()).unsqueeze(1)
    if relu:
        cam = cam.clamp(min=0)
    if size is not None:
        cam = F.interpolate(cam, size=size, mode="bilinear", align_corners=False)
    return scores.detach(), cam


@pytest.mark.parametrize("layer", [3, 5])
def test_gradcam_equals_the_weighted_activation_sum(layer):
    model = cnn()
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    classes = torch.tensor([0, 2, 1])
    output, cam = GradCAM(str(layer))(model, x, classes)
    scores, expected = reference(model, x, layer + 1, classes, size=(8, 8))
    assert cam.shape == (3, 1, 8, 8)
    torch.testing.assert_close(output, scores, rtol=0, atol=0)
    torch.testing.assert_close(cam, expected, rtol=1e-12, atol=1e-14)
    assert (cam >= 0).all() and cam.amax() > 0


def test_without_upsampling_and_relu_the_map_is_signed_at_layer_resolution():
    model = cnn()
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    classes = torch.tensor([1, 1, 0, 2])
    _, cam = GradCAM("3", relu=False, upsample=None)(model, x, classes)
    _, expected = reference(model, x, 4, classes, relu=False)
    assert cam.shape == (4, 1, 4, 4)
    torch.testing.assert_close(cam, expected, rtol=1e-12, atol=1e-14)
    assert (cam < 0).any() and (cam > 0).any()  # a case where the ReLU would matter


def test_default_target_is_the_predicted_class_and_registry_builds_it():
    model = cnn()
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    attributor = get_attributor("gradcam", layer="5")
    assert isinstance(attributor, GradCAM) and attributor.params()["layer"] == "5"
    output, cam = attributor(model, x)
    _, expected = reference(model, x, 6, output.argmax(1), size=(8, 8))
    torch.testing.assert_close(cam, expected, rtol=1e-12, atol=1e-14)


def test_output_weights_as_target():
    model = cnn()
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    weights = torch.tensor([[1.0, -0.5, 0.0], [0.0, 2.0, 1.0]], dtype=torch.float64)
    _, cam = GradCAM("5", relu=False, upsample=None)(model, x, weights)
    # Linear in the output weights: the map for a weighting is the weighted sum of maps.
    parts = [
        GradCAM("5", relu=False, upsample=None)(model, x, torch.full((2,), k)).relevance
        for k in range(3)
    ]
    expected = sum(weights[:, k].reshape(2, 1, 1, 1) * parts[k] for k in range(3))
    torch.testing.assert_close(cam, expected, rtol=1e-12, atol=1e-14)


def test_inplace_relu_after_the_layer_does_not_change_the_activation():
    # The hooked conv's output is rectified in place by the next module: Grad-CAM must use
    # the conv's own output, as the split reference does.
    model = cnn(inplace=True)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    classes = torch.tensor([0, 1])
    _, cam = GradCAM("3", relu=False, upsample=None)(model, x, classes)
    _, expected = reference(model, x, 4, classes, relu=False)
    torch.testing.assert_close(cam, expected, rtol=1e-12, atol=1e-14)
    with torch.no_grad():
        torch.testing.assert_close(model(x), cnn()(x))  # the model still computes the same


def test_one_dimensional_maps_are_upsampled_linearly():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv1d(2, 3, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 5, 2)
    ).double()
    x = torch.randn(2, 2, 10, dtype=torch.float64)
    _, cam = GradCAM("0", relu=False, upsample=None)(model, x, 1)
    _, big = GradCAM("0", relu=False)(model, x, 1)
    assert cam.shape == (2, 1, 5) and big.shape == (2, 1, 10)
    torch.testing.assert_close(big, F.interpolate(cam, size=10, mode="linear"))


def test_frozen_model_still_gets_gradients():
    model = cnn().requires_grad_(False)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    classes = torch.tensor([2, 0])
    _, cam = GradCAM("5")(model, x, classes)
    _, expected = reference(model, x, 6, classes, size=(8, 8))
    torch.testing.assert_close(cam, expected, rtol=1e-12, atol=1e-14)


def test_unknown_layer_is_a_one_line_error_listing_layers():
    model = cnn()
    with pytest.raises(ConfigError, match=r"unknown layer 'conv9' for Grad-CAM; layers: .*\b5\b"):
        GradCAM("conv9")(model, torch.randn(1, 3, 8, 8, dtype=torch.float64))


@pytest.mark.parametrize(("layer", "found"), [("8", r"shape \(2, 16\)"), ("9", r"shape \(2, 3\)")])
def test_layer_without_spatial_output_is_refused_and_hooks_are_removed(layer, found):
    model = cnn()
    with pytest.raises(ConfigError, match=rf"layer '{layer}' must output a .*got {found}"):
        GradCAM(layer)(model, torch.randn(2, 3, 8, 8, dtype=torch.float64))
    assert all(not m._forward_hooks for m in model.modules())


def test_hooks_are_removed_after_success_and_on_model_errors():
    model = cnn()
    GradCAM("3")(model, torch.randn(1, 3, 8, 8, dtype=torch.float64), 0)
    assert all(not m._forward_hooks for m in model.modules())
    with pytest.raises(RuntimeError):
        GradCAM("3")(model, torch.randn(1, 2, 8, 8, dtype=torch.float64), 0)  # wrong channels
    assert all(not m._forward_hooks for m in model.modules())


def test_reused_layer_and_bad_arguments_are_refused():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2))

        def forward(self, x):
            return self.head(self.conv(self.conv(x)))

    with pytest.raises(ConfigError, match=r"layer 'conv' ran 2 times"):
        GradCAM("conv")(Twice(), torch.randn(1, 3, 4, 4))
    with pytest.raises(ConfigError, match="upsample must be"):
        GradCAM("conv", upsample="cubic")
    with pytest.raises(ConfigError, match="layer must be a module name"):
        GradCAM("")
    with pytest.raises(ConfigError, match="use upsample=None"):
        model = nn.Sequential(nn.Unflatten(1, (1, 4, 4)), nn.Conv2d(1, 2, 3), nn.Flatten())
        GradCAM("0.1")(nn.Sequential(model, nn.Linear(8, 2)), torch.randn(2, 16))
