"""The model zoo in tests/support/zoo.py: every factory builds, runs and traces with torch.fx."""

import gc

import numpy as np
import pytest
import skimage.data
import torch
from torch import nn

from support import zoo

# Forward passes of the big models are limited to these, at batch 1, to keep the file fast.
BIG_FORWARD = ("vgg16", "resnet50", "densenet121", "mobilenet_v2", "efficientnet_lite0")
BIG = (*zoo.BIG_MODELS, *zoo.PRETRAINED_MODELS)


def batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def test_zoo_tables_agree():
    assert set(zoo.MODELS) == set(zoo.INPUT_SHAPES) == set(zoo.NUM_OUTPUTS)
    assert set(zoo.MODELS) == {*zoo.BIG_MODELS, *zoo.PRETRAINED_MODELS, *zoo.TINY_MODELS}
    assert zoo.TINY_MODELS == (
        "tiny_vgg_bn",
        "tiny_resnet",
        "tiny_densenet",
        "tiny_mobilenet",
        "tiny_vit",
    )
    assert all(zoo.INPUT_SHAPES[name] == (3, 32, 32) for name in zoo.TINY_MODELS)
    assert all(zoo.INPUT_SHAPES[name] == (3, 224, 224) for name in BIG)


def test_import_torchvision_is_idempotent():
    first = zoo.import_torchvision()
    assert zoo.import_torchvision() is first
    assert hasattr(first.models, "resnet18")
    assert hasattr(first.models, "VisionTransformer")


@pytest.mark.parametrize("name", zoo.TINY_MODELS)
def test_tiny_model_runs_traces_and_is_deterministic(name):
    model = zoo.MODELS[name]()
    assert not model.training
    x = torch.randn(2, *zoo.INPUT_SHAPES[name])
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, zoo.NUM_OUTPUTS[name])
    assert torch.isfinite(y).all()
    assert not torch.allclose(y[0], y[1])  # the output depends on the input

    traced = torch.fx.symbolic_trace(model)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), y)

    again = zoo.MODELS[name]().state_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(again[key], value), key


@pytest.mark.parametrize("name", [n for n in zoo.TINY_MODELS if n != "tiny_vit"])
def test_tiny_batchnorms_are_not_trivial(name):
    layers = batchnorms(zoo.MODELS[name]())
    assert layers
    for bn in layers:
        assert (bn.running_var > 0).all()
        assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))
        assert not torch.allclose(bn.running_mean, torch.zeros_like(bn.running_mean))
        assert not torch.allclose(bn.weight, torch.ones_like(bn.weight))
        assert not torch.allclose(bn.bias, torch.zeros_like(bn.bias))


def test_tiny_models_have_the_advertised_structure():
    resnet = zoo.MODELS["tiny_resnet"]()
    assert any(isinstance(m, zoo.BasicBlock) and m.downsample is not None for m in resnet.modules())
    assert all(m.inplace for m in resnet.modules() if isinstance(m, nn.ReLU))

    mobilenet = zoo.MODELS["tiny_mobilenet"]()
    kinds = {type(m) for m in mobilenet.modules()}
    assert {nn.ReLU6, nn.SiLU} <= kinds
    assert any(isinstance(m, nn.Conv2d) and m.groups > 1 for m in mobilenet.modules())
    assert any(isinstance(m, zoo.InvertedResidual) and m.use_residual for m in mobilenet.modules())

    graph = torch.fx.symbolic_trace(zoo.MODELS["tiny_densenet"]()).graph
    assert any(node.target is torch.cat for node in graph.nodes)


def test_factories_leave_the_global_rng_alone():
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    zoo.MODELS["tiny_resnet"]()
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("name", BIG)
def test_big_model_builds_and_traces(name):
    model = zoo.MODELS[name]()
    assert not model.training
    assert all(not m.training for m in model.modules())
    traced = torch.fx.symbolic_trace(model)  # every big model of the zoo traces
    if name in BIG_FORWARD:
        x = torch.randn(1, *zoo.INPUT_SHAPES[name])
        with torch.no_grad():
            y = model(x)
        assert y.shape == (1, zoo.NUM_OUTPUTS[name])
        assert torch.isfinite(y).all()
        assert y.std() > 1e-3  # no vanishing activations
        # The traced graph computes the same; checked on a small image to save time (all
        # these models accept one: adaptive pooling, or padding that merely assumes 224).
        small = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            torch.testing.assert_close(traced(small), model(small))
    del model, traced
    gc.collect()


def test_big_batchnorm_statistics_are_calibrated():
    layers = batchnorms(zoo.MODELS["mobilenet_v2"]())
    assert layers
    assert all(bn.num_batches_tracked == 1 for bn in layers)
    assert not any(torch.allclose(bn.running_var, torch.ones_like(bn.running_var)) for bn in layers)


def test_normalization_and_bounds():
    mean, std = zoo.imagenet_normalization()
    low, high = zoo.imagenet_bounds()
    for t in (mean, std, low, high):
        assert t.shape == (1, 3, 1, 1)
        assert t.dtype == torch.float32
    torch.testing.assert_close(mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))
    torch.testing.assert_close(std.flatten(), torch.tensor([0.229, 0.224, 0.225]))
    torch.testing.assert_close(low, -mean / std)
    torch.testing.assert_close(high, (1 - mean) / std)
    assert (low < 0).all()
    assert (high > 0).all()

    low, high = zoo.efficientnet_bounds()
    torch.testing.assert_close(low.flatten(), torch.full((3,), -127 / 128))
    torch.testing.assert_close(high.flatten(), torch.full((3,), 1.0))


def test_efficientnet_preprocess():
    image = skimage.data.chelsea()
    x = zoo.efficientnet_preprocess(image)
    assert x.shape == (1, 3, 224, 224)
    assert x.dtype == torch.float32
    low, high = zoo.efficientnet_bounds()
    assert (x >= low - 1e-6).all()
    assert (x <= high + 1e-6).all()
    white = zoo.efficientnet_preprocess(np.full((10, 20, 3), 255, np.uint8))
    torch.testing.assert_close(white, torch.ones(1, 3, 224, 224))
    with pytest.raises(ValueError, match="uint8"):
        zoo.efficientnet_preprocess(image.astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        zoo.efficientnet_preprocess(image[..., 0])


def test_efficientnet_lite0_sees_a_cat():
    model = zoo.load_efficientnet_lite0()
    with torch.no_grad():
        logits = model(zoo.efficientnet_preprocess(skimage.data.chelsea()))
    top5 = logits[0].topk(5).indices.tolist()
    assert top5[0] in zoo.IMAGENET_CAT_CLASSES, top5
    assert sum(k in zoo.IMAGENET_CAT_CLASSES for k in top5) >= 2, top5
