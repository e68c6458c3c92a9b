"""PatternNet / PatternAttribution against planted signals and explicit float64 formulas."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from relscope.attribution.attributors import get_attributor
from relscope.attribution.methods.patterns import PatternAttribution, PatternNet, PatternStatistics
from relscope.errors import ConfigError, FormatError, PathError

f64 = torch.float64


# Many tiny float64 operations: one torch thread (the conftest fixture).
pytestmark = pytest.mark.usefixtures("one_thread")


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.detach().flatten(), b.detach().flatten(), dim=0))


def explicit_pattern(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``cov[x, y] / (w^T cov[x, y])`` for samples ``x`` (N, D), one neuron's ``y`` (N,)."""
    cov = ((x - x.mean(0)) * (y - y.mean()).unsqueeze(1)).mean(0)
    return cov / (w @ cov)


def explicit_patterns(x, y, weight, regime=None):
    """Patterns of all neurons (rows of ``weight``) over all samples or one regime of y."""
    rows = []
    for j in range(weight.shape[0]):
        keep = torch.ones_like(y[:, j], dtype=torch.bool)
        if regime == "positive":
            keep = y[:, j] > 0
        elif regime == "negative":
            keep = y[:, j] <= 0
        if keep.sum() < 2:  # no samples in this regime: no direction, a zero pattern
            rows.append(torch.zeros_like(weight[j]))
        else:
            rows.append(explicit_pattern(x[keep], y[keep, j], weight[j]))
    return torch.stack(rows)


# --------------------------------------------------------------------- planted signal
def planted(n: int = 20_000, dim: int = 6, seed: int = 0):
    """x = s * latent + d * distractor + noise, with cos(s, d) = 0.7, and the readout."""
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(dim, dtype=f64, generator=g)
    s /= s.norm()
    u = torch.randn(dim, dtype=f64, generator=g)
    u -= (u @ s) * s
    u /= u.norm()
    d = 0.7 * s + math.sqrt(1 - 0.7**2) * u
    latent = torch.randn(n, dtype=f64, generator=g)
    distractor = 2 * torch.randn(n, dtype=f64, generator=g)  # independent of the latent
    noise = 0.01 * torch.randn(n, dim, dtype=f64, generator=g)
    x = latent[:, None] * s + distractor[:, None] * d + noise + 0.5  # off-centre on purpose
    # The least-squares readout of the latent must cancel the distractor: it is not s.
    design = torch.cat([x, torch.ones(n, 1, dtype=f64)], 1)
    solution = torch.linalg.lstsq(design, latent.unsqueeze(1)).solution.squeeze(1)
    model = nn.Linear(dim, 1).double()
    with torch.no_grad():
        model.weight.copy_(solution[:dim])
        model.bias.copy_(solution[dim:])
    return model, x, latent, s


def test_pattern_recovers_the_planted_signal_direction_and_the_weight_does_not():
    model, x, latent, s = planted()
    patternnet = PatternNet().fit(model, [(chunk, chunk[:, 0]) for chunk in x.split(4096)])
    (a,) = patternnet.patterns.values()
    assert cosine(a, s) > 0.99
    assert abs(cosine(model.weight, s)) < 0.8  # the filter is not the signal (~0.71 here)
    assert torch.isclose(model.weight[0] @ a[0], torch.tensor(1.0, dtype=f64))  # w^T a = 1
    with torch.no_grad():
        assert cosine(model(x).squeeze(1), latent) > 0.999  # and the readout does work

    samples = x[:5]
    output, signal = patternnet(model, samples, 0)
    assert signal.shape == samples.shape
    for row in signal:
        assert abs(cosine(row, s)) > 0.99
    # The signal estimate of a linear neuron is a * y (the backward starts from the logit).
    torch.testing.assert_close(signal, output[:, :1] * a, rtol=1e-12, atol=1e-14)


def test_linear_pattern_equals_the_covariance_formula():
    torch.manual_seed(0)
    model = nn.Linear(5, 3).double()
    x = torch.randn(600, 5, dtype=f64) @ torch.randn(5, 5, dtype=f64) + 1.5
    patternnet = PatternNet().fit(model, x, batch_size=128)
    with torch.no_grad():
        y = model(x)
    expected = explicit_patterns(x, y, model.weight.detach())
    torch.testing.assert_close(patternnet.patterns[""], expected, rtol=1e-9, atol=1e-12)
    assert patternnet.negative_patterns == {} and patternnet.estimator == "linear"


