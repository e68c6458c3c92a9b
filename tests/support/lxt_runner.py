"""Reference relevance from LXT 2.1, the published AttnLRP implementation, for relscope's tests.

Usage (in the separate environment that ``scripts/setup_lxt.sh`` creates, never relscope's)::

    .venv-lxt/bin/python tests/support/lxt_runner.py OUT_DIR [CASE ...]

For every case (all of ``CASES`` when none is named) it builds a small model with fixed seeds
and random weights from a config (nothing is downloaded), in eval mode and float64, applies
LXT's efficient-mode monkey patches (``lxt.efficient.monkey_patch`` with the model module's
``attnLRP`` or ``cp_LRP`` map) and computes LXT's relevance the documented way: gradient x
input at the image or at ``inputs_embeds``, backward from the target logit. It writes
``OUT_DIR/<case>.pt`` (``torch.save`` of a dict, loadable with ``weights_only=True``),
``OUT_DIR/<case>.json`` (the sanity checks) and ``OUT_DIR/manifest.json``; the layout and
the rules LXT applies are in ``tests/support/LXT_REFERENCE.md``.

LXT patches classes process-wide (``torch.nn.LayerNorm``, ``torch.nn.Dropout``, attention
functions, ...), so every case runs in a process of its own and no patch leaks from one case
into the next: a child forked after the imports (torch, torchvision, transformers and LXT
are imported once), or with ``--no-fork`` a fresh interpreter (the runner calling itself
with ``--one CASE``). LXT is a test tool only: relscope never imports it, and
this module imports neither LXT nor transformers at module level (pytest imports it for its
doctests in relscope's environment, where neither LXT nor transformers 4.x is installed).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

SEED = 0  # model weights (the ViT is the zoo's tiny_vit, built under the zoo's seed 0)
INPUT_SEED = 1  # images and token ids
BATCH = 2
SEQUENCE = 12  # tokens per text sample
VOCAB = 100
MASKED_TAIL = 3  # BERT: the last 3 tokens of the second sample are padding

# Keyword arguments of the Hugging Face configs; the relscope side builds the same
# architecture from the same keywords in its own environment and loads the saved state_dict.
GPT2_CONFIG = {"vocab_size": VOCAB, "n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": 64}
LLAMA_CONFIG = {
    "vocab_size": VOCAB,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
}
BERT_CONFIG = {
    "vocab_size": VOCAB,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
    "num_labels": 3,
}
VIT_KWARGS = {
    "image_size": 32,
    "patch_size": 8,
    "num_layers": 2,
    "num_heads": 2,
    "hidden_dim": 32,
    "mlp_dim": 64,
    "num_classes": 10,
}


@dataclass(frozen=True)
class Case:
    family: str  # "vit", "gpt2", "llama" or "bert"
    lxt_map: str  # the name of the patch map in lxt.efficient.models.<module>


CASES: dict[str, Case] = {
    # LXT 2.1 ships only cp_LRP for torchvision's ViT; attnLRP is composed from LXT's own
    # patch functions (vit_attnlrp_map).
    "vit_attnlrp": Case("vit", "attnLRP"),
    "vit_cp_lrp": Case("vit", "cp_LRP"),
    "gpt2_attnlrp": Case("gpt2", "attnLRP"),
    "gpt2_cp_lrp": Case("gpt2", "cp_LRP"),
    "llama_attnlrp": Case("llama", "attnLRP"),
    "llama_cp_lrp": Case("llama", "cp_LRP"),
    "bert_attnlrp": Case("bert", "attnLRP"),  # LXT 2.1 has no cp_LRP map for BERT
}

# The logits of the patched model must equal the unpatched model's (LXT changes only the
# backward pass). Llama computes its RMSNorm and its eager softmax in float32 even in a
# float64 model (transformers' own code, patched or not), hence the looser bound there.
LOGIT_TOLERANCE = {"vit": 1e-12, "gpt2": 1e-12, "llama": 1e-6, "bert": 1e-12}


# --------------------------------------------------------------------------------------------
# Models and inputs


def _tests_dir_on_path() -> None:
    tests = str(Path(__file__).resolve().parents[1])
    if tests not in sys.path:
        sys.path.insert(0, tests)


def import_torchvision() -> Any:
    """torchvision 0.28.0 with the CPU torch, through the zoo's work-around (placeholder
    schemas for its compiled operators). Call before importing transformers, which imports
    torchvision when it is installed."""
    _tests_dir_on_path()
    from support import zoo

    return zoo.import_torchvision()


def randomize_transformer_(model: nn.Module) -> nn.Module:
    """Give every parameter of a Hugging Face model random values (in place, global RNG).

    Hugging Face initialises linear layers and embeddings with std 0.02, norm scales with 1
    and biases with 0: attention is then almost uniform and every bias and norm scale is
    trivial, which would make a comparison of LRP rules weak. Here embeddings are N(0, 1),
    weight matrices N(0, 1/fan_in), norm scales U(0.5, 1.5) and biases N(0, 0.1^2). A tied
    parameter (GPT-2's lm_head is wte) is drawn once, as the embedding.
    """
    from transformers.pytorch_utils import Conv1D

    seen: set[int] = set()
    with torch.no_grad():
        for module in model.modules():
            for name, parameter in module.named_parameters(recurse=False):
                if id(parameter) in seen:
                    continue
                seen.add(id(parameter))
                if isinstance(module, nn.Embedding):
                    parameter.normal_(0.0, 1.0)
                elif name == "bias":
                    parameter.normal_(0.0, 0.1)
                elif name == "weight" and parameter.dim() == 1:
                    parameter.uniform_(0.5, 1.5)
                elif isinstance(module, Conv1D):  # GPT-2's Conv1D: weight (in, out)
                    parameter.normal_(0.0, parameter.shape[0] ** -0.5)
                elif isinstance(module, nn.Linear):
                    parameter.normal_(0.0, parameter.shape[1] ** -0.5)
                else:
                    raise TypeError(f"no initialisation for {type(module).__name__}.{name}")
    return model


def model_module(family: str) -> Any:
    """The module whose classes LXT's patch map for ``family`` targets."""
    if family == "vit":
        return import_torchvision().models.vision_transformer
    import_torchvision()
    if family == "gpt2":
        from transformers.models.gpt2 import modeling_gpt2 as module
    elif family == "llama":
        from transformers.models.llama import modeling_llama as module
    elif family == "bert":
        from transformers.models.bert import modeling_bert as module
    else:
        raise ValueError(family)
    return module


def config_kwargs(family: str) -> dict[str, Any]:
    return {"vit": VIT_KWARGS, "gpt2": GPT2_CONFIG, "llama": LLAMA_CONFIG, "bert": BERT_CONFIG}[
        family
    ]


def build_model(
    family: str, attn_implementation: str = "eager", state_dict: dict | None = None
) -> nn.Module:
    """A fresh float64 model in eval mode: seeded random weights, or ``state_dict``.

    The classes are looked up in the model module at call time, so a model built after
    ``monkey_patch`` is made of the patched classes (for BERT, LXT replaces the classes of
    ``modeling_bert`` with its own copies; existing instances would keep the old ones).
    """
    if family == "vit":
        if state_dict is None:
            _tests_dir_on_path()
            from support import zoo

            return zoo.MODELS["tiny_vit"]().double().eval()
        model = model_module("vit").VisionTransformer(**VIT_KWARGS)
    else:
        module = model_module(family)
        import transformers

        config_name, model_name = {
            "gpt2": ("GPT2Config", "GPT2LMHeadModel"),
            "llama": ("LlamaConfig", "LlamaForCausalLM"),
            "bert": ("BertConfig", "BertForSequenceClassification"),
        }[family]
        config_class = getattr(transformers, config_name)
        model_class = getattr(module, model_name)
        config = config_class(**config_kwargs(family), attn_implementation=attn_implementation)
        if state_dict is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(SEED)
                model = randomize_transformer_(model_class(config))
        else:
            model = model_class(config)
    model = model.double().eval()
    if state_dict is not None:
        model.load_state_dict(state_dict, strict=True)
    return model


def make_inputs(family: str, model: nn.Module) -> dict[str, torch.Tensor]:
    """The case's inputs: ``image``, or ``input_ids``, ``attention_mask``, ``inputs_embeds``."""
    generator = torch.Generator().manual_seed(INPUT_SEED)
    if family == "vit":
        return {"image": torch.randn(BATCH, 3, 32, 32, generator=generator, dtype=torch.float64)}
    # Token 0 is BERT's padding index; drawing from 1.. keeps every embedding non-trivial.
    input_ids = torch.randint(1, VOCAB, (BATCH, SEQUENCE), generator=generator)
    attention_mask = torch.ones(BATCH, SEQUENCE, dtype=torch.int64)
    if family == "bert":
        attention_mask[1, -MASKED_TAIL:] = 0
    with torch.no_grad():
        inputs_embeds = model.get_input_embeddings()(input_ids)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "inputs_embeds": inputs_embeds.detach().clone(),
    }


