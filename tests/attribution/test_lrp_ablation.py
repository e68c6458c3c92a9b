"""LRP's keep= (forward outputs of named layers) and ablate= (channels replaced by 0 inside
the rewritten graph): the outputs equal forward hooks on the plain model, the ablated scores
equal the plain model with those channels zeroed (relscope.evaluation.ablate), and the
ablated relevance equals LRP on a copy of the model whose weights produce those zeros."""

import copy
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from relscope.attribution import LRP, get_composite
from relscope.data.builtin import mnist_cnn
from relscope.errors import ConfigError
from relscope.evaluation import ablate


class Residual(nn.Module):
    """A stem, one residual block (``h + conv2(relu1(conv1(h)))``) and a dense head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(2, 6, 3, padding=1)
        self.act = nn.ReLU()
        self.conv1 = nn.Conv2d(6, 6, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.head = nn.Linear(6 * 8 * 8, 5)

    def forward(self, x):
        h = self.act(self.stem(x))
        h = self.relu2(h + self.conv2(self.relu1(self.conv1(h))))
        return self.head(h.flatten(1))


class Scalar(nn.Module):
    """A model with a scalar intermediate (``sum_1``): no channels to ablate there."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc = nn.Linear(2 * 4 * 4, 3)

    def forward(self, x):
        h = self.conv(x)
        return self.fc((h * h.sum()).flatten(1))


def _mnist():
    torch.manual_seed(0)
    model = mnist_cnn().double().eval()
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1)).double()
    return model, x


def _residual():
    torch.manual_seed(2)
    model = Residual().double().eval()
    x = torch.rand(3, 2, 8, 8, generator=torch.Generator().manual_seed(3)).double()
    return model, x


NETS = {"mnist": _mnist, "residual": _residual}
COMPOSITE = {"composite": "epsilon_gamma_box", "low": 0.0, "high": 1.0}
# (net, conv layer, the ReLU right after it, channels)
CASES = [
    ("mnist", "0", "1", [0, 5, 9]),
    ("mnist", "3", "4", [1, 2, 30]),
    ("residual", "conv1", "relu1", [0, 4]),
    ("residual", "stem", "act", [3]),
]


def _lrp(model):
    return LRP(model, **COMPOSITE)


@pytest.fixture(scope="module")
def nets():
    return {name: make() for name, make in NETS.items()}


def _hooked(model, x, layer):
    seen = {}
    module = model.get_submodule(layer)
    handle = module.register_forward_hook(lambda _m, _i, out: seen.setdefault("out", out))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return seen["out"]


@pytest.mark.parametrize(
    ("net", "layer"), [("mnist", "1"), ("mnist", "3"), ("residual", "relu1"), ("residual", "conv2")]
)
def test_kept_outputs_equal_a_forward_hook_on_the_plain_model(nets, net, layer):
    model, x = nets[net]
    with _lrp(model) as lrp:
        result = lrp(x, 1, keep=[layer])
    assert set(result.activations) == {layer}
    assert not result.activations[layer].requires_grad
    torch.testing.assert_close(result.activations[layer], _hooked(model, x, layer))


@pytest.mark.parametrize(("net", "conv", "relu", "channels"), CASES)
@pytest.mark.parametrize("which", ["conv", "relu"])
def test_ablated_scores_equal_the_plain_model_with_the_channels_zeroed(
    nets, net, conv, relu, channels, which
):
    model, x = nets[net]
    layer = conv if which == "conv" else relu
    with _lrp(model) as lrp:
        result = lrp(x, 2, ablate={layer: channels}, keep=[layer])
        plain = lrp(x, 2)
    reference = ablate(model, x, layer, channels).output
    torch.testing.assert_close(result.output, reference, atol=1e-5, rtol=0)
    assert not torch.allclose(plain.output, reference)  # the ablation changes something
    kept = result.activations[layer]
    assert (kept[:, channels] == 0).all()  # the kept output is what the next layers saw


