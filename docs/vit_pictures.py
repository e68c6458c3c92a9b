"""The README's image heatmap: the demo's ViT (``relscope demo --model vit``) explained with
AttnLRP on test digits that carry the planted square.

Trains the ViT exactly as the demo does (ten digits, 400 per class, the square on 30% of the
3s, 8 epochs, seed 0; about 15 s on a CPU), plants the square on MNIST test digits (a 3 and
an 8), and draws each digit next to its AttnLRP heatmap for class 3 (red: evidence for 3,
blue: against) and its attention rollout. Run:
``PYTHONPATH=src .venv/bin/python docs/vit_pictures.py`` (writes docs/images/vit-mnist.png).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from relscope.attribution import get_attributor
from relscope.data.builtin import mnist_vit, plant_artifact
from relscope.engine.clever_hans import make_task, train_classifier
from relscope.render import heatmap

ROOT = Path(__file__).resolve().parents[1]
SCALE = 6  # 28 pixels -> 168


def main() -> None:
    task = make_task(list(range(10)), per_class=400, poisoned_class=3, fraction=0.3, seed=0)
    model = train_classifier(task.images, task.labels, num_classes=10, epochs=8, lr=1e-3,
                             seed=0, factory=mnist_vit)  # fmt: skip
    test = make_task([3, 8], per_class=1, poisoned_class=None, fraction=0.0, seed=2,
                     train=False)  # fmt: skip
    images = plant_artifact(test.images, np.arange(len(test.images)), size=3, value=1.0)
    x = torch.from_numpy(images)
    target = torch.full((len(x),), 3)
    output, lrp = get_attributor("lrp", composite="attnlrp")(model, x, target)
    rollout = get_attributor("attention_rollout")(model, x, target).relevance
    rows = []
    for k in range(len(x)):
        gray = np.repeat((images[k, 0] * 255).astype(np.uint8)[..., None], 3, axis=-1)
        rows.append(np.concatenate([
            gray, _gap(), heatmap(lrp[k, 0].numpy()), _gap(),
            heatmap(rollout[k, 0].numpy(), cmap="hot", mode="minmax"),
        ], axis=1))  # fmt: skip
        print(f"digit {int(test.labels[k])} with the square: predicted "
              f"{int(output[k].argmax())}, logit of 3 = {float(output[k, 3]):.2f}")  # fmt: skip
    picture = np.concatenate([np.concatenate([row, _gap(rows[0].shape[1], 2)], 0)
                              for row in rows], axis=0)[:-2]  # fmt: skip
    out = ROOT / "docs" / "images" / "vit-mnist.png"
    big = picture.repeat(SCALE, axis=0).repeat(SCALE, axis=1)
    Image.fromarray(big).save(out)
    print(f"wrote {out} (columns: input, AttnLRP for class 3, attention rollout)")


def _gap(width: int = 2, height: int = 28) -> np.ndarray:
    return np.full((height, width, 3), 255, dtype=np.uint8)


if __name__ == "__main__":
    main()
