"""torch.compile: the compiled attribution equals the eager one, without graph breaks."""

from torch import nn

from relscope.attribution import LRP


def test_compiled_attribution_equals_eager_without_graph_breaks():
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32, 10),
    ).eval()
    with torch.no_grad():
        model[1].running_var.uniform_(0.5, 2.0)
    x = torch.randn(4, 3, 16, 16)
    target = torch.tensor([0, 3, 5, 9])
    with LRP(model, "epsilon_alpha2_beta1") as eager:
        expected_output, expected = eager(x, target)
    torch._dynamo.reset()
    counters.clear()
    with LRP(model, "epsilon_alpha2_beta1", compile=True) as compiled:
        output, relevance = compiled(x, target)
        again = compiled(x + 0.1, target).relevance
    assert not counters["graph_break"], dict(counters["graph_break"])
    torch.testing.assert_close(output, expected_output, rtol=1e-5, atol=1e-6)
    scale = expected.abs().max()
    torch.testing.assert_close(relevance / scale, expected / scale, rtol=0, atol=1e-5)
    with LRP(model, "epsilon_alpha2_beta1") as eager:
        torch.testing.assert_close(again, eager(x + 0.1, target).relevance, rtol=1e-4, atol=1e-6)
