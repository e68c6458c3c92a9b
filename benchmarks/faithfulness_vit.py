"""Faithfulness on the demo's MNIST ViT: most-relevant-first AOPC of attribution methods.

Trains the demo's ViT exactly as ``relscope demo --model vit`` does (all ten digits, 400
per class, the square on 30% of the 3s, 8 epochs, seed 0), takes the same N test digits
for every method (N / 10 per class from the MNIST test split, seeded), and removes the
4 x 4 patches (the ViT's own tokens, 49 per image) most relevant first, replacing them by
0 (the MNIST background), one patch per step. The followed score is the logit of the class
predicted on the clean input; AOPC is the mean drop over the 50 points (clean included),
so larger is more faithful. The random baseline draws one patch order per sample.

    PYTHONPATH=src python benchmarks/faithfulness_vit.py --samples 200 --out result.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from relscope.attribution import get_attributor
from relscope.data.builtin import mnist_vit
from relscope.engine.clever_hans import accuracy, make_task, train_classifier
from relscope.evaluation.perturbation import perturbation_curve

METHODS = {
    "attnlrp": ("lrp", {"composite": "attnlrp"}),
    "cp_lrp": ("lrp", {"composite": "cp_lrp"}),
    "input_x_gradient": ("input_x_gradient", {}),
    "integrated_gradients (32 steps, baseline 0)": ("integrated_gradients", {"steps": 32}),
    "attention_rollout": ("attention_rollout", {}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200, help="test digits (multiple of 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    classes = list(range(10))
    task = make_task(classes, per_class=400, poisoned_class=3, fraction=0.3, seed=args.seed)
    start = time.perf_counter()
    model = train_classifier(task.images, task.labels, num_classes=10, epochs=8, lr=1e-3,
                             seed=args.seed, factory=mnist_vit)  # fmt: skip
    trained = time.perf_counter() - start
    test = make_task(classes, per_class=args.samples // 10, poisoned_class=None, fraction=0.0,
                     seed=args.seed + 1, train=False)  # fmt: skip
    x = torch.from_numpy(test.images)
    with torch.no_grad():
        target = model(x).argmax(1)
    print(f"ViT trained in {trained:.1f} s; accuracy on the {len(x)} test digits "
          f"{accuracy(model, test.images, test.labels):.1%}")  # fmt: skip

    rows = []
    for label, (name, params) in METHODS.items():
        begin = time.perf_counter()
        relevance = get_attributor(name, **params)(model, x, target).relevance
        seconds = time.perf_counter() - begin
        curve = perturbation_curve(model, x, relevance, target, patch=4, fill="zeros",
                                   batch_size=500)  # fmt: skip
        rows.append((label, curve.aopc(), seconds))
    generator = torch.Generator().manual_seed(args.seed)
    random = perturbation_curve(model, x, None, target, order="random", patch=4,
                                fill="zeros", batch_size=500, generator=generator)  # fmt: skip
    rows.append(("random patch order", random.aopc(), 0.0))

    print(f"\n| method | MoRF AOPC (mean ± s.e., {len(x)} samples) | attribution s |")
    print("|---|---|---|")
    figures = []
    for label, aopc, seconds in sorted(rows, key=lambda row: -float(row[1].mean())):
        mean, error = float(aopc.mean()), float(aopc.std() / np.sqrt(len(aopc)))
        print(f"| {label} | {mean:.3f} ± {error:.3f} | {seconds:.2f} |")
        figures.append({"method": label, "aopc": mean, "stderr": error, "seconds": seconds})
    if args.out:
        with open(args.out, "w", encoding="utf-8") as file:
            json.dump({"samples": len(x), "patch": 4, "fill": 0.0, "rows": figures}, file,
                      indent=1)  # fmt: skip


if __name__ == "__main__":
    main()
