"""Throughput of ``relscope attribute``: samples/s end to end, against the plain gradient.

End to end = what the command does: read the HDF5 dataset through a DataLoader, run the
model with LRP (one forward and one backward pass per batch), write the compressed, durable
attribution database. The reference is the plain gradient of the same batches (one forward
and one backward pass, nothing read or written), measured in the same process.

Models: the demo's CNN (``relscope.data.builtin:mnist_cnn``, 1 x 28 x 28, batch 64,
epsilon-gamma-box) and VGG-16 (torchvision, random weights, 3 x 224 x 224, batch 32,
epsilon-gamma-box with ImageNet-normalized bounds). Random images; weights do not change the
amount of work.

Usage (from the repository root)::

    .venv/bin/python benchmarks/attribute_throughput.py [--device cpu|cuda] [--vgg-samples 64]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

from relscope.attribution.config import method_config  # noqa: E402
from relscope.data.builtin import mnist_cnn  # noqa: E402
from relscope.data.dataset import open_dataset, write_hdf5_dataset  # noqa: E402
from relscope.engine import attribute  # noqa: E402


def vgg16() -> torch.nn.Module:
    sys.path.insert(0, str(ROOT / "tests"))
    from support.zoo import import_torchvision  # torchvision's operator work-around

    torch.manual_seed(0)
    return import_torchvision().models.vgg16(weights=None).eval()


CASES = {
    "demo CNN 1x28x28": (mnist_cnn, (1, 28, 28), 64, {"low": 0.0, "high": 1.0}),
    # (0 - mean) / std and (1 - mean) / std over the ImageNet channels: the widest box.
    "VGG-16 3x224x224": (vgg16, (3, 224, 224), 32, {"low": -2.12, "high": 2.64}),
}


def gradient_rate(model, dataset, batch: int, device: torch.device) -> float:
    """Samples/s of the plain gradient of the predicted class over the same batches."""
    warm = torch.from_numpy(next(iter(dataset.batches(batch))).data).to(device)
    model(warm.requires_grad_(True)).sum().backward()  # untimed: allocator, kernels
    start = time.perf_counter()
    for images in dataset.batches(batch):
        x = torch.from_numpy(images.data).to(device).requires_grad_(True)
        output = model(x)
        (grad,) = torch.autograd.grad(output.max(1).values.sum(), x)
        grad.cpu()
    return len(dataset) / (time.perf_counter() - start)


def measure(name: str, samples: int, device: torch.device, folder: Path) -> dict:
    factory, shape, batch, bounds = CASES[name]
    model = factory().to(device).eval()
    rng = np.random.default_rng(0)
    images = rng.random((samples, *shape), dtype=np.float32)
    labels = rng.integers(0, 10, samples)
    data = write_hdf5_dataset(folder / f"{shape[1]}.h5", images, labels)
    config = method_config({"method": "epsilon_gamma_box", "params": bounds})
    with open_dataset(data) as dataset:
        gradient = gradient_rate(model, dataset, batch, device)
        run = attribute(
            dataset, model, config, folder / f"attribution-{shape[1]}.h5",
            batch_size=batch, device=device, strategy="predicted_label",
        )  # fmt: skip
    return {
        "model": name,
        "device": str(device),
        "batch": batch,
        "samples": samples,
        "attribute_samples_per_s": run.samples_per_second,
        "gradient_samples_per_s": gradient,
        "ratio_gradient_over_attribute": gradient / run.samples_per_second,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--demo-samples", type=int, default=4096)
    parser.add_argument("--vgg-samples", type=int, default=64)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    device = torch.device(args.device)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for name, samples in zip(CASES, (args.demo_samples, args.vgg_samples), strict=True):
            results.append(measure(name, samples, device, Path(folder)))
            print(json.dumps(results[-1]), flush=True)
    out = args.out or ROOT / "benchmarks" / "results" / f"attribute-throughput-{device.type}.json"
    facts = {
        "date": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "cuda": torch.cuda.get_device_name() if device.type == "cuda" else None,
    }
    out.write_text(json.dumps({**facts, "results": results}, indent=1))
    print("| model | device | batch | samples | attribute samples/s | gradient samples/s | ratio |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['model']} | {r['device']} | {r['batch']} | {r['samples']} | "
            f"{r['attribute_samples_per_s']:.1f} | {r['gradient_samples_per_s']:.1f} | "
            f"{r['ratio_gradient_over_attribute']:.2f} |"
        )


if __name__ == "__main__":
    main()