def test_two_component_patterns_equal_the_conditional_covariance_formula():
    torch.manual_seed(1)
    model = nn.Linear(4, 3).double()
    x = torch.randn(800, 4, dtype=f64) @ torch.randn(4, 4, dtype=f64) + 0.3
    patternnet = PatternNet().fit(model, [x[:300], x[300:]], estimator="two_component")
    with torch.no_grad():
        y = model(x)
    w = model.weight.detach()
    torch.testing.assert_close(
        patternnet.patterns[""], explicit_patterns(x, y, w, "positive"), rtol=1e-9, atol=1e-12
    )
    torch.testing.assert_close(
        patternnet.negative_patterns[""],
        explicit_patterns(x, y, w, "negative"),
        rtol=1e-9,
        atol=1e-12,
    )


# ------------------------------------------------------------------------ convolutions
def grouped_patches(h: torch.Tensor, conv: nn.Conv2d, group: int) -> torch.Tensor:
    """Receptive fields of one group of ``conv`` as rows (N * positions, C_g * k * k)."""
    per_group = h.shape[1] // conv.groups
    part = h[:, group * per_group : (group + 1) * per_group]
    cols = F.unfold(
        part, conv.kernel_size, dilation=conv.dilation, padding=conv.padding, stride=conv.stride
    )
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def conv_net() -> nn.Sequential:
    torch.manual_seed(2)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(6 * 2 * 2, 3),
    ).double()


@pytest.mark.parametrize("estimator", ["linear", "two_component"])
def test_convolution_patterns_equal_the_formula_over_patches(estimator):
    model = conv_net()
    x = torch.rand(24, 3, 8, 8, dtype=f64, generator=torch.Generator().manual_seed(3)) - 0.2
    patternnet = PatternNet().fit(model, x.split(7), estimator=estimator)
    regimes = ["positive", "negative"] if estimator == "two_component" else [None]
    with torch.no_grad():
        h = model[1](model[0](x))
    for index, inputs in ((0, x), (2, h)):
        conv = model[index]
        weight = conv.weight.detach()
        out_per_group = weight.shape[0] // conv.groups
        for regime, fitted in zip(
            regimes, [patternnet.patterns, patternnet.negative_patterns], strict=False
        ):
            rows = []
            for group in range(conv.groups):
                patches = grouped_patches(inputs, conv, group)
                block = weight[group * out_per_group : (group + 1) * out_per_group].flatten(1)
                bias = conv.bias.detach()[group * out_per_group : (group + 1) * out_per_group]
                rows.append(explicit_patterns(patches, patches @ block.T + bias, block, regime))
            expected = torch.cat(rows).reshape(weight.shape)
            torch.testing.assert_close(fitted[str(index)], expected, rtol=1e-8, atol=1e-11)


def test_conv1d_patterns_equal_the_formula_over_patches():
    torch.manual_seed(4)
    model = nn.Sequential(
        nn.Conv1d(2, 3, 4, stride=2, padding=1), nn.Flatten(), nn.Linear(3 * 5, 2)
    ).double()
    x = torch.randn(40, 2, 11, dtype=f64)
    patternnet = PatternNet().fit(model, x)
    conv = model[0]
    cols = F.unfold(x.unsqueeze(2), (1, 4), padding=(0, 1), stride=(1, 2))
    patches = cols.transpose(1, 2).reshape(-1, cols.shape[1])
    weight = conv.weight.detach().flatten(1)
    y = patches @ weight.T + conv.bias.detach()
    expected = explicit_patterns(patches, y, weight).reshape(conv.weight.shape)
    torch.testing.assert_close(patternnet.patterns["0"], expected, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------- backward passes
def relu_mlp() -> nn.Sequential:
    torch.manual_seed(5)
    return nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3)).double()


def test_backward_passes_equal_the_explicit_pattern_backpropagation():
    model = relu_mlp()
    data = torch.randn(500, 5, dtype=f64, generator=torch.Generator().manual_seed(6))
    x = data[:4]
    target = torch.tensor([0, 2, 1, 2])
    with torch.no_grad():
        z1 = model[0](x)
        y = model[2](torch.relu(z1))
    start = F.one_hot(target, 3).to(f64) * y  # the target logit
    for cls, times_weight in ((PatternNet, False), (PatternAttribution, True)):
        attributor = cls().fit(model, data, estimator="two_component")
        back = []
        for index in (0, 2):
            w = model[index].weight.detach()
            pos = attributor.patterns[str(index)]
            neg = attributor.negative_patterns[str(index)]
            back.append((pos * w, neg * w) if times_weight else (pos, neg))
        (pos2, neg2), (pos1, _) = back[1], back[0]
        # Output layer: a+ where its output is positive, a- elsewhere; then the ReLU's
        # gradient; behind a ReLU only a+ remains.
        g = (start * (y > 0)) @ pos2 + (start * (y <= 0)) @ neg2
        expected = (g * (z1 > 0)) @ pos1
        output, result = attributor(model, x, target)
        torch.testing.assert_close(output, y, rtol=0, atol=0)
        torch.testing.assert_close(result, expected, rtol=1e-12, atol=1e-14)


