"""One LRP object explaining batches from several threads at once gives each call the result
of a serial run: relevance, recorded layers and diagnostics never mix between calls."""

from concurrent.futures import ThreadPoolExecutor

import torch

from relscope.attribution import LRP, get_composite
from support import zoo

LAYER = "layer1.0.conv1"


def calls():
    generator = torch.Generator().manual_seed(0)
    batches = [torch.rand(2, 3, 32, 32, dtype=torch.float64, generator=generator) for _ in range(6)]
    out = []
    for index, x in enumerate(batches):
        kind = ("plain", "record", "diagnostics")[index % 3]
        out.append((x, index % 10, kind))
    return out


def explain(lrp, x, target, kind):
    if kind == "record":
        result = lrp(x, target, record=[LAYER])
        return result.relevance, result.layers[LAYER]
    if kind == "diagnostics":
        result = lrp(x, target, diagnostics=True)
        return result.relevance, torch.stack(list(result.diagnostics.sums.values()))
    return lrp(x, target).relevance, None


def test_concurrent_calls_on_one_lrp_object_equal_serial_calls():
    model = zoo.MODELS["tiny_resnet"]().double()
    jobs = calls() * 3
    with LRP(model, get_composite("epsilon_gamma_box", low=-1.0, high=2.0)) as lrp:
        with ThreadPoolExecutor(4) as pool:  # the first calls also race to build the object
            parallel = list(pool.map(lambda job: explain(lrp, *job), jobs))
        serial = [explain(lrp, *job) for job in jobs]
    for (relevance, extra), (expected, expected_extra) in zip(parallel, serial, strict=True):
        torch.testing.assert_close(relevance, expected, rtol=1e-9, atol=1e-12)
        if expected_extra is None:
            assert extra is None
        else:
            torch.testing.assert_close(extra, expected_extra, rtol=1e-9, atol=1e-12)