def _baked(model, conv, channels):
    """A copy whose convolution ``conv`` computes 0 in ``channels`` (weights and bias)."""
    copied = copy.deepcopy(model)
    module = copied.get_submodule(conv)
    with torch.no_grad():
        module.weight[channels] = 0
        module.bias[channels] = 0
    return copied


@pytest.mark.parametrize(("net", "conv", "relu", "channels"), CASES)
@pytest.mark.parametrize("which", ["conv", "relu"])
def test_ablated_relevance_equals_lrp_on_a_copy_with_the_channels_baked_in(
    nets, net, conv, relu, channels, which
):
    model, x = nets[net]
    target = torch.tensor([0, 3, 4])
    with _lrp(model) as lrp:
        result = lrp(x, target, ablate={conv if which == "conv" else relu: channels}, record=[conv])
        plain = lrp(x, target)
    with _lrp(_baked(model, conv, channels)) as lrp:
        reference = lrp(x, target, record=[conv])
    torch.testing.assert_close(result.output, reference.output, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(result.relevance, reference.relevance, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(result.layers[conv], reference.layers[conv], rtol=1e-9, atol=1e-12)
    assert (result.layers[conv][:, channels] == 0).all()  # an ablated channel gets nothing
    assert not torch.allclose(plain.relevance, reference.relevance)


def test_no_channels_give_the_plain_result_and_all_channels_a_finite_one(nets):
    model, x = nets["mnist"]
    with _lrp(model) as lrp:
        plain = lrp(x, 1, record=["3"])
        none = lrp(x, 1, record=["3"], ablate={"3": []})
        masked = lrp(x, 1, record=["3"], ablate={"3": torch.zeros(32, dtype=torch.bool)})
        everything = lrp(x, 1, ablate={"4": list(range(32))})
    for same in (none, masked):
        assert torch.equal(same.output, plain.output)
        assert torch.equal(same.relevance, plain.relevance)
        assert torch.equal(same.layers["3"], plain.layers["3"])
    assert torch.isfinite(everything.output).all()
    assert torch.isfinite(everything.relevance).all()
    reference = ablate(model, x, "4", list(range(32))).output
    torch.testing.assert_close(everything.output, reference, atol=1e-5, rtol=0)
    assert (everything.relevance == 0).all()  # nothing reaches the input through layer 4


def test_a_per_sample_mask_ablates_each_sample_apart(nets):
    model, x = nets["residual"]
    mask = torch.zeros(3, 6, dtype=torch.bool)
    mask[0, 1] = mask[2, [0, 5]] = True
    with _lrp(model) as lrp:
        together = lrp(x, 1, ablate={"relu1": mask})
        alone = [lrp(x[i : i + 1], 1, ablate={"relu1": mask[i]}) for i in range(3)]
        # several targets per sample: the samples are repeated, and so are their masks
        multi = lrp(x, torch.tensor([[1, 2]] * 3), ablate={"relu1": mask}, keep=["relu1"])
    for i, single in enumerate(alone):
        torch.testing.assert_close(together.output[i : i + 1], single.output)
        torch.testing.assert_close(together.relevance[i : i + 1], single.relevance)
    torch.testing.assert_close(multi.relevance[:, 0], together.relevance)
    assert multi.activations["relu1"].shape == (3, 6, 8, 8)


def test_the_inf_of_a_channel_does_not_become_nan_when_ablated():
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2)).double()
    with torch.no_grad():
        model[0].bias[1] = float("inf")
    x = torch.rand(1, 1, 2, 2).double()
    with LRP(model, "epsilon") as lrp:
        result = lrp(x, 0, ablate={"1": [1]})
    assert torch.isfinite(result.output).all()
    assert torch.isfinite(result.relevance).all()