def test_pattern_attribution_of_one_linear_layer_is_w_times_a_times_the_relevance():
    torch.manual_seed(7)
    model = nn.Linear(6, 4).double()
    data = torch.randn(400, 6, dtype=f64) * torch.linspace(0.5, 2, 6, dtype=f64) + 0.7
    attribution = PatternAttribution().fit(model, data.split(100))
    with torch.no_grad():
        y = model(data)
    a = explicit_patterns(data, y, model.weight.detach())
    w = model.weight.detach()
    x = data[:3]
    target = torch.tensor([3, 0, 1])
    output, relevance = attribution(model, x, target)
    expected = (w * a)[target] * output.gather(1, target[:, None])
    torch.testing.assert_close(relevance, expected, rtol=1e-9, atol=1e-12)
    # w^T a = 1: one layer's relevance sums to the logit it started from.
    torch.testing.assert_close(relevance.sum(1), output.gather(1, target[:, None]).squeeze(1))
    # initial="one" starts from 1; output weights are taken as the output relevance.
    _, ones = PatternAttribution(initial="one").fit(model, data)(model, x, target)
    torch.testing.assert_close(ones, (w * a)[target], rtol=1e-9, atol=1e-12)
    weights = torch.tensor([[0.5, 0, 0, -2]] * 3, dtype=f64)
    _, weighted = attribution(model, x, weights)
    torch.testing.assert_close(weighted, (weights @ (w * a)), rtol=1e-9, atol=1e-12)


def test_two_component_on_a_relu_conv_net_is_finite_with_the_expected_shapes():
    model = conv_net()
    data = torch.randn(32, 3, 8, 8, dtype=f64, generator=torch.Generator().manual_seed(8))
    x = data[:5]
    for cls in (PatternNet, PatternAttribution):
        attributor = cls().fit(model, data.split(10), estimator="two_component")
        for name, module in model.named_modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                assert attributor.patterns[name].shape == module.weight.shape
                assert attributor.negative_patterns[name].shape == module.weight.shape
        output, result = attributor(model, x)
        assert output.shape == (5, 3) and result.shape == x.shape
        assert torch.isfinite(result).all() and result.abs().sum() > 0
        assert all(torch.isfinite(p).all() for p in attributor.patterns.values())


# ------------------------------------------------------------------- streaming, files
def test_statistics_do_not_depend_on_how_the_data_is_batched():
    model = conv_net()
    data = torch.randn(30, 3, 8, 8, dtype=f64, generator=torch.Generator().manual_seed(9))
    labels = torch.arange(30) % 3
    one = PatternNet().fit(model, data, estimator="two_component")
    feeds = [
        [(chunk, label) for chunk, label in zip(data.split(4), labels.split(4), strict=True)],
        (chunk for chunk in data.split(11)),  # a generator: nothing is held beyond a batch
    ]
    for feed in feeds:
        many = PatternNet().fit(model, feed, estimator="two_component")
        assert isinstance(many.statistics, PatternStatistics)
        for name, sums in one.statistics.layers.items():
            for key, value in sums.items():
                torch.testing.assert_close(
                    many.statistics.layers[name][key], value, rtol=1e-12, atol=1e-12
                )
    counts = one.statistics.layers["0"]["all.count"]
    assert (counts == 30 * 4 * 4).all()  # one sample per image and output position
    pieces = PatternNet().fit(model, data, estimator="two_component", batch_size=7)
    for name, pattern in one.patterns.items():
        torch.testing.assert_close(pieces.patterns[name], pattern, rtol=1e-10, atol=1e-12)


def test_save_and_load_round_trip_exactly(tmp_path):
    model = conv_net()
    data = torch.randn(20, 3, 8, 8, dtype=f64, generator=torch.Generator().manual_seed(10))
    fitted = PatternNet().fit(model, data, estimator="two_component")
    path = tmp_path / "patterns.pt"
    fitted.save(path)
    fitted.save(path)  # replacing an existing file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["patterns.pt"]  # no temporaries
    loaded = PatternNet.load(path, model)
    assert loaded.estimator == "two_component" and loaded.statistics is None
    pairs = [(fitted.patterns, loaded.patterns)]
    pairs.append((fitted.negative_patterns, loaded.negative_patterns))
    for mine, theirs in pairs:
        assert mine.keys() == theirs.keys()
        assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    x = data[:3]
    assert torch.equal(fitted(model, x, 1).relevance, loaded(model, x, 1).relevance)
    # The file holds patterns, not the method: PatternAttribution reads it too.
    other = PatternAttribution.load(path, initial="one")
    assert other.initial == "one" and torch.equal(other.patterns["6"], fitted.patterns["6"])


