"""Attribution speed and peak memory: relscope's composites against the plain gradient.

Every (model, batch, method) runs in a fresh subprocess so that its peak resident memory is
its own: after set-up the kernel's peak counter is reset, the method runs ``warmup`` +
``repeats`` times, and the median time and the peak above the set-up baseline are kept.
Ratios are taken against the plain gradient measured in the same run: the gradient of the
target logit with respect to the input with all parameters frozen (one forward plus one
input-gradient backward), the floor no attribution can beat.

With ``--anchors-python PATH`` (a Python environment holding zennit and captum, never a
relscope dependency) the reference harness ``shared/anchors/bench_attribution.py`` measures
zennit's composites and captum's LRP on the same machine in the same run.

Usage:
  python benchmarks/attribution.py        # VGG-16 and ResNet-50, batch 8 and 1
  python benchmarks/attribution.py --models vgg16 --batches 8 --repeats 5 \
      --anchors-python /path/to/anchors-venv/bin/python
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MARKER = "RELSCOPE_BENCH:"
METHODS = ("forward", "gradient", "epsilon_gamma_box", "epsilon_plus_flat", "epsilon_alpha2_beta1")
ANCHOR_METHODS = ("gradient", "zennit_egb", "zennit_epf", "zennit_ea2b1", "captum_lrp")


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def setup(args: argparse.Namespace):
    """Model, input and target of one configuration (random weights, seed 0)."""
    import torch

    sys.path.insert(0, str(ROOT / "tests"))
    from support.zoo import import_torchvision

    torch.set_num_threads(args.threads)
    torchvision = import_torchvision()
    torch.manual_seed(0)
    if args.model in LANGUAGE_MODELS:
        return language_setup(args)
    model = getattr(torchvision.models, args.model)(weights=None).eval().to(args.device)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    x = torch.randn(args.batch, 3, 224, 224, device=args.device)
    with torch.no_grad():
        target = model(x).argmax(1)
    return model, x, target


#: Language models: GPT-2-small-sized (124 M parameters, random weights), explained at its
#: input embeddings for the next token after ``--sequence`` tokens.
LANGUAGE_MODELS = ("gpt2_small",)


class _NextToken:
    """The language model as a function of its input embeddings: next-token logits."""

    def __new__(cls, model):
        import torch

        class NextToken(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, embeddings):
                return self.model(inputs_embeds=embeddings).logits[:, -1]

        return NextToken()


def language_setup(args: argparse.Namespace):
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    config = transformers.GPT2Config(attn_implementation="sdpa")  # GPT-2 small's sizes
    model = transformers.GPT2LMHeadModel(config).eval().to(args.device)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    ids = torch.randint(0, config.vocab_size, (args.batch, args.sequence), device=args.device)
    with torch.no_grad():
        x = model.get_input_embeddings()(ids)
    wrapped = _NextToken(model)
    with torch.no_grad():
        target = wrapped(x).argmax(1)
    return wrapped, x, target


def method_runner(args, method: str, model, x, target):
    """``(run, context)``: a function computing ``method`` once, and its LRP context."""
    import torch

    from relscope.attribution import LRP

    with torch.no_grad():
        classes = model(x[:1]).shape[1]
    onehot = torch.nn.functional.one_hot(target, classes).to(x.dtype)
    if method == "forward":

        def run():
            with torch.no_grad():
                return model(x)

        return run, None
    if method == "gradient":

        def run():
            leaf = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(model(leaf), leaf, onehot)
            return grad

        return run, None
    name, _, mode = method.partition(":")
    params = {}
    if name == "epsilon_gamma_box":
        from support.zoo import imagenet_bounds

        low, high = imagenet_bounds()
        params = {"low": low.to(args.device), "high": high.to(args.device)}
    # Hugging Face models are not traceable: their rules are applied while they run.
    trace = args.model not in LANGUAGE_MODELS
    context = LRP(model, name, compile=mode == "compiled", trace=trace, **params)
    context.__enter__()

    def run():
        return context(x, target).relevance

    return run, context


def worker(args: argparse.Namespace) -> None:
    import torch

    model, x, target = setup(args)
    run, context = method_runner(args, args.method, model, x, target)

    def synchronized():
        out = run()
        if args.device == "cuda":
            torch.cuda.synchronize()
        return out

    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    baseline = _status_kib("VmRSS")
    first = synchronized()
    for _ in range(max(args.warmup - 1, 0)):
        synchronized()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        synchronized()
        times.append(time.perf_counter() - start)
    peak = _status_kib("VmHWM")
    if context is not None:
        context.__exit__(None, None, None)
    result = {
        "model": args.model,
        "batch": args.batch,
        "method": args.method,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "peak_delta_mib": (peak - baseline) / 1024 if peak and baseline else None,
        "finite": bool(torch.isfinite(first).all()),
    }
    if args.device == "cuda":
        result["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print(MARKER + json.dumps(result), flush=True)


def interleaved_worker(args: argparse.Namespace) -> None:
    """Time all methods round-robin in one process: machine speed drifts by 10-20% over
    minutes here, and a ratio taken inside one round cancels that drift."""
    import torch

    model, x, target = setup(args)
    methods = args.methods.split(",")
    runners = {m: method_runner(args, m, model, x, target)[0] for m in methods}
    for run in runners.values():  # warm-up (and compilation) outside the timings
        for _ in range(args.warmup):
            run()
    times: dict[str, list[float]] = {m: [] for m in methods}
    for _ in range(args.repeats):
        for method, run in runners.items():
            start = time.perf_counter()
            run()
            if args.device == "cuda":
                torch.cuda.synchronize()
            times[method].append(time.perf_counter() - start)
    ratios = {
        m: statistics.median(t / g for t, g in zip(times[m], times["gradient"], strict=True))
        for m in methods
    }
    print(MARKER + json.dumps({"times": times, "ratios": ratios}), flush=True)


def _spawn(args: argparse.Namespace, mode: str, model: str, batch: int, extra: list[str]):
    """Run a worker subprocess; its result line as a dict, or ``{"error": stderr}``."""
    command = [
        sys.executable, str(Path(__file__).resolve()), mode, "--model", model,
        "--batch", str(batch), "--repeats", str(args.repeats), "--warmup", str(args.warmup),
        "--threads", str(args.threads), "--device", args.device,
        "--sequence", str(args.sequence), *extra,
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    if mode == "--worker":
        # glibc keeps freed blocks below its (self-raising) mmap threshold in the heap, so
        # VmHWM drifted by 100 MiB between runs of one configuration; with a fixed threshold
        # every tensor is its own mapping and VmHWM is the peak of live memory.
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    process = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    for line in process.stdout.splitlines():
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER) :])
    return {"error": process.stderr[-2000:]}


def run_interleaved(args: argparse.Namespace, model: str, batch: int) -> dict:
    methods = list(dict.fromkeys(["gradient", *args.methods.split(",")]))
    return _spawn(args, "--interleaved-worker", model, batch, ["--methods", ",".join(methods)])


def run_config(args: argparse.Namespace, model: str, batch: int, method: str) -> dict:
    result = _spawn(args, "--worker", model, batch, ["--method", method])
    return (
        result
        if "error" not in result
        else {"model": model, "batch": batch, "method": method, **result}
    )


def run_anchors(args: argparse.Namespace, model: str, batch: int) -> list[dict]:
    harness = ROOT.parent / "shared" / "anchors" / "bench_attribution.py"
    out = Path(args.out).with_name(f"anchors-{model}-{batch}.json")
    command = [
        args.anchors_python, str(harness), "--models", model, "--batches", str(batch),
        "--methods", ",".join(ANCHOR_METHODS), "--repeats", str(args.repeats),
        "--warmup", str(args.warmup), "--out", str(out),
    ]  # fmt: skip
    subprocess.run(command, check=False, capture_output=True, text=True)
    try:
        rows = json.loads(out.read_text()).get("results", [])
    except (OSError, json.JSONDecodeError):
        return []
    return [
        {
            "model": r.get("model"),
            "batch": r.get("batch"),
            "method": r.get("method"),
            "median_s": r.get("median_s"),
            "peak_delta_mib": r.get("peak_delta_mib"),
            "source": "anchors",
        }
        for r in rows
        if r.get("median_s") is not None
    ]


def table(rows: list[dict]) -> str:
    lines = [
        "| model | batch | method | s / batch | x gradient | peak MiB | x gradient |",
        "|---|---|---|---|---|---|---|",
    ]
    for (model, batch), group in _groups(rows).items():
        base = {r.get("source", "relscope"): r for r in group if r["method"] == "gradient"}
        for row in group:
            reference = base.get(row.get("source", "relscope"))
            if "error" in row:
                lines.append(f"| {model} | {batch} | {row['method']} | error | | | |")
                continue
            ratio = row["median_s"] / reference["median_s"] if reference else float("nan")
            peak = row.get("peak_delta_mib") or float("nan")
            ref_peak = (reference or {}).get("peak_delta_mib") or float("nan")
            name = row["method"] + (" (anchors run)" if row.get("source") == "anchors" else "")
            lines.append(
                f"| {model} | {batch} | {name} | {row['median_s']:.2f} | {ratio:.2f} | "
                f"{peak:.0f} | {peak / ref_peak:.2f} |"
            )
    return "\n".join(lines)


def _groups(rows: list[dict]) -> dict:
    groups: dict = {}
    for row in rows:
        groups.setdefault((row["model"], row["batch"]), []).append(row)
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--interleaved-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="vgg16")
    parser.add_argument("--method", default="gradient")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--sequence", type=int, default=128, help="tokens (language models)")
    parser.add_argument("--models", default="vgg16,resnet50")
    parser.add_argument("--batches", default="8,1")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--anchors-python", default=None)
    parser.add_argument(
        "--interleave",
        action="store_true",
        help="also time all methods round-robin in one process (ratios immune to drift)",
    )
    parser.add_argument("--out", default=str(HERE / "results" / "attribution.json"))
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if args.interleaved_worker:
        interleaved_worker(args)
        return
    rows = []
    interleaved = {}
    for model in args.models.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            for method in args.methods.split(","):
                row = run_config(args, model, batch, method)
                rows.append(row)
                print(json.dumps(row), flush=True)
            if args.interleave:
                result = run_interleaved(args, model, batch)
                interleaved[f"{model}/{batch}"] = result
                print(json.dumps(result.get("ratios", result)), flush=True)
            if args.anchors_python:
                rows += run_anchors(args, model, batch)
    import torch

    report = {
        "date": time.strftime("%Y-%m-%d"),
        "device": args.device
        if args.device != "cpu"
        else f"cpu ({platform.processor() or platform.machine()}, {args.threads} threads)",
        "torch": torch.__version__,
        "repeats": args.repeats,
        "results": rows,
        "interleaved": interleaved,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(table(rows))
    for key, result in interleaved.items():
        ratios = result.get("ratios", {})
        print(
            key, "interleaved ratios to the gradient:", {k: round(v, 2) for k, v in ratios.items()}
        )


if __name__ == "__main__":
    main()
