#!/usr/bin/env bash
# The transformer figures of issue 17 on a GPU (run on the lent device machine):
# ViT-B/16 batch 8 and GPT-2 small (sequence 128), attnlrp and cp_lrp against the plain
# gradient, and one check that the GPU relevance equals the CPU relevance in float64.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=src PYTHONUNBUFFERED=1
out="${OUT:-benchmarks/results}"
python3 - <<'PY'
import sys, torch
sys.path.insert(0, "tests")
from support.zoo import MODELS
from relscope.attribution import LRP
net = MODELS["tiny_vit"]().eval().double()
x = torch.randn(4, 3, 32, 32, dtype=torch.float64)
for composite in ("attnlrp", "cp_lrp"):
    with LRP(net, composite) as lrp:
        cpu = lrp(x).relevance
    gpu_net = MODELS["tiny_vit"]().eval().double().cuda()
    with LRP(gpu_net, composite) as lrp:
        gpu = lrp(x.cuda()).relevance.cpu()
    print(composite, "GPU vs CPU max abs difference", float((gpu - cpu).abs().max()),
          "of", float(cpu.abs().max()))
    assert torch.allclose(gpu, cpu, rtol=1e-9, atol=1e-12)
PY
python3 benchmarks/attribution.py --device cuda --models vit_b_16 --batches 8 \
  --methods forward,gradient,attnlrp,cp_lrp --repeats 10 --warmup 3 --interleave \
  --out "$out/transformers-vit-cuda.json"
python3 benchmarks/attribution.py --device cuda --models gpt2_small --batches 8 --sequence 128 \
  --methods forward,gradient,attnlrp,cp_lrp --repeats 10 --warmup 3 --interleave \
  --out "$out/transformers-gpt2-cuda.json"