def test_load_refuses_files_and_models_that_do_not_match(tmp_path):
    model = relu_mlp()
    path = tmp_path / "p.pt"
    PatternNet().fit(model, torch.randn(50, 5, dtype=f64)).save(path)
    wider = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3)).double()
    with pytest.raises(ConfigError, match=r"layer '0' has weights of shape \(8, 5\), its patt"):
        PatternNet.load(path, wider)
    renamed = nn.Sequential(nn.Identity(), nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    with pytest.raises(ConfigError, match=r"it has no Linear/Conv layer '0' \(its layers: 1, 3\)"):
        PatternNet.load(path, renamed)
    deeper = nn.Sequential(*relu_mlp(), nn.Linear(3, 3)).double()
    with pytest.raises(ConfigError, match="no pattern for layer '3'"):
        PatternNet.load(path, deeper)
    loaded = PatternNet.load(path)  # unchecked until it meets a model
    with pytest.raises(ConfigError, match="no pattern for layer '3'"):
        loaded(deeper, torch.randn(2, 5, dtype=f64))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(FormatError, match=r"junk.pt: /: expected a patterns file"):
        PatternNet.load(junk)
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(FormatError, match="expected a dictionary with format"):
        PatternNet.load(tmp_path / "other.pt")
    torch.save(
        {"format": "relscope-patterns", "version": 1, "estimator": "two_component",
         "patterns": {"0": torch.zeros(2)}, "negative_patterns": {}},
        tmp_path / "half.pt",
    )  # fmt: skip
    with pytest.raises(FormatError, match="negative_patterns: expected one tensor per pattern"):
        PatternNet.load(tmp_path / "half.pt")
    with pytest.raises(PathError, match="no such patterns file"):
        PatternNet.load(tmp_path / "missing.pt")
    with pytest.raises(PathError, match="does not exist"):
        PatternNet.load(path).save(tmp_path / "no" / "such" / "dir.pt")


# ----------------------------------------------------------------------------- errors
def test_use_before_fit_and_bad_arguments_are_one_line_errors(tmp_path):
    model = relu_mlp()
    x = torch.randn(2, 5, dtype=f64)
    for cls in (PatternNet, PatternAttribution):
        with pytest.raises(ConfigError, match=rf"^{cls.__name__} has no patterns yet: call fit"):
            cls()(model, x)
        with pytest.raises(ConfigError, match="has no patterns yet"):
            cls().save(tmp_path / "p.pt")
    with pytest.raises(ConfigError, match="estimator must be one of 'linear', 'two_component'"):
        PatternNet().fit(model, x, estimator="relu")
    with pytest.raises(ConfigError, match="batch_size must be a positive integer"):
        PatternNet().fit(model, x, batch_size=0)
    with pytest.raises(ConfigError, match=r"batch 1 must be a floating point .* got a torch.int64"):
        PatternNet().fit(model, [x, torch.ones(2, 5, dtype=torch.long)])
    with pytest.raises(ConfigError, match="fit data yielded no samples"):
        PatternNet().fit(model, [])
    with pytest.raises(ConfigError, match="fit data must be an iterable"):
        PatternNet().fit(model, 3)
    with pytest.raises(ConfigError, match="initial must be"):
        PatternNet(initial="zero")
    assert all(not m._forward_hooks for m in model.modules())  # removed on errors too


def test_unsupported_layers_are_refused():
    transposed = nn.Sequential(nn.ConvTranspose2d(2, 2, 3), nn.Flatten(), nn.Linear(50, 2))
    with pytest.raises(ConfigError, match=r"layer '0' \(ConvTranspose2d\): transposed"):
        PatternNet().fit(transposed, torch.randn(4, 2, 3, 3))

    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first = nn.Linear(3, 4)
            self.extra = nn.Parameter(torch.randn(2, 4))

        def forward(self, x):
            return F.linear(torch.relu(self.first(x)), self.extra)

    model = Functional()
    attributor = PatternNet().fit(model, torch.randn(20, 3))
    with pytest.raises(ConfigError, match=r"layer extra \(linear\) has no pattern: only Linear"):
        attributor(model, torch.randn(2, 3))


def test_registry_and_parameters():
    assert isinstance(get_attributor("patternnet"), PatternNet)
    attributor = get_attributor("pattern_attribution", initial="one")
    assert isinstance(attributor, PatternAttribution)
    assert attributor.params() == {"initial": "one", "estimator": None}
    assert repr(attributor) == "PatternAttribution(initial='one', estimator=None)"