def target_logits(family: str, model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits over the classes the target is chosen from, shape (batch, classes): the image
    classes, the next-token logits at the last position, or BERT's sequence labels."""
    if family == "vit":
        return model(inputs["image"])
    kwargs = {"inputs_embeds": inputs["inputs_embeds"], "attention_mask": inputs["attention_mask"]}
    if family == "bert":
        return model(**kwargs).logits
    return model(**kwargs, use_cache=False).logits[:, -1, :]


# --------------------------------------------------------------------------------------------
# One case


def relevance_of(
    family: str, model: nn.Module, inputs: dict[str, torch.Tensor], target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, input x gradient) of the (patched) model, backward from the target logits.

    The samples of a batch do not interact (eval mode), so one backward pass from the sum of
    each sample's target logit gives every sample its own relevance.
    """
    key = "image" if family == "vit" else "inputs_embeds"
    leaf = inputs[key].detach().clone().requires_grad_(True)
    logits = target_logits(family, model, {**inputs, key: leaf})
    logits.gather(1, target[:, None]).sum().backward()
    return logits.detach(), (leaf * leaf.grad).detach()


def vit_attnlrp_map() -> dict:
    """attnLRP for torchvision's ViT, composed from LXT 2.1's own patch functions.

    LXT 2.1 ships only ``cp_LRP`` for torchvision's ViT (``lxt.efficient.models.vit_torch``:
    LayerNorm and GELU as in attnLRP, the attention's queries and keys detached). This map
    keeps its LayerNorm and GELU patches and replaces the attention patch by LXT's attnLRP
    attention rule, the one ``lxt.efficient.patches.wrap_attention_forward`` applies to every
    Hugging Face attention function: the gradients of query, key and value divided by 4, 4
    and 2 (``lxt.efficient.rules.divide_gradient``). ``nn.MultiheadAttention`` projects its
    ``query``, ``key`` and ``value`` arguments linearly, so dividing the gradient at these
    arguments divides it at the projected q, k and v. Only the composition is the runner's;
    every rule in it is LXT's.
    """
    from functools import partial

    from lxt.efficient.patches import layer_norm_forward, non_linear_forward, patch_method
    from lxt.efficient.rules import divide_gradient

    vision_transformer = model_module("vit")

    def attnlrp_multi_head_attention_forward(self, query, key, value, *args, **kwargs):
        query, key = divide_gradient(query, 4), divide_gradient(key, 4)
        return self.original_forward(query, key, divide_gradient(value, 2), *args, **kwargs)

    return {
        vision_transformer.nn.GELU: partial(patch_method, non_linear_forward, keep_original=True),
        vision_transformer.nn.LayerNorm: partial(patch_method, layer_norm_forward),
        vision_transformer.nn.MultiheadAttention: partial(
            patch_method, attnlrp_multi_head_attention_forward, keep_original=True
        ),
    }


def patch_map_of(case: Case) -> dict:
    """LXT's patch map for the case, looked up by name when the case runs."""
    if case.family == "vit" and case.lxt_map == "attnLRP":
        return vit_attnlrp_map()
    from lxt.efficient import models as lxt_models

    module_name = {"vit": "vit_torch", "gpt2": "gpt2", "llama": "llama", "bert": "bert"}
    return getattr(getattr(lxt_models, module_name[case.family]), case.lxt_map)


def apply_lxt(case: Case) -> list[str]:
    """Apply LXT's patch map for the case; returns the names of the patched targets."""
    with warnings.catch_warnings():
        # zennit serves only LXT's optional Gamma-rule patches, which these cases do not use.
        warnings.filterwarnings("ignore", message="'zennit' library is not available")
        import lxt.efficient

        module = model_module(case.family)
        patch_map = patch_map_of(case)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lxt.efficient.monkey_patch(module, patch_map, verbose=False)
    failed = [str(w.message) for w in caught if "patch" in str(w.message).lower()]
    if failed:
        raise RuntimeError(f"LXT could not patch: {failed}")
    return [getattr(target, "__name__", str(target)) for target in patch_map]


def _max_abs(tensor: torch.Tensor) -> float:
    return float(tensor.abs().max()) if tensor.numel() else 0.0


def run_case(name: str, out_dir: Path) -> dict[str, Any]:
    """Compute and write one case; returns its checks (also written as <case>.json)."""
    import importlib.metadata

    torch.set_num_threads(1)  # tiny float64 models; the machine is shared
    case = CASES[name]
    started = time.perf_counter()

    model = build_model(case.family)
    state_dict = {k: v.detach().clone() for k, v in model.state_dict().items()}
    inputs = make_inputs(case.family, model)
    with torch.no_grad():
        reference_logits = target_logits(case.family, model, inputs)
    target = reference_logits.argmax(dim=1)

    patched = apply_lxt(case)
    implementations = ["eager", "sdpa"] if case.family != "vit" else ["torch"]
    results = {}
    for implementation in implementations:
        lxt_model = build_model(case.family, implementation, state_dict)
        results[implementation] = relevance_of(case.family, lxt_model, inputs, target)
    logits, relevance = results[implementations[0]]

    chosen = reference_logits.gather(1, target[:, None])[:, 0]
    sums = relevance.flatten(1).sum(1)
    record: dict[str, Any] = {
        "case": name,
        "family": case.family,
        "lxt_map": case.lxt_map,
        "attn_implementation": implementations[0],
        "patched": patched,
        "config": config_kwargs(case.family),
        "state_dict": state_dict,
        **inputs,
        "target": target,
        "logits": logits,
        "logits_unpatched": reference_logits,
        "relevance": relevance,
    }
    if case.family != "vit":
        record["relevance_tokens"] = relevance.sum(-1)
        if case.family in ("gpt2", "llama"):
            record["target_position"] = -1  # next-token logits of the last position
    torch.save(record, out_dir / f"{name}.pt")

    tensors = [v for v in record.values() if torch.is_tensor(v) and v.is_floating_point()]
    checks: dict[str, Any] = {
        "case": name,
        "lxt_map": case.lxt_map,
        "finite": all(bool(torch.isfinite(t).all()) for t in tensors),
        "max_abs_logit_difference_to_unpatched": _max_abs(logits - reference_logits),
        "target": target.tolist(),
        "target_logit": chosen.tolist(),
        "relevance_sum": sums.tolist(),
        "relevance_sum_minus_target_logit": (sums - chosen).tolist(),
        "max_abs_relevance": _max_abs(relevance),
        "seconds": None,
        "versions": {
            package: importlib.metadata.version(package)
            for package in ("lxt", "torch", "torchvision")
            + (("transformers",) if case.family != "vit" else ())
        },
    }
    if "sdpa" in results:
        sdpa_logits, sdpa_relevance = results["sdpa"]
        checks["sdpa_max_abs_logit_difference"] = _max_abs(sdpa_logits - logits)
        checks["sdpa_max_abs_relevance_difference"] = _max_abs(sdpa_relevance - relevance)
    if case.family == "bert":
        masked = record["relevance_tokens"][1, -MASKED_TAIL:]
        checks["max_abs_relevance_of_masked_tokens"] = _max_abs(masked)
    checks["seconds"] = round(time.perf_counter() - started, 3)
    checks["ok"] = bool(
        checks["finite"]
        and checks["max_abs_logit_difference_to_unpatched"] <= LOGIT_TOLERANCE[case.family]
    )
    (out_dir / f"{name}.json").write_text(json.dumps(checks, indent=2) + "\n")
    return checks


# --------------------------------------------------------------------------------------------
# Command line


def preload() -> None:
    """Import what every case needs (torch, torchvision, transformers' model modules and
    LXT's modules) once, before the cases are forked from this process. Importing patches
    nothing: LXT changes classes only in ``monkey_patch``, which runs in the case's child."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="'zennit' library is not available")
        for family in ("vit", "gpt2", "llama", "bert"):
            model_module(family)
        import lxt.efficient
        import lxt.efficient.models
        import lxt.efficient.patches  # noqa: F401
    _tests_dir_on_path()
    from support import zoo  # noqa: F401


def _case_in_child(name: str, out_dir: Path) -> None:
    try:
        code = 0 if run_case(name, out_dir)["ok"] else 1
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _run_one(name: str, out_dir: Path, fork: bool) -> tuple[int, str]:
    """Run one case in a process of its own; (exit code, what it printed).

    With ``fork``, the case runs in a child forked from this process after :func:`preload`
    (the imports, 3-4 s per case, are paid once); else in a fresh interpreter (``--one``).
    Either way LXT's process-wide patches die with the case's process.
    """
    if fork:
        import multiprocessing

        child = multiprocessing.get_context("fork").Process(
            target=_case_in_child, args=(name, out_dir)
        )
        child.start()
        child.join()
        return child.exitcode, ""
    command = [sys.executable, str(Path(__file__).resolve()), "--one", str(out_dir), name]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout + done.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("cases", nargs="*", metavar="CASE", help=f"of {', '.join(CASES)}")
    parser.add_argument("--one", action="store_true", help="run the one named case in-process")
    parser.add_argument(
        "--no-fork",
        action="store_true",
        help="start a fresh interpreter per case instead of forking one after the imports",
    )
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    names = args.cases or list(CASES)
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; the cases are {', '.join(CASES)}")

    if args.one:
        if len(names) != 1:
            parser.error("--one takes exactly one case")
        checks = run_case(names[0], args.out_dir)
        return 0 if checks["ok"] else 1

    started = time.perf_counter()
    # A process per case: LXT's patches are process-wide.
    fork = not args.no_fork and hasattr(os, "fork")
    if fork:
        torch.set_num_threads(1)
        preload()
    runs = [_run_one(name, args.out_dir, fork) for name in names]
    summary = {}
    failed = []
    for name, (code, output) in zip(names, runs, strict=True):
        if output.strip():
            print(output.rstrip(), file=sys.stderr)
        path = args.out_dir / f"{name}.json"
        checks = json.loads(path.read_text()) if path.exists() else {"ok": False}
        summary[name] = checks
        if code != 0 or not checks.get("ok"):
            failed.append(name)
        status = "ok" if name not in failed else "FAILED"
        seconds = checks.get("seconds") or math.nan
        difference = checks.get("max_abs_logit_difference_to_unpatched", math.nan)
        gap = checks.get("relevance_sum_minus_target_logit")
        print(
            f"{name:14s} {status:6s} {seconds:6.2f} s  |logits - unpatched| {difference:.1e}"
            f"  sum(R) - logit {gap}"
        )
    manifest = {
        "cases": summary,
        "failed": failed,
        "seconds": round(time.perf_counter() - started, 3),
    }
    (args.out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{len(names)} cases, {len(failed)} failed, in {manifest['seconds']} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
