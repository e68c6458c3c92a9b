"""Small networks for engine tests (float64 unless said otherwise)."""

import torch
from torch import nn


class Residual(nn.Module):
    """A torchvision-style residual block: conv-bn-relu-conv-bn, ``out += identity``, relu."""

    def __init__(self, channels: int, bias: bool = True, norm: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.bn1 = nn.BatchNorm2d(channels) if norm else nn.Identity()
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.bn2 = nn.BatchNorm2d(channels) if norm else nn.Identity()

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class Dense(nn.Module):
    """DenseNet-style concatenation with functional relu and flatten."""

    def __init__(self, bias: bool = True) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1, bias=bias)
        self.b = nn.Conv2d(7, 5, 3, padding=1, bias=bias)
        self.head = nn.Linear(12 * 4 * 4, 6, bias=bias)

    def forward(self, x):
        y = torch.cat([x, torch.relu(self.a(x))], 1)
        y = torch.cat([y, nn.functional.relu(self.b(y))], 1)
        y = nn.functional.adaptive_avg_pool2d(y, 4)
        return self.head(torch.flatten(y, 1))


def plain(bias: bool = False) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1, bias=bias),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1, bias=bias),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 2 * 2, 16, bias=bias),
        nn.ReLU(),
        nn.Linear(16, 5, bias=bias),
    )


def resnet(bias: bool = False, norm: bool = False) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1, bias=bias),
        nn.ReLU(),
        Residual(6, bias=bias, norm=norm),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24, 5, bias=bias),
    )


def with_batch_norm() -> nn.Module:
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        Residual(6),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24, 7),
        nn.BatchNorm1d(7),
        nn.ReLU(),
        nn.Linear(7, 5),
    )
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.3, 0.3)
    return model.eval()


NETS = {
    "plain": plain,
    "resnet": resnet,
    "dense": lambda bias=False: Dense(bias=bias),
}


def make(name: str, *, bias: bool = False, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return NETS[name](bias=bias).double().eval()


def gradient_times_input(model: nn.Module, x: torch.Tensor, target: torch.Tensor):
    leaf = x.clone().requires_grad_(True)
    output = model(leaf)
    onehot = nn.functional.one_hot(target, output.shape[1]).to(output.dtype)
    (grad,) = torch.autograd.grad(output, leaf, onehot)
    return grad * x, output.detach()