def test_threads_each_get_their_own_ablation(nets):
    model, x = nets["mnist"]
    jobs = [(i % 3, [i % 16, (3 * i) % 16]) for i in range(12)]

    def run(job):
        target, channels = job
        result = lrp(x, target, ablate={"1": channels}, keep=["0"])
        return result.output, result.relevance, result.activations["0"]

    with _lrp(model) as lrp:
        with ThreadPoolExecutor(4) as pool:
            parallel = list(pool.map(run, jobs))
        serial = [run(job) for job in jobs]
    for a, b in zip(parallel, serial, strict=True):
        for u, v in zip(a, b, strict=True):
            assert torch.equal(u, v)
    assert not torch.equal(serial[0][0], serial[1][0])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ablate": {"nope": [1]}}, r"cannot ablate unknown layers \['nope'\] \(the layers are 0,"),
        ({"keep": ["nope"]}, "cannot keep unknown layers"),
        ({"ablate": {"3": [32]}}, r"channel 32 out of range for layer 3 \(it has 32 channels"),
        ({"ablate": {"3": [-1]}}, "channel -1 out of range"),
        ({"ablate": {"3": [1.5]}}, "must be integer indices or a bool mask"),
        ({"ablate": {"3": torch.ones(2, 31, dtype=torch.bool)}}, "mask of layer 3 has shape"),
    ],
)
def test_bad_ablations_are_one_line_config_errors(nets, options, message):
    model, x = nets["mnist"]
    with _lrp(model) as lrp, pytest.raises(ConfigError, match=message) as caught:
        lrp(x, 0, **options)
    assert "\n" not in str(caught.value)


def test_a_layer_without_channels_cannot_be_ablated():
    model = Scalar().double()
    with LRP(model, "epsilon") as lrp, pytest.raises(ConfigError, match=r"not \(batch, channels"):
        lrp(torch.rand(1, 1, 6, 6).double(), 0, ablate={"sum_1": [0]})


def test_a_batch_norm_merged_by_a_canonizer_is_ablated_in_its_fused_layer():
    torch.manual_seed(4)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3)
    ).double()
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
    model.eval()
    x = torch.rand(2, 1, 6, 6).double()
    composite = get_composite("epsilon_gamma_box", low=0.0, high=1.0)
    with LRP(model, composite) as lrp:
        result = lrp(x, 1, ablate={"1": [2]}, keep=["1"])
        assert lrp._traced.merged == {"1": "0"}  # the case this test is about
    torch.testing.assert_close(result.output, ablate(model, x, "1", [2]).output)
    expected = _hooked(model, x, "1").clone()
    expected[:, 2] = 0
    torch.testing.assert_close(result.activations["1"], expected)


@pytest.fixture(scope="module")
def mnist_engine():
    model, x = _mnist()
    lrp = _lrp(model)
    with lrp:
        yield model, x, lrp


@settings(max_examples=20, deadline=None)
@given(
    layer=st.sampled_from(["3", "4", "7"]),
    picks=st.lists(st.integers(0, 31), max_size=32),
    target=st.integers(0, 9),
)
def test_any_channel_subset_scores_like_the_hooked_model(mnist_engine, layer, picks, target):
    model, x, lrp = mnist_engine
    result = lrp(x, target, ablate={layer: picks})
    reference = ablate(model, x, layer, picks).output if picks else model(x).detach()
    torch.testing.assert_close(result.output, reference, atol=1e-5, rtol=0)


class Untraceable(nn.Module):
    """Control flow on data: LRP falls back to rules on the leaf modules."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        h = self.relu(self.conv(x))
        if h.sum() > 0:
            h = h * 1
        return self.fc(h.flatten(1))


def test_the_module_level_fallback_keeps_and_ablates_too():
    torch.manual_seed(5)
    model = Untraceable().double()
    x = torch.rand(2, 1, 6, 6).double()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with LRP(model, "epsilon") as lrp:
            result = lrp(x, 0, ablate={"relu": [1, 2]}, keep=["conv"])
    assert any("cannot be traced" in str(w.message) for w in caught)
    torch.testing.assert_close(result.output, ablate(model, x, "relu", [1, 2]).output)
    torch.testing.assert_close(result.activations["conv"], _hooked(model, x, "conv"))


def test_a_compiled_engine_refuses_keep_and_ablate(nets):
    model, x = nets["residual"]
    with LRP(model, "epsilon", compile=True) as lrp:
        for options in ({"keep": ["conv1"]}, {"ablate": {"conv1": [0]}}):
            with pytest.raises(ConfigError, match="without compile"):
                lrp(x, 0, **options)
