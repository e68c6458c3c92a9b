"""Channel ablation against a hand-written forward, and relevance-guided channel choice."""

import pytest
import torch
from torch import nn

from relscope.attribution import LRP
from relscope.errors import ConfigError
from relscope.evaluation import Ablation, GuidedAblation, ablate, relevance_guided_ablation


class Net(nn.Module):
    """A small bias-free CNN with a nested layer name (``features.2``)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1, bias=False),
            nn.ReLU(),
            nn.Conv2d(6, 8, 3, padding=1, bias=False),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.flatten = nn.Flatten()
        self.hidden = nn.Linear(8 * 4 * 4, 10, bias=False)
        self.relu = nn.ReLU()
        self.head = nn.Linear(10, 5, bias=False)
        self.double().eval()

    def forward(self, x):
        return self.head(self.relu(self.hidden(self.flatten(self.features(x)))))

    def by_hand(self, x, after, mask):
        """The forward with ``mask`` (batch, channels) zeroed after module ``after``."""
        steps = [*self.features, self.flatten, self.hidden, self.relu, self.head]
        names = [f"features.{i}" for i in range(5)] + ["flatten", "hidden", "relu", "head"]
        with torch.no_grad():
            for name, step in zip(names, steps, strict=True):
                x = step(x)
                if name == after:
                    x = x.clone()
                    shape = mask.shape + (1,) * (x.ndim - 2)
                    x[mask.view(shape).expand_as(x)] = 0.0
        return x


def hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


@pytest.fixture
def data():
    generator = torch.Generator().manual_seed(1)
    return Net(), torch.rand(3, 3, 8, 8, dtype=torch.float64, generator=generator)


@pytest.mark.parametrize("layer", ["features.0", "features.2", "features.3", "hidden", "relu"])
def test_shared_channels_equal_the_hand_computation(data, layer):
    model, x = data
    count = 10 if layer in ("hidden", "relu") else (6 if layer == "features.0" else 8)
    channels = [0, count - 1, 2]
    mask = torch.zeros(3, count, dtype=torch.bool)
    mask[:, channels] = True
    before = hooks(model)
    result = ablate(model, x, layer, channels)
    assert isinstance(result, Ablation)
    assert hooks(model) == before
    torch.testing.assert_close(result.output, model.by_hand(x, layer, mask), rtol=0, atol=0)
    assert torch.equal(result.mask, mask)
    assert torch.equal(result.prediction, result.output.argmax(1))
    with torch.no_grad():
        intact = model(x)
    assert not torch.allclose(result.output, intact)  # it did change the output
    torch.testing.assert_close(intact, model.by_hand(x, None, mask))  # and left the model


@pytest.mark.parametrize(
    "channels",
    [
        [[1], [0, 4, 7], []],  # ragged lists
        torch.tensor([[1, 2], [0, 7], [5, 5]]),  # a (batch, k) tensor, repeats allowed
    ],
)
def test_per_sample_channels_equal_the_hand_computation(data, channels):
    model, x = data
    mask = torch.zeros(3, 8, dtype=torch.bool)
    for i, row in enumerate(channels):
        mask[i, list(row)] = True
    result = ablate(model, x, "features.2", channels)
    torch.testing.assert_close(result.output, model.by_hand(x, "features.2", mask), rtol=0, atol=0)
    assert torch.equal(result.mask, mask)


def test_single_channel_tensor_and_value(data):
    model, x = data
    for channels in (3, torch.tensor(3), torch.tensor([3])):
        mask = torch.zeros(3, 8, dtype=torch.bool)
        mask[:, 3] = True
        result = ablate(model, x, "features.2", channels)
        torch.testing.assert_close(result.output, model.by_hand(x, "features.2", mask))
    # another value than zero: a constant channel, checked through the next layer's input
    seen = {}
    handle = model.features[3].register_forward_hook(lambda m, i, o: seen.update(x=i[0]))
    try:
        ablate(model, x, "features.2", [1, 2], value=0.25)
    finally:
        handle.remove()
    assert torch.equal(seen["x"][:, 1:3], torch.full_like(seen["x"][:, 1:3], 0.25))


def test_ablation_does_not_turn_infinite_activations_into_nan():
    model = nn.Sequential(nn.Linear(2, 3, bias=False), nn.Linear(3, 2, bias=False)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[10.0, 0.0], [0.0, 1.0], [10.0, 1.0]]))
        model[1].weight.copy_(torch.ones(2, 3))
    x = torch.tensor([[1e308, 1.0]], dtype=torch.float64)  # features 0 and 2 overflow to inf
    result = ablate(model, x, "0", [0, 2])
    torch.testing.assert_close(result.output, torch.tensor([[1.0, 1.0]], dtype=torch.float64))


def test_the_hook_is_removed_when_the_forward_fails(data):
    model, x = data
    before = hooks(model)
    with pytest.raises(ConfigError, match=r"channel 8 out of range for layer 'features.2' with 8"):
        ablate(model, x, "features.2", [1, 8])
    assert hooks(model) == before

    class Boom(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    broken = nn.Sequential(nn.Linear(2, 2), Boom())
    with pytest.raises(RuntimeError, match="boom"):
        ablate(broken, torch.zeros(1, 2), "0", [0])
    assert hooks(broken) == 0


@pytest.mark.parametrize(
    ("layer", "channels", "message"),
    [
        ("featres.2", [0], r"unknown layer 'featres.2'; did you mean 'features.2'\?"),
        ("", [0], "unknown layer ''; layers of the model: 'features', 'features.0'"),
        ("features.2", [-1], "channel -1 out of range"),
        ("features.2", [[0], [1]], "channels per sample must have 3 rows, got 2"),
        ("features.2", [0.5], "channels must be integer channel indices"),
        ("features.2", torch.tensor([True, False]), "channels must be integer channel indices"),
    ],
)
def test_bad_layers_and_channels_give_one_line_errors(data, layer, channels, message):
    model, x = data
    with pytest.raises(ConfigError, match=message) as info:
        ablate(model, x, layer, channels)
    assert "\n" not in str(info.value)
    assert hooks(model) == 0


def test_unknown_layer_lists_a_few_valid_names(data):
    model, x = data
    with pytest.raises(ConfigError) as info:
        ablate(model, x, "classifier", [0])
    text = str(info.value)
    assert "'features.0', 'features.1'" in text and "(10 in all)" in text


@pytest.mark.parametrize("composite", ["epsilon", "epsilon_plus"])
@pytest.mark.parametrize(
    ("layer", "order"), [("features.2", "most"), ("features.3", "least"), ("hidden", "absolute")]
)
def test_guided_ablation_takes_the_channels_with_the_largest_recorded_relevance(
    data, composite, layer, order
):
    model, x = data
    target = torch.tensor([0, 3, 4])
    with LRP(model, composite) as lrp:
        recorded = lrp(x, target, record=[layer]).layers[layer]
    per_channel = recorded.flatten(2).sum(2) if recorded.ndim > 2 else recorded
    key = {"most": -per_channel, "least": per_channel, "absolute": -per_channel.abs()}[order]
    expected = key.argsort(dim=1, stable=True)[:, :3]

    result = relevance_guided_ablation(model, x, target, composite, layer, 3, order=order)
    assert isinstance(result, GuidedAblation)
    torch.testing.assert_close(result.relevance, per_channel)
    assert torch.equal(result.channels, expected)
    # the chosen channels really are the top 3 by the recorded relevance
    chosen = key.gather(1, result.channels)
    rest = key.scatter(1, result.channels, torch.inf)
    assert (chosen.max(1).values <= rest.min(1).values).all()

    mask = torch.zeros_like(per_channel, dtype=torch.bool).scatter(1, expected, True)
    torch.testing.assert_close(result.output, model.by_hand(x, layer, mask), rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(result.original, model(x), rtol=0, atol=0)
    drop = result.original[range(3), target] - result.output[range(3), target]
    torch.testing.assert_close(result.score_drop, drop)
    assert torch.equal(result.target, target)
    assert torch.equal(result.prediction, result.output.argmax(1))
    assert torch.equal(result.original_prediction, result.original.argmax(1))
    assert hooks(model) == 0


def test_with_lrp0_the_score_drop_is_the_ablated_relevance(data):
    # At the input of the bias-free output layer, the LRP-0 relevance of neuron j is its
    # contribution h_j w_tj to the target logit, so zeroing it lowers the logit by exactly
    # that much: the drop equals the sum of the ablated relevance.
    model, x = data
    result = relevance_guided_ablation(model, x, None, "lrp0", "relu", 4)
    with torch.no_grad():
        predicted = model(x).argmax(1)
    assert torch.equal(result.target, predicted)
    ablated = result.relevance.gather(1, result.channels).sum(1)
    torch.testing.assert_close(result.score_drop, ablated, rtol=1e-10, atol=1e-12)
    # and the most relevant neurons remove more than the least relevant ones
    least = relevance_guided_ablation(model, x, None, "lrp0", "relu", 4, order="least")
    assert (result.score_drop >= least.score_drop).all()


@pytest.mark.parametrize(
    ("layer", "k", "message"),
    [
        ("features.2", 0, "k must be a positive integer, got 0"),
        ("features.2", 9, "k=9 is more than the 8 channels of layer 'features.2'"),
        ("nope", 1, "unknown layer 'nope'"),
    ],
)
def test_guided_ablation_errors(data, layer, k, message):
    model, x = data
    with pytest.raises(ConfigError, match=message) as info:
        relevance_guided_ablation(model, x, None, "epsilon", layer, k)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="order must be 'most', 'least' or 'absolute'"):
        relevance_guided_ablation(model, x, None, "epsilon", "features.2", 1, order="top")
    with pytest.raises(ConfigError, match="target class out of range"):
        relevance_guided_ablation(model, x, 7, "epsilon", "features.2", 1)
